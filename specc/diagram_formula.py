"""A node's expression as a diagram captions it: spec-like text in which the drawn columns are atoms
(``t1 * r``, ``P3_z^3``). specc/diagram_units.py writes one for each column that is no named node.
"""
from __future__ import annotations

from .ir import Graph
from .ops import OPS


def _symbol(op: str) -> str:
    symbol = OPS[op].symbol
    return f" {symbol} " if OPS[op].binds == 1 else symbol  # spaces around + and - only


def formula(graph: Graph, node: str, names: dict[str, str], top: bool = False) -> str:
    """``node``'s expression, with drawn columns (``names``) as atoms: ``t1 * r``, ``P3_z^3``."""
    attrs = graph.nodes[node]
    if not top and node in names:
        return names[node]
    if attrs["kind"] != "op":
        return attrs.get("label") or attrs["name"] or node
    args = [formula(graph, a, names) for a in attrs["args"]]
    if attrs["op"] == "neg":
        return f"-{args[0]}" if len(args[0].split()) == 1 else f"-({args[0]})"
    if OPS[attrs["op"]].binds == 6:  # postfix: Wᵀ, x[2], x[2:4] (the symbol is a template of start, stop)
        inner = graph.nodes[attrs["args"][0]]
        atom = attrs["args"][0] in names or inner["kind"] != "op" or OPS[inner["op"]].called \
            or OPS[inner["op"]].binds == 6
        return (args[0] if atom else f"({args[0]})") + OPS[attrs["op"]].symbol.format(**attrs)
    if OPS[attrs["op"]].symbol:
        wrapped = [a if len(a.split()) == 1 or (attrs["op"] == "add" and i == 0) else f"({a})"
                   for i, a in enumerate(args)]
        return _symbol(attrs["op"]).join(wrapped)
    return f"{attrs['op']}({', '.join(args)})"
