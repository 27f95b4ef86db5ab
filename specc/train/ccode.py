"""The IR compiled into C: a spec's criterion and its exact gradient, for the quasi-Newton fits.

:func:`c_source` writes one C file per (spec, loss): the fixed part
(specc/train/criterion_runtime.c: helpers, the losses, the restarts' minimiser) and
``sp_criterion``, the spec's own straight-line code. Every operation comes from its row's ``c``
rules in :mod:`specc.ops` (products, concat, transposes and indexing, whose loops depend on the
shapes or on the node's attributes, are written here), so a new function needs no change here.

The generated function makes one pass over the data rows. Values that vary per row (those of
``batched`` nodes) live in a per-row scratch area and are computed, then differentiated, row by
row; values that do not (parameters, and what is computed from them alone) are computed once
before the loop, collect their gradients over the rows, and are differentiated once after it.
Only nodes that depend on a parameter get gradients. Nothing in the C text comes from the spec
but numbers: nodes are slots, so any name a spec uses is safe. Fixed values (``fixed mu[3]``) are
not numbers in the text: like the data they are read through ``p->data`` (after the inputs and
targets), so one cached library serves any values they take.

:mod:`specc.train.cbuild` compiles the file, caches the library by the hash of its text, and
loads it; tests/test_ccode.py checks value and gradient against torch autograd.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources

from ..ir import Graph
from ..ops import OPS
from .losses import softmax_output

LOSSES = ("sse", "mse", "bce", "cross_entropy")


class Unsupported(ValueError):
    """The spec or loss has no C rules: the caller falls back to another engine."""


def runtime_source() -> str:
    return resources.files("specc.train").joinpath("criterion_runtime.c").read_text(encoding="utf-8")


@dataclass
class Slot:
    """Where one node's value (and gradient) lives in the generated code."""
    values: str  # C array the value is in: theta, u (once per evaluation), v (per row), an input row
    grads: str | None  # the gradient's array (grad, gu, gv), or None: the node needs no gradient
    offset: int
    size: int
    literal: str | None = None  # a constant's value

    def at(self, unit: str | int = 0) -> str:
        if self.literal is not None:
            return self.literal
        return f"{self.values}[{self._index(unit)}]"

    def grad_at(self, unit: str | int = 0) -> str:
        return f"{self.grads}[{self._index(unit)}]"

    def pointer(self) -> str:
        return f"({self.values} + {self.offset})"

    def grad_pointer(self) -> str:
        return f"({self.grads} + {self.offset})"

    def _index(self, unit: str | int) -> str:
        if self.size == 1:  # a scalar broadcast against a vector reads its one unit
            return str(self.offset)
        return f"{self.offset} + {unit}" if self.offset else str(unit)


def c_double(value: float) -> str:
    """``value`` exactly, as a C double literal (hexadecimal floating point)."""
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INFINITY" if value > 0 else "(-INFINITY)"
    return f"({value.hex()})"


def _size(shape: tuple[int, ...]) -> int:
    return math.prod(shape) if shape else 1


class _Writer:
    def __init__(self, graph: Graph, loss: str):
        if loss not in LOSSES:
            raise Unsupported(f"the compiled criterion has no loss '{loss}' (it has {', '.join(LOSSES)})")
        self.graph, self.loss = graph, loss
        outputs = graph.graph["outputs"]
        if loss == "cross_entropy" and any(graph.nodes[n]["shape"] == () for n in outputs):
            raise Unsupported("cross_entropy needs vector outputs (class scores or probabilities)")
        wanted = graph.ancestors(outputs)
        self.order = [n for n in graph.topological() if n in wanted]
        for n in self.order:
            attrs = graph.nodes[n]
            if attrs["kind"] == "op" and OPS[attrs["op"]].c is None and OPS[attrs["op"]].shape not in _BY_SHAPE:
                raise Unsupported(f"the operation '{attrs['op']}' has no C rules")
        self.dependent = set()
        for n in self.order:
            attrs = graph.nodes[n]
            if attrs["kind"] == "param" or (attrs["kind"] == "op" and self.dependent.intersection(attrs["args"])):
                self.dependent.add(n)
        self.slots = self._layout()

    def _layout(self) -> dict[str, Slot]:
        graph, slots, offsets = self.graph, {}, {"u": 0, "v": 0}
        param_offset = 0
        param_offsets = {}
        for name in graph.graph["params"]:
            param_offsets[name] = param_offset
            param_offset += _size(graph.nodes[name]["shape"])
        self.parameters = param_offset
        inputs = {name: k for k, name in enumerate(graph.graph["inputs"])}
        fixed = {name: k for k, name in enumerate(graph.graph["fixed"])}
        for n in self.order:
            attrs = graph.nodes[n]
            size = _size(attrs["shape"])
            if attrs["kind"] == "param":
                slots[n] = Slot("theta", "grad", param_offsets[n], size)
            elif attrs["kind"] == "fixed":  # read through p->data like the data: one library serves any value
                slots[n] = Slot(f"fx{fixed[n]}", None, 0, size)
            elif attrs["kind"] == "input":
                slots[n] = Slot(f"in{inputs[n]}", None, 0, size)
            elif attrs["kind"] == "const":
                slots[n] = Slot("", None, 0, 1, literal=c_double(float(attrs["value"])))
            else:
                area = "v" if attrs["batched"] else "u"
                slots[n] = Slot(area, "g" + area if n in self.dependent else None, offsets[area], size)
                offsets[area] += size
        self.u_size, self.v_size = offsets["u"], offsets["v"]
        return slots

    # ------------------------------------------------------------ one operation
    def row(self, node: str):
        """The node's row, for its operands' shapes (``sum`` of a scalar is ``identity``)."""
        attrs = self.graph.nodes[node]
        return OPS[attrs["op"]].on(*(self.graph.nodes[a]["shape"] for a in attrs["args"]))

    def forward(self, node: str) -> list[str]:
        attrs = self.graph.nodes[node]
        row, out, args = self.row(node), self.slots[node], [self.slots[a] for a in attrs["args"]]
        if row.shape in _BY_SHAPE:
            return _BY_SHAPE[row.shape][0](out, args, attrs)
        if not row.c.per_unit:  # {n}: the result's units, {n0}: the first operand's (a reduction's input)
            return [row.c.forward.format(*(a.pointer() for a in args), y=out.pointer(), n=out.size,
                                         n0=args[0].size)]
        return _per_unit(out.size, lambda i: f"{out.at(i)} = "
                         + row.c.forward.format(*(f"({a.at(i)})" for a in args)) + ";")

    def backward(self, node: str) -> list[str]:
        attrs = self.graph.nodes[node]
        row, out, args = self.row(node), self.slots[node], [self.slots[a] for a in attrs["args"]]
        wanted = [a in self.dependent for a in attrs["args"]]
        if row.shape in _BY_SHAPE:
            return _BY_SHAPE[row.shape][1](out, args, wanted, attrs)
        lines = []
        for k, (arg, rule) in enumerate(zip(args, row.c.backward)):
            if not wanted[k]:
                continue
            if not row.c.per_unit:
                lines.append(rule.format(*(a.pointer() for a in args), y=out.pointer(), g=out.grad_pointer(),
                                         g0=arg.grad_pointer(), n=out.size, n0=args[0].size))
                continue
            lines += _per_unit(out.size, lambda i: f"{arg.grad_at(i)} += " + rule.format(
                *(f"({a.at(i)})" for a in args), g=f"({out.grad_at(i)})", y=f"({out.at(i)})") + ";")
        return lines

    # ------------------------------------------------------------ the function
    def loss_lines(self) -> list[str]:
        graph, lines = self.graph, []
        targets = len(graph.graph["inputs"])
        probabilities = {n for n in graph.graph["outputs"] if softmax_output(graph, n)} \
            if self.loss == "cross_entropy" else set()
        for k, name in enumerate(graph.graph["outputs"]):
            out = self.slots[name]
            units = out.size
            weight = {"sse": "1.0", "mse": f"1.0 / ((double)rows * {units})", "bce": f"1.0 / ((double)rows * {units})",
                      "cross_entropy": "1.0 / (double)rows"}[self.loss]
            function = {"sse": "sp_sse", "mse": "sp_sse", "bce": "sp_bce", "cross_entropy": "sp_cross_entropy"}[
                self.loss]
            if name in probabilities:
                function = "sp_nll_probabilities"
            grad = f"grad ? {out.grad_pointer()} : NULL" if name in self.dependent else "NULL"
            lines.append(f"f += {function}({out.pointer()}, p->data[{targets + k}] + (size_t)b * {units}, "
                         f"{grad}, {units}, {weight});")
        return lines

    def source(self) -> str:
        graph = self.graph
        unbatched = [n for n in self.order if graph.nodes[n]["kind"] == "op" and not graph.nodes[n]["batched"]]
        batched = [n for n in self.order if graph.nodes[n]["kind"] == "op" and graph.nodes[n]["batched"]]
        body = ["const int rows = p->rows;",
                f"double *u = p->work, *gu = u + {self.u_size}, *v = gu + {self.u_size}, *gv = v + {self.v_size};",
                "double f = 0.0;",
                "(void)u; (void)gu; (void)v; (void)gv;",
                f"if (grad) memset(grad, 0, sizeof(double) * {self.parameters});",
                f"memset(gu, 0, sizeof(double) * {self.u_size});" if self.u_size else ""]
        data = len(graph.graph["inputs"]) + len(graph.graph["outputs"])  # then the fixed values, in order
        body += [f"const double *fx{k} = p->data[{data + k}];" for k, name in enumerate(graph.graph["fixed"])
                 if name in self.slots]
        for node in unbatched:
            body += self.forward(node)
        loop = []
        for k, name in enumerate(graph.graph["inputs"]):
            if name in self.slots:
                size = self.slots[name].size
                loop.append(f"const double *in{k} = p->data[{k}] + (size_t)b * {size};")
        for node in batched:
            loop += self.forward(node)
        if self.v_size:
            loop.append(f"if (grad) memset(gv, 0, sizeof(double) * {self.v_size});")
        loop += self.loss_lines()
        back = [line for node in reversed(batched) if node in self.dependent for line in self.backward(node)]
        if back:
            loop += ["if (grad) {", *_indent(back), "}"]
        body += ["for (int b = 0; b < rows; b++) {", *_indent(loop), "}"]
        after = [line for node in reversed(unbatched) if node in self.dependent for line in self.backward(node)]
        if after:
            body += ["if (grad) {", *_indent(after), "}"]
        body += ["if (p->decay != 0.0) {",
                 f"    for (int i = 0; i < {self.parameters}; i++) {{",
                 "        f += p->decay * theta[i] * theta[i];",
                 "        if (grad) grad[i] += 2.0 * p->decay * theta[i];",
                 "    }", "}",
                 "if (grad && p->scale != 1.0)",
                 f"    for (int i = 0; i < {self.parameters}; i++) grad[i] *= p->scale;",
                 "return p->scale * f;"]
        return "\n".join([
            f"/* ---- the criterion of one spec, loss {self.loss}: written by specc.train.ccode */",
            f"int sp_parameters(void) {{ return {self.parameters}; }}",
            f"long sp_work_size(void) {{ return {2 * (self.u_size + self.v_size)}; }}",
            "",
            "static double sp_criterion(const sp_problem *p, const double *theta, double *grad) {",
            *_indent([line for line in body if line]),
            "}", ""])


def _indent(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]


def _per_unit(units: int, statement) -> list[str]:
    if units == 1:
        return [statement(0)]
    return [f"for (int i = 0; i < {units}; i++) {statement('i')}"]


# ---------------------------------------------------------------- shape-dependent rules
# Forward rules get (out, args, attrs), backward ones (out, args, wanted, attrs): the slots, which
# operands need a gradient, and the node's attributes (its shape; an index's start and stop).
def _product_forward(out: Slot, args: list[Slot], attrs: dict) -> list[str]:
    left, right = args
    inner = right.size
    if out.size == 1 and left.size == inner:  # vector · vector: a dot product
        return [f"{{ double s = 0.0; for (int j = 0; j < {inner}; j++) s += {left.at('j')} * {right.at('j')}; "
                f"{out.at(0)} = s; }}"]
    return [f"for (int i = 0; i < {out.size}; i++) {{",
            "    double s = 0.0;",
            f"    for (int j = 0; j < {inner}; j++) s += {left.at(f'i * {inner} + j')} * {right.at('j')};",
            f"    {out.at('i')} = s;",
            "}"]


def _product_backward(out: Slot, args: list[Slot], wanted: list[bool], attrs: dict) -> list[str]:
    left, right = args
    inner = right.size
    gy = out.grad_at(0) if out.size == 1 else out.grad_at("i")
    index = "j" if out.size == 1 and left.size == inner else f"i * {inner} + j"
    inside = []
    if wanted[0]:
        inside.append(f"{left.grad_at(index)} += g * {right.at('j')};")
    if wanted[1]:
        inside.append(f"{right.grad_at('j')} += {left.at(index)} * g;")
    loop = f"for (int j = 0; j < {inner}; j++) {{ {' '.join(inside)} }}"
    if out.size == 1 and left.size == inner:
        return [f"{{ const double g = {gy}; {loop} }}"]
    return [f"for (int i = 0; i < {out.size}; i++) {{ const double g = {gy}; {loop} }}"]


def _concat_forward(out: Slot, args: list[Slot], attrs: dict) -> list[str]:
    lines, start = [], 0
    for arg in args:
        lines += _per_unit(arg.size, lambda i, s=start: f"{out.at(f'{s} + {i}' if i != 0 else s)} = {arg.at(i)};")
        start += arg.size
    return lines


def _concat_backward(out: Slot, args: list[Slot], wanted: list[bool], attrs: dict) -> list[str]:
    lines, start = [], 0
    for arg, want in zip(args, wanted):
        if want:
            lines += _per_unit(arg.size, lambda i, s=start, a=arg:
                               f"{a.grad_at(i)} += {out.grad_at(f'{s} + {i}' if i != 0 else s)};")
        start += arg.size
    return lines


def _transpose_forward(out: Slot, args: list[Slot], attrs: dict) -> list[str]:
    rows, columns = attrs["shape"]  # the result's: the operand is [columns, rows], row-major
    return [f"for (int i = 0; i < {rows}; i++) for (int j = 0; j < {columns}; j++) "
            f"{out.at(f'i * {columns} + j')} = {args[0].at(f'j * {rows} + i')};"]


def _transpose_backward(out: Slot, args: list[Slot], wanted: list[bool], attrs: dict) -> list[str]:
    rows, columns = attrs["shape"]
    return [f"for (int i = 0; i < {rows}; i++) for (int j = 0; j < {columns}; j++) "
            f"{args[0].grad_at(f'j * {rows} + i')} += {out.grad_at(f'i * {columns} + j')};"] if wanted[0] else []


def _pick_forward(out: Slot, args: list[Slot], attrs: dict) -> list[str]:
    """x[2], x[2:4]: units start … stop, counted from 1 and both included."""
    first = attrs["start"] - 1
    return _per_unit(out.size, lambda i: f"{out.at(i)} = {args[0].at(f'{first} + {i}' if i != 0 else first)};")


def _pick_backward(out: Slot, args: list[Slot], wanted: list[bool], attrs: dict) -> list[str]:
    first = attrs["start"] - 1
    return _per_unit(out.size, lambda i: f"{args[0].grad_at(f'{first} + {i}' if i != 0 else first)} += "
                     f"{out.grad_at(i)};") if wanted[0] else []


_BY_SHAPE = {"product": (_product_forward, _product_backward), "concat": (_concat_forward, _concat_backward),
             "transpose": (_transpose_forward, _transpose_backward), "index": (_pick_forward, _pick_backward),
             "slice": (_pick_forward, _pick_backward)}


def c_source(graph: Graph, loss: str) -> str:
    """The whole C file of ``graph``'s criterion with ``loss``; raises :class:`Unsupported`."""
    return runtime_source() + "\n" + _Writer(graph, loss).source()


def parameters(graph: Graph) -> int:
    return sum(_size(graph.nodes[name]["shape"]) for name in graph.graph["params"])
