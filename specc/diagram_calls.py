"""Block calls as the drawings read them (docs/ir.md, "Blocks"): names, joins, owners and chains.

A spec that uses blocks has one flat IR; its nodes inside a call carry ``block`` and ``call``. The
unit reading names a block's layers by their author's names (``h``), draws the value of
``code = enc(x)`` as the block's output layer itself (named ``code``), and lets a block's input
stand for the value passed in. The views then put each call's nodes in a cluster
(specc/diagram_blocks.py), or, collapsed, draw each call, or each chain of identical calls, as one box.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .ir import Graph


def display_name(attrs: dict) -> str | None:
    """The name a node is drawn with: the spec's, or inside a block its author's (``h``)."""
    if attrs.get("name"):
        return attrs["name"]
    if attrs["kind"] == "op" and attrs.get("local") and attrs.get("port") is None:
        return attrs["local"]
    return None


def joins(graph: Graph) -> dict[str, str]:
    """Named node → the call's output node it names (``code = enc(x)``): one layer, not two."""
    calls = graph.graph.get("blocks", {}).get("calls", {})
    outputs = {node for call in calls.values() for node in call["outputs"].values()}
    return {node: attrs["args"][0] for node, attrs in graph.nodes.items()
            if attrs.get("op") == "identity" and attrs["args"][0] in outputs and display_name(attrs)}


def owner(graph: Graph, node: str) -> str | None:
    """The innermost call a node belongs to; an instance's parameters belong to its first call."""
    attrs = graph.nodes[node]
    if attrs.get("call"):
        return attrs["call"]
    if attrs.get("block"):
        calls = graph.graph["blocks"]["instances"][attrs["block"]]["calls"]
        return calls[0] if calls else None
    return None


def title(graph: Graph, call: str) -> str:
    """``enc: encoder.spec`` (a used file), ``r1: res`` (a block of the same file); ``(call 2 of 2)``
    when an instance is called more than once (its parameters are drawn with its first call)."""
    blocks = graph.graph["blocks"]
    instance = blocks["instances"][blocks["calls"][call]["instance"]]
    parent = blocks["instances"].get(instance["parent"] or "", {}).get("file", graph.graph["file"])
    source = instance["block"]
    if Path(instance["file"]).stem == source and Path(instance["file"]) != Path(parent):
        source = Path(instance["file"]).name
    said = f"{instance['name']}: {source}"
    calls = instance["calls"]
    return said + (f" (call {calls.index(call) + 1} of {len(calls)})" if len(calls) > 1 else "")


def _size(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(map(str, shape)) + "]" if shape else "scalar"


def ports(graph: Graph, call: str) -> str:
    """``u [8] → y [8]``: the block's inputs and outputs by its own names, with their sizes."""
    info = graph.graph["blocks"]["calls"][call]
    instance = graph.graph["blocks"]["instances"][info["instance"]]
    ins = ", ".join(f"{name} {_size(graph.nodes[node]['shape'])}"
                    for name, node in zip(instance["inputs"], info["inputs"]))
    outs = ", ".join(f"{name} {_size(graph.nodes[node]['shape'])}" for name, node in info["outputs"].items()
                     if info["pick"] in (None, name))
    return f"{ins} → {outs}"


@dataclass
class Chain:
    """Top-level calls drawn as one box when collapsed: one call, or N identical ones in a row."""

    calls: list[str]
    between: set[str]  # the named nodes that only carry one call's output into the next (hidden too)

    def label(self, graph: Graph) -> tuple[str, str]:
        """(head line, sizes line): ``r1…r3: res × 3`` and ``u [8] → y [8]``."""
        head = title(graph, self.calls[0]).split(" (call")[0]
        if len(self.calls) > 1:
            first, last = (graph.graph["blocks"]["calls"][c]["instance"] for c in (self.calls[0], self.calls[-1]))
            name, source = head.split(": ", 1)
            names = first if first == last else f"{first}…{last}"
            head = f"{names}: {source} × {len(self.calls)}"
        return head, ports(graph, self.calls[0])


def _signature(graph: Graph, call: str) -> tuple:
    """What makes two calls identical blocks: the same block source and the same sizes."""
    info = graph.graph["blocks"]["calls"][call]
    instance = graph.graph["blocks"]["instances"][info["instance"]]
    shapes = tuple(graph.nodes[n]["shape"] for n in info["inputs"] + tuple(info["outputs"].values()))
    return instance["block"], str(Path(instance["file"])), shapes, info["pick"]


def _feeds(graph: Graph, before: str, after: str) -> set[str] | None:
    """The named node(s) between two calls when ``before``'s only output is ``after``'s only input and
    nothing else reads it (a chain); else None."""
    calls = graph.graph["blocks"]["calls"]
    one, two = calls[before], calls[after]
    if len(one["outputs"]) != 1 or len(two["args"]) != 1:
        return None
    out, arg = next(iter(one["outputs"].values())), two["args"][0]
    between = set()
    while arg != out:  # through `a = r1(x)`: a named identity of the output
        attrs = graph.nodes[arg]
        if attrs.get("op") != "identity" or arg in graph.graph["outputs"] or graph.out_degree(arg) != 1:
            return None
        between.add(arg)
        arg = attrs["args"][0]
    return between if graph.out_degree(out) == 1 else None


def chains(graph: Graph) -> list[Chain]:
    """The top-level calls in order, consecutive identical ones joined when each feeds the next."""
    calls = [c for c, info in graph.graph["blocks"]["calls"].items() if info["parent"] is None]
    found: list[Chain] = []
    for call in calls:
        if found:
            last = found[-1]
            between = _feeds(graph, last.calls[-1], call)
            if between is not None and _signature(graph, call) == _signature(graph, last.calls[-1]):
                last.calls.append(call)
                last.between |= between
                continue
        found.append(Chain([call], set()))
    return found
