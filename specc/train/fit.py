"""Fitting a compiled spec to data: :func:`fit`, :func:`predict` and :func:`start_from`.

``fit`` reads three tables: the losses (:mod:`specc.train.losses`), the optimizers
(:mod:`specc.train.optimizers`) and the engines (:mod:`specc.train.engines`). Without an
optimizer, :func:`specc.train.multistart.choose` picks the method from the problem's size.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import options
from ..errors import SpecError
from ..limits import check_dtype
from ..lower import spec_graph
from ..weights import apply_weights, json_tensor, read_json, read_weights
from . import checks, devices, distributed, multistart, sequences, validation
from .batching import as_given, pack_rows
from .data import as_table, in_dtype, refuse_values, tensors_for
from .engines import ENGINES
from .losses import LOSSES, Criterion, refuse_unbounded_outputs
from .nnet import rang_init, wts_to_tensors
from .optimizers import DEFAULT_EPOCHS, DEFAULT_MAX_ITER, OPTIMIZERS
from .report import Progress

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
    # validation and classification (specc.train.validation); None / empty when not asked for
    accuracy: float | None = None  # on the training rows, at the final parameters (classification losses)
    val_loss: float | None = None  # the criterion on the validation rows, at the final parameters
    val_history: list[float] = field(default_factory=list)  # one per epoch (lbfgs: iteration); bfgs: at the end
    val_at: list[int] = field(default_factory=list)  # the epoch / iteration after which each was taken
    val_accuracy: float | None = None
    val_accuracy_history: list[float] = field(default_factory=list)
    best_at: int | None = None  # early stopping: the epoch / iteration whose parameters were kept
    stopped_early: bool = False

    def summary(self) -> dict:
        """What ``specc train --json`` prints."""
        return {"loss": self.loss, "iterations": self.iterations, "seconds": self.seconds,
                "converged": self.converged, "evaluations": self.evaluations, "settings": self.settings,
                "restarts": self.restarts, **self.validation_summary()}

    def validation_summary(self) -> dict:
        """The validation and accuracy fields that were computed (none for a plain regression fit)."""
        names = ("accuracy", "val_loss", "val_history", "val_at", "val_accuracy", "val_accuracy_history",
                 "best_at")
        fields = {name: getattr(self, name) for name in names if getattr(self, name) not in (None, [])}
        return {**fields, "stopped_early": True} if self.stopped_early else fields


def _choose(name: str, table: dict, what: str):
    if name not in table:
        raise SpecError(f"unknown {what} '{name}' (known: {', '.join(table)})")
    return table[name]


def fit(model: torch.nn.Module, data, *, loss: str = "mse", optimizer: str | None = None, lr: float | None = None,
        epochs: int | None = None, max_iter: int | None = None, batch_size: int | None = None,
        momentum: float = 0.0, abstol: float | None = None, reltol: float | None = None, decay: float = 0.0,
        seed: int | None = None, dtype: str | torch.dtype | None = None, engine: str | None = None,
        restarts: int | None = None, progress: bool = True, device: str | torch.device | None = None,
        val_split: float | None = None, val_data=None, early_stopping: int | None = None) -> FitResult:
    """Fit ``model`` (from :func:`specc.load`) to ``data`` in place and report how it went.

    ``data``: a CSV/NPZ path or a mapping of the spec's input and output names to arrays or
    tensors (see :mod:`specc.train.data` for vector columns). Without ``optimizer`` the method is chosen
    from the problem (:func:`specc.train.multistart.choose`: bfgs with restarts on small data, mini-batch
    adam on large). ``epochs`` drives the first-order optimizers, ``max_iter`` the quasi-Newton ones.
    ``restarts`` (bfgs): fit from the model's values and ``restarts - 1`` draws of the spec's
    initialisers (from ``seed``) at once, batched, and keep the best. ``dtype`` converts the model
    (default: float64 for ``bfgs``, else the model's own). ``seed`` also seeds the mini-batch order.
    ``engine`` (``bfgs``): ``compiled`` (the default: the spec's criterion and the minimiser's loop
    in C, built once per spec and cached; the NumPy tape where no C compiler is), ``numpy`` (a NumPy
    tape of the spec), ``autograd`` (the module's own passes), ``nnet`` (nnet's own arithmetic,
    :mod:`specc.train.nnet`). Restarts run on ``compiled`` or ``numpy``. A spec with step nodes (a
    sequence input, ``prev``) runs on ``autograd`` only (:mod:`specc.train.sequences`), restarts included.
    A progress bar is shown when ``progress`` and standard error is a terminal.
    ``device`` (``auto``, ``cpu``, ``cuda``; None: the model's own) moves the model and the data
    there; bfgs runs on the CPU (:mod:`specc.train.devices`). ``val_split`` (a fraction of the rows)
    or ``val_data`` (a file or mapping) are validation rows, and ``early_stopping`` a patience in
    epochs / iterations that restores the best parameters (:mod:`specc.train.validation`).
    """
    options.check(dict(lr=lr, momentum=momentum, decay=decay, abstol=abstol, reltol=reltol, epochs=epochs,
                       max_iter=max_iter, batch_size=batch_size, restarts=restarts, seed=seed,
                       val_split=val_split, early_stopping=early_stopping))
    validation.check_arguments(val_split, val_data, early_stopping, optimizer)
    loss_row = _choose(loss, LOSSES, "loss")
    refuse_unbounded_outputs(spec_graph(model), loss_row)  # bce on an output that can leave [0, 1]
    for name, table in ((optimizer, OPTIMIZERS), (engine, ENGINES)):
        if name is not None:
            _choose(name, table, "optimizer" if table is OPTIMIZERS else "engine")
    sequences.check_engine(model, engine)  # the C criterion and the tape know no prev/last
    if isinstance(dtype, str):
        dtype = _choose(dtype, DTYPES, "dtype")
    checks.refuse_nothing_to_fit(model)  # before the data is read
    multistart.check_restarts(restarts, optimizer or "bfgs", engine)
    o = dict(optimizer=optimizer, epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum,
             max_iter=max_iter, restarts=restarts, engine=engine, abstol=abstol, reltol=reltol, method=None,
             labels=loss_row.name == "cross_entropy")  # class labels in the data become one-hot rows
    random = multistart.random_operation(model)
    tensors = multistart.resolve(model, data, o, random)  # no optimizer: chosen from the data, then checked
    opt = OPTIMIZERS[o["optimizer"]]
    engine = o["engine"] or (sequences.bfgs_engine(model) if opt.name == "bfgs" else "autograd")
    if engine != "autograd" and opt.name != "bfgs":
        raise SpecError(f"engine '{engine}' works with the 'bfgs' optimizer only")
    if random and opt.full_batch:
        raise SpecError(f"{getattr(model, 'spec_file', 'the spec')} uses {random}, which is random in training: "
                        f"'{opt.name}' needs a criterion that does not change between evaluations; use a "
                        f"first-order optimizer (adam, the default for this spec)")
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
    validation.check_arguments(val_split, val_data, early_stopping, opt.name)  # the chosen optimizer
    device = devices.for_fit(device, opt.name)
    dtype = dtype or opt.dtype or next(model.parameters(), torch.empty(0)).dtype
    check_dtype(spec_graph(model), dtype)  # a number of the spec beyond the dtype (1e39 in float32)
    chosen_stop = o["method"] is not None and opt.full_batch  # the default path's own tolerances (None: off)
    settings = {"optimizer": opt.name, "loss": loss_row.name, "lr": lr if lr is not None else opt.lr,
                "epochs": None if opt.full_batch else (o["epochs"] or DEFAULT_EPOCHS),
                "max_iter": (DEFAULT_MAX_ITER if o["max_iter"] is None else o["max_iter"]) if opt.full_batch else None,
                "batch_size": o["batch_size"], "momentum": momentum,
                "abstol": o["abstol"] if o["abstol"] is not None or chosen_stop else opt.stop[0],
                "reltol": o["reltol"] if o["reltol"] is not None or chosen_stop else opt.stop[1],
                "decay": decay, "seed": seed, "dtype": str(dtype).removeprefix("torch."), "engine": engine,
                "restarts": o["restarts"], "method": o["method"] or
                (opt.name if (o["restarts"] or 1) == 1 else f"bfgs ×{o['restarts']} restarts")}
    if tensors is None:  # tensors already the module's own are taken as they are (specc.train.batching)
        tensors = as_given(model, data, dtype) or \
            tensors_for(model, data, dtype=dtype, labels=o["labels"])  # errors name the file, or "data"
    tensors = in_dtype(tensors, dtype, data)  # a value beyond the dtype's range is refused, not made inf
    if loss_row.probabilities:
        refuse_values(data, tensors, model.spec_outputs, lambda t: (t < 0) | (t > 1),
                      f"is not in [0, 1]: the targets of loss '{loss_row.name}' are probabilities")
    val_tensors = validation.read(model, val_data, dtype, loss_row, o["labels"]) if val_data is not None else None
    if val_split is not None:
        tensors, val_tensors = validation.split(tensors, val_split, seed)
    model.to(dtype=dtype, device=device)
    if device is not None:
        settings["device"] = str(device)
        tensors = {name: t.to(device) for name, t in tensors.items()}
        val_tensors = val_tensors and {name: t.to(device) for name, t in val_tensors.items()}
    criterion = Criterion(model, tensors, loss_row, decay)
    if not opt.full_batch and (settings["batch_size"] or criterion.rows) < criterion.rows:
        pack_rows(criterion)  # a mini-batch is one gather
    monitor = validation.monitor_for(criterion, val_tensors, early_stopping)
    checks.check_start(model, criterion, o["restarts"])  # a non-finite start names its cause
    criterion = distributed.shard(criterion, opt, settings)  # in a process group: data-parallel (DDP)
    bar = Progress(settings["epochs"] or settings["max_iter"], progress,
                   "epoch" if settings["epochs"] else "it")
    start_values = [p.detach().clone() for p in model.parameters()]
    was_training = model.training
    model.train()  # dropout is active while fitting …
    restore_threads = sequences.small_steps_on_one_thread(model, criterion.rows)
    start = time.perf_counter()
    try:
        if o["restarts"] is not None:
            run, per_restart = multistart.run(model, criterion, settings, bar)
        else:
            watched = {"monitor": monitor} if opt.name in validation.EVALUATED else {}
            run, per_restart = opt.run(model, criterion, settings, bar, **watched), []
        validated = monitor.finish(run)  # early stopping: the best parameters are restored
        if random:  # … and the fit's loss is the model's as it predicts: in eval mode
            with checks.evaluating(model):
                run.loss = criterion().item()
    finally:
        bar.close()
        model.train(was_training)
        restore_threads()
    seconds = time.perf_counter() - start
    multistart.refuse_divergence(model, run, settings, start_values, criterion)
    return FitResult(run.loss, run.history, run.iterations, seconds, run.converged, run.evaluations, settings,
                     per_restart, **validated)


def predict(model: torch.nn.Module, data, dtype: torch.dtype | None = None,
            device: str | torch.device | None = None) -> dict[str, torch.Tensor]:
    """The model's outputs on the inputs in ``data`` (output columns there are ignored), by name, in
    eval mode (no dropout); the model keeps its mode. ``device`` (``auto``, ``cpu``, ``cuda``; None:
    the model's own) is where the model computes them (it moves there); they come back on the CPU."""
    dtype = dtype or next(model.parameters(), torch.empty(0)).dtype
    device = devices.resolve(device) or devices.model_device(model)
    model.to(device)
    table = as_table(data)
    inputs = tensors_for(model, table, targets=False, dtype=torch.float64, origin=table.origin)  # as given
    converted = in_dtype(inputs, dtype, table)  # 1e39 is refused for a float32 model, not predicted as inf
    with checks.evaluating(model):
        out = model(*(converted[name].to(device) for name in model.spec_inputs))
    outputs = (out,) if len(model.spec_outputs) == 1 else tuple(out)
    outputs = tuple(t.cpu() for t in outputs)
    return {**inputs, **dict(zip(model.spec_outputs, outputs))}


# ---------------------------------------------------------------- starting points
def start_from(model: torch.nn.Module, init_from: str | os.PathLike | None = None,
               rang: float | None = None) -> None:
    """Set initial values: a safetensors/JSON file of named tensors, or a JSON list (nnet's flat
    ``Wts``, for a one-hidden-layer spec), or nnet's uniform(-rang, rang) scheme. Neither: keep the
    compiler's defaults."""
    if init_from is not None and rang is not None:
        raise SpecError("give either a file of initial values or rang, not both")
    options.check({"rang": rang})
    if rang is not None:
        rang_init(model, rang)
    if init_from is None:
        return
    path = Path(init_from)
    if path.suffix.lower() == ".json" and path.is_file():
        raw = read_json(path)  # its size and depth bounded, as any JSON weights file's
        if isinstance(raw, list):  # every element a finite number, else an error naming 'Wts[k]'
            wts = json_tensor(raw, path, "Wts")
            apply_weights(model, wts_to_tensors(wts, model), origin=f"{path} (nnet Wts)")
            return
    tensors, _ = read_weights(path)
    apply_weights(model, tensors, origin=str(path))


