"""Engines: what evaluates the criterion and its gradient for the quasi-Newton loops.

Every engine implements :class:`Objective`; ``ENGINES`` is the table ``fit(..., engine=...)``
reads. An engine is built from the model and fit's :class:`~specc.train.losses.Criterion` (the
data, the loss, the decay) and works on flat float64 NumPy vectors, so the minimisers
(:mod:`specc.train.bfgs`, :mod:`specc.train.multistart`) never see torch.
"""
from __future__ import annotations

import ctypes
import math
import warnings
from typing import Callable, Protocol

import numpy as np
import torch

from ..errors import SpecError, SpecWarning
from ..lower import spec_graph
from .cbuild import Problem
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
    name: str  # the engine's name in ENGINES (what a fit reports it ran on)

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]: ...

    def store(self, x: np.ndarray) -> None: ...


def as_numpy(names, values) -> dict[str, np.ndarray]:
    """Tensors by name as float64 arrays."""
    return {name: value.detach().double().numpy() for name, value in zip(names, values)}


def fixed_values(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """The spec's fixed values (``fixed mu[3]``) as the module holds them now, float64: constants of
    the criterion, read once when an engine is built."""
    names = spec_graph(model).graph["fixed"]
    return {name: value.copy() for name, value in as_numpy(names, (model.get_buffer(n) for n in names)).items()}


class AutogradObjective:
    """One forward and one backward pass of the module itself (torch autograd).

    The parameters become views of one flat buffer and their ``.grad`` views of another, so a call
    costs one copy in, the passes, and one copy out, with no per-parameter Python work.
    """

    name = "autograd"

    def __init__(self, model: torch.nn.Module, criterion: Criterion):
        self.criterion, self.params = criterion, list(model.parameters())
        self.values = torch.cat([p.detach().reshape(-1) for p in self.params])
        self.grads = torch.zeros_like(self.values)
        self._bind()
        self.x0 = self.values.to(torch.float64, copy=True).numpy()
        self.size = len(self.x0)

    def _bind(self) -> None:
        offset = 0
        for p in self.params:
            p.data = self.values[offset:offset + p.numel()].view_as(p)
            p.grad = self.grads[offset:offset + p.numel()].view_as(p)
            offset += p.numel()

    def evaluate(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Restarts' points one after another (a spec with step nodes has no batched engine)."""
        self._bind()  # drawing the restarts' starts gave the parameters storage of their own
        pairs = [self.value_and_grad(x) for x in X]
        return np.array([f for f, _ in pairs]), np.stack([g for _, g in pairs])

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
    name = "numpy"

    def __init__(self, model: torch.nn.Module, criterion: Criterion):
        from .tape import Tape  # imported on use: this engine is optional
        super().__init__(model)
        try:
            self.tape = Tape(spec_graph(model), as_numpy(model.spec_inputs, criterion.inputs),
                             as_numpy(model.spec_outputs, criterion.targets), criterion.loss.name, criterion.decay,
                             fixed_values(model))
        except ValueError as err:
            raise SpecError(f"engine 'numpy': {err}") from None
        self.size = self.tape.size

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        return self.tape(x)

    def evaluate(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.tape.evaluate(X)


class CompiledObjective(VectorObjective):
    """The spec's criterion compiled to C (:mod:`specc.train.ccode`, built and cached by
    :mod:`specc.train.cbuild`): no interpreter between operations, and a minimiser
    (:meth:`minimize`) that runs every restart's iterations in C as well."""
    name = "compiled"

    def __init__(self, model: torch.nn.Module, criterion: Criterion, library):
        super().__init__(model)
        graph = spec_graph(model)
        self.lib, self.size = library, int(library.sp_parameters())
        tensors = dict(zip(model.spec_inputs, criterion.inputs)) | dict(zip(model.spec_outputs, criterion.targets))
        # The library reads these through raw pointers: private contiguous copies that live with this object.
        self.arrays = [np.ascontiguousarray(tensors[name].detach().double().numpy().reshape(criterion.rows, -1))
                       for name in (*graph.graph["inputs"], *graph.graph["outputs"])]
        self.arrays += [np.ascontiguousarray(v).reshape(-1) for v in fixed_values(model).values()]  # not literals
        self.pointers = (ctypes.c_void_p * len(self.arrays))(*(a.ctypes.data for a in self.arrays))
        self.work = np.empty(max(1, int(library.sp_work_size())))
        self.problem = Problem(criterion.rows, float(criterion.decay), 1.0, ctypes.addressof(self.pointers),
                               self.work.ctypes.data)
        self.f, self.g = np.empty(1), np.empty(self.size)

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        x = np.ascontiguousarray(x, dtype=np.float64)
        self.lib.sp_evaluate(ctypes.byref(self.problem), 1, x.ctypes.data, self.f.ctypes.data, self.g.ctypes.data)
        return float(self.f[0]), self.g.copy()

    def value(self, x: np.ndarray) -> float:
        x = np.ascontiguousarray(x, dtype=np.float64)
        self.lib.sp_evaluate(ctypes.byref(self.problem), 1, x.ctypes.data, self.f.ctypes.data, None)
        return float(self.f[0])

    def evaluate(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = np.ascontiguousarray(X, dtype=np.float64)
        F, G = np.empty(len(X)), np.empty(X.shape)
        self.lib.sp_evaluate(ctypes.byref(self.problem), len(X), X.ctypes.data, F.ctypes.data, G.ctypes.data)
        return F, G

    def minimize(self, x0: np.ndarray, *, max_iter: int, abstol: float | None, reltol: float | None,
                 scale: float = 1.0, callback=None, rounds: int = 50):
        """:func:`specc.train.multistart.minimize` from every row of ``x0``, run in C (criterion times
        ``scale``); ``rounds`` iterations per call, between which ``callback(iteration, best f)`` runs."""
        from .multistart import STATUS, Batch
        X = np.array(x0, dtype=np.float64, ndmin=2, order="C")
        R, n = X.shape
        F, G, H = np.empty(R), np.empty((R, n)), np.empty((R, n, n))
        counters = np.zeros((R, 5), dtype=np.int64)
        counters[:, 0] = -1  # not started
        history = np.full((R, min(max_iter, 1024) + 1), np.nan)
        scratch = np.empty(5 * n)
        self.problem.scale = scale
        abstol = -math.inf if abstol is None else abstol
        reltol = 0.0 if reltol is None else reltol
        try:
            while True:
                if counters[:, 3].max() + rounds + 1 > history.shape[1] and history.shape[1] <= max_iter:
                    history = np.concatenate([history, np.full(history.shape, np.nan)], axis=1)
                history = np.ascontiguousarray(history)
                running = self.lib.sp_minimize(
                    ctypes.byref(self.problem), R, X.ctypes.data, F.ctypes.data, G.ctypes.data, H.ctypes.data,
                    counters.ctypes.data, history.ctypes.data, history.shape[1], max_iter, abstol, reltol,
                    rounds, scratch.ctypes.data)
                if callback is not None and not np.isnan(F).all():
                    callback(int(counters[:, 3].max()), float(np.nanmin(F)))
                if running == 0:
                    break
        finally:
            self.problem.scale = 1.0
        status = counters[:, 0]
        histories = [history[k, :counters[k, 3] + 1].copy() for k in range(R)]
        return Batch(X, F, counters[:, 3].copy(), counters[:, 4].copy(), status == 1,
                     [STATUS[int(v)] for v in status], histories)


def compiled(model: torch.nn.Module, criterion: Criterion) -> Objective:
    """The ``compiled`` engine; where no C library can be had, a one-line warning and the NumPy tape."""
    from .cbuild import BuildError, build
    from .ccode import Unsupported, c_source
    try:
        library = build(c_source(spec_graph(model), criterion.loss.name))
    except (BuildError, Unsupported) as err:
        warnings.warn(f"no compiled criterion ({err}); fitting with the NumPy tape instead (slower)",
                      SpecWarning, stacklevel=2)
        return TapeObjective(model, criterion)
    return CompiledObjective(model, criterion, library)


ENGINES: dict[str, Callable[[torch.nn.Module, Criterion], Objective]] = {
    "compiled": compiled, "numpy": TapeObjective, "autograd": AutogradObjective, "nnet": NnetEngine}
