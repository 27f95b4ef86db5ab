"""Engines: what evaluates the criterion and its gradient for the quasi-Newton loops.

Every engine implements :class:`Objective`; ``ENGINES`` is the table ``fit(..., engine=...)``
reads. An engine is built from the model and fit's :class:`~specc.train.losses.Criterion` (the
data, the loss, the decay) and works on flat float64 NumPy vectors, so the minimisers
(:mod:`specc.train.bfgs`, :mod:`specc.train.multistart`) never see torch.
"""
from __future__ import annotations

from typing import Callable, Protocol

import numpy as np
import torch

from ..errors import SpecError
from ..lower import spec_graph
from .losses import Criterion
from .nnet import NnetEngine


class Objective(Protocol):
    """The criterion as the minimisers see it.

    ``x0`` is the model's current point, flat float64 (the spec's parameter order, each raveled
    row-major, as ``torch.nn.utils.parameters_to_vector``; nnet's ``Wts`` order for ``nnet``).
    ``value_and_grad(x)`` is the criterion and its gradient there; ``store(x)`` leaves ``x`` in the
    model. An engine may also offer ``value(x)`` (the criterion alone, cheaper: a line search's
    rejected points skip the backward pass) and ``evaluate(X)`` (``[R, n]`` points at once: the
    batched restarts).
    """

    x0: np.ndarray

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]: ...

    def store(self, x: np.ndarray) -> None: ...


def as_numpy(names, values) -> dict[str, np.ndarray]:
    """Tensors by name as float64 arrays."""
    return {name: value.detach().double().numpy() for name, value in zip(names, values)}


class AutogradObjective:
    """One forward and one backward pass of the module itself (torch autograd).

    The parameters become views of one flat buffer and their ``.grad`` views of another, so a call
    costs one copy in, the passes, and one copy out, with no per-parameter Python work.
    """

    def __init__(self, model: torch.nn.Module, criterion: Criterion):
        self.criterion, self.params = criterion, list(model.parameters())
        self.values = torch.cat([p.detach().reshape(-1) for p in self.params])
        self.grads = torch.zeros_like(self.values)
        offset = 0
        for p in self.params:
            p.data = self.values[offset:offset + p.numel()].view_as(p)
            p.grad = self.grads[offset:offset + p.numel()].view_as(p)
            offset += p.numel()
        self.x0 = self.values.to(torch.float64, copy=True).numpy()

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        self.values.copy_(torch.from_numpy(np.asarray(x, dtype=np.float64)))
        self.grads.zero_()
        value = self.criterion()
        value.backward()  # accumulates into the .grad views, i.e. into self.grads
        return value.item(), self.grads.to(torch.float64, copy=True).numpy()

    def store(self, x: np.ndarray) -> None:
        """Leave ``x`` in the module, its parameters on their own storage again."""
        self.values.copy_(torch.from_numpy(np.asarray(x, dtype=np.float64)))
        for p in self.params:
            p.data = p.data.clone()
            p.grad = None


class VectorObjective:
    """What the engines working on the spec's flat parameter vector share: ``x0`` and ``store``."""

    def __init__(self, model: torch.nn.Module):
        self.params = list(model.parameters())
        self.x0 = torch.nn.utils.parameters_to_vector(self.params).detach().double().numpy()

    def store(self, x: np.ndarray) -> None:
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(torch.as_tensor(x).to(self.params[0].dtype), self.params)


class TapeObjective(VectorObjective):
    """:mod:`specc.train.tape`'s NumPy tape of the spec with its own reverse pass (every loss): far
    less overhead per evaluation than torch autograd on small nets, and batched over restarts."""

    def __init__(self, model: torch.nn.Module, criterion: Criterion):
        from .tape import Tape  # imported on use: this engine is optional
        super().__init__(model)
        try:
            self.tape = Tape(spec_graph(model), as_numpy(model.spec_inputs, criterion.inputs),
                             as_numpy(model.spec_outputs, criterion.targets), criterion.loss.name, criterion.decay)
        except ValueError as err:
            raise SpecError(f"engine 'numpy': {err}") from None
        self.size = self.tape.size

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        return self.tape(x)

    def evaluate(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.tape.evaluate(X)


ENGINES: dict[str, Callable[[torch.nn.Module, Criterion], Objective]] = {
    "autograd": AutogradObjective, "numpy": TapeObjective, "nnet": NnetEngine}
