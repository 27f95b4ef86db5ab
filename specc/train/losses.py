"""The losses ``specc.fit`` minimises (a table, one row per loss) and the criterion built from one.

The criterion is the loss summed over the spec's outputs, plus ``decay`` times the sum of every
squared parameter (nnet's weight decay, biases included). Adding a loss is one row here, one row
in tests/test_train.py, and its rule in the NumPy tape (:mod:`specc.train.tape`) and the C
criterion (:mod:`specc.train.ccode`), which tests check against this row.

A row may have a second function for an output that is already probabilities (a softmax output):
``cross_entropy`` of scores applies log_softmax itself, so on a softmax output it would apply
softmax twice, silently; there it is the negative log-likelihood of the probabilities instead
(:func:`loss_functions` picks per output).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from ..errors import SpecError
from ..ir import Graph
from ..limits import folded_values
from ..lower import spec_graph


@dataclass(frozen=True)
class Loss:
    name: str
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (prediction, target) -> scalar
    reduction: str  # 'mean' or 'sum': how the batches of an epoch combine into its loss
    doc: str = ""
    on_softmax: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None  # for a softmax output, if not fn
    probabilities: bool = False  # outputs and targets must be in [0, 1] (F.binary_cross_entropy raises otherwise)


def rows_by_name(*rows):
    """A table of rows keyed by their names."""
    return {row.name: row for row in rows}


def nll_of_probabilities(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The mean over rows of -Σ t · max(log p, -100): cross-entropy of probabilities p against t.

    The log is clamped at -100 as F.binary_cross_entropy clamps its logs, so a probability that
    underflows to 0 costs 100, not infinity, and its gradient is 0. p is first raised to a tiny
    number whose log is below -100 (in float32 too): the backward pass of log(0) would give
    0 · inf = NaN even where the clamp discards it.
    """
    log_p = torch.log(p.expand_as(t).clamp_min(_TINY)).clamp_min(-100.0)
    return -(t * log_p).sum() / t.shape[0]


_TINY = 1e-45  # log ≈ -103.6; float32's smallest subnormal is 1.4e-45


LOSSES: dict[str, Loss] = rows_by_name(
    Loss("mse", lambda p, t: F.mse_loss(p, t), "mean", "mean squared error (nn.MSELoss)"),
    Loss("sse", lambda p, t: F.mse_loss(p, t, reduction="sum"), "sum",
         "sum of squared errors: nn.MSELoss(reduction='sum'), the tutorial's and nnet's criterion"),
    Loss("bce", lambda p, t: F.binary_cross_entropy(p, t), "mean",
         "binary cross-entropy of probabilities (e.g. a sigmoid output) against 0/1 targets", probabilities=True),
    Loss("cross_entropy", lambda p, t: F.cross_entropy(p, t), "mean",
         "cross-entropy of a vector of class scores against class probabilities (one-hot rows or labels); "
         "of the probabilities themselves for a softmax output", on_softmax=nll_of_probabilities),
)

def last_operation(graph: Graph, name: str) -> str:
    """The node that computes output ``name``, through any ``y = p`` copies."""
    node = graph.nodes[f"output:{name}"]["args"][0]
    while graph.nodes[node].get("op") == "identity":
        node = graph.nodes[node]["args"][0]
    return node


def softmax_output(graph: Graph, name: str) -> bool:
    """Whether output ``name`` is computed by softmax (through any ``y = p`` copies): probabilities."""
    return graph.nodes[last_operation(graph, name)].get("op") == "softmax"


PROBABILITY_OPS = ("sigmoid", "logistic", "softmax")  # in [0, 1] whatever their arguments


def _in_unit_interval(graph: Graph, node: str) -> bool:
    """Whether ``node``'s values are in [0, 1] by construction: a probability op, or clamp(·, lo, hi)
    with bounds made of numbers alone, 0 ≤ lo ≤ hi ≤ 1."""
    data = graph.nodes[node]
    if data.get("op") in PROBABILITY_OPS:
        return True
    if data.get("op") != "clamp":
        return False
    numbers = folded_values(graph)
    low, high = (numbers.get(arg) for arg in data["args"][1:])
    return low is not None and high is not None and 0 <= low <= high <= 1


def refuse_unbounded_outputs(graph: Graph, loss: Loss) -> None:
    """A loss of probabilities (bce) needs outputs that cannot leave [0, 1]: refuse any other output
    before the fit, with a caret at its expression, rather than let torch fail inside it."""
    if not loss.probabilities:
        return
    for name in graph.graph["outputs"]:
        node = last_operation(graph, name)
        if not _in_unit_interval(graph, node):
            data = graph.nodes[node]
            span = data.get("expr_span") or data.get("span") or graph.nodes[f"output:{name}"].get("span")
            what = data.get("label") or f"the {data['kind']} '{node}'"
            raise SpecError(f"loss '{loss.name}' needs probabilities in [0, 1], and output '{name}' ({what}) "
                            "can leave them: end it with sigmoid(…), softmax(…) or clamp(…, 0, 1), or choose "
                            "another loss", span, source=graph.graph.get("source"))


def loss_functions(graph: Graph, loss: Loss) -> list[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]:
    """The loss function of each output, in output order: ``on_softmax`` for a softmax output."""
    from .sequences import per_step
    fns = [loss.on_softmax if loss.on_softmax and softmax_output(graph, name) else loss.fn
           for name in graph.graph["outputs"]]
    return [per_step(fn) if graph.nodes[name].get("stepped") else fn for fn, name in zip(fns, graph.graph["outputs"])]


class Criterion:
    """The summed loss over the spec's outputs (plus weight decay) on full data or a batch of rows."""

    def __init__(self, model: torch.nn.Module, tensors: dict[str, torch.Tensor], loss: Loss, decay: float):
        self.model, self.loss, self.decay = model, loss, decay
        self.inputs = [tensors[name] for name in model.spec_inputs]
        self.targets = [tensors[name] for name in model.spec_outputs]
        self.rows = len(self.inputs[0]) if self.inputs else len(self.targets[0])
        self.params = list(model.parameters())
        self.fns = loss_functions(spec_graph(model), loss)
        self.take = None  # rows -> the batch's inputs and targets in one gather (specc.train.batching)

    def __call__(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        if rows is None:
            inputs, targets = self.inputs, self.targets
        else:
            taken = self.take(rows) if self.take else [x.index_select(0, rows) for x in self.inputs + self.targets]
            inputs, targets = taken[:len(self.inputs)], taken[len(self.inputs):]
        predicted = self.model(*inputs)
        if len(targets) == 1:
            predicted = (predicted,)
        value = self.fns[0](predicted[0], targets[0])
        for fn, p, t in zip(self.fns[1:], predicted[1:], targets[1:]):
            value = value + fn(p, t)
        if self.decay:
            value = value + self.decay * sum((p * p).sum() for p in self.params)
        return value


