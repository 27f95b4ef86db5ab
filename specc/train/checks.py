"""What ``specc.fit`` checks before it spends any work: that something depends on a parameter, and
that the criterion is finite where the fit starts, or else where the first non-finite number
comes from (a parameter, a fixed value, a data column, or an expression of the spec).

docs/training.md ("When a fit cannot start or diverges") lists the rules and their messages.
"""
from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import torch

from ..errors import SpecError
from ..lower import spec_graph
from ..ops import OPS

NOT_FINITE = "the criterion is not finite at the start"
SHOWN_ROWS = 3  # rows named in a message; the rest are counted


def refuse_nothing_to_fit(model: torch.nn.Module) -> None:
    """Refuse a spec none of whose outputs depends on a parameter (or that has none): its criterion
    has no gradient. An output without parameters beside one with them is fine: a constant term."""
    graph = spec_graph(model)
    outputs = graph.graph["outputs"]
    params = set(graph.graph["params"])
    if any(True for _ in model.parameters()) and params & graph.ancestors(outputs):
        return
    names = ", ".join(outputs)
    raise SpecError(f"nothing to fit: the output{'s' if len(outputs) > 1 else ''} {names} "
                    f"depend{'' if len(outputs) > 1 else 's'} on no parameter")


def check_start(model: torch.nn.Module, criterion, restarts: int | None = None) -> None:
    """Refuse a fit whose criterion is not finite at the model's values, naming the cause.

    Non-finite parameters, fixed values or data are always refused. With several restarts, an
    expression that is not finite because of the parameters' values is left to them (other starts
    may be fine: :func:`specc.train.multistart.run` reports it when none is); one that is not finite
    whatever the parameters (``log(-1)``, ``log(x)`` at a negative ``x``) is refused.
    """
    cause = _stored_cause(model, criterion)
    if cause is None:
        value = criterion_value(model, criterion)
        if value is None or math.isfinite(value):
            return
        cause, by_parameters = expression_cause(model, criterion)
        if by_parameters and (restarts or 1) > 1:
            return
        cause = cause or f"the criterion ({criterion.loss.name}) is {_word(value)}"
    raise SpecError(f"{NOT_FINITE}: {cause}")


@contextmanager
def evaluating(model: torch.nn.Module):
    """Eval mode (dropout off: no random number is drawn, so a seeded fit is unchanged), no graph."""
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def criterion_value(model: torch.nn.Module, criterion) -> float | None:
    """The criterion at the model's values, in eval mode; None where the criterion itself refuses
    the values (the loss's own error then comes from the fit)."""
    with evaluating(model):
        try:
            return criterion().item()
        except RuntimeError:
            return None


def _word(value) -> str:
    return "nan" if math.isnan(value) else "inf" if value > 0 else "-inf"


def _at(index: tuple[int, ...]) -> str:
    return f" at [{', '.join(str(i + 1) for i in index)}]" if index else ""


def _first_bad(tensor: torch.Tensor) -> tuple[tuple[int, ...], float, int] | None:
    """(index, value, how many) of the first non-finite entry, or None."""
    if tensor.is_floating_point() and bool(torch.isfinite(tensor.sum())):
        return None  # NaN and ±inf carry through a sum: one pass, no mask (a million-row fit's data)
    bad = ~torch.isfinite(tensor)
    if not bool(bad.any()):
        return None
    index = tuple(int(i) for i in bad.nonzero()[0])
    return index, float(tensor[index]), int(bad.sum())


def _stored_cause(model: torch.nn.Module, criterion) -> str | None:
    """A parameter, a fixed value or a data column that is not finite, in those words."""
    fixed = spec_graph(model).graph["fixed"]
    for kind, named in (("parameter", model.named_parameters()), ("fixed value", model.named_buffers())):
        for name, tensor in named:
            found = _first_bad(tensor.detach())
            if found:
                index, value, count = found
                more = f"; {count} of its {tensor.numel()} entries are not finite" if count > 1 else ""
                where = f"{_at(index)} (counted from 1{more})" if index else ""
                what = "buffer" if kind != "parameter" and name not in fixed else kind
                return f"{what} '{name}' is {_word(value)}{where}"
    columns = list(zip(model.spec_inputs, criterion.inputs)) + list(zip(model.spec_outputs, criterion.targets))
    for name, tensor in columns:
        found = _first_bad(tensor)
        if found:
            (row, *unit), value, _ = found
            column = f"{name}[{unit[0] + 1}]" if unit else name
            where = f"data row {row + 1}"
            if math.isinf(value) and tensor.dtype != torch.float64:  # finite data, beyond the dtype's range
                kind = str(tensor.dtype).removeprefix("torch.")
                where += f" as {kind} (beyond ±{torch.finfo(tensor.dtype).max:.2g})"
            return f"column '{column}' is {_word(value)} at {where}"
    return None


# ---------------------------------------------------------------- the spec's arithmetic
def expression_cause(model: torch.nn.Module, criterion) -> tuple[str | None, bool]:
    """The first node, in the order forward computes them, whose value is not finite at the
    model's values on the criterion's data, as ``("'log(-1)' (line 2, col 11) is nan for every
    row", depends on a parameter)``; else the output whose loss is not finite. ``(None, False)``
    where neither is found. Values are computed in float64 by the NumPy rules of the operation table
    (the training tape's), each rounded to the model's dtype, so a float32 overflow shows where it is.
    A spec with step nodes is walked step by step (:func:`specc.train.sequences.schedule`)."""
    from .sequences import schedule, step_value
    from .tape import _BY_SHAPE, _per_sample, _tail
    graph = spec_graph(model)
    dtype = {torch.float32: np.float32, torch.float16: np.float16}.get(
        next(model.parameters(), torch.empty(0, dtype=torch.float64)).dtype, np.float64)
    params = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    data = dict(zip(model.spec_inputs, criterion.inputs))
    values, dependent = {}, set()
    for node, step in schedule(graph, criterion.inputs):  # step: None, or the time step of a step node
        attrs = graph.nodes[node]
        kind = attrs["kind"]
        if attrs.get("op") in ("prev", "last"):  # h at the step before (its start at the first), or the last
            value, shape = step_value(graph, node, step, values), attrs["shape"]
            if len(shape) == 1 and value.shape[-1] != shape[0]:  # a start of 0 for a vector h
                value = np.broadcast_to(value, value.shape[:-1] + shape)
            if any(a in dependent for a in (*attrs["args"], attrs.get("of"))):
                dependent.add(node)
        elif kind == "input":
            column = data[node].detach().double().numpy()
            value = _per_sample(column[:, step] if attrs.get("sequence") else column)
        elif kind == "const":
            value = np.full((1, 1, 1), float(attrs["value"]))
        elif kind in ("param", "fixed"):
            value = (params if kind == "param" else buffers)[node].detach().double().numpy()
            value = value.reshape((1,) + _tail(attrs["shape"]))
            if kind == "param":
                dependent.add(node)
        elif kind == "op":
            row = OPS[attrs["op"]].on(*(graph.nodes[a]["shape"] for a in attrs["args"]))
            if row.random:  # dropout: eval mode passes its operand on
                forward = lambda a, *rate: a  # noqa: E731
            elif row.shape in _BY_SHAPE:
                forward = _BY_SHAPE[row.shape](graph, attrs)[0]
            elif row.numpy is not None:
                forward = row.numpy[0]
            else:
                return None, False
            with np.errstate(all="ignore"):
                value = np.asarray(forward(*(values[a] for a in attrs["args"])), dtype=np.float64)
            if len(attrs["shape"]) == 1 and value.shape[-1] != attrs["shape"][0]:  # h0[4] = 0: broadcast
                value = np.broadcast_to(value, value.shape[:-1] + attrs["shape"])
            if any(a in dependent for a in attrs["args"]):
                dependent.add(node)
        else:
            continue
        with np.errstate(all="ignore"):
            value = value.astype(dtype).astype(np.float64)  # as the model's dtype holds it
        values[node] = value
        if kind == "op" or kind == "const":
            bad = ~np.isfinite(value)
            if bad.any():
                at = f", step {step + 1}" if step is not None and attrs["stepped"] else ""
                return _node_text(graph, node, value, bad, dtype) + at, node in dependent
    return _loss_cause(model, criterion), False


def _node_text(graph, node: str, value: np.ndarray, bad: np.ndarray, dtype) -> str:
    attrs = graph.nodes[node]
    span = attrs.get("expr_span") or attrs["span"]  # a named node's span is its name: point at its expression
    via = f", in def {attrs['via']}" if attrs.get("via") else ""
    first = float(value[bad][0])
    text = f"'{attrs.get('label') or node}' (line {span.line}, col {span.column}{via}) is {_word(first)}"
    if math.isinf(first) and dtype is not np.float64:
        text += f" (beyond {np.dtype(dtype).name}'s ±{float(np.finfo(dtype).max):.2g})"
    if not attrs["batched"]:
        return text + " for every row"
    rows = np.flatnonzero(bad.reshape(bad.shape[0], bad.shape[1], -1).any((0, 2)))
    total = value.shape[1]
    if len(rows) == total:
        return text + " for every row"
    shown = ", ".join(str(r + 1) for r in rows[:SHOWN_ROWS])
    more = f" and {len(rows) - SHOWN_ROWS} more" if len(rows) > SHOWN_ROWS else ""
    return text + f" at data row{'s' if len(rows) > 1 else ''} {shown}{more} (of {total})"


def _loss_cause(model: torch.nn.Module, criterion) -> str | None:
    """Every node is finite: the output whose loss is not, or the decay term."""
    with evaluating(model):
        predicted = model(*criterion.inputs)
        predicted = (predicted,) if len(criterion.targets) == 1 else tuple(predicted)
        for name, fn, p, t in zip(model.spec_outputs, criterion.fns, predicted, criterion.targets):
            value = fn(p, t).item()
            if not math.isfinite(value):
                kind = str(p.dtype).removeprefix("torch.")
                return (f"the {criterion.loss.name} of output '{name}' is {_word(value)} in {kind} (its values and "
                        f"targets are finite)")
        if criterion.decay:
            value = (criterion.decay * sum((p * p).sum() for p in criterion.params)).item()
            if not math.isfinite(value):
                return f"the decay term ({criterion.decay:g} · Σw²) is {_word(value)}"
    return None
