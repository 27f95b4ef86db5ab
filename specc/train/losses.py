"""The losses ``specc.fit`` minimises (a table, one row per loss) and the criterion built from one.

The criterion is the loss summed over the spec's outputs, plus ``decay`` times the sum of every
squared parameter (nnet's weight decay, biases included). Adding a loss is one row here, one row
in tests/test_train.py, and its rule in the NumPy tape (:mod:`specc.train.tape`) and the C
criterion (:mod:`specc.train.ccode`), which tests check against this row.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Loss:
    name: str
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (prediction, target) -> scalar
    reduction: str  # 'mean' or 'sum': how the batches of an epoch combine into its loss
    doc: str = ""


def rows_by_name(*rows):
    """A table of rows keyed by their names."""
    return {row.name: row for row in rows}


LOSSES: dict[str, Loss] = rows_by_name(
    Loss("mse", lambda p, t: F.mse_loss(p, t), "mean", "mean squared error (nn.MSELoss)"),
    Loss("sse", lambda p, t: F.mse_loss(p, t, reduction="sum"), "sum",
         "sum of squared errors: nn.MSELoss(reduction='sum'), the tutorial's and nnet's criterion"),
    Loss("bce", lambda p, t: F.binary_cross_entropy(p, t), "mean",
         "binary cross-entropy of probabilities (e.g. a sigmoid output) against 0/1 targets"),
    Loss("cross_entropy", lambda p, t: F.cross_entropy(p, t), "mean",
         "cross-entropy of a vector of class scores against class probabilities (one-hot rows)"),
)


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


