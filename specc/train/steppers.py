"""The first-order optimizers' updates, run through torch's own functional kernels.

``torch.optim.Adam(...)`` and its siblings import ``torch._dynamo`` when they are built and at
their first ``step`` (their methods are wrapped by ``torch._disable_dynamo``, and ``step`` calls
``torch._dynamo.graph_break()``); that import pulls in sympy, ``torch.fx``'s symbolic shapes and
``torch.distributed.fsdp``: 1–3 s on this machine, more than one epoch of a small model on a
million rows. The functional kernels the classes call (``torch.optim.adam.adam`` …, the API
``torch.distributed.optim`` uses) need none of it. A :class:`Stepper` keeps the same state as the
class (same tensors, same dtypes, created at the same moment) and passes the class's defaults, so
each step is the class's step bit for bit (tests/test_devices.py compares them).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch.optim import adagrad, adam, rmsprop, sgd
from torch.optim.optimizer import _get_scalar_dtype


def _step_count() -> torch.Tensor:
    return torch.tensor(0.0, dtype=_get_scalar_dtype())  # on the CPU, as the classes keep it (not capturable)


def _zeros(p: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(p, memory_format=torch.preserve_format)


class Stepper:
    """One optimizer over a fixed list of parameters: ``zero_grad()`` and ``step()`` as torch.optim's."""

    state_names: tuple[str, ...] = ()  # per-parameter state, created at the parameter's first step

    def __init__(self, params, lr: float, momentum: float = 0.0):
        self.params = list(params)
        self.lr, self.momentum = lr, momentum
        self.state: dict[int, dict[str, torch.Tensor]] = {}

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None  # torch.optim's default (set_to_none)

    def new_state(self, p: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def step(self) -> None:
        live = [(i, p) for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        for i, p in live:
            if i not in self.state:
                self.state[i] = self.new_state(p)
        states = [self.state[i] for i, _ in live]
        params, grads = [p for _, p in live], [p.grad for _, p in live]
        with torch.no_grad():
            self.update(params, grads, states)

    def update(self, params, grads, states) -> None:
        raise NotImplementedError


class Adam(Stepper):
    def new_state(self, p):
        return {"step": _step_count(), "exp_avg": _zeros(p), "exp_avg_sq": _zeros(p)}

    def update(self, params, grads, states):
        adam.adam(params, grads, [s["exp_avg"] for s in states], [s["exp_avg_sq"] for s in states], [],
                  [s["step"] for s in states], foreach=None, capturable=False, differentiable=False, fused=None,
                  grad_scale=None, found_inf=None, has_complex=False, decoupled_weight_decay=False,
                  amsgrad=False, beta1=0.9, beta2=0.999, lr=self.lr, weight_decay=0.0, eps=1e-8, maximize=False)


class SGD(Stepper):
    def new_state(self, p):
        return {}

    def update(self, params, grads, states):
        buffers = [s.get("momentum_buffer") for s in states] if self.momentum else []
        sgd.sgd(params, grads, buffers, has_sparse_grad=False, foreach=None, fused=None, grad_scale=None,
                found_inf=None, weight_decay=0.0, momentum=self.momentum, lr=self.lr, dampening=0.0,
                nesterov=False, maximize=False)
        for s, buffer in zip(states, buffers):  # the kernel creates them at the first step
            s["momentum_buffer"] = buffer


class RMSprop(Stepper):
    def new_state(self, p):
        state = {"step": torch.zeros((), dtype=_get_scalar_dtype()), "square_avg": _zeros(p)}
        if self.momentum:
            state["momentum_buffer"] = _zeros(p)
        return state

    def update(self, params, grads, states):
        rmsprop.rmsprop(params, grads, [s["square_avg"] for s in states], [],
                        [s["momentum_buffer"] for s in states] if self.momentum else [],
                        [s["step"] for s in states], foreach=None, maximize=False, differentiable=False,
                        capturable=False, has_complex=False, lr=self.lr, alpha=0.99, eps=1e-8,
                        weight_decay=0.0, momentum=self.momentum, centered=False)


class Adagrad(Stepper):
    def __init__(self, params, lr: float, momentum: float = 0.0):
        super().__init__(params, lr, momentum)
        for i, p in enumerate(self.params):  # the class creates its state at once, for every parameter
            self.state[i] = self.new_state(p)

    def new_state(self, p):
        return {"step": _step_count(), "sum": torch.full_like(p, 0.0, memory_format=torch.preserve_format)}

    def update(self, params, grads, states):
        adagrad.adagrad(params, grads, [s["sum"] for s in states], [s["step"] for s in states], fused=None,
                        grad_scale=None, found_inf=None, has_sparse_grad=False, foreach=None,
                        differentiable=False, has_complex=False, lr=self.lr, weight_decay=0.0, lr_decay=0.0,
                        eps=1e-10, maximize=False)


STEPPERS: dict[str, Callable[..., Stepper]] = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop, "adagrad": Adagrad}
