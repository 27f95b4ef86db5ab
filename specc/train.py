"""Fitting a compiled spec to data: :func:`fit`, and the tables it reads.

``LOSSES`` and ``OPTIMIZERS`` are registries, one row per entry; adding a loss
or a torch optimizer is one row here plus one row in tests/test_train.py.
Every optimizer row names the loop that drives it:

- first-order (``sgd``, ``adam``, ``rmsprop``, ``adagrad``): epochs over the data,
  full batch unless ``batch_size`` is given (then shuffled mini-batches);
- ``lbfgs``: torch's L-BFGS with a strong-Wolfe line search, full batch;
- ``bfgs``: Nash's variable-metric method (:mod:`specc.bfgs`), the dense BFGS of R's ``optim``
  and ``nnet``, full batch, on one flat float64 parameter vector, with nnet's
  stopping rules (``abstol`` on the criterion, ``reltol`` on its relative
  improvement, ``max_iter``); with ``restarts``, :mod:`specc.multistart`'s batched BFGS.
  Without an optimizer, :func:`specc.multistart.choose` picks one from the data's size.

The criterion is the loss summed over the outputs, plus ``decay`` times the sum
of every squared parameter (nnet's weight decay, biases included). ``history``
holds one criterion value per epoch (first-order) or iteration (quasi-Newton),
each from that step's own forward pass, before its update.
"""
from __future__ import annotations

import importlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import multistart
from .bfgs import vmmin
from .data import as_table, tensors_for
from .errors import SpecError
from .files import atomic_path
from .lower import spec_graph
from .nnet import NnetEngine, rang_init, wts_to_tensors
from .weights import apply_weights, read_weights


# ---------------------------------------------------------------- losses
@dataclass(frozen=True)
class Loss:
    name: str
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (prediction, target) -> scalar
    reduction: str  # 'mean' or 'sum': how the batches of an epoch combine into its loss
    doc: str = ""


def _rows(*rows):
    return {row.name: row for row in rows}


LOSSES: dict[str, Loss] = _rows(
    Loss("mse", lambda p, t: F.mse_loss(p, t), "mean", "mean squared error (nn.MSELoss)"),
    Loss("sse", lambda p, t: F.mse_loss(p, t, reduction="sum"), "sum",
         "sum of squared errors: nn.MSELoss(reduction='sum'), the tutorial's and nnet's criterion"),
    Loss("bce", lambda p, t: F.binary_cross_entropy(p, t), "mean",
         "binary cross-entropy of probabilities (e.g. a sigmoid output) against 0/1 targets"),
    Loss("cross_entropy", lambda p, t: F.cross_entropy(p, t), "mean",
         "cross-entropy of a vector of class scores against class probabilities (one-hot rows)"),
)


# ---------------------------------------------------------------- the criterion
class Criterion:
    """The summed loss over the spec's outputs (plus weight decay) on full data or a batch of rows."""

    def __init__(self, model: torch.nn.Module, tensors: dict[str, torch.Tensor], loss: Loss, decay: float):
        self.model, self.loss, self.decay = model, loss, decay
        self.inputs = [tensors[name] for name in model.spec_inputs]
        self.targets = [tensors[name] for name in model.spec_outputs]
        self.rows = len(self.inputs[0]) if self.inputs else len(self.targets[0])
        self.params = list(model.parameters())

    def __call__(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        inputs = self.inputs if rows is None else [x[rows] for x in self.inputs]
        targets = self.targets if rows is None else [t[rows] for t in self.targets]
        predicted = self.model(*inputs)
        if len(targets) == 1:
            predicted = (predicted,)
        value = self.loss.fn(predicted[0], targets[0])
        for p, t in zip(predicted[1:], targets[1:]):
            value = value + self.loss.fn(p, t)
        if self.decay:
            value = value + self.decay * sum((p * p).sum() for p in self.params)
        return value


class AutogradObjective:
    """``(f, grad)`` at a flat float64 vector via one forward and one backward pass of the module.

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
        self.x0 = self.values.to(torch.float64, copy=True)

    def __call__(self, x: torch.Tensor) -> tuple[float, torch.Tensor]:
        self.values.copy_(x)
        self.grads.zero_()
        value = self.criterion()
        value.backward()  # accumulates into the .grad views, i.e. into self.grads
        return value.item(), self.grads.to(torch.float64, copy=True)

    def store(self, x: torch.Tensor) -> None:
        """Leave ``x`` in the module, its parameters on their own storage again."""
        self.values.copy_(x)
        for p in self.params:
            p.data = p.data.clone()
            p.grad = None


class NumpyEngine:
    """specc.objective's NumPy tape of the spec with its own reverse pass (every loss), in the
    spec's parameter order: far less overhead per evaluation than torch autograd on small nets."""

    def __init__(self, model: torch.nn.Module, criterion: Criterion):
        from .objective import Objective  # imported on use: this engine is optional
        as_numpy = lambda names, values: {n: v.double().numpy() for n, v in zip(names, values)}  # noqa: E731
        try:
            self.objective = Objective(spec_graph(model), as_numpy(model.spec_inputs, criterion.inputs),
                                       as_numpy(model.spec_outputs, criterion.targets), criterion.loss.name,
                                       criterion.decay)
        except ValueError as err:
            raise SpecError(f"engine 'numpy': {err}") from None
        self.params = list(model.parameters())
        self.x0 = torch.nn.utils.parameters_to_vector(self.params).detach().double().numpy()

    def __call__(self, x):
        return self.objective(x)

    def store(self, x) -> None:
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(torch.as_tensor(x).to(self.params[0].dtype), self.params)


ENGINES: dict[str, Callable] = {"autograd": AutogradObjective, "numpy": NumpyEngine, "nnet": NnetEngine}


# ---------------------------------------------------------------- progress
class Progress:
    """A tqdm bar with the current loss, on a terminal only (never in tests, pipes or with --quiet)."""

    def __init__(self, total: int, enabled: bool, unit: str):
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)
        self.shown, self.last = 0, 0.0

    def __call__(self, step: int, loss: float) -> None:
        if self.bar is None:
            return
        now = time.monotonic()
        if now - self.last > 0.1:  # refreshing costs far more than a small model's step
            self.bar.update(step - self.shown)
            self.bar.set_postfix(loss=f"{loss:.6g}", refresh=True)
            self.shown, self.last = step, now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------- loops
@dataclass
class Run:
    history: list[float]
    iterations: int
    converged: bool
    evaluations: int
    loss: float


def _stalled(history: list[float], abstol: float | None, reltol: float | None) -> bool:
    """nnet's rules (each off when None): the criterion is at most abstol, or it improved by at
    most reltol relatively."""
    f = history[-1]
    if abstol is not None and f <= abstol:
        return True
    return reltol is not None and len(history) > 1 and abs(history[-2] - f) <= reltol * (abs(history[-2]) + reltol)


def _first_order(model, criterion: Criterion, s: dict, progress: Progress) -> Run:
    opt = OPTIMIZERS[s["optimizer"]].make(model.parameters(), s["lr"], s["momentum"])
    rows, batch = criterion.rows, s["batch_size"]
    generator = torch.Generator().manual_seed(s["seed"]) if s["seed"] is not None else None
    history, steps, converged = [], 0, False
    for epoch in range(s["epochs"]):
        if batch is None or batch >= rows:
            opt.zero_grad()
            value = criterion()
            value.backward()
            opt.step()
            history.append(value.item())
            steps += 1
        else:
            total = 0.0
            for chunk in torch.randperm(rows, generator=generator).split(batch):
                opt.zero_grad()
                value = criterion(chunk)
                value.backward()
                opt.step()
                total += value.item() * (len(chunk) if criterion.loss.reduction == "mean" else 1)
                steps += 1
            history.append(total / rows if criterion.loss.reduction == "mean" else total)
        progress(epoch + 1, history[-1])
        if not math.isfinite(history[-1]):
            break  # diverged: fit reports it
        if _stalled(history, s["abstol"], s["reltol"]):
            converged = True
            break
    with torch.no_grad():
        final = criterion().item()
    return Run(history, steps, converged, steps + 1, final)


def _lbfgs(model, criterion: Criterion, s: dict, progress: Progress) -> Run:
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
        if state["n_iter"] == before or _stalled(history, s["abstol"], s["reltol"]):
            converged = True  # the gradient vanished (no step was taken), or a stopping rule holds
            break
    with torch.no_grad():
        final = criterion().item()
    return Run(history, len(history), converged, state.get("func_evals", 0) + 1, final)


def _bfgs(model, criterion: Criterion, s: dict, progress: Progress) -> Run:
    objective = ENGINES[s["engine"]](model, criterion)
    with np.errstate(all="ignore"):
        if not math.isfinite(start := objective(objective.x0)[0]):
            raise SpecError(f"the criterion ({s['loss']}) is {start} at the starting point: bfgs needs a finite one")
    with np.errstate(over="ignore"):  # exp(-s) = inf at a far trial point is a logistic of exactly 0
        # An engine with separate value and gradient skips the backward pass at rejected trial points.
        separate = hasattr(objective, "gradient")
        result = vmmin(objective.value if separate else objective, objective.x0, max_iter=s["max_iter"],
                       callback=progress, abstol=-math.inf if s["abstol"] is None else s["abstol"],
                       reltol=0.0 if s["reltol"] is None else s["reltol"],
                       gradient=objective.gradient if separate else None)
    final = objective(result.x)[0]  # vmmin's fmin may be a rejected trial point's value
    objective.store(result.x)
    return Run(list(result.history), result.iterations, result.converged, result.fn_evals + 1, final)


# ---------------------------------------------------------------- optimizers
@dataclass(frozen=True)
class Optimizer:
    name: str
    run: Callable[..., Run]
    lr: float | None  # default learning rate (None: the optimizer has none)
    make: Callable | None = None  # (params, lr, momentum) -> torch.optim.Optimizer, first-order only
    momentum: bool = False  # whether it takes a momentum
    dtype: torch.dtype | None = None  # default dtype (None: keep the model's)
    stop: tuple[float | None, float | None] = (None, None)  # default (abstol, reltol); None: rule off
    doc: str = ""

    @property
    def full_batch(self) -> bool:
        return self.make is None


OPTIMIZERS: dict[str, Optimizer] = _rows(
    Optimizer("sgd", _first_order, 0.01, lambda p, lr, m: torch.optim.SGD(p, lr=lr, momentum=m), momentum=True,
              doc="stochastic gradient descent, optionally with momentum"),
    Optimizer("adam", _first_order, 0.001, lambda p, lr, m: torch.optim.Adam(p, lr=lr), doc="torch.optim.Adam"),
    Optimizer("rmsprop", _first_order, 0.01, lambda p, lr, m: torch.optim.RMSprop(p, lr=lr, momentum=m),
              momentum=True, doc="torch.optim.RMSprop"),
    Optimizer("adagrad", _first_order, 0.01, lambda p, lr, m: torch.optim.Adagrad(p, lr=lr),
              doc="torch.optim.Adagrad"),
    Optimizer("lbfgs", _lbfgs, 1.0, stop=(None, 1e-9),
              doc="torch.optim.LBFGS with a strong-Wolfe line search, full batch"),
    Optimizer("bfgs", _bfgs, None, dtype=torch.float64, stop=(1e-4, 1e-8),
              doc="Nash's variable-metric method (R optim's and nnet's BFGS), full batch, float64; nnet's "
                  "default tolerances"),
)

DEFAULT_EPOCHS = 1000
DEFAULT_MAX_ITER = 100  # nnet's and optim's maxit
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class FitResult:
    loss: float  # the criterion at the final parameters
    history: list[float]  # one criterion value per epoch / iteration, before its update
    iterations: int  # parameter updates (first-order steps, or quasi-Newton iterations)
    seconds: float
    converged: bool  # a stopping rule (abstol, reltol, vanishing gradient) ended the fit
    evaluations: int = 0  # forward passes (full data or batches)
    settings: dict = field(default_factory=dict)
    restarts: list[dict] = field(default_factory=list)  # per restart: loss, iterations, converged … (bfgs)

    def summary(self) -> dict:
        """What ``specc train --json`` prints."""
        return {"loss": self.loss, "iterations": self.iterations, "seconds": self.seconds,
                "converged": self.converged, "evaluations": self.evaluations, "settings": self.settings,
                "restarts": self.restarts}


def _choose(name: str, table: dict, what: str):
    if name not in table:
        raise SpecError(f"unknown {what} '{name}' (known: {', '.join(table)})")
    return table[name]


def fit(model: torch.nn.Module, data, *, loss: str = "mse", optimizer: str | None = None, lr: float | None = None,
        epochs: int | None = None, max_iter: int | None = None, batch_size: int | None = None,
        momentum: float = 0.0, abstol: float | None = None, reltol: float | None = None, decay: float = 0.0,
        seed: int | None = None, dtype: str | torch.dtype | None = None, engine: str | None = None,
        restarts: int | None = None, progress: bool = True) -> FitResult:
    """Fit ``model`` (from :func:`specc.load`) to ``data`` in place and report how it went.

    ``data``: a CSV/NPZ path or a mapping of the spec's input and output names to arrays or
    tensors (see :mod:`specc.data` for vector columns). Without ``optimizer`` the method is chosen
    from the problem (:func:`specc.multistart.choose`: bfgs with restarts on small data, mini-batch
    adam on large). ``epochs`` drives the first-order optimizers, ``max_iter`` the quasi-Newton ones.
    ``restarts`` (bfgs): fit from the model's values and ``restarts - 1`` draws of the spec's
    initialisers (from ``seed``) at once, batched, and keep the best. ``dtype`` converts the model
    (default: float64 for ``bfgs``, else the model's own). ``seed`` also seeds the mini-batch order.
    ``engine`` (``bfgs``): ``autograd`` (the module; default without restarts), ``numpy`` (a NumPy
    tape of the spec; what restarts run on), ``nnet`` (nnet's own arithmetic, :mod:`specc.nnet`).
    A progress bar is shown when ``progress`` and standard error is a terminal.
    """
    loss_row = _choose(loss, LOSSES, "loss")
    for name, table in ((optimizer, OPTIMIZERS), (engine, ENGINES)):
        if name is not None:
            _choose(name, table, "optimizer" if table is OPTIMIZERS else "engine")
    if isinstance(dtype, str):
        dtype = _choose(dtype, DTYPES, "dtype")
    if not any(True for _ in model.parameters()):
        raise SpecError(f"{getattr(model, 'spec_file', 'the model')} has no parameters to fit")
    multistart.check_restarts(restarts, optimizer or "bfgs", engine)
    o = dict(optimizer=optimizer, epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum,
             max_iter=max_iter, restarts=restarts, engine=engine, abstol=abstol, reltol=reltol, method=None)
    tensors = multistart.resolve(model, data, o)  # no optimizer: chosen from the data, then checked as given
    opt = OPTIMIZERS[o["optimizer"]]
    engine = o["engine"] or ("numpy" if o["restarts"] is not None else "autograd")
    if engine != "autograd" and opt.name != "bfgs":
        raise SpecError(f"engine '{engine}' works with the 'bfgs' optimizer only")
    if opt.full_batch and o["epochs"] is not None:
        raise SpecError(f"'{opt.name}' runs full-batch iterations: give max_iter, not epochs")
    if opt.full_batch and o["batch_size"] is not None:
        raise SpecError(f"'{opt.name}' needs the full batch: mini-batches (batch_size) are for "
                        f"{', '.join(n for n, row in OPTIMIZERS.items() if not row.full_batch)}")
    if not opt.full_batch and o["max_iter"] is not None:
        raise SpecError(f"'{opt.name}' runs epochs over the data: give epochs, not max_iter")
    if momentum and not opt.momentum:
        raise SpecError(f"'{opt.name}' takes no momentum (these do: "
                        f"{', '.join(n for n, row in OPTIMIZERS.items() if row.momentum)})")
    if opt.lr is None and lr is not None:
        raise SpecError(f"'{opt.name}' chooses its own step lengths: it takes no learning rate")
    for name in ("epochs", "max_iter", "batch_size"):
        if o[name] is not None and o[name] < (0 if name == "max_iter" else 1):
            raise SpecError(f"{name} must be a positive whole number, not {o[name]}")
    dtype = dtype or opt.dtype or next(model.parameters(), torch.empty(0)).dtype
    chosen_stop = o["method"] is not None and opt.full_batch  # the default path's own tolerances (None: off)
    settings = {"optimizer": opt.name, "loss": loss_row.name, "lr": lr if lr is not None else opt.lr,
                "epochs": None if opt.full_batch else (o["epochs"] or DEFAULT_EPOCHS),
                "max_iter": (DEFAULT_MAX_ITER if o["max_iter"] is None else o["max_iter"]) if opt.full_batch else None,
                "batch_size": o["batch_size"], "momentum": momentum,
                "abstol": o["abstol"] if o["abstol"] is not None or chosen_stop else opt.stop[0],
                "reltol": o["reltol"] if o["reltol"] is not None or chosen_stop else opt.stop[1],
                "decay": decay, "seed": seed, "dtype": str(dtype).removeprefix("torch."), "engine": engine,
                "restarts": o["restarts"], "method": o["method"] or
                (opt.name if o["restarts"] is None else f"bfgs ×{o['restarts']} restarts")}
    if tensors is None:
        tensors = tensors_for(model, data, dtype=dtype)  # a file's errors name the file, a dict's "data"
    tensors = {name: value.to(dtype) for name, value in tensors.items()}
    model.to(dtype)
    criterion = Criterion(model, tensors, loss_row, decay)
    bar = Progress(settings["epochs"] or settings["max_iter"], progress,
                   "epoch" if settings["epochs"] else "it")
    if opt.make is not None:
        importlib.import_module("torch._dynamo")  # torch.optim's first step imports it: seconds, not fitting
    start_values = [p.detach().clone() for p in model.parameters()]
    start = time.perf_counter()
    try:
        if o["restarts"] is not None:
            run, per_restart = multistart.run(model, criterion, settings, bar)
        else:
            run, per_restart = opt.run(model, criterion, settings, bar), []
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    multistart.refuse_divergence(model, run, settings, start_values)
    return FitResult(run.loss, run.history, run.iterations, seconds, run.converged, run.evaluations, settings,
                     per_restart)


def predict(model: torch.nn.Module, data, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The model's outputs on the inputs in ``data`` (output columns there are ignored), by name."""
    dtype = dtype or next(model.parameters(), torch.empty(0)).dtype
    table = as_table(data)
    inputs = tensors_for(model, table, targets=False, dtype=torch.float64, origin=table.origin)  # as given
    with torch.no_grad():
        out = model(*(inputs[name].to(dtype) for name in model.spec_inputs))
    outputs = (out,) if len(model.spec_outputs) == 1 else tuple(out)
    return {**inputs, **dict(zip(model.spec_outputs, outputs))}


# ---------------------------------------------------------------- starting points
def start_from(model: torch.nn.Module, init_from: str | os.PathLike | None = None,
               rang: float | None = None) -> None:
    """Set initial values: a safetensors/JSON file of named tensors, or a JSON list (nnet's flat
    ``Wts``, for a one-hidden-layer spec), or nnet's uniform(-rang, rang) scheme. Neither: keep the
    compiler's defaults."""
    if init_from is not None and rang is not None:
        raise SpecError("give either a file of initial values or rang, not both")
    if rang is not None:
        rang_init(model, rang)
    if init_from is None:
        return
    path = Path(init_from)
    if path.suffix.lower() == ".json" and path.is_file():
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise SpecError(f"{path}: not JSON ({err})") from None
        if isinstance(raw, list):
            apply_weights(model, wts_to_tensors(raw, model), origin=f"{path} (nnet Wts)")
            return
    tensors, _ = read_weights(path)
    apply_weights(model, tensors, origin=str(path))


# ---------------------------------------------------------------- reporting
def training_metadata(result: FitResult, data: str | None = None) -> dict[str, str]:
    """String metadata for the weights file: the settings and the outcome, as JSON."""
    summary = {**result.summary(), "data": data}
    return {"specc.training": json.dumps(summary, default=str)}


def format_result(result: FitResult) -> str:
    s = result.settings
    steps = f"{result.iterations} iterations" if s["max_iter"] is not None else \
        f"{len(result.history)} epochs ({result.iterations} steps)"
    if result.restarts:
        kept = next(i for i, r in enumerate(result.restarts) if r.get("kept"))
        steps += f" (restart {kept + 1} of {len(result.restarts)}, the best)"
    return (f"{s.get('method') or s['optimizer']}, loss {s['loss']}, {s['dtype']}: {s['loss']} {result.loss:.6g} "
            f"after {steps}, {result.evaluations} evaluations, {result.seconds:.3g} s, "
            f"{'converged' if result.converged else 'not converged'}")


def sine_demo(spec: str | os.PathLike, data: str | os.PathLike) -> str:
    """The R nnet story in one fit: the 1-4-1 sine spec from nnet's ``Wts = seq(0, 1, by=1/12)``,
    bfgs on nnet's criterion with nnet's tolerances; what ``specc demo`` prints."""
    from .api import load
    from .nnet import load_wts
    model = load(Path(spec))
    load_wts(model, [i * (1 / 12) for i in range(13)])  # R's seq(0, 1, by=1/12) is from + i*by
    result = fit(model, data, loss="sse", optimizer="bfgs", engine="nnet", max_iter=10000, abstol=1e-8,
                 reltol=1e-9, progress=False)
    with torch.no_grad():
        at = model(torch.tensor([math.pi / 2], dtype=torch.float64)).item()
    rows = len(as_table(data).arrays["x"])
    return (f"fit {spec} to {data} as R's nnet does (bfgs, engine nnet, float64): training MSE "
            f"{result.loss / rows:.6g} after {result.iterations} iterations in {result.seconds:.3g} s, "
            f"f(pi/2) = {at:.6f}  (R's nnet: MSE 3.1e-7 after ~1,400 iterations)")


def plot_history(history: list[float], path: str | os.PathLike, title: str = "") -> Path:
    """The loss curve (log scale when positive) as a picture, written via a temporary file and a rename."""
    from .api import require
    require("matplotlib", "plotting the loss curve").use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(range(len(history)), history)
    if history and min(history) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("epoch / iteration")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    try:
        with atomic_path(path) as temporary:
            fig.savefig(temporary, format=path.suffix[1:] or "png")  # the temporary name ends in .tmp
    finally:
        plt.close(fig)
    return path


__all__ = ["ENGINES", "FitResult", "LOSSES", "OPTIMIZERS", "fit", "predict"]
