"""Sequences: which values vary per time step, ``prev(h)`` lowered, and the checks that keep one loop.

A spec with a sequence input (``input x[T, 3]``) is computed one time step at a time. A value is
*stepped* when it varies per step: a sequence input, every ``prev(..)`` node, and anything computed
from a stepped value; ``last(h)`` is not (it is h after the final step). ``prev(h, start)`` lowers to
an op node with args ``(start,)`` and attribute ``of = 'h'`` and no edge from h, so the IR stays
acyclic; ``graph["recurrent"]`` lists the (of, prev node) pairs. specc/loops.py writes the loop.
"""
from __future__ import annotations

import difflib

from . import parser as ast
from .errors import ArgumentError, ArityError, KindError, ShapeError, UnknownNameError
from .ir import Graph

START = 0.0  # prev(h) without a start: h is 0 before the first step


def lower_prev(builder, expr: ast.Call, env: dict[str, str], stmt: str, via: str | None, label: str) -> str:
    """``prev(h)`` or ``prev(h, start)`` as a prev node (``builder`` is lower.py's ``_Builder``)."""
    if len(expr.args) not in (1, 2):
        raise ArityError(f"'prev' takes 1 or 2 arguments (prev(h) or prev(h, start)), not {len(expr.args)}",
                         expr.span)
    target = expr.args[0]
    if not isinstance(target, ast.Name):
        raise ArgumentError("prev(..) takes the name of a node or of a sequence input, e.g. prev(h); "
                            "give the expression a name first (two steps back: hp = prev(h), then prev(hp))",
                            target.span)
    of = _named_value(builder, target, env)
    if len(expr.args) == 2:
        start = builder.lower(expr.args[1], env, stmt, via)
    else:
        start = builder._new(stmt, kind="const", value=START, span=expr.span, label="0")
    return builder._new(stmt, kind="op", op="prev", args=(start,), of=of, span=expr.span, label=label, via=via)


def _named_value(builder, target: ast.Name, env: dict[str, str]) -> str:
    """The node whose previous step ``prev(target)`` is: a named node or an input."""
    kind = builder._value_kind(target.id, frozenset(env))
    if kind == "local":  # a def's argument: the node it stands for, when that has a name
        node = env[target.id]
        if node in builder.assigns or node in builder.inputs:
            return node
        raise ArgumentError(f"prev({target.id}): the argument '{target.id}' of this def is an expression here, "
                            "not a named node; name it first (g = …) and pass g", target.span)
    if kind in ("node", "input"):
        return target.id
    what = {"const": "a constant", "fixed": "a fixed value", "function": "a function"}.get(kind)
    if what is None and (target.id in builder.param_decls or _used_elsewhere(builder, target)):
        what = "a parameter"
    if what is not None:
        raise KindError(f"prev({target.id}): '{target.id}' is {what}, which does not change from step to step; "
                        "prev takes a node or a sequence input", target.span)
    known = sorted(set(builder.assigns) | set(builder.inputs))
    close = difflib.get_close_matches(target.id, known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise UnknownNameError(f"prev({target.id}): '{target.id}' is no node or input of this spec{hint}", target.span)


def _used_elsewhere(builder, target: ast.Name) -> bool:
    """Whether a free name is used as a value anywhere but here (so it is a parameter, not a typo)."""
    bodies = [s.expr for s in builder.assigns.values()] + [d.body for d in builder.defs.values()]
    return any(isinstance(n, ast.Name) and n.id == target.id and n.span != target.span
               for body in bodies for n in ast.walk(body))


def names_used(assigns: dict, defs: dict) -> set[str]:
    """The names used in statements and def bodies ("used" is textual): ``prev(h)`` in h's own statement
    does not count, so that a recurrent node nothing else uses is still an output."""
    used = set()
    for body, own in [(s.expr, name) for name, s in assigns.items()] + [(d.body, None) for d in defs.values()]:
        own_prev = {id(n.args[0]) for n in ast.walk(body) if isinstance(n, ast.Call) and n.func.id == "prev"
                    and n.args and isinstance(n.args[0], ast.Name) and n.args[0].id == own}
        used |= {n.id for n in ast.walk(body) if isinstance(n, ast.Name) and id(n) not in own_prev}
    return used


# ---------------------------------------------------------------- which values vary per step
def mark_steps(graph: Graph, outputs: list) -> None:
    """Give every node ``stepped``, set ``graph["recurrent"]``, and refuse what one loop over time cannot
    compute. ``outputs``: the output declarations (``output h[T, 8]`` asks for a sequence)."""
    order = graph.topological()
    nodes = graph.nodes
    for node in order:
        attrs = nodes[node]
        if attrs["kind"] == "input":
            attrs["stepped"] = attrs["sequence"]
        elif attrs.get("op") in ("prev", "last"):
            attrs["stepped"] = attrs["op"] == "prev"
        else:
            attrs["stepped"] = any(nodes[a]["stepped"] for a in attrs.get("args", ()))
    prevs = [n for n in order if nodes[n].get("op") == "prev"]
    graph.graph["recurrent"] = [(nodes[p]["of"], p) for p in sorted(prevs, key=lambda n: nodes[n]["order"])]
    if prevs and not any(nodes[i]["sequence"] for i in graph.graph["inputs"]):
        first = min(prevs, key=lambda n: _position(nodes[n]))
        raise ShapeError(f"'{nodes[first]['label']}' needs time steps, but this spec has no sequence input; "
                         "declare one with T as its first size, e.g. 'input x[T, 3]'", _where(nodes[first]))
    for node in sorted(prevs, key=lambda n: _position(nodes[n])):
        _check_prev(graph, node)
    for node in sorted((n for n in order if nodes[n].get("op") == "last"), key=lambda n: _position(nodes[n])):
        if not nodes[nodes[node]["args"][0]]["stepped"]:
            raise KindError(f"'{nodes[node]['label']}': last(..) takes a value that varies per time step (one "
                            "computed from a sequence input or a prev), and this one does not",
                            _where(nodes[node]))
    _check_after_the_loop(graph, order)
    for decl in outputs:
        if decl.steps is not None and not nodes[decl.name.id]["stepped"]:
            raise ShapeError(f"output '{decl.name.id}' is declared a sequence (T) but does not vary per time "
                             "step; drop the T, or output a node computed from a sequence", decl.steps)


def _check_prev(graph: Graph, node: str) -> None:
    attrs, nodes = graph.nodes[node], graph.nodes
    of = attrs["of"]
    if of == node:
        raise ArgumentError(f"'{node} = {attrs['label']}' would be its own previous value, the start at every "
                            "step", _where(attrs))
    if not nodes[of]["stepped"]:
        what = "input" if nodes[of]["kind"] == "input" else "node"
        raise KindError(f"'{attrs['label']}': the {what} '{of}' does not vary per time step (it is computed from "
                        "no sequence input and no prev), so it has no previous step", _where(attrs))
    start = attrs["args"][0]
    if nodes[start]["stepped"]:
        raise KindError(f"'{attrs['label']}': the start value varies per time step; a start is a number or a "
                        "value that does not (a parameter h0, a plain input)", _start_span(graph, attrs))


def _start_span(graph: Graph, attrs: dict):
    """Where the start of a prev call is written (the call itself if it cannot be found)."""
    for stmt in graph.graph["program"].statements:
        expr = getattr(stmt, "expr", None) or getattr(stmt, "body", None)
        if expr is None:
            continue
        for sub in ast.walk(expr):
            if isinstance(sub, ast.Call) and sub.span == _where(attrs) and len(sub.args) == 2:
                return sub.args[1].span
    return attrs["span"]


def _check_after_the_loop(graph: Graph, order: list[str]) -> None:
    """One loop: what uses last(..) is computed after it, so it cannot vary per step."""
    nodes = graph.nodes
    after: dict[str, str] = {}  # node → the last(..) node it depends on
    for node in order:
        attrs = nodes[node]
        if attrs.get("op") == "last":
            after[node] = node
            continue
        source = next((after[a] for a in attrs.get("args", ()) if a in after), None)
        if source is None:
            continue
        after[node] = source
        if attrs["stepped"]:
            shown = attrs["stmt"] or node
            where = nodes[shown]["span"] if shown in nodes else attrs["span"]
            raise KindError(f"'{shown}' varies per time step but uses '{nodes[source]['label']}', the value after "
                            "the final step: a spec loops over time once, so values that use last(..) come "
                            "after the loop", where, notes=(("last(..) is here", _where(nodes[source])),))


def mark_batched_steps(graph: Graph) -> None:
    """After shape inference: a stepped value is per sample (its start states are [B, …]); what is
    computed from one is too."""
    if not graph.graph["recurrent"]:
        return
    nodes = graph.nodes
    for node in graph.topological():
        attrs = nodes[node]
        attrs["batched"] = attrs["kind"] == "input" or attrs["stepped"] or \
            any(nodes[a]["batched"] for a in attrs.get("args", ()))


def is_sequential(graph: Graph) -> bool:
    """Whether the compiled module loops over time: some value varies per step."""
    return any(attrs.get("stepped") for attrs in graph.nodes.values())


def _where(attrs: dict):
    """Where an operation is written: a named one's right-hand side, not its name."""
    return attrs.get("expr_span", attrs["span"])


def _position(attrs: dict) -> tuple[int, int]:
    return _where(attrs).line, _where(attrs).column
