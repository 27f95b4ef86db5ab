"""The optimizers ``specc.fit`` drives (a table, one row per optimizer) and the loops that drive them.

Every optimizer row names the loop that runs it:

- first-order (``sgd``, ``adam``, ``rmsprop``, ``adagrad``): epochs over the data,
  full batch unless ``batch_size`` is given (then shuffled mini-batches);
- ``lbfgs``: torch's L-BFGS with a strong-Wolfe line search, full batch;
- ``bfgs``: Nash's variable-metric method (:mod:`specc.train.bfgs`; with restarts
  :mod:`specc.train.multistart`'s batched one), full batch, on one flat float64 parameter vector,
  with nnet's stopping rules (``abstol`` on the criterion, ``reltol`` on its relative improvement,
  ``max_iter``), through an engine (:mod:`specc.train.engines`).

``history`` holds one criterion value per epoch (first-order) or iteration (quasi-Newton), each
from that step's own forward pass, before its update.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from ..errors import SpecError
from .bfgs import vmmin
from .engines import ENGINES
from .losses import Criterion, rows_by_name
from .report import Progress
from .steppers import STEPPERS


@dataclass
class Run:
    history: list[float]
    iterations: int
    converged: bool
    evaluations: int
    loss: float


def stalled(history: list[float], abstol: float | None, reltol: float | None) -> bool:
    """nnet's rules (each off when None): the criterion is at most abstol, or it improved by at
    most reltol relatively."""
    f = history[-1]
    if abstol is not None and f <= abstol:
        return True
    return reltol is not None and len(history) > 1 and abs(history[-2] - f) <= reltol * (abs(history[-2]) + reltol)


def batches(rows: int, batch: int | None, generator: torch.Generator | None,
            device: torch.device | None = None) -> Iterator[torch.Tensor | None]:
    """The rows each step of one epoch sees: ``None`` (every row, one full-batch step) when ``batch``
    is None or covers them all, else a random permutation from ``generator`` (on the CPU, so that a
    seed gives the same order on every device) split into index tensors of ``batch`` rows, on
    ``device``. The one place that deals rows to steps: a distributed run swaps it for its own."""
    if batch is None or batch >= rows:
        yield None
        return
    order = torch.randperm(rows, generator=generator)
    yield from order.to(device).split(batch) if device is not None else order.split(batch)


def _first_order(model, criterion: Criterion, s: dict, progress: Progress, monitor=None) -> Run:
    # torch's functional kernels: the torch.optim classes import torch._dynamo (specc.train.steppers)
    opt = OPTIMIZERS[s["optimizer"]].make(model.parameters(), s["lr"], s["momentum"])
    rows, batch = criterion.rows, s["batch_size"]
    generator = torch.Generator().manual_seed(s["seed"]) if s["seed"] is not None else None
    device = (criterion.inputs or criterion.targets)[0].device
    mean = criterion.loss.reduction == "mean"
    history, steps, converged = [], 0, False
    for epoch in range(s["epochs"]):
        total = None  # the epoch's loss, summed on the device: no synchronisation per step
        for chunk in batches(rows, batch, generator, device):
            opt.zero_grad()
            value = criterion(chunk)
            value.backward()
            opt.step()
            steps += 1
            if chunk is None:
                total = value.detach()
            else:
                part = value.detach().double() * (len(chunk) if mean else 1)
                total = part if total is None else total + part
        history.append(total.item() / rows if mean and batch is not None and batch < rows else total.item())
        progress(epoch + 1, history[-1])
        if not math.isfinite(history[-1]):
            break  # diverged: fit reports it
        if stalled(history, s["abstol"], s["reltol"]):
            converged = True
            break
        if monitor is not None and monitor.after(epoch + 1):
            break  # early stopping: the validation loss stopped improving
    with torch.no_grad():
        final = criterion().item()
    return Run(history, steps, converged, steps + 1, final)


def _lbfgs(model, criterion: Criterion, s: dict, progress: Progress, monitor=None) -> Run:
    # One iteration per step() call, so each call's first evaluation is that iteration's loss. The line
    # search may use max_eval - 1 evaluations; torch's default (1.25 × max_iter) would leave it none.
    opt = torch.optim.LBFGS(model.parameters(), lr=s["lr"], max_iter=1, max_eval=26, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        value = criterion()
        value.backward()
        return value.detach()

    history, converged = [], False
    state = opt.state[opt._params[0]]
    for it in range(s["max_iter"]):
        before = state.get("n_iter", 0)
        history.append(opt.step(closure).item())
        progress(it + 1, history[-1])
        if not math.isfinite(history[-1]):
            break  # diverged: fit reports it
        if state["n_iter"] == before or stalled(history, s["abstol"], s["reltol"]):
            converged = True  # the gradient vanished (no step was taken), or a stopping rule holds
            break
        if monitor is not None and monitor.after(it + 1):
            break  # early stopping: the validation loss stopped improving
    with torch.no_grad():
        final = criterion().item()
    return Run(history, len(history), converged, state.get("func_evals", 0) + 1, final)


def _bfgs(model, criterion: Criterion, s: dict, progress: Progress) -> Run:
    objective = ENGINES[s["engine"]](model, criterion)
    s["engine"] = objective.name  # the one that runs: the compiled engine may have fallen back
    with np.errstate(all="ignore"):
        if not math.isfinite(start := objective.value_and_grad(objective.x0)[0]):
            # fit's start check passed on the module, so this engine's arithmetic differs: the same error
            from .checks import NOT_FINITE, expression_cause
            cause = expression_cause(model, criterion)[0]
            raise SpecError(f"{NOT_FINITE}: " + (cause or f"the criterion ({s['loss']}) is {start} on engine "
                                                          f"'{objective.name}'"))
    if hasattr(objective, "minimize"):  # the compiled criterion: its loop runs in C too
        shown = getattr(progress, "bar", True) is not None
        batch = objective.minimize(objective.x0[None], max_iter=s["max_iter"], abstol=s["abstol"],
                                   reltol=s["reltol"], callback=progress if shown else None)
        objective.store(batch.x[0])
        # Counted as vmmin (and R's optim) count: gradient evaluations at accepted points, the start's included.
        return Run(batch.histories[0].tolist(), int(batch.iterations[0]) + 1, bool(batch.converged[0]),
                   int(batch.evaluations[0]), float(batch.f[0]))
    stops = dict(max_iter=s["max_iter"], abstol=-math.inf if s["abstol"] is None else s["abstol"],
                 reltol=0.0 if s["reltol"] is None else s["reltol"])
    with np.errstate(over="ignore"):  # exp(-s) = inf at a far trial point is a logistic of exactly 0
        if hasattr(objective, "vmmin"):  # the nnet engine: vmmin's own loop, run in C (the same bits)
            shown = getattr(progress, "bar", True) is not None
            result = objective.vmmin(objective.x0, callback=progress if shown else None, **stops)
        else:
            # An engine with separate value and gradient skips the backward pass at rejected trial points.
            separate = hasattr(objective, "gradient")
            result = vmmin(objective.value if separate else objective.value_and_grad, objective.x0,
                           callback=progress, gradient=objective.gradient if separate else None, **stops)
    final = objective.value_and_grad(result.x)[0]  # vmmin's fmin may be a rejected trial point's value
    objective.store(result.x)
    return Run(list(result.history), result.iterations, result.converged, result.fn_evals + 1, final)


# ---------------------------------------------------------------- optimizers
@dataclass(frozen=True)
class Optimizer:
    name: str
    run: Callable[..., Run]
    lr: float | None  # default learning rate (None: the optimizer has none)
    make: Callable | None = None  # (params, lr, momentum) -> a Stepper (zero_grad, step), first-order only
    momentum: bool = False  # whether it takes a momentum
    dtype: torch.dtype | None = None  # default dtype (None: keep the model's)
    stop: tuple[float | None, float | None] = (None, None)  # default (abstol, reltol); None: rule off
    doc: str = ""

    @property
    def full_batch(self) -> bool:
        return self.make is None


OPTIMIZERS: dict[str, Optimizer] = rows_by_name(
    Optimizer("sgd", _first_order, 0.01, STEPPERS["sgd"], momentum=True,
              doc="stochastic gradient descent, optionally with momentum"),
    Optimizer("adam", _first_order, 0.001, STEPPERS["adam"], doc="torch.optim.Adam"),
    Optimizer("rmsprop", _first_order, 0.01, STEPPERS["rmsprop"],
              momentum=True, doc="torch.optim.RMSprop"),
    Optimizer("adagrad", _first_order, 0.01, STEPPERS["adagrad"],
              doc="torch.optim.Adagrad"),
    Optimizer("lbfgs", _lbfgs, 1.0, stop=(None, 1e-9),
              doc="torch.optim.LBFGS with a strong-Wolfe line search, full batch"),
    Optimizer("bfgs", _bfgs, None, dtype=torch.float64, stop=(1e-4, 1e-8),
              doc="Nash's variable-metric method (R optim's and nnet's BFGS), full batch, float64; nnet's "
                  "default tolerances"),
)

DEFAULT_EPOCHS = 1000
DEFAULT_MAX_ITER = 100  # nnet's and optim's maxit
