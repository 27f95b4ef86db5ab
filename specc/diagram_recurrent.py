"""Sequences in the drawings: recurrent connections (``prev(h)``) and sequence inputs.

The IR keeps ``prev(h)`` as a node with no edge from ``h`` (it stays acyclic). The unit reading
makes such a node a *delayed* column (``Column.of``), never drawn itself: every connection out of it
is redrawn from the units of ``h``, marked as delayed (``t−1``), so the neuron view shows the
recurrent weights ``U[i, j]`` as edges from ``h_j`` back to the units of the layer that reads them,
coloured and scaled like any weight, and the layers view shows one loop edge.
"""
from __future__ import annotations

from dataclasses import replace

DELAYED = "#2f6fd0"  # recurrent (delayed) edges' colour while no weights are given


def delay_text(steps: int) -> str:
    """``t−1`` (a typographic minus), ``t−2`` for prev(prev(h))."""
    return f"t−{steps}"


def build_prev(reader, column) -> None:
    """A ``prev(h)`` node as a delayed column: no terms, nothing drawn; ``of`` says whose step it is."""
    column.op, column.of, column.named = "prev", reader.attrs(column.node)["of"], True
    reader.column(column.of)


def resolve(columns: dict, node: str) -> tuple[str, int]:
    """(the column a delayed column stands for, how many steps back): ``prev(prev(h))`` is (h, 2)."""
    steps = 0
    while node in columns and columns[node].of is not None:
        node, steps = columns[node].of, steps + 1
    return node, steps


def delay_links(columns: dict, links: list) -> list:
    """Connections out of a delayed column, redrawn from the units of the node it delays."""
    out = []
    for link in links:
        node, steps = resolve(columns, link.source[0])
        out.append(replace(link, source=(node, link.source[1]), delay=steps) if steps else link)
    return out


def name_delayed(columns: dict) -> None:
    """``prev(h)``: what a formula that reads a delayed column says (``t1 = z * prev(h)``)."""
    for column in columns.values():
        if column.of is not None:
            node, steps = resolve(columns, column.node)
            column.name = "prev(" * steps + columns[node].name + ")" * steps


def start_text(graph, prev: str) -> str:
    """What ``prev(h)`` is at the first step: the start value's name or number."""
    start = graph.nodes[graph.nodes[prev]["args"][0]]
    return start.get("name") or start.get("label") or "0"


def legend_lines(graph, delays: set[int]) -> list[str]:
    """The legend's word on delayed edges, with each recurrent node's start value."""
    starts = {}
    for of, prev in graph.graph.get("recurrent", ()):
        starts.setdefault(of, start_text(graph, prev))
    said = ", ".join(f"{of}: {start}" for of, start in starts.items())
    steps = ", ".join(delay_text(s) for s in sorted(delays))
    return [f'<FONT COLOR="{DELAYED}">dashed, {steps}</FONT>: a recurrent connection, from the previous time '
            f"step (at the first step: {said})"]


def delayed_attrs(attrs: dict, steps: int, label: str | None = None) -> dict:
    """An edge's attributes (weight colour and width kept) marked as delayed: dashed, ``t−1``;
    ``label``: the HTML label to write on it (on one edge per pair of layers, not on every one)."""
    marked = dict(attrs, style="dashed", tooltip=f"{delay_text(steps)}: {attrs.get('tooltip', '')}".rstrip(": "))
    if attrs.get("color") in (None, "#8a8a8a"):  # neutral (no weights): the recurrent colour
        marked["color"] = DELAYED
    if label:
        marked["label"] = label
    return marked


def sequence_size(attrs: dict, size: str) -> str:
    """``[T, 3]`` for a sequence input of [3] (``[T]`` for a sequence of numbers)."""
    if not attrs.get("sequence"):
        return size
    return "[T" + (", " + size[1:] if size.startswith("[") else "]")
