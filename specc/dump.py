"""``specc check --dump ast|ir``: the AST and the IR as stable, readable text (docs/ir.md, "Dumps").

Both dumps are deterministic (no addresses, no hash order) and written for diffs:
the golden files in tests/golden/ast and tests/golden/ir are these texts. They are
generic over the data: a field added to an AST node or an attribute added to the
IR shows up without a change here.

AST: one line per node, indented by depth, ``field: Type LINE:COL-LINE:COL key=value …``;
child nodes (and tuples of them, as ``field[i]``) go on the following lines.

IR: the graph attributes, then one line per node in topological order:
``id  kind=… op=… args=(…) shape=(…) batched=… <the other attributes, sorted>``.
"""
from __future__ import annotations

import math

from .errors import Span
from .ir import Graph
from .parser import Node

INDENT = "  "
# AST fields not shown: the whole source text (the dump is of that text).
AST_SKIPPED = frozenset({"source"})
# IR attributes shown first, in this order; the others follow sorted by name.
IR_FIRST = ("kind", "op", "args", "shape", "batched")
# IR graph attributes not shown: the text and its AST have dumps of their own.
IR_GRAPH_SKIPPED = frozenset({"source", "program", "warnings", "block_sources"})  # warnings: printed by check;
# block_sources: the used files' texts


def span_text(span: Span) -> str:
    return f"{span.line}:{span.column}-{span.end_line}:{span.end_column}"


def value_text(value) -> str:
    """A value as the dumps write it: Python's literal form for plain data, spans as LINE:COL-LINE:COL,
    anything else as ``<Type>`` (or ``<Type name>`` when it has a name)."""
    if isinstance(value, Span):
        return span_text(value)
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else str(value)
    if isinstance(value, tuple):
        inner = ", ".join(value_text(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    if isinstance(value, (set, frozenset)):
        return "{" + ", ".join(sorted(value_text(v) for v in value)) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{value_text(k)}: {value_text(v)}" for k, v in value.items()) + "}"
    name = getattr(value, "name", None)
    return f"<{type(value).__name__}{' ' + name if isinstance(name, str) else ''}>"


# ---------------------------------------------------------------- AST
def _is_node(value) -> bool:
    return isinstance(value, Node)


def _ast_lines(node, label: str, depth: int, out: list[str]) -> None:
    head, children = [type(node).__name__], []
    if isinstance(getattr(node, "span", None), Span):
        head.append(span_text(node.span))
    for field in node.__slots__:
        if field == "span" or field in AST_SKIPPED:
            continue
        value = getattr(node, field)
        if _is_node(value):
            children.append((field, value))
        elif isinstance(value, tuple) and value and all(_is_node(v) for v in value):
            children += [(f"{field}[{i}]", v) for i, v in enumerate(value)]
        else:
            head.append(f"{field}={value_text(value)}")
    out.append(INDENT * depth + (f"{label}: " if label else "") + " ".join(head))
    for name, child in children:
        _ast_lines(child, name, depth + 1, out)


def dump_ast(program) -> str:
    """The AST (:class:`specc.parser.Program`) as indented text."""
    out: list[str] = []
    _ast_lines(program, "", 0, out)
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- IR
def _node_line(node: str, attrs: dict, width: int) -> str:
    first = [key for key in IR_FIRST if key in attrs]
    rest = sorted(key for key in attrs if key not in IR_FIRST)
    return f"{node:<{width}}  " + " ".join(f"{key}={value_text(attrs[key])}" for key in first + rest)


def dump_ir(ir: Graph) -> str:
    """The IR as text: the graph attributes, then every node in topological order."""
    out = ["graph"]
    for key in sorted(k for k in ir.graph if k not in IR_GRAPH_SKIPPED):
        out.append(f"{INDENT}{key}={value_text(ir.graph[key])}")
    order = ir.topological()
    width = max((len(n) for n in order), default=0)
    out.append(f"nodes ({len(order)}, in topological order)")
    out += [INDENT + _node_line(node, ir.nodes[node], width) for node in order]
    return "\n".join(out) + "\n"

