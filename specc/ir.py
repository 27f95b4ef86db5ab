"""The IR's container: a small directed graph with attribute dicts, shaped like ``networkx.DiGraph``.

specc builds one of these per spec and hands it on; compiling, drawing, training
and inspecting all read it. It keeps the parts of networkx's interface the
stages use (``g.nodes[n]`` attribute dicts, ``g.graph``, ``g.edges[u, v]``,
``successors``, ``predecessors``) so that networkx users feel at home, but it
is plain Python: importing networkx costs ~0.1 s, more than the whole of
``specc check`` is allowed. :meth:`Graph.to_networkx` gives the real thing.

The topological order (ties broken by each node's ``order`` attribute, which
is the order ``forward`` follows) is computed once and cached.
"""
from __future__ import annotations

import heapq
from typing import Callable, Iterable, Iterator


class Graph:
    """Nodes with attribute dicts, directed edges with attribute dicts, and graph attributes."""

    def __init__(self, **attrs):
        self.graph: dict = dict(attrs)
        self.nodes: dict[str, dict] = {}
        self.edges: dict[tuple[str, str], dict] = {}
        self._succ: dict[str, dict[str, None]] = {}  # dicts as ordered sets
        self._pred: dict[str, dict[str, None]] = {}
        self._topological: list[str] | None = None
        self._position: dict[str, int] = {}
        self._max_order = -1

    # ------------------------------------------------------------ building
    def add_node(self, node: str, **attrs) -> None:
        if node in self.nodes:
            self.nodes[node].update(attrs)
            return
        self.nodes[node] = attrs
        self._succ[node], self._pred[node] = {}, {}
        order = attrs.get("order", 0)
        if self._topological is not None and order > self._max_order:
            self._position[node] = len(self._topological)  # the latest node comes last: the order holds
            self._topological.append(node)
        else:
            self._topological = None
        self._max_order = max(self._max_order, order)

    def add_edge(self, tail: str, head: str, **attrs) -> None:
        for node in (tail, head):
            if node not in self.nodes:
                self.add_node(node)
        if (tail, head) in self.edges:
            self.edges[tail, head].update(attrs)
            return
        self.edges[tail, head] = attrs
        self._succ[tail][head] = None
        self._pred[head][tail] = None
        if self._topological is not None and self._position[tail] > self._position[head]:
            self._topological = None  # an edge that runs forward in the cached order leaves it as it is

    # ------------------------------------------------------------ reading
    def __iter__(self) -> Iterator[str]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, node: object) -> bool:
        return node in self.nodes

    def has_edge(self, tail: str, head: str) -> bool:
        return (tail, head) in self.edges

    def successors(self, node: str) -> Iterator[str]:
        return iter(self._succ[node])

    def predecessors(self, node: str) -> Iterator[str]:
        return iter(self._pred[node])

    def out_degree(self, node: str) -> int:
        return len(self._succ[node])

    def uses(self, node: str) -> int:
        """How many operand positions take ``node`` (``x*x`` uses x twice)."""
        return sum(len(self.edges[node, head].get("positions", (0,))) for head in self._succ[node])

    # ------------------------------------------------------------ orders and reachability
    def topological(self) -> list[str]:
        """Every node after its operands; among the ready ones, the lowest ``order`` first.

        Raises ValueError on a cycle (:func:`cycle` finds one to report).
        """
        if self._topological is None:
            waiting = {n: len(p) for n, p in self._pred.items()}
            key = {n: attrs.get("order", 0) for n, attrs in self.nodes.items()}
            ready = [(key[n], n) for n, count in waiting.items() if count == 0]
            heapq.heapify(ready)
            order = []
            while ready:
                _, node = heapq.heappop(ready)
                order.append(node)
                for head in self._succ[node]:
                    waiting[head] -= 1
                    if waiting[head] == 0:
                        heapq.heappush(ready, (key[head], head))
            if len(order) != len(self.nodes):
                raise ValueError("the graph has a cycle")
            self._topological = order
            self._position = {node: k for k, node in enumerate(order)}
        return self._topological

    def is_acyclic(self) -> bool:
        try:
            self.topological()
        except ValueError:
            return False
        return True

    def cycle(self) -> list[str]:
        """The nodes of one cycle in edge direction, starting at its lowest-``order`` node ([] if none)."""
        if self.is_acyclic():
            return []
        # Peel off nodes that cannot be on a cycle: no predecessor left, then no successor left.
        alive = set(self.nodes)
        for into, out in ((self._pred, self._succ), (self._succ, self._pred)):
            count = {n: sum(m in alive for m in into[n]) for n in alive}
            queue = [n for n in alive if count[n] == 0]
            while queue:
                node = queue.pop()
                alive.discard(node)
                for m in out[node]:
                    if m in alive:
                        count[m] -= 1
                        if count[m] == 0:
                            queue.append(m)
        if not alive:
            return []
        key = lambda n: self.nodes[n].get("order", 0)  # noqa: E731
        node, path, seen = min(alive, key=key), [], {}
        while node not in seen:
            seen[node] = len(path)
            path.append(node)
            node = min((m for m in self._succ[node] if m in alive), key=key)
        loop = path[seen[node]:]
        start = loop.index(min(loop, key=key))
        return loop[start:] + loop[:start]

    def ancestors(self, nodes: Iterable[str]) -> set[str]:
        """``nodes`` and everything they are computed from."""
        found, stack = set(), list(nodes)
        while stack:
            node = stack.pop()
            if node not in found:
                found.add(node)
                stack.extend(self._pred[node])
        return found

    def to_networkx(self):
        """The same IR as a ``networkx.DiGraph`` (same node ids, node, edge and graph attributes)."""
        import networkx as nx  # on use: it costs more to import than specc's whole front end

        graph = nx.DiGraph(**self.graph)
        graph.add_nodes_from(self.nodes.items())
        graph.add_edges_from((tail, head, attrs) for (tail, head), attrs in self.edges.items())
        return graph

    def sum_terms(self, node: str, opens: Callable[[str], bool] = lambda n: True) -> list[tuple[str, int]]:
        """The terms of a chain of ``+`` and ``-`` with their signs (+1, -1), left to right; a loop,
        not recursion, because sums can be thousands of terms long. An inner sum for which
        ``opens`` is false counts as one term."""
        terms, stack = [], [(node, 1)]
        while stack:
            current, sign = stack.pop()
            attrs = self.nodes[current]
            if attrs.get("op") in ("add", "sub") and (current == node or opens(current)):
                left, right = attrs["args"]
                stack.append((right, -sign if attrs["op"] == "sub" else sign))
                stack.append((left, sign))
            else:
                terms.append((current, sign))
        return terms

    def __repr__(self) -> str:
        return f"<specc IR of {self.graph.get('file', '?')}: {len(self.nodes)} nodes, {len(self.edges)} edges>"
