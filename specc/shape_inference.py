"""Shape inference over the IR: each node's term by its operation's rule (specc/shapes.py holds the
unifier and the rules), then the sizes solved, the indices checked and every node's shape written.
"""
from __future__ import annotations

from .errors import IndexRangeError, ShapeError, Span, UndeterminedSizeError
from .ir import Graph
from .ops import OPS
from .shapes import RULES, SCALAR, Term, Unifier, _flexible, concrete


def infer(graph: Graph, outputs: list[tuple[str, tuple[int, ...] | None, Span]],
          unifier: Unifier | None = None) -> None:
    """Give every node of ``graph`` its ``shape`` and ``batched`` attributes, or raise a positioned error.

    ``outputs``: (name, declared dims or None, where) of each output. ``unifier``: one the caller
    keeps, with each node's term in ``unifier.terms`` afterwards (``specc explain``).
    """
    unifier = Unifier() if unifier is None else unifier
    terms = unifier.terms
    constant: set[str] = set()  # values computed from numbers alone
    order = graph.topological()
    for node in order:
        attrs = graph.nodes[node]
        kind = attrs["kind"]
        if kind in ("input", "param", "fixed"):
            dims = attrs.get("dims")
            terms[node] = unifier.unknown() if dims is None else \
                unifier.fixed(dims, (f"'{_decl_text(node, dims, kind)}'", attrs["span"]))
        elif kind == "const":
            terms[node] = unifier.scalar()
            constant.add(node)
        elif kind == "op":
            what = f"'{attrs.get('label') or node}'"
            op, where = attrs["op"], attrs.get("expr_span", attrs["span"])
            term = RULES[OPS[op].shape](unifier, [terms[a] for a in attrs["args"]], where, what, op, attrs)
            if all(a in constant for a in attrs["args"]) and not OPS[op].random and not OPS[op].timed:
                constant.add(node)
                if attrs["name"]:
                    term = _named_constant(unifier, node, attrs, term)
            if attrs.get("dims") is not None:
                shown = attrs.get("local") or node  # a block's node: its author's name (specc/blocks.py)
                if term.root().kind == SCALAR:
                    raise ShapeError(f"'{shown}' is declared with size {list(attrs['dims'])} but its value "
                                     "is a scalar", attrs["span"])
                declared = unifier.fixed(attrs["dims"], (f"'{_decl_text(shown, attrs['dims'], kind)}'",
                                                         attrs["span"]))
                term = unifier.unify(term, declared, attrs["span"], f"'{shown}'")
            terms[node] = term
        for earlier, where, what in unifier.delayed.pop(node, ()):  # its prev(...) nodes: the same shape
            unifier.unify(terms[node], earlier, where, what)
    for name, dims, where in outputs:
        if dims is not None:
            declared = unifier.fixed(dims, (f"'output {_decl_text(name, dims, 'output')}'", where))
            unifier.unify(terms[name], declared, where, f"output '{name}'")
    unifier.settle_constants()
    unifier.solve_sums()
    _check_bounds(graph, unifier)
    for node in order:
        root = terms[node].root()
        if root.kind is None:
            root.kind = SCALAR  # nothing asked for more: a plain number, like torch.randn(())
    _settle(graph, terms)
    for node in order:
        attrs = graph.nodes[node]
        attrs["batched"] = attrs["kind"] == "input" or any(graph.nodes[a]["batched"] for a in attrs.get("args", ()))


def _named_constant(unifier: Unifier, node: str, attrs: dict, term: Term) -> Term:
    """``h0[4] = 0``, ``ones = 1``: a named constant whose value is a scalar broadcasts to its declared
    size, or to the size its uses need (:meth:`Unifier.constant`); a vector value keeps its own shape."""
    root = term.root()
    if root.kind != SCALAR and not _flexible(root):
        return term
    dims = attrs.get("dims")
    own = unifier.constant() if dims is None else \
        unifier.fixed(dims, (f"'{_decl_text(node, dims, 'op')}'", attrs["span"]))
    if root.kind is None:  # computed from another constant, which may itself become a vector
        unifier.links.append((root, own, attrs.get("expr_span"), f"'{node}'"))
    return own


def _check_bounds(graph: Graph, unifier: Unifier) -> None:
    """Every index within its vector's units, 1 … n, now that the sizes are known (an unknown one is
    reported as undetermined later)."""
    for size, attrs in unifier.bounds:
        root = size.root()
        units, start, stop = root.value, attrs["start"], attrs["stop"]
        if units is None or stop <= units:
            continue
        operand = graph.nodes[attrs["args"][0]]
        what = operand.get("name") if operand["kind"] != "const" and operand.get("name") else operand.get("label")
        written = f"index {start}" if attrs["op"] == "index" else f"slice {start}:{stop}"
        allowed = "so the only index is 1" if units == 1 else f"so indices are 1 … {units}"
        notes = ((f"size {units} comes from {root.origin[0]}", root.origin[1]),) if root.origin else ()
        raise IndexRangeError(f"{written} is out of range: '{what}' has {units} unit{'s' * (units != 1)}, {allowed}",
                              attrs["bound_spans"][0 if start > units else 1], notes=notes)


def _settle(graph: Graph, terms: dict[str, Term]) -> None:
    """Write each node's final shape; the first undetermined one (named nodes first) is an error."""
    def position(node):
        span = graph.nodes[node]["span"]
        return graph.nodes[node]["kind"] in ("param", "fixed"), span.line, span.column

    shapes = {node: concrete(term) for node, term in terms.items()}
    undetermined = [n for n in graph if None in shapes[n]]
    if undetermined:
        named = [n for n in undetermined if graph.nodes[n]["name"] and graph.nodes[n]["kind"] != "const"]
        node = min(named, key=position) if named else undetermined[0]
        attrs, shape = graph.nodes[node], shapes[node]
        if attrs["kind"] == "param":
            dims = ", ".join("N" if s is None else str(s) for s in shape)
            raise UndeterminedSizeError(f"the shape of parameter '{node}' is not determined by its uses; "
                                        f"declare it, e.g. 'param {node}[{dims}]'", attrs["span"])
        if attrs["kind"] == "fixed":
            dims = ", ".join("N" if s is None else str(s) for s in shape)
            raise UndeterminedSizeError(f"the shape of fixed value '{node}' is not determined by its uses; "
                                        f"declare it, e.g. 'fixed {node}[{dims}]'", attrs["span"])
        if attrs["name"]:
            raise UndeterminedSizeError(f"the size of '{node}' is not determined by anything; give it "
                                        f"one, e.g. '{node}[N] = …'", attrs["span"])
        raise UndeterminedSizeError(f"the size of {attrs.get('label')!r} is not determined by anything",
                                    attrs["span"])
    matrices = [n for n in graph if len(shapes[n]) == 2 and graph.nodes[n]["kind"] == "op" and graph.nodes[n]["name"]]
    if matrices:
        node = min(matrices, key=position)
        raise ShapeError(f"'{node}' would be a matrix {list(shapes[node])}; a node is a scalar or a "
                         "vector (matrices are parameters used on the left of ·)", graph.nodes[node]["span"])
    for node in graph:
        graph.nodes[node]["shape"] = shapes[node]


def _decl_text(name: str, dims, kind: str) -> str:
    prefix = {"param": "param ", "input": "input ", "fixed": "fixed "}.get(kind, "")
    return f"{prefix}{name}[{', '.join(map(str, dims))}]" if dims else f"{prefix}{name}"
