"""Blocks in the drawings: each call of a block in a labelled cluster, or, collapsed, as one box.

A view draws on a :class:`BlockCanvas` instead of the plain canvas; it records every node and edge,
then writes them with each node in the cluster of the call it belongs to (``subgraph cluster_…``,
labelled ``enc: encoder.spec``; nested calls nest). With ``collapse``, each top-level call — or a
chain of identical calls, each feeding the next — is one box (``r1…r3: res × 3``, ``u [8] → y [8]``)
and the edges in and out of it are drawn once per pair of ends. specc/diagram_calls.py says which
node belongs to which call; a spec without blocks never comes here.
"""
from __future__ import annotations

import re

import graphviz

from .diagram_calls import chains, owner, title

BLOCK = ("#f6f1e4", "#8c7a4b")  # a block's box and cluster frame: fill, border
_PIN = re.compile(r"(-?[\d.]+),(-?[\d.]+)!")


class BlockCanvas:
    """Stands in for the view's canvas (same ``node``/``edge``/``id``/``legend``), then writes to it."""

    def __init__(self, canvas, graph, view: str, collapse: bool):
        self.canvas, self.graph, self.view, self.collapse = canvas, graph, view, collapse
        self.ids, self.legend = canvas.ids, canvas.legend
        self.nodes: list[tuple] = []  # (key, label, kind, attrs)
        self.edges: list[tuple] = []  # (tail, head, kind, attrs)

    def id(self, key) -> str:
        return self.canvas.id(key)

    def node(self, key, label: str, kind: str, **attrs) -> None:
        self.id(key)  # ids in drawing order, as the plain canvas gives them
        self.nodes.append((key, label, kind, attrs))

    def edge(self, tail, head, kind: str, **attrs) -> None:
        self.edges.append((tail, head, kind, attrs))

    # ---------------------------------------------------------- who belongs where
    def ir_node(self, key) -> str | None:
        """The IR node a drawn key stands for: a layer or node id, a unit's (node, i), a caption's
        ('caption', node), a constant's ('const', target, k); a junction's is decided by its edge."""
        if isinstance(key, str):
            return key if key in self.graph.nodes else None
        if self.view == "layers" and key[0] == "junction" and len(key) == 2:
            return next((self.ir_node(head) for tail, head, *_ in self.edges if tail == key), None)
        if self.view == "layers" and key[0] == "const" and len(key) == 3:
            return self.ir_node(key[1])
        if key[0] == "caption" and len(key) == 2 and isinstance(key[1], str):
            return key[1] if key[1] in self.graph.nodes else None
        return key[0] if isinstance(key[0], str) and key[0] in self.graph.nodes else None

    def call_of(self, key) -> str | None:
        node = self.ir_node(key)
        return owner(self.graph, node) if node is not None else None

    # ---------------------------------------------------------- writing
    def flush(self) -> None:
        self.canvas.legend = self.legend
        if self.collapse:
            self._boxes()
        else:
            self._clusters()

    def _put(self, dot: graphviz.Digraph, key, label: str, kind: str, attrs: dict) -> None:
        dot.node(self.id(key), f"<{label}>", **{"class": kind}, **attrs)

    def _clusters(self) -> None:
        calls = self.graph.graph["blocks"]["calls"]
        members: dict[str | None, list] = {}
        for item in self.nodes:
            members.setdefault(self.call_of(item[0]), []).append(item)
        for item in members.pop(None, []):
            self._put(self.canvas.dot, *item)
        subgraphs = {}
        for number, call in enumerate(calls, 1):
            sub = graphviz.Digraph(name=f"cluster_{number}")
            sub.attr(label=f"<<B>{_escape(title(self.graph, call))}</B>>", style="rounded,dashed", color=BLOCK[1],
                     fontcolor=BLOCK[1], fontsize="10", labeljust="l", margin="10", **{"class": "block"},
                     labelloc="b" if self.view == "neurons" else "t")  # units' captions stand on top
            for item in members.get(call, []):
                self._put(sub, *item)
            subgraphs[call] = sub
        def nesting(call: str) -> int:
            return 0 if calls[call]["parent"] is None else 1 + nesting(calls[call]["parent"])

        depth = {call: nesting(call) for call in calls}
        for level in sorted(set(depth.values()), reverse=True):  # inner calls first, into their parents
            for call in (c for c in calls if depth[c] == level):
                parent = calls[call]["parent"]
                (subgraphs[parent] if parent else self.canvas.dot).subgraph(subgraphs[call])
        for tail, head, kind, attrs in self.edges:
            self.canvas.dot.edge(self.id(tail), self.id(head), **{"class": kind}, **attrs)
        if calls:
            self.canvas.legend.append("dashed frame: one call of a block (its parameters are its instance's)")

    def _boxes(self) -> None:
        blocks = self.graph.graph["blocks"]
        found = chains(self.graph)
        chain_of = {call: k for k, chain in enumerate(found) for call in chain.calls}
        between = {node: k for k, chain in enumerate(found) for node in chain.between}

        def box(key):
            """The box a key is hidden in, 'gone' for a block's parameter, or None: drawn as it is."""
            node = self.ir_node(key)
            if node is None:
                return None
            if node in between:
                return ("box", between[node])
            call = owner(self.graph, node)
            if call is None:
                return None
            if self.graph.nodes[node]["kind"] in ("param", "fixed"):
                return "gone"  # inside the box: the instance's own parameters
            while blocks["calls"][call]["parent"] is not None:
                call = blocks["calls"][call]["parent"]
            return ("box", chain_of[call])

        where = {item[0]: box(item[0]) for item in self.nodes}
        edges, seen = [], set()
        for tail, head, kind, attrs in self.edges:
            ends = [where.get(tail, box(tail)) or tail, where.get(head, box(head)) or head]
            if "gone" in ends or ends[0] == ends[1]:
                continue
            if ends == [tail, head]:
                edges.append((tail, head, kind, attrs))
            elif tuple(ends) not in seen:
                seen.add(tuple(ends))
                edges.append((*ends, "data block", dict(color="#8a8a8a", arrowsize="0.6")))
        used = {e[0] for e in edges} | {e[1] for e in edges}
        pins: dict[int, list] = {}
        for key, label, kind, attrs in self.nodes:
            if where[key] is None:
                if kind.split()[0] in ("bias", "constant", "const") and key not in used:
                    continue  # fed only units now inside a box
                self._put(self.canvas.dot, key, label, kind, attrs)
            elif where[key] != "gone" and "pos" in attrs:
                pins.setdefault(where[key][1], []).append(_PIN.match(attrs["pos"]).groups())
        for k, chain in enumerate(found):
            head, sizes = chain.label(self.graph)
            place = {}
            if k in pins:  # the neuron view pins every node: the box stands where its units would
                xs, ys = zip(*((float(x), float(y)) for x, y in pins[k]))
                place = {"pos": f"{sum(xs) / len(xs):.3f},{sum(ys) / len(ys):.3f}!"}
            self._put(self.canvas.dot, ("box", k), f"<B>{_escape(head)}</B><BR/>"
                      f'<FONT POINT-SIZE="9">{_escape(sizes)}</FONT>', "block", dict(
                          shape="box", style="rounded,filled,bold", fillcolor=BLOCK[0], color=BLOCK[1],
                          margin="0.15,0.08", tooltip=head, **place))
        for tail, head, kind, attrs in edges:
            self.canvas.dot.edge(self.id(tail), self.id(head), **{"class": kind}, **attrs)
        self.canvas.legend.append("box: a block call drawn as one (× N: N identical blocks in a row, "
                                  "each feeding the next); inputs → outputs with their sizes")


def _escape(value: str) -> str:
    from .diagram_style import text  # the one escaping of user text for HTML-like labels
    return text(value)
