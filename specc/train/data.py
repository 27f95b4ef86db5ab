"""Training data: CSV, NPZ, NPY or Parquet files (or dicts of arrays) checked against a spec's inputs and outputs.

Naming: a scalar node ``x`` is one column ``x``. A vector node ``h[n]`` is the
columns ``h[1]`` … ``h[n]`` (1-based, as the spec writes sizes), or, in an NPZ
file or a dict, one array ``h`` of shape ``[rows, n]``. A size-1 vector such as
``y[1]`` may also be one plain column ``y``. The bracket form cannot collide
with a spec name, which ``h_1`` could.

Every check runs before any tensor is built, so a bad file changes nothing; an
error names the file, the column and the row (CSV errors carry the line as a
location, so they print like compiler errors, with the offending line).
"""
from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from ..errors import DataError
from ..files import write_file
from ..lower import spec_graph
from .csv_reader import read_csv
from .readers import Table, as_float64 as _as_float64, numeric as _numeric, read_npy, read_npz, read_parquet

# The most numbers one data file may hold (a CSV's cells, an NPZ's array elements): 10⁸ float64
# values are 800 MB, and a fit holds a copy in its dtype. Raise it for a machine with more memory.
MAX_VALUES = 10 ** 8


@dataclass(frozen=True)
class Node:
    """An input or output of a spec as data sees it: a name, a size (None for a scalar) and a role."""

    name: str
    size: int | None
    role: str  # 'input' | 'output'

    def columns(self) -> list[str]:
        """The CSV column names of this node."""
        return [self.name] if self.size is None else [f"{self.name}[{i}]" for i in range(1, self.size + 1)]

    @property
    def column_text(self) -> str:
        if self.size is None or self.size == 1:
            return self.name
        return f"{self.name}[1] … {self.name}[{self.size}]"

    @property
    def shape_text(self) -> str:
        return "a scalar" if self.size is None else f"size {self.size}"


def spec_nodes(model_or_graph) -> tuple[list[Node], list[Node]]:
    """(inputs, outputs) of a compiled module (or of its IR) with their sizes."""
    graph = spec_graph(model_or_graph)

    def node(name, role):
        shape = graph.nodes[name]["shape"]
        return Node(name, shape[0] if shape else None, role)

    return [node(n, "input") for n in graph.graph["inputs"]], [node(n, "output") for n in graph.graph["outputs"]]


# ---------------------------------------------------------------- reading files
def read_table(path: str | os.PathLike) -> Table:
    """The named columns (CSV with a header row, Parquet) or arrays (NPZ, a structured NPY) of a data
    file, as float64. specc/train/csv_reader.py and readers.py read them."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{path}: unknown data format '{path.suffix}' (use {', '.join(_READERS)})")
    return reader(path, MAX_VALUES)


_READERS = {".csv": read_csv, ".npz": read_npz, ".npy": read_npy, ".parquet": read_parquet}


def as_table(data, origin: str = "data") -> Table:
    """A :class:`Table` from a path, a Table, or a mapping of names to arrays/tensors/lists."""
    if isinstance(data, Table):
        return data
    if isinstance(data, (str, os.PathLike)):
        return read_table(data)
    if not isinstance(data, Mapping):
        raise DataError(f"{origin}: expected a file name or a mapping of names to arrays, "
                        f"not {type(data).__name__}")
    arrays = {}
    for name, value in data.items():
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu()
            if value.is_complex():
                _numeric(origin, str(name), np.dtype(np.complex128))
            value = value.double().numpy() if value.is_floating_point() else value.numpy()  # bfloat16, fp8
        try:
            array = np.asarray(value)  # as it is: text or objects are refused, not converted
        except (TypeError, ValueError) as err:
            raise DataError(f"{origin}: '{name}' is not an array of numbers ({err})") from None
        arrays[str(name)] = _as_float64(origin, str(name), array)
    return Table(origin, arrays)


# ---------------------------------------------------------------- checking against a spec
def tensors_for(model_or_graph, data, *, targets: bool = True, dtype: torch.dtype = torch.float32,
                origin: str = "data", labels: bool = False) -> dict[str, torch.Tensor]:
    """Tensors named after the spec's inputs (and outputs when ``targets``), shaped as the module
    takes and returns them: ``[rows]`` for a scalar node, ``[rows, n]`` for a vector ``[n]``.

    Without ``targets`` the outputs' columns may be present and are ignored (predicting on the
    training file); any other unknown column is an error, as is a missing, mis-sized or
    non-finite one, or columns of unequal length. With ``labels`` (the loss is cross_entropy), a
    vector output of k ≥ 2 units may be one column of class labels 0 … k-1, which becomes one-hot
    rows: every engine then sees class probabilities, whichever form the data had.
    """
    table = as_table(data, origin)
    from .sequences import has_steps, sequence_arrays  # imported here: that module builds on this one
    if has_steps(model_or_graph):  # sequences: [N, T, …] arrays or long rows with a 'sequence' column
        arrays = sequence_arrays(model_or_graph, table, targets, labels)[0]
        return in_dtype({n: _tensor(a) for n, a in arrays.items()}, dtype, table)
    inputs, outputs = spec_nodes(model_or_graph)
    wanted = inputs + outputs if targets else inputs
    tolerated = set() if targets else {c for n in outputs for c in _names(n)}
    claimed: dict[str, Node] = {}
    for node in wanted:
        for key in _names(node):
            if key in table.arrays:
                claimed[key] = node
    for key in table.arrays:
        if key not in claimed and key not in tolerated:
            known = ", ".join(n.column_text for n in wanted)
            raise table.error(f"column '{key}' is not an input{' or output' if targets else ''} of the spec "
                              f"(expected: {known})")
    assembled = {node.name: _assemble(table, node, labels) for node in wanted}
    _check_rows(table, assembled)
    return in_dtype({name: _tensor(array) for name, array in assembled.items()},
                    dtype, table)


def _tensor(array: np.ndarray) -> torch.Tensor:
    """A tensor of an array; a read-only one (memory-mapped from a file) is copied, as torch needs."""
    return torch.from_numpy(np.ascontiguousarray(array) if array.flags.writeable else np.array(array))


def in_dtype(tensors: Mapping[str, torch.Tensor], dtype: torch.dtype, data) -> dict[str, torch.Tensor]:
    """``tensors`` (named after the spec's nodes) converted to ``dtype``. A finite value beyond the
    dtype's range (1e39 in float32) would become inf and the fit NaN: it is refused, naming its
    column and row in ``data`` (the Table, file or mapping they came from)."""
    if dtype.is_floating_point:
        big = torch.finfo(dtype).max
        wider = [name for name, t in tensors.items() if t.is_floating_point() and torch.finfo(t.dtype).max > big]
        refuse_values(data, tensors, wider, lambda t: torch.isfinite(t) & (t.abs() > big),
                      f"is beyond {str(dtype).removeprefix('torch.')}'s range (±{big:.3g}): train in float64 "
                      "(--dtype float64) or scale the column")
    return {name: t.to(dtype) for name, t in tensors.items()}


def refuse_values(data, tensors: Mapping[str, torch.Tensor], names, test, rule: str) -> None:
    """Raise at the first value of ``tensors[name]`` (for ``name`` in ``names``) where ``test`` holds:
    ``column 'h[2]': VALUE RULE`` at its row of ``data`` (a file is read again only to say where)."""
    for name in names:
        bad = test(tensors[name])
        if bool(bad.any()):
            index = tuple(int(i) for i in bad.nonzero()[0])
            value = float(tensors[name][index])
            table = as_table(data)
            if len(index) == 3:  # [sequence, step, unit]: specc.train.sequences says where
                from .sequences import step_error
                raise step_error(table, name, tensors[name].shape, index, f"{_number(value)} {rule}")
            label = _label(table, name, index)
            raise table.error(f"column '{label}': {_number(value)} {rule}", index[0], label)


def _label(table: Table, name: str, index: tuple[int, ...]) -> str:
    """The column of ``table`` that holds element ``index`` ([row] or [row, unit]) of node ``name``."""
    if len(index) < 2:
        return name
    column = f"{name}[{index[1] + 1}]"
    whole = table.arrays.get(name)
    return name if column not in table.arrays and whole is not None and whole.ndim == 1 else column


def _names(node: Node) -> list[str]:
    """Every key that may carry (part of) ``node``: its own name and its bracketed columns."""
    return [node.name] + ([] if node.size is None else node.columns())


def _assemble(table: Table, node: Node, class_labels: bool = False) -> np.ndarray:
    whole = table.arrays.get(node.name)
    parts = [c for c in (node.columns() if node.size is not None else []) if c in table.arrays]
    # one column of a scalar or a size-1 vector is its value, never a label
    class_labels = class_labels and node.role == "output" and (node.size or 0) >= 2
    if whole is not None and parts:
        raise table.error(f"'{node.name}' is given twice: as '{node.name}' and as '{parts[0]}'")
    if whole is None and not parts:
        raise table.error(f"no data for {node.role} '{node.name}' ({node.shape_text}; expected "
                          f"{_expected(node, class_labels)})")
    if class_labels and whole is not None and (whole.ndim == 1 or whole.shape[1:] == (1,)):
        return _one_hot(table, node, whole.reshape(len(whole)))
    if whole is not None:
        array = _whole(table, node, whole)
        labels = [node.name] if whole.ndim == 1 or array.ndim == 1 else \
            [f"{node.name}[{i + 1}]" for i in range(array.shape[1])]
    else:
        missing = [c for c in node.columns() if c not in table.arrays]
        if missing:
            raise table.error(f"missing column '{missing[0]}' for {node.role} '{node.name}' ({node.shape_text})")
        labels = node.columns()
        for name in labels:
            if table.arrays[name].ndim != 1:
                raise table.error(f"'{name}' must be one column, not an array of shape "
                                  f"{list(table.arrays[name].shape)}")
        _check_lengths(table, {name: table.arrays[name] for name in labels})
        array = np.stack([table.arrays[name] for name in labels], axis=1)
    for label, column in zip(labels, [array] if array.ndim == 1 else array.T):
        bad = np.flatnonzero(~np.isfinite(column))
        if bad.size:
            value = column[bad[0]]
            raise table.error(f"column '{label}': {'NaN' if math.isnan(value) else value} is not a finite number",
                              int(bad[0]), label)
    return array


def _expected(node: Node, labels: bool = False) -> str:
    if node.size is None:
        return f"a column '{node.name}'"
    if node.size == 1:
        return f"a column '{node.name}' or '{node.name}[1]'"
    return (f"columns '{node.name}[1]' … '{node.name}[{node.size}]', or one array '{node.name}' "
            f"of shape [rows, {node.size}]" + (f", or a column '{node.name}' of class labels "
                                               f"{_classes(node.size)}" if labels else ""))


def _classes(k: int) -> str:
    """The labels of k classes in words: '0 or 1', '0, 1 or 2', '0 to 9'."""
    return f"0 to {k - 1}" if k > 4 else ", ".join(map(str, range(k - 1))) + f" or {k - 1}"


def _one_hot(table: Table, node: Node, column: np.ndarray) -> np.ndarray:
    """One-hot rows [rows, k] from a column of class labels 0 … k-1; the first bad label is an error."""
    k = node.size
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(~np.isfinite(column) | (column != np.round(column)) | (column < 0) | (column >= k))
    if bad.size:
        value = float(column[bad[0]])
        rule = ("is not a finite number" if not math.isfinite(value) else "is not a whole number"
                if not value.is_integer() else "is negative" if value < 0 else "is too large")
        raise table.error(f"column '{node.name}': class label {_number(value)} {rule}: '{node.name}' has {k} "
                          f"classes, so labels are {_classes(k)}", int(bad[0]), node.name)
    one_hot = np.zeros((len(column), k))
    one_hot[np.arange(len(column)), column.astype(np.int64)] = 1.0
    return one_hot


def _number(value: float) -> str:
    """A value as the data wrote it: 3 rather than 3.0, NaN rather than nan."""
    if math.isnan(value):
        return "NaN"
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _whole(table: Table, node: Node, array: np.ndarray) -> np.ndarray:
    """One array for the whole node: [rows] for a scalar or size-1 vector, [rows, n] for a vector."""
    if node.size is None:
        if array.ndim == 2 and array.shape[1] == 1:
            array = array[:, 0]
        if array.ndim != 1:
            raise table.error(f"'{node.name}' is a scalar {node.role}, so it needs one value per row, "
                              f"not an array of shape {list(array.shape)}")
        return array
    if array.ndim == 1 and node.size == 1:
        return array[:, None]
    if array.ndim != 2 or array.shape[1] != node.size:
        got = f"{array.shape[1]} columns" if array.ndim == 2 else f"shape {list(array.shape)}"
        hint = " (one column of class labels needs the loss cross_entropy)" \
            if node.role == "output" and array.ndim == 1 else ""
        raise table.error(f"'{node.name}' has {got}, but {node.role} '{node.name}' has size {node.size}{hint}")
    return array


def _check_lengths(table: Table, arrays: dict[str, np.ndarray]) -> None:
    names = list(arrays)
    for name in names[1:]:
        if len(arrays[name]) != len(arrays[names[0]]):
            raise table.error(f"'{name}' has {len(arrays[name])} rows but '{names[0]}' has "
                              f"{len(arrays[names[0]])}")


def _check_rows(table: Table, assembled: dict[str, np.ndarray]) -> None:
    _check_lengths(table, assembled)
    if assembled and len(next(iter(assembled.values()))) == 0:
        raise table.error("no data rows")


# ---------------------------------------------------------------- writing
def columns_of(values: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Named tensors ([rows] or [rows, n]) as CSV columns: ``y`` for a scalar or size-1 vector,
    ``h[1]`` … ``h[n]`` otherwise."""
    columns = {}
    for name, tensor in values.items():
        array = tensor.detach().cpu().double().numpy()
        if array.ndim == 1 or array.shape[1] == 1:
            columns[name] = array.reshape(len(array))
        else:
            columns.update({f"{name}[{i + 1}]": array[:, i] for i in range(array.shape[1])})
    return columns


def csv_text(columns: Mapping[str, np.ndarray]) -> str:
    """Columns as CSV text with a header; numbers are written so that they read back exactly."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(list(columns))
    writer.writerows(zip(*(map(repr, map(float, c)) for c in columns.values())))
    return out.getvalue()


def write_csv(path: str | os.PathLike, columns: Mapping[str, np.ndarray]) -> Path:
    """Write columns as CSV via a temporary file and a rename, so a failure leaves no partial file."""
    return write_file(path, csv_text(columns).encode("utf-8"))
