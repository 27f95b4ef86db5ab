"""The unit-level reading of the IR that the neuron and layers views draw.

A *column* is a vector the pictures show as a layer of units: every input,
every named node, and each anonymous value that cannot be folded into edge
weights.  A column is computed in one of two ways:

* **affine**: an optional one-argument function (the *activation*) applied to
  a sum of *terms*.  A term is a matrix product ``W·v`` (``v`` a column or a
  concat of columns), a column scaled by a constant and at most one parameter
  (``b*x``, ``-r``, ``2.5*b*z``), or a bias (a parameter or a constant added
  on its own).  Every scalar of a term is one connection.
* **op unit**: anything else (``x^2``, ``sigmoid(a) * b``, ``concat``); its
  operands are columns wired unit to unit, and constants stay in its label.

An anonymous value becomes a column of its own when it is not affine, when it
is used twice, or when folding it would make an edge weight the product of
two parameters.  Biases are fed by bias nodes B1, B2 … numbered by the depth
of the layers they feed, as R's nnet numbers them.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

from .diagram_calls import display_name, joins
from .diagram_formula import formula
from .diagram_recurrent import build_prev, delay_links, name_delayed, sequence_size
from .ir import Graph
from .ops import OPS

if TYPE_CHECKING:  # values arrive as tensors; reading the units needs no torch
    import torch

BIAS = "bias:"  # prefix of bias node ids: IR ids never contain ':' (only outputs, which are not columns)
CONST = "const:"  # prefix of a constant term's node (the 1 in 1 - g): a number of the spec, not a bias
HELD = ("param", "fixed")  # values the module holds: a term's factor, drawn on edges (a fixed one as fixed)
class NotDrawable(Exception):
    """A construct the unit views cannot show (e.g. ``(W+V)·x``); the caller falls back to the graph view."""


@dataclass(frozen=True)
class Term:
    kind: str  # 'matrix' | 'scale' | 'bias'
    sources: tuple[tuple[str, int], ...]  # (column, offset of its first unit in the product's input)
    param: str | None
    const: float  # constant factor; for a constant bias, the constant itself
    transposed: bool = False  # a matrix term through Wᵀ: the same parameter, entry W[j, i] on the edge i ← j


@dataclass
class Column:
    node: str
    kind: str  # 'input' | 'node' | 'param' | 'fixed' (a fixed value: held, never trained)
    size: int
    vector: bool  # a vector [size], not a scalar
    name: str  # spec name, or a made-up one (hint, t1, t2 …) for anonymous values
    named: bool
    label: str  # the source text it computes
    formula: str = ""  # what it computes in terms of the other columns' names (t2 = t1*r)
    via: str | None = None
    activation: str | None = None
    op: str | None = None  # set for op units
    operands: list[str] = field(default_factory=list)
    terms: list[Term] = field(default_factory=list)
    depth: int = 0
    output: bool = False
    of: str | None = None  # a delayed column (prev(h)): h, whose units its connections are drawn from
    sequence: bool = False  # a sequence input: [T, n] per sample

    @property
    def look(self) -> str:
        """How its units are drawn: 'input', 'param', 'fixed', 'output', 'op' (an operation) or 'node'."""
        if self.kind in ("input", "param", "fixed"):
            return self.kind
        return "output" if self.output else "op" if self.op else "node"

    def caption(self, show_size: bool = True) -> tuple[str, str, str]:
        """(name, size, what it computes), the words above the layer."""
        size = f"[{self.size}]" if show_size and self.vector else ""
        if self.sequence and show_size:
            size = sequence_size({"sequence": True}, size or "")
        if self.kind in ("input", "param", "fixed"):
            what = {"input": "input", "param": "parameter", "fixed": "fixed value"}[self.kind]
        elif self.op or not self.named:
            what = "= " + self.formula + (f" (in {self.via})" if self.via else "")
        elif self.terms and all(t.kind == "bias" and t.param is None for t in self.terms):
            what = "constant"  # h0[4] = 0: numbers alone, broadcast to the layer (its edges carry them)
        else:
            what = self.activation or "linear"
            if self.activation and not OPS[self.activation].elementwise:
                what += " over the layer"
        return self.name, size, what + (" · output" if self.output else "")


@dataclass(frozen=True)
class Connection:
    """One scalar link between two units: (column or bias node id, unit index) at each end."""

    source: tuple[str, int]
    target: tuple[str, int]
    kind: str  # 'weight' (has a parameter) | 'fixed' (a constant factor, or a fixed value's entry: ``param``
    # set) | 'wire' (an op unit's operand)
    param: str | None = None
    index: tuple[int, ...] = ()
    const: float = 1.0
    delay: int = 0  # a recurrent connection: from the source's units this many time steps back

    def value(self, values: dict[str, torch.Tensor] | None) -> float | None:
        if self.param is None:
            return self.const
        if values is None or self.param not in values:  # a fixed value a weights file does not set
            return None
        return self.const * float(values[self.param][self.index])

    def reference(self) -> str:
        """``W1[2,1]`` (counting from 1, like the unit labels), with any constant factor in front."""
        if self.param is None:
            return _number(self.const)
        ref = self.param + (f"[{','.join(str(i + 1) for i in self.index)}]" if self.index else "")
        return ref if self.const == 1 else f"{_number(self.const)}·{ref}"


@dataclass
class Net:
    graph: Graph
    columns: dict[str, Column]  # in drawing order
    bias_nodes: dict[int, str]  # depth → 'bias:B1', 'bias:B2' … (ids no IR node can have)

    def connections(self, with_bias: bool = True) -> list[Connection]:
        links = []
        for column in self.columns.values():
            for term in column.terms:
                if term.kind != "bias" or with_bias:
                    links += _term_links(self, column, term)
            for operand in column.operands:
                links += _wire_links(self, column, operand)
        return delay_links(self.columns, links) if self.graph.graph.get("recurrent") else links

    def drawn(self) -> list[Column]:
        """The columns the pictures show: all but the delayed ones (prev(h) is drawn as h's units)."""
        return [c for c in self.columns.values() if c.of is None]

    def shared_params(self) -> list[str]:
        """Parameters that appear in more than one term or operand (sharing, or reuse like legendre's b)."""
        uses: dict[str, int] = {}
        for column in self.columns.values():
            for param in [t.param for t in column.terms] + column.operands:
                if param in self.graph.graph["params"]:
                    uses[param] = uses.get(param, 0) + 1
        return [p for p in self.graph.graph["params"] if uses.get(p, 0) > 1]

    def unit_name(self, column: str, index: int) -> str:
        if column in self.columns:
            col = self.columns[column]
            if col.size == 1:
                return col.name
            return f"{col.name}{'_' if col.name[-1].isdigit() else ''}{index + 1}"
        if column.startswith(CONST):  # a constant term: its number
            return column.rsplit(":", 1)[1]
        return column.removeprefix(BIAS)  # a bias node

    def widest(self) -> int:
        return max(c.size for c in self.columns.values())

    def skips(self, link: Connection) -> bool:
        """Whether ``link`` carries a column's units past at least one layer unchanged (x in x + W·h):
        a skip connection, drawn apart from the dense mesh."""
        source = self.columns.get(link.source[0])
        target = self.columns[link.target[0]]
        return (source is not None and source.kind not in ("param", "fixed") and link.kind == "fixed"
                and link.param is None and not link.delay and target.depth - source.depth > 1)


def _number(value: float) -> str:
    return f"{value:g}"


def _units(shape: tuple[int, ...]) -> int:
    return shape[0] if shape else 1


def _term_links(net: Net, column: Column, term: Term) -> list[Connection]:
    kind = "weight" if term.param in net.graph.graph["params"] else "fixed"  # a fixed value's entry is fixed
    param_shape = net.graph.nodes[term.param]["shape"] if term.param else ()
    links = []
    if term.kind == "bias" and term.param is None:  # a number of the spec: its own node, showing the number
        source = (f"{CONST}{column.node}:{column.terms.index(term)}:{_number(term.const)}", 0)
        return [Connection(source, (column.node, i), "fixed") for i in range(column.size)]
    if term.kind == "bias":
        bias = net.bias_nodes[column.depth]
        for i in range(column.size):
            index = (i,) if param_shape else ()
            links.append(Connection((bias, 0), (column.node, i), kind, term.param, index, term.const))
        return links
    for source, offset in term.sources:
        size = net.columns[source].size
        for i in range(column.size):
            if term.kind == "matrix":
                for j in range(size):
                    index = (offset + j,) if len(param_shape) < 2 else (offset + j, i) if term.transposed \
                        else (i, offset + j)
                    links.append(Connection((source, j), (column.node, i), kind, term.param, index, term.const))
            else:  # one unit to one unit, or one unit broadcast to all
                index = (i,) if param_shape else ()
                links.append(Connection((source, i if size > 1 else 0), (column.node, i), kind, term.param,
                                        index, term.const))
    return links


def _wire_links(net: Net, column: Column, operand: str) -> list[Connection]:
    size = net.columns[operand].size
    if OPS[column.op].wiring == "all":  # sum, layer_norm: each unit of the result reads every unit
        param = operand in net.graph.graph["params"]  # a parameter used as a value: the edge carries its number
        return [Connection((operand, j), (column.node, i), "weight" if param else "wire", operand if param else None,
                           (j,) if param and net.graph.nodes[operand]["shape"] else ())
                for i in range(column.size) for j in range(size)]
    if OPS[column.op].wiring == "pick":  # x[2:4]: unit i of the result is unit start + i of the operand
        first = net.graph.nodes[column.node]["start"] - 1
        param = operand in net.graph.graph["params"]  # a parameter's units: the edge carries its number
        return [Connection((operand, first + i), (column.node, i), "weight" if param else "wire",
                           operand if param else None, (first + i,) if param else ()) for i in range(column.size)]
    if OPS[column.op].wiring == "gather":
        offset = 0
        for other in column.operands:
            if other == operand:
                break
            offset += net.columns[other].size
        return [Connection((operand, j), (column.node, offset + j), "wire") for j in range(size)]
    kind = "weight" if operand in net.graph.graph["params"] else "fixed" if operand in net.graph.graph["fixed"] \
        else "wire"
    links = []
    for i in range(column.size):
        j = i if size > 1 else 0
        if kind != "wire":  # a parameter (or fixed value) used as a value: the edge carries its number
            shape = net.graph.nodes[operand]["shape"]
            links.append(Connection((operand, j), (column.node, i), kind, operand, (j,) if shape else ()))
        else:
            links.append(Connection((operand, j), (column.node, i), kind))
    return links


class _Reader:
    def __init__(self, graph: Graph, join: bool = True):
        self.graph = graph
        self.joins = joins(graph) if join and "blocks" in graph.graph else {}  # code = enc(x): enc's output
        self.columns: dict[str, Column] = {}
        self.pending: deque[str] = deque()
        self.temporaries = 0

    def attrs(self, node: str) -> dict:
        return self.graph.nodes[node]

    # ---------------------------------------------------------- columns
    def column(self, node: str) -> str:
        """Make ``node`` a column (once) and return it (for a block's input, the value passed in)."""
        node = self.joins.get(node, node)
        if node in self.columns:
            return node
        attrs = self.attrs(node)
        if attrs.get("port") == "input" and self.must_be_column(attrs["args"][0]):
            return self.column(attrs["args"][0])
        what = attrs.get("label") or node
        if len(attrs["shape"]) == 2:
            raise NotDrawable(f"'{what}' is a matrix the spec computes; the unit views take a parameter matrix")
        if attrs["kind"] == "const":
            raise NotDrawable(f"the constant '{what}' stands where units are needed")
        kind = {"input": "input", "param": "param", "fixed": "fixed"}.get(attrs["kind"], "node")
        named = bool(display_name(attrs))
        if named:
            name = display_name(attrs)
        elif attrs.get("port"):  # a block's input, fed by a value that is not a layer of its own
            name, named = attrs["local"], True
        elif attrs.get("hint"):
            name = attrs["hint"]
        else:
            self.temporaries += 1
            name = f"t{self.temporaries}"
        self.columns[node] = Column(node, kind, _units(attrs["shape"]), bool(attrs["shape"]), name, named,
                                    attrs.get("label") or node,
                                    via=attrs.get("via"), output=node in self.graph.graph["outputs"],
                                    sequence=bool(attrs.get("sequence")))
        if kind == "node":
            self.pending.append(node)
        return node

    def must_be_column(self, node: str) -> bool:
        attrs = self.attrs(node)
        return node in self.columns or attrs["kind"] == "input" or (
            attrs["kind"] == "op" and (bool(display_name(attrs)) or self.graph.out_degree(node) > 1))

    def read(self) -> dict[str, Column]:
        for node in self.graph.graph["inputs"]:
            self.column(node)
        for node in self.graph.topological():
            if self.attrs(node)["kind"] == "op" and display_name(self.attrs(node)):
                self.column(node)
        while self.pending:
            self.build(self.columns[self.pending.popleft()])
        return self.columns

    def build(self, column: Column) -> None:
        attrs = self.attrs(column.node)
        op = attrs["op"]
        if op == "prev":  # h at the previous step: drawn as h's units (specc/diagram_recurrent.py)
            return build_prev(self, column)
        # a function of one value (and of settings written as numbers: dropout's rate) is the layer's
        # activation; maximum(a, b) and clamp(x, lo, hi) are units of their own
        settings = {position for position, *_ in OPS[op].numbers}
        if OPS[op].called and OPS[op].wiring == "unit" and set(range(1, len(attrs["args"]))) <= settings:
            column.activation = op
            column.terms = self.expand(attrs["args"][0], 1.0, None)
        elif self.is_affine(column.node):
            column.terms = self.expand_op(column.node, 1.0, None)
        else:
            column.op = op
            column.operands = [self.column(a) for a in attrs["args"] if self.attrs(a)["kind"] != "const"]

    # ---------------------------------------------------------- affine sums
    def matrix(self, node: str) -> tuple[str, float, bool] | None:
        """(parameter, sign, transposed) when ``node`` is a parameter matrix (or vector, for a dot product),
        maybe negated or transposed: ``-Wᵀ`` is drawn with W's own entries."""
        attrs = self.attrs(node)
        if attrs["kind"] in HELD and attrs["shape"]:
            return node, 1.0, False
        if attrs.get("op") in ("neg", "transpose"):
            inner = self.matrix(attrs["args"][0])
            if inner is None:
                return None
            param, sign, transposed = inner
            return (param, -sign, transposed) if attrs["op"] == "neg" else (param, sign, not transposed)
        return None

    def scaling(self, node: str) -> tuple[int, str] | None:
        """(position of the factor, 'const' | 'param') for ``a*v``-like products that stay affine."""
        args = self.attrs(node)["args"]
        for position, arg in enumerate(args):
            kind = self.attrs(arg)["kind"]
            other = args[1 - position]
            if kind == "const" or (kind in HELD and len(self.attrs(arg)["shape"]) < 2
                                   and self.attrs(other)["kind"] not in HELD):
                return position, kind
        return None

    def is_affine(self, node: str) -> bool:
        attrs = self.attrs(node)
        op = attrs.get("op")
        if op == "mul":
            return self.scaling(node) is not None
        if op == "div":
            return self.attrs(attrs["args"][1])["kind"] == "const"
        if op == "matmul":
            return self.matrix(attrs["args"][0]) is not None
        return OPS[op].affine

    def needs_param(self, node: str) -> bool:
        """Whether folding ``node`` into a sum would put a parameter (or fixed value) on some edge."""
        attrs = self.attrs(node)
        if attrs["kind"] in HELD:
            return True
        if attrs["kind"] != "op" or self.must_be_column(node) or not self.is_affine(node):
            return False
        args = attrs["args"]
        if attrs["op"] == "matmul":
            return True
        if attrs["op"] == "mul":
            position, kind = self.scaling(node)
            return kind in HELD or self.needs_param(args[1 - position])
        return any(self.needs_param(a) for a in (args[:1] if attrs["op"] == "div" else args))

    def expand(self, node: str, const: float, param: str | None) -> list[Term]:
        attrs = self.attrs(node)
        if attrs["kind"] == "const":
            return [Term("bias", (), param, const * attrs["value"])]
        if attrs["kind"] in HELD and param is None:
            if len(attrs["shape"]) == 2:
                raise NotDrawable(f"matrix '{node}' is used as a value")
            return [Term("bias", (), node, const)]
        if attrs["kind"] in HELD or self.must_be_column(node) or not self.is_affine(node) or (
                param is not None and self.needs_param(node)):
            return [Term("scale", ((self.column(node), 0),), param, const)]
        return self.expand_op(node, const, param)

    def expand_op(self, node: str, const: float, param: str | None) -> list[Term]:
        attrs = self.attrs(node)
        op, args = attrs["op"], attrs["args"]
        if OPS[op].passes_through:
            return self.expand(args[0], const, param)
        if op == "add":
            return self.expand(args[0], const, param) + self.expand(args[1], const, param)
        if op == "sub":
            return self.expand(args[0], const, param) + self.expand(args[1], -const, param)
        if op == "neg":
            return self.expand(args[0], -const, param)
        if op == "div":
            return self.expand(args[0], const / self.attrs(args[1])["value"], param)
        if op == "mul":
            position, kind = self.scaling(node)
            factor, other = args[position], args[1 - position]
            if kind == "const":
                return self.expand(other, const * self.attrs(factor)["value"], param)
            return self.expand(other, const, factor)
        matrix, sign, transposed = self.matrix(args[0])  # matmul
        right = args[1]
        if self.attrs(right).get("op") == "concat" and not self.must_be_column(right):
            pieces = [self.column(a) for a in self.attrs(right)["args"]]
        else:
            pieces = [self.column(right)]
        sources, offset = [], 0
        for piece in pieces:
            sources.append((piece, offset))
            offset += self.columns[piece].size
        return [Term("matrix", tuple(sources), matrix, const * sign, transposed)]


def read_units(graph: Graph, join: bool = True) -> Net:
    """The columns, terms and bias nodes of ``graph``; raises :class:`NotDrawable`. ``join``: draw
    ``code = enc(x)`` as the block's output layer named ``code`` (collapsed pictures keep ``code`` apart)."""
    reader = _Reader(graph, join)
    try:
        found = reader.read()
    except RecursionError:  # a sum thousands of terms long: the graph view still draws it
        raise NotDrawable("the expressions nest too deeply for the unit views") from None
    order = {node: position for position, node in enumerate(graph.topological())}
    columns = {n: found[n] for n in sorted(found, key=order.__getitem__)}
    temporaries = [c for c in columns.values() if not c.named and c.kind == "node" and not
                   graph.nodes[c.node].get("hint")]
    for k, column in enumerate(temporaries, 1):  # named in drawing order, not in order of discovery
        column.name = f"t{k}"
    for outer, inner in reader.joins.items():  # enc's output layer, named as the spec that uses it names it
        if inner in columns:
            columns[inner].name = display_name(graph.nodes[outer])
            columns[inner].output |= outer in graph.graph["outputs"]
    name_delayed(columns)
    names = {c.node: c.name for c in columns.values()}
    names |= {outer: names[inner] for outer, inner in reader.joins.items() if inner in names}
    for column in columns.values():
        if column.kind == "node":  # said with the names the picture shows
            column.formula = formula(graph, column.node, names, top=True)
    for column in columns.values():
        feeders = [s for t in column.terms for s, _ in t.sources] + column.operands
        column.depth = 1 + max((columns[f].depth for f in feeders), default=-1) if column.kind == "node" else 0
    biased = sorted({c.depth for c in columns.values() if any(t.kind == "bias" for t in c.terms)})
    return Net(graph, columns, {depth: f"{BIAS}B{k}" for k, depth in enumerate(biased, 1)})


# ---------------------------------------------------------------- nnet-style summary
def format_connections(net: Net, values: dict[str, torch.Tensor], width: int = 100) -> str:
    """The weights connection by connection, a block per unit, like nnet's ``summary``::

        h = logistic(W1·x + b1)
           B1->h1  x->h1
           -0.760  1.380
    """
    links = net.connections()
    bias = set(net.bias_nodes.values())
    count = sum(values[p].numel() for p in net.graph.graph["params"])
    lines = [f"{net.graph.graph['file']}: {count} weights, connection by connection "
             "(values fixed by the spec in parentheses)"]
    for column in net.columns.values():
        incoming = [c for c in links if c.target[0] == column.node]
        if not incoming:
            continue
        said = column.label if column.named else column.formula
        lines.append(f"{column.name} = {said}" + (f"  (in {column.via})" if column.via else ""))
        for unit in range(column.size):
            into = sorted((c for c in incoming if c.target[1] == unit), key=lambda c: c.source[0] not in bias)
            heads = [f"{net.unit_name(*c.source)}{f'(t-{c.delay})' if c.delay else ''}->{net.unit_name(*c.target)}"
                     for c in into]  # h1(t-1)->h2: a recurrent weight, from the previous step
            cells = [f"{c.value(values):.4g}" if c.kind == "weight" else  # fixed by the spec: in parentheses
                     f"({c.reference() if c.value(values) is None else format(c.value(values), 'g')})" for c in into]
            lines += _aligned(heads, cells, width)
    return "\n".join(lines)


def _aligned(heads: list[str], cells: list[str], width: int) -> list[str]:
    """Two right-aligned rows (connections over values), wrapped before ``width`` characters."""
    lines, start = [], 0
    while start < len(heads):
        used, end = 3, start
        while end < len(heads) and (end == start or used + 2 + max(len(heads[end]), len(cells[end])) <= width):
            used += 2 + max(len(heads[end]), len(cells[end]))
            end += 1
        widths = [max(len(h), len(c)) for h, c in zip(heads[start:end], cells[start:end])]
        lines.append("   " + "  ".join(h.rjust(w) for h, w in zip(heads[start:end], widths)))
        lines.append("   " + "  ".join(c.rjust(w) for c, w in zip(cells[start:end], widths)))
        start = end
    return lines
