"""What a spec may ask for, and the numbers it computes, checked when its IR is built (``specc check``).

- **Sizes.** A spec may hold at most ``max_elements`` numbers (10⁸ by default, 0.8 GB in float64):
  its parameters and fixed values, plus one sample's value of every input, constant and operation
  (a batch of B samples needs about B times the latter while it runs). No size may exceed
  ``max_size`` units (by default the same number): a size written in the spec is refused where it
  is written, before anything is inferred. Both are set by ``specc.graph(…, max_elements=N,
  max_size=N)`` (and ``load``, ``parse``, ``to_source``) and by ``--max-elements`` and ``--max-size``.
- **Numbers.** Every number the spec writes or computes from numbers alone (``1e3``, ``2*pi``,
  ``sqrt(2)``) must be finite in float64: ``1e400``, ``1/0`` and ``log(-1)`` are errors, and so is
  dividing anything by a constant that is zero (``x/0``). A module is built in a dtype that holds
  every such number, else refused (:func:`check_dtype`: ``1e39`` does not fit float32).

Standard library only: ``specc check`` never imports NumPy unless a spec folds a function call.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from .errors import ConstantError, LimitError, Span
from .ops import OPS

MAX_ELEMENTS = 10 ** 8
MOST = 2 ** 63 - 1  # torch's sizes are int64: no limit may be set higher


@dataclass(frozen=True)
class Limits:
    """``max_size``: units per dimension (None: ``max_elements``); ``max_elements``: numbers per spec."""

    max_elements: int = MAX_ELEMENTS
    max_size: int | None = None

    @property
    def size(self) -> int:
        return self.max_elements if self.max_size is None else self.max_size


DEFAULT = Limits()
UNLIMITED = Limits(MOST, MOST)  # for a module that exists already (lower.spec_graph)


def limits_of(max_size=None, max_elements=None, cli: bool = False) -> Limits:
    """The limits asked for (None: the default), each a whole number from 1 to 2⁶³ − 1; ``cli`` names
    them as flags in the refusal."""
    from .options import check
    check({"max_size": max_size, "max_elements": max_elements}, cli=cli)
    return Limits(MAX_ELEMENTS if max_elements is None else int(max_elements),
                  None if max_size is None else int(max_size))


def shown_digits(text: str) -> str:
    """A number as written, shortened when it is very long: ``99999999…9999 (5000 digits)``."""
    return text if len(text) <= 24 else f"{text[:8]}…{text[-4:]} ({len(text)} digits)"


def written_size(text: str, span: Span, limits: Limits, what: str = "size") -> int:
    """A size or an index written in the spec (ASCII digits), refused above ``limits.size``: compared
    by its digits first, so that a number of thousands of digits is never converted."""
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(limits.size)) or int(digits) > limits.size:
        raise LimitError(f"{what} {shown_digits(text)} is over the limit of {limits.size:,} units per "
                         "dimension", span, notes=(_raise_size(limits),))
    return int(digits)


def _raise_size(limits: Limits) -> tuple[str, None]:
    return (f"a value may have at most {limits.size:,} units along each dimension; raise the limit with "
            "--max-size N (max_size=N in Python)", None)


def _count(shape: tuple) -> int:
    total = 1
    for size in shape:
        total *= size
    return total


def check_sizes(graph, unifier, limits: Limits) -> None:
    """Every size within ``limits.size`` (a concat's may add up past it) and the numbers the spec holds
    within ``limits.max_elements``; the error points at the largest value, with where its sizes came from."""
    order = [n for n in graph.topological() if graph.nodes[n]["kind"] != "output"]
    for node in order:
        for size in unifier.terms[node].root().sizes:
            root = size.root()
            if root.value is not None and root.value > limits.size:
                what, where = root.origin or (f"'{node}'", graph.nodes[node]["span"])
                raise LimitError(f"size {root.value:,} from {what} is over the limit of {limits.size:,} "
                                 "units per dimension", where, notes=(_raise_size(limits),))
    counts = {node: _count(graph.nodes[node]["shape"]) for node in order}
    total = sum(counts.values())
    if total <= limits.max_elements:
        return
    largest = max(order, key=lambda n: counts[n])  # the first of the largest
    attrs = graph.nodes[largest]
    name = attrs["name"] if attrs["name"] and attrs["kind"] != "const" else attrs.get("label", largest)
    shape = f"[{', '.join(map(str, attrs['shape']))}]"
    over = f"over the limit of {limits.max_elements:,}"
    if counts[largest] > limits.max_elements:
        message = f"'{name}' {shape} would hold {counts[largest]:,} numbers, {over}"
    else:
        message = f"the spec would hold {total:,} numbers, {over}; the largest value is '{name}' {shape}, " \
                  f"with {counts[largest]:,}"
    notes, seen = [], set()
    for size in unifier.terms[largest].root().sizes:
        root = size.root()
        if root.origin and id(root) not in seen:
            seen.add(id(root))
            notes.append((f"size {root.value} comes from {root.origin[0]}", root.origin[1]))
    notes.append((f"a spec may hold at most {limits.max_elements:,} numbers: its parameters and fixed values, "
                  "and one sample's value of every input and operation; raise the limit with --max-elements N "
                  "(max_elements=N in Python)", None))
    raise LimitError(message, attrs["span"], notes=tuple(notes))


# ---------------------------------------------------------------- numbers
def literal(text: str, span: Span) -> float:
    """A number written in the spec; one beyond float64's range (``1e400``) is refused."""
    value = float(text)
    if not math.isfinite(value):
        raise ConstantError(f"the number {shown_digits(text)} is inf in float64 (the largest is about 1.8e308): "
                            "a spec's numbers must be finite", span)
    return value


def _where(attrs: dict) -> Span:
    return attrs.get("expr_span") or attrs["span"]


def folded_values(graph) -> dict[str, float]:
    """The value of every node computed from numbers alone, in float64 as the compiler folds it
    (:meth:`specc.ops.Op.fold`): literals, ``pi``, and elementwise operations of them."""
    values: dict[str, float] = {}
    for node in graph.topological():
        attrs = graph.nodes[node]
        if attrs["kind"] == "const":
            values[node] = float(attrs["value"])
        elif attrs["kind"] == "op" and all(a in values for a in attrs["args"]):
            row = OPS[attrs["op"]].on(*(graph.nodes[a]["shape"] for a in attrs["args"]))
            if row.foldable:
                values[node] = row.fold(*(values[a] for a in attrs["args"]))
    return values


def check_numbers(graph) -> None:
    """Numbers-only arithmetic gives finite numbers, and nothing is divided by a constant zero: the
    first offender, innermost first, is an error under it."""
    values = folded_values(graph)
    for node in graph.topological():
        attrs = graph.nodes[node]
        if attrs["kind"] != "op":
            continue
        label = attrs.get("label") or node
        if attrs["op"] == "div" and values.get(attrs["args"][1]) == 0:
            rest = "a spec's numbers must be finite" if node in values else \
                "every unit would be inf or nan"
            raise ConstantError(f"'{label}' divides by zero: {rest}", _where(attrs))
        if node in values and not math.isfinite(values[node]):
            raise ConstantError(f"'{label}' is {values[node]} in float64: a spec's numbers must be finite",
                                _where(attrs))


def check_dtype(graph, dtype) -> None:
    """Every number that reaches a tensor (each largest numbers-only part of an expression, and the
    numbers of init lines) fits ``dtype`` (a torch floating dtype); else an error naming the number and
    its place. Compared with the dtype's largest finite value, as torch would round it to inf beyond."""
    import torch
    if not dtype.is_floating_point:
        return
    largest = torch.finfo(dtype).max
    name = str(dtype).removeprefix("torch.")
    hint = ("compute in float64 (specc.load(…, dtype=torch.float64); specc train --dtype float64)"
            if dtype != torch.float64 else "")

    def refuse(what: str, where: Span | None):
        raise ConstantError(f"{what} does not fit {name} (at most ±{largest:.6g})" + (f": {hint}" if hint else ""),
                            where, source=graph.graph["source"])

    values = folded_values(graph)
    for node, value in values.items():
        users = list(graph.successors(node))
        reaches = not users or any(user not in values for user in users)  # else a part of a larger number
        if reaches and abs(value) > largest:
            attrs = graph.nodes[node]
            label = attrs.get("label") or node
            refuse(f"the number {label}" if _written(graph, node) else f"'{label}' is {value:g}, which",
                   _where(attrs))
    from .parser import Init
    for line in graph.graph["program"].statements:
        if isinstance(line, Init) and line.name.id in graph.nodes:
            for value in _flat(graph.nodes[line.name.id].get("init_args", ())):
                if isinstance(value, numbers.Real) and abs(value) > largest:
                    refuse(f"the init value {value:g} of '{line.name.id}'", line.dist.span)


def _written(graph, node: str) -> bool:
    """Whether a value is a number as written (``1e39``, or ``c = 1e39``), not computed."""
    attrs = graph.nodes[node]
    while attrs["kind"] == "op" and OPS[attrs["op"]].passes_through:
        attrs = graph.nodes[attrs["args"][0]]
    return attrs["kind"] == "const"


def fits_dtype(graph, dtype) -> bool:
    """Whether :func:`check_dtype` passes."""
    try:
        check_dtype(graph, dtype)
    except ConstantError:
        return False
    return True


def _flat(values):
    for value in values:
        if isinstance(value, tuple):
            yield from _flat(value)
        else:
            yield value
