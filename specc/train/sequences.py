"""Sequence data and what a fit of a spec with step nodes (``prev``, ``last``) needs.

A spec with a sequence input (``input x[T, 3]``) is fed and fitted sequence by sequence. Its data
is either **arrays** (an NPZ file, or a dict in Python) or **long rows** (a CSV file):

- arrays: a sequence input ``x[T, n]`` is one array ``x`` of shape ``[N, T, n]`` (``[N, T]`` for
  ``x[T]`` or a size-1 ``x[T, 1]``, which also takes ``[N, T, 1]``); a stepped output's targets
  ``[N, T, m]``; a plain input or a non-stepped output (``y = last(h)``) ``[N, m]`` as for any
  spec. Every sequence array has the same N (sequences) and T (steps).
- long rows: one row per step, a column ``sequence`` naming each row's sequence (any number), the
  rows of one sequence consecutive and in step order, and the usual columns ``x[1]`` … ``x[n]``.
  A plain input or a non-stepped target is one value per sequence, so it must be equal on every
  row of its sequence (it is checked; predictions write it on every row). Every sequence has the
  same number of rows (T); unequal lengths are refused, not padded.

``specc predict`` writes a sequence spec's predictions back in the same form: an NPZ of arrays
(``[N, T, m]`` for a stepped output), or long CSV rows with the ``sequence`` column of its data.

The compiled C criterion and the NumPy tape evaluate one step of the IR and know no ``prev`` or
``last``; the module's own passes loop over time. So a spec with step nodes is fitted on the
engines in :data:`STEP_ENGINES`, and its default method is bfgs from one start on ``autograd`` with
:data:`STEP_BFGS`'s stopping (:func:`bfgs_defaults`, read by :func:`specc.train.multistart.choose`;
:func:`bfgs_engine` by ``fit`` for an explicit ``optimizer="bfgs"``).
"""
from __future__ import annotations

import io
import math
import os
from typing import Mapping

import numpy as np
import torch

from ..errors import DataError, SpecError
from ..files import write_file
from ..ir import Graph
from ..lower import spec_graph
from ..sequences import is_sequential
from .data import Node, Table, _assemble, _label, _names, _number, _one_hot, columns_of, csv_text

SEQUENCE_COLUMN = "sequence"  # the long format's column naming each row's sequence
STEP_ENGINES = ("autograd",)  # the engines that run a spec with step nodes: the module's loop over time
DEFAULT_ENGINE = "compiled"  # bfgs's engine for a spec without step nodes
# The default method's stopping for a spec with step nodes: one start on autograd, whose evaluations cost
# far more than the compiled criterion's (5-7 ms for 200 sequences of 20 steps, 8 units): 1000 iterations,
# not 5000, and nnet's reltol.
STEP_BFGS = dict(max_iter=1000, abstol=None, reltol=1e-8)


def has_steps(model_or_graph) -> bool:
    """Whether the spec has step nodes (a sequence input, ``prev``): its data are sequences."""
    return is_sequential(spec_graph(model_or_graph))  # a sequence input is itself a step node


def stepped_names(graph: Graph) -> set[str]:
    """The spec's inputs and outputs whose data have a step axis: sequence inputs, stepped outputs."""
    inputs = {n for n in graph.graph["inputs"] if graph.nodes[n].get("sequence")}
    return inputs | {n for n in graph.graph["outputs"] if graph.nodes[n].get("stepped")}


# ---------------------------------------------------------------- engines
def bfgs_engine(model_or_graph) -> str:
    """The engine bfgs runs on when none is given: the first of :data:`STEP_ENGINES` for a spec
    with step nodes, else :data:`DEFAULT_ENGINE`."""
    return STEP_ENGINES[0] if has_steps(model_or_graph) else DEFAULT_ENGINE


def bfgs_defaults(model_or_graph) -> tuple[str, dict | None]:
    """bfgs's engine and stopping when ``fit`` chooses the method (None: the usual stopping)."""
    return (STEP_ENGINES[0], STEP_BFGS) if has_steps(model_or_graph) else (DEFAULT_ENGINE, None)


def check_engine(model, engine: str | None) -> None:
    """Refuse an engine that cannot run the spec's loop over time, naming the ones that can."""
    if engine is None or engine in STEP_ENGINES or not has_steps(model):
        return
    spec = getattr(model, "spec_file", "the spec")
    raise SpecError(f"engine '{engine}' cannot fit {spec}: it has step nodes (a sequence input, prev, last), "
                    f"which only the engine{'s' * (len(STEP_ENGINES) > 1)} {', '.join(map(repr, STEP_ENGINES))} "
                    f"run{'s' * (len(STEP_ENGINES) == 1)}; leave the engine out to use it")


def small_steps_on_one_thread(model, rows: int):
    """Pin torch to one thread while a spec with step nodes is fitted on small data (the default
    method's small-data rule); returns what restores the count. Each step's operations are tiny, and
    a second thread waiting for a busy core costs far more than it brings: the sequence story's 200
    iterations took 0.9-1.3 s on one thread and 12.7-29.6 s on torch's default two (2-core machine,
    load average 2). Anything else keeps torch's setting."""
    from .multistart import SMALL_DATA
    threads = torch.get_num_threads()
    if threads == 1 or not has_steps(model) or rows * sum(p.numel() for p in model.parameters()) > SMALL_DATA:
        return lambda: None
    torch.set_num_threads(1)
    return lambda: torch.set_num_threads(threads)


def per_step(fn):
    """A loss of a stepped output: its [N, T, …] values and targets as N·T rows, so that mse is the
    mean over N×T×m (torch's MSELoss on the whole tensor) and cross_entropy the mean over steps."""
    return lambda p, t: fn(p.flatten(0, 1), t.flatten(0, 1))


# ---------------------------------------------------------------- the loop, for the start checks
def schedule(graph: Graph, inputs) -> list[tuple[str, int | None]]:
    """The wanted nodes in the order the module computes them, each with its time step: (node, None)
    once for a spec without step nodes; else the values before the loop, every step node at each of
    the T steps (T from ``inputs``, the data in input order), then what uses last(..)."""
    wanted = graph.ancestors(graph.graph["outputs"])
    while more := {of for of, p in graph.graph.get("recurrent", ()) if p in wanted} - wanted:
        wanted |= graph.ancestors(more)  # a wanted prev(h) needs h itself
    order = [n for n in graph.topological() if n in wanted]
    if not has_steps(graph):
        return [(node, None) for node in order]
    steps = next(x.shape[1] for name, x in zip(graph.graph["inputs"], inputs) if graph.nodes[name]["sequence"])
    after: set[str] = set()  # last(..) and what uses it
    for node in order:
        if graph.nodes[node].get("op") == "last" or any(a in after for a in graph.nodes[node].get("args", ())):
            after.add(node)
    stepped = [n for n in order if graph.nodes[n]["stepped"]]
    return ([(n, None) for n in order if n not in after and not graph.nodes[n]["stepped"]]
            + [(n, t) for t in range(steps) for n in stepped] + [(n, steps - 1) for n in order if n in after])


def step_value(graph: Graph, node: str, step: int | None, values: dict):
    """The value of a prev(h) node at ``step`` (h's from the step before, its start at the first) or of
    a last(v) node (v's at the final step), from the walk's ``values``."""
    attrs = graph.nodes[node]
    if attrs["op"] == "last":
        return values[attrs["args"][0]]
    return values[attrs["args"][0]] if step == 0 else values[attrs["of"]]


# ---------------------------------------------------------------- reading
def sequence_arrays(model_or_graph, table: Table, targets: bool = True,
                    labels: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """The arrays of a sequence spec's inputs (and outputs when ``targets``) from ``table``, shaped as
    the module takes and returns them, and the sequence ids of long rows (None for arrays)."""
    graph = spec_graph(model_or_graph)
    stepped = stepped_names(graph)
    inputs = [_node(graph, n, "input") for n in graph.graph["inputs"]]
    outputs = [_node(graph, n, "output") for n in graph.graph["outputs"]]
    wanted = inputs + outputs if targets else inputs
    if SEQUENCE_COLUMN in (n.name for n in inputs + outputs) and table.is_csv:
        raise table.error(f"the spec has a node named '{SEQUENCE_COLUMN}', the name of the CSV column that "
                          "numbers sequences: rename it, or give the data as an NPZ file of arrays")
    long = table.is_csv or (SEQUENCE_COLUMN in table.arrays
                                      and SEQUENCE_COLUMN not in (n.name for n in inputs + outputs))
    _refuse_unknown(table, wanted, {c for n in outputs for c in _names(n)} if not targets else set(), long)
    if long:
        return _long_rows(table, wanted, stepped, labels)
    return _arrays(table, wanted, stepped, labels), None


def _node(graph: Graph, name: str, role: str) -> Node:
    shape = graph.nodes[name]["shape"]
    return Node(name, shape[0] if shape else None, role)


def _refuse_unknown(table: Table, wanted: list[Node], tolerated: set[str], long: bool) -> None:
    known = {key for node in wanted for key in _names(node)} | tolerated | ({SEQUENCE_COLUMN} if long else set())
    for key in table.arrays:
        if key not in known:
            expected = ", ".join([SEQUENCE_COLUMN] + [n.column_text for n in wanted] if long else
                                 [n.name for n in wanted])
            raise table.error(f"column '{key}' is not an input or output of the spec (expected: {expected})")


def _long_rows(table: Table, wanted: list[Node], stepped: set[str],
               labels: bool) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Long rows (one per step) grouped into [N, T, …] arrays by the ``sequence`` column."""
    ids = table.arrays.get(SEQUENCE_COLUMN)
    if ids is None:
        raise table.error(f"no column '{SEQUENCE_COLUMN}': the spec takes sequences, so each row is one step "
                          f"and a column '{SEQUENCE_COLUMN}' names its sequence (its rows consecutive, in step "
                          "order)")
    if ids.ndim != 1:
        raise table.error(f"'{SEQUENCE_COLUMN}' must be one column, not an array of shape {list(ids.shape)}")
    if len(ids) == 0:
        raise table.error("no data rows")
    bad = np.flatnonzero(~np.isfinite(ids))
    if bad.size:
        raise table.error(f"column '{SEQUENCE_COLUMN}': {_number(float(ids[bad[0]]))} is not a finite number",
                          int(bad[0]), SEQUENCE_COLUMN)
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    lengths = np.diff(np.r_[starts, len(ids)]).tolist()
    first_row: dict[float, int] = {}
    for start, length in zip(starts.tolist(), lengths):
        name = _number(float(ids[start]))
        if ids[start] in first_row:
            raise table.error(f"sequence {name} starts again here after other sequences (it began at data row "
                              f"{first_row[ids[start]] + 1}): the rows of a sequence must be consecutive",
                              start, SEQUENCE_COLUMN)
        first_row[ids[start]] = start
        if length != lengths[0]:
            raise table.error(f"sequence {name} has {length} step{'s' * (length != 1)} but sequence "
                              f"{_number(float(ids[0]))} has {lengths[0]}: every sequence must have the same "
                              "number of steps (rows)", start, SEQUENCE_COLUMN)
    count, steps = len(starts), lengths[0]
    arrays = {}
    for node in wanted:
        flat = _assemble(table, node, labels)  # its columns, checked row by row
        shaped = flat.reshape((count, steps) + flat.shape[1:])
        if node.name not in stepped:
            shaped = _per_sequence(table, node, shaped, ids)
        arrays[node.name] = shaped
    return arrays, ids[starts]


def _per_sequence(table: Table, node: Node, shaped: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The one value per sequence of a non-step node, which every row of the sequence must repeat."""
    differs = (shaped != shaped[:, :1]).reshape(shaped.shape[0], shaped.shape[1], -1).any(2)
    if differs.any():
        k, t = (int(i) for i in np.argwhere(differs)[0])
        row = k * shaped.shape[1] + t
        what = "a plain input" if node.role == "input" else "a non-stepped output (one value per sequence)"
        first, here = shaped[k, 0].reshape(-1), shaped[k, t].reshape(-1)
        unit = int(np.flatnonzero(first != here)[0])
        column = node.name if node.size is None or first.size == 1 else f"{node.name}[{unit + 1}]"
        raise table.error(f"column '{column}': {_number(float(here[unit]))} differs from "
                          f"{_number(float(first[unit]))} on the first row of sequence "
                          f"{_number(float(ids[k * shaped.shape[1]]))}: '{node.name}' is {what}, equal on "
                          "every row of its sequence", row, column)
    return shaped[:, 0]


def _arrays(table: Table, wanted: list[Node], stepped: set[str], labels: bool) -> dict[str, np.ndarray]:
    """Arrays [N, T, …] for the step nodes and [N, …] for the others, N and T shared."""
    arrays, first = {}, None
    for node in (n for n in wanted if n.name in stepped):
        arrays[node.name] = array = _sequence_array(table, node, labels, first)
        first = first or (node.name, array.shape)
    if first is None:
        raise table.error("the spec takes sequences, but none of its sequence inputs or outputs is in the data")
    for node in (n for n in wanted if n.name not in stepped):
        arrays[node.name] = array = _assemble(table, node, labels)
        if len(array) != first[1][0]:
            raise table.error(f"'{node.name}' has {len(array)} rows but '{first[0]}' has {first[1][0]} "
                              "sequences: one row per sequence")
    return arrays


def _sequence_array(table: Table, node: Node, labels: bool, first) -> np.ndarray:
    array = table.arrays.get(node.name)
    per_step = "one number per step" if node.size is None else f"size {node.size} per step"
    shape = "[N, T]" if node.size is None else f"[N, T, {node.size}]"
    if array is None:
        given = next((k for k in _names(node) if k in table.arrays), None)
        why = f"'{given}' is a CSV column: arrays give " if given else "expected "
        raise table.error(f"no data for sequence {node.role} '{node.name}' ({per_step}; {why}one array "
                          f"'{node.name}' of shape {shape}: N sequences of T steps)")
    k = node.size or 1
    if labels and node.role == "output" and k >= 2 and array.ndim == 2:  # class labels per step
        array = _one_hot(table, node, array.reshape(-1)).reshape(array.shape + (k,))
    if node.size in (None, 1) and array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if node.size == 1 and array.ndim == 2:
        array = array[:, :, None]
    rank = 2 if node.size is None else 3
    if array.ndim != rank or (rank == 3 and array.shape[2] != node.size):
        raise table.error(f"'{node.name}' has shape {list(array.shape)}, but {node.role} '{node.name}' is a "
                          f"sequence of {per_step}: wanted {shape}")
    if first is not None and array.shape[:2] != first[1][:2]:
        wanted = [first[1][0], first[1][1]] + list(array.shape[2:])
        raise table.error(f"'{node.name}' has shape {list(array.shape)} but '{first[0]}' has "
                          f"{list(first[1])}: every sequence array has the same N (sequences) and T (steps), "
                          f"so '{node.name}' needs {wanted}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise table.error(f"'{node.name}' has shape {list(array.shape)}: no " +
                          ("sequences" if array.shape[0] == 0 else "steps"))
    bad = np.argwhere(~np.isfinite(array))
    if bad.size:
        index = tuple(int(i) for i in bad[0])
        unit = f", unit {index[2] + 1}" if len(index) > 2 else ""
        value = float(array[index])
        raise table.error(f"'{node.name}' at sequence {index[0] + 1}, step {index[1] + 1}{unit}: "
                          f"{'NaN' if math.isnan(value) else value} is not a finite number")
    return array


def step_error(table: Table, name: str, shape, index: tuple[int, int, int], problem: str) -> DataError:
    """An error at element ``index`` (sequence, step, unit) of the [N, T, n] data of ``name``: at its
    CSV row and column for long rows, else by sequence, step and unit."""
    k, t, unit = index
    if SEQUENCE_COLUMN in table.arrays:
        row = k * shape[1] + t
        label = _label(table, name, (row, unit))
        return table.error(f"column '{label}': {problem}", row, label)
    return table.error(f"'{name}' at sequence {k + 1}, step {t + 1}, unit {unit + 1}: {problem}")


def sequence_ids(model_or_graph, table: Table) -> np.ndarray | None:
    """The ``sequence`` column's id of each sequence in ``table`` (long rows), else None."""
    return sequence_arrays(model_or_graph, table, targets=False)[1]


# ---------------------------------------------------------------- writing predictions
def prediction_bytes(model, table: Table, values: Mapping[str, torch.Tensor], suffix: str) -> bytes:
    """What ``specc predict`` writes: an NPZ of the arrays as the module takes and returns them
    (``suffix`` ``.npz``), else CSV text; long rows, with ``table``'s sequence ids (1 … N for
    arrays), for a spec with step nodes."""
    if suffix.lower() == ".npz":
        out = io.BytesIO()
        np.savez(out, **{name: value.detach().cpu().double().numpy() for name, value in values.items()})
        return out.getvalue()
    if not has_steps(model):
        return csv_text(columns_of(values)).encode("utf-8")
    graph = spec_graph(model)
    ids = sequence_ids(graph, table)
    return csv_text(long_columns(values, stepped_names(graph), ids)).encode("utf-8")


def long_columns(values: Mapping[str, torch.Tensor], stepped: set[str], ids: np.ndarray | None) -> dict:
    """Long rows of ``values`` ([N, T, …] for the ``stepped`` names, [N, …] otherwise, repeated on
    each step): the ``sequence`` column first (``ids``, or 1 … N), then CSV columns as usual."""
    some = next(values[n] for n in values if n in stepped)
    count, steps = some.shape[:2]
    ids = np.arange(1, count + 1, dtype=np.float64) if ids is None else ids
    rows = {name: (value.flatten(0, 1) if name in stepped else value.repeat_interleave(steps, dim=0))
            for name, value in values.items()}
    return {SEQUENCE_COLUMN: np.repeat(ids, steps), **columns_of(rows)}


def write_predictions(model, table: Table, values: Mapping[str, torch.Tensor],
                      path: str | os.PathLike) -> None:
    """:func:`prediction_bytes` written through specc's one temporary file and a rename."""
    write_file(path, prediction_bytes(model, table, values, os.path.splitext(str(path))[1]))
