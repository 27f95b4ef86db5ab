"""Validation, early stopping and accuracy for :func:`specc.fit` (``val_split``, ``val_data``,
``early_stopping``; ``--val-split``, ``--val-data``, ``--early-stopping`` of ``specc train``).

- Validation rows: ``val_split=F`` holds out a fraction F of the data's rows (sequences, for a spec
  with sequence inputs), drawn with ``seed``; ``val_data`` is a second file or mapping in the
  training data's form. They are never fitted.
- The validation loss is the training criterion (the loss summed over the outputs, plus the weight
  decay) on the validation rows, in eval mode (no dropout). It is evaluated after every epoch of a
  first-order optimizer and after every iteration of lbfgs; bfgs (whose loop runs in C or NumPy on
  one vector) evaluates it once, at the end.
- ``early_stopping=P``: stop when P evaluations in a row have not improved on the best validation
  loss, then restore the parameters of the best one. First-order optimizers and lbfgs only.
- Accuracy, for classification (loss ``cross_entropy``: the arg-max class against the target's; loss
  ``bce``: outputs and targets on the same side of 0.5): on the training rows at the end, and on the
  validation rows with each validation loss.
"""
from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from ..errors import SpecError
from ..options import flag
from . import checks
from .losses import Criterion

EVALUATED = {"adam": "epoch", "sgd": "epoch", "rmsprop": "epoch", "adagrad": "epoch", "lbfgs": "iteration"}


def check_arguments(val_split, val_data, early_stopping, optimizer: str | None = None, cli: bool = False) -> None:
    """Refuse what cannot mean anything, naming the options as the caller spelt them (``--val-split``
    with ``cli``, else ``val_split``)."""
    split_, data_, stop_ = (flag(n) if cli else n for n in ("val_split", "val_data", "early_stopping"))
    if val_split is not None and val_data is not None:
        raise SpecError(f"give either {split_} (a fraction of the data) or {data_} (a file), not both")
    if early_stopping is not None and val_split is None and val_data is None:
        raise SpecError(f"{stop_} {early_stopping} needs validation rows: give {split_} or {data_}")
    if early_stopping is not None and optimizer is not None and optimizer not in EVALUATED:
        raise SpecError(f"{stop_} works per epoch (first-order optimizers) or per iteration (lbfgs); "
                        f"'{optimizer}' runs its whole loop at once and is validated at its end only")


def split(tensors: Mapping[str, torch.Tensor], fraction: float, seed: int | None):
    """(training, validation) tensors: ``fraction`` of the rows, drawn at random, held out."""
    rows = len(next(iter(tensors.values())))
    held = round(rows * fraction)
    if not 1 <= held < rows:
        raise SpecError(f"val_split {fraction} of {rows} rows holds out {held}: at least one row must be "
                        f"held out and one kept")
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    order = torch.randperm(rows, generator=generator)
    kept, out = order[held:].sort().values, order[:held].sort().values  # each keeps the data's order

    def take(index):
        return {name: t.index_select(0, index.to(t.device)) for name, t in tensors.items()}
    return take(kept), take(out)


def classes_correct(loss: str, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
    """Per row (or element) whether the prediction is right, for a classification loss; else None."""
    if loss == "cross_entropy" and predicted.dim() >= 2:
        return predicted.argmax(-1) == target.argmax(-1)
    if loss == "bce":
        return (predicted > 0.5) == (target > 0.5)
    return None


def accuracy(criterion: Criterion) -> float | None:
    """The mean over the classification outputs of the share of right predictions (None: none)."""
    if criterion.loss.name not in ("cross_entropy", "bce"):
        return None
    with checks.evaluating(criterion.model):
        predicted = criterion.model(*criterion.inputs)
    predicted = (predicted,) if len(criterion.targets) == 1 else tuple(predicted)
    shares = [right.double().mean().item() for p, t in zip(predicted, criterion.targets)
              if (right := classes_correct(criterion.loss.name, p, t)) is not None]
    return sum(shares) / len(shares) if shares else None


class Monitor:
    """The validation loss (and accuracy) after each epoch / iteration, and early stopping."""

    def __init__(self, criterion: Criterion, validation: Criterion | None, patience: int | None):
        self.criterion, self.validation, self.patience = criterion, validation, patience
        self.history: list[float] = []  # validation loss
        self.at: list[int] = []  # the epoch / iteration after which each was taken
        self.val_accuracy: list[float] = []
        self.best, self.best_at, self.best_values, self.waited = math.inf, None, None, 0

    def evaluate(self, step: int) -> float:
        with checks.evaluating(self.criterion.model):
            value = self.validation().item()
        self.history.append(value)
        self.at.append(step)
        if (share := accuracy(self.validation)) is not None:
            self.val_accuracy.append(share)
        return value

    def after(self, step: int) -> bool:
        """Evaluate after ``step``; True when early stopping ends the fit here."""
        if self.validation is None:
            return False
        value = self.evaluate(step)
        if self.patience is None:
            return False
        if value < self.best:  # NaN is never better
            self.best, self.best_at, self.waited = value, step, 0
            self.best_values = [p.detach().clone() for p in self.criterion.params]
            return False
        self.waited += 1
        return self.waited >= self.patience

    def finish(self, run) -> dict:
        """Restore the best parameters (early stopping), evaluate at the end where no evaluation did
        (bfgs), and return FitResult's validation fields."""
        stopped = self.patience is not None and self.waited >= self.patience
        if self.best_values is not None and self.best_at != (self.at[-1] if self.at else None):
            with torch.no_grad():
                for p, value in zip(self.criterion.params, self.best_values):
                    p.copy_(value)
                run.loss = self.criterion().item()  # the training criterion at the kept parameters
        fields = {"accuracy": accuracy(self.criterion)}
        if self.validation is None:
            return fields
        if not self.at:
            self.evaluate(run.iterations)
        kept = self.at.index(self.best_at) if self.best_values is not None else len(self.at) - 1
        fields.update(val_loss=self.history[kept], val_history=self.history, val_at=self.at,
                      val_accuracy=self.val_accuracy[kept] if self.val_accuracy else None,
                      val_accuracy_history=self.val_accuracy, best_at=self.best_at if self.patience else None,
                      stopped_early=stopped)
        return fields


def read(model, val_data, dtype: torch.dtype, loss_row, labels: bool) -> dict[str, torch.Tensor]:
    """``val_data`` (a file or a mapping, in the training data's form) as the spec's tensors, checked
    as the training data is."""
    from .batching import as_given
    from .data import refuse_values, tensors_for
    tensors = as_given(model, val_data, dtype) or tensors_for(model, val_data, dtype=dtype, labels=labels,
                                                               origin="val_data")
    if loss_row.probabilities:
        refuse_values(val_data, tensors, model.spec_outputs, lambda t: (t < 0) | (t > 1),
                      f"is not in [0, 1]: the targets of loss '{loss_row.name}' are probabilities")
    return tensors


def monitor_for(criterion: Criterion, val_tensors, patience: int | None) -> Monitor:
    validation = None if val_tensors is None else \
        Criterion(criterion.model, val_tensors, criterion.loss, criterion.decay)
    return Monitor(criterion, validation, patience)
