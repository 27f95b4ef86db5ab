"""AST → IR: lowering. Names get their meanings (specc/names.py), ``def`` calls are inlined, and
every expression becomes nodes of one :class:`specc.ir.Graph` that compiling, inspecting, drawing
and training all read. Shapes are inferred by :mod:`specc.shapes`, parameter roles and initialisers set by
:mod:`specc.inits`; what each operation means is a row of :mod:`specc.ops`.

Node ids are the spec's names for inputs, parameters and named nodes,
``"<stmt>/<k>"`` for the operations and numbers inside statement ``<stmt>``
and ``"output:<name>"`` for outputs. Attributes (docs/ir.md has the details):

every node  kind ('input' 'param' 'fixed' 'const' 'op' 'output'), shape (() scalar, (n,)
            vector, (m, n) matrix; per sample for batched values), batched (varies
            per sample), span (where the node is written; a parameter's first
            appearance), name (spec name, 'pi'/'e' for those constants, else None),
            stmt (the named node whose statement holds it, else None), order
            (creation order; ties in topological order are broken by it)
input       dims (declared sizes; () for a scalar)
param       dims (declared sizes, () for `param a`, None if undeclared), declared,
            role ('weight' 'bias' 'other'), fan_in (int or None), init, init_args
fixed       dims (declared sizes, None for `fixed mu`: from its uses), init, init_args
const       value (float), label (source text)
op          op (a row of specc.ops.OPS: 'add' 'sub' 'mul' 'div' 'pow' 'neg' 'matmul',
            'transpose' 'index' 'slice', 'identity' for `y = x`, or a built-in function name), args
            (operand ids, in order), label (source text), via (the def it was inlined from, or None),
            and optionally hint (a name for the temporary holding a def argument)
index/slice also start, stop (the units picked, from 1, both included) and bound_spans (where the
            two numbers are written)
named op    also stmt_span, expr_span (the whole statement, its right-hand side)
            and dims (the size written on the left, or None)
output      args (the one node it returns)
edges       positions: the operand positions of the source in the target's args
graph       file, source, program (the AST), inputs, outputs, params, fixed (spec names,
            in declaration, output, first-appearance and declaration order), warnings
            (specc.errors.SpecDiagnostic: likely typos, found by specc/lint.py)
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from functools import lru_cache

from . import parser as ast
from .errors import (ArgumentError, ArityError, CycleError, DataError, KindError, LimitError, RedefinitionError,
                     ShapeError, Span, SpecError, UnknownNameError, split_lines)
from .inits import apply_init_lines, assign_roles
from .ir import Graph
from .ops import FUNCTIONS
from .names import Names
from .limits import DEFAULT, UNLIMITED, Limits, check_numbers, check_sizes
from .lint import diagnose, issue, star_notes
from .sequences import mark_batched_steps, mark_steps, names_used
from .reserved import MODULE_ATTRIBUTES, TORCH_MODULE_ATTRIBUTES
from .shape_inference import infer
from .shapes import Unifier

# The name lists are specc/reserved.py's, re-exported: other modules and tests import them from here.
__all__ = ["ELEMENTWISE_OPS", "MAX_OPERATIONS", "MODULE_ATTRIBUTES", "TORCH_MODULE_ATTRIBUTES", "build_graph",
           "collector_paused", "graph_of", "source_text", "spec_graph"]
MAX_OPERATIONS = 1_000_000  # a guard against def calls that expand exponentially, not a size limit
ELEMENTWISE_OPS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "^"}


@lru_cache(maxsize=8)
def _lines(source: str) -> list[str]:
    return split_lines(source)  # once per source: a label per operation would otherwise be quadratic


def source_text(source: str, span: Span) -> str:
    lines = _lines(source)
    if span.line == span.end_line:
        return lines[span.line - 1][span.column - 1:span.end_column - 1]
    parts = [lines[span.line - 1][span.column - 1:]] + lines[span.line:span.end_line - 1]
    return " ".join(p.strip() for p in parts + [lines[span.end_line - 1][:span.end_column - 1]])


class _Builder(Names):
    def __init__(self, program: ast.Program):
        self.program = program
        self.nodes: dict[str, dict] = {}
        self.defined: dict[str, Span] = {}
        self.inputs: dict[str, ast.Decl] = {}
        self.param_decls: dict[str, ast.Decl] = {}
        self.fixed_decls: dict[str, ast.Decl] = {}  # `fixed mu[3]`: held by the module, never trained
        self.defs: dict[str, ast.Def] = {}
        self.assigns: dict[str, ast.Assign] = {}
        self.aliases: dict[str, ast.Name] = {}
        self.inits: list[ast.Init] = []
        self.output_decl: ast.OutputDecl | None = None
        self.params: dict[str, Span] = {}  # name → first appearance, in order
        self.counter = 0
        self.expanding: list[str] = []
        # Reusable blocks (specc/blocks.py): instances by name, this file's blocks, and the build's files.
        self.instances: dict = {}
        self.block_defs: dict[str, ast.Block] = {}
        self.library = None

    # ------------------------------------------------------------ lowering
    def _new(self, stmt: str, **attrs) -> str:
        if len(self.nodes) >= MAX_OPERATIONS:  # calls of functions that call functions grow exponentially
            raise LimitError(f"the spec expands to more than {MAX_OPERATIONS} operations (through nested "
                             "def calls?)", attrs["span"])
        self.counter += 1
        node_id = f"{stmt}/{self.counter}"
        self.nodes[node_id] = dict(stmt=stmt, name=None, order=len(self.nodes), **attrs)
        return node_id

    def lower(self, expr, env: dict[str, str], stmt: str, via: str | None) -> str:
        if isinstance(expr, ast.Num):
            return self._new(stmt, kind="const", value=expr.value, span=expr.span, label=expr.text)
        if isinstance(expr, ast.Name):
            kind = self._value_kind(expr.id, frozenset(env))
            if kind == "local":
                return env[expr.id]
            if kind == "const":
                node = self._new(stmt, kind="const", value=ast.CONSTANTS[expr.id], span=expr.span, label=expr.id)
                self.nodes[node]["name"] = expr.id
                return node
            if kind == "function":
                raise KindError(f"'{expr.id}' is a function, not a value; call it, e.g. {expr.id}(x)", expr.span)
            return expr.id
        label = source_text(self.program.source, expr.span)
        if isinstance(expr, ast.BinOp):
            if expr.op == "pow":
                self._check_power_of_t(expr, env)
            args = [self.lower(expr.left, env, stmt, via), self.lower(expr.right, env, stmt, via)]
            return self._new(stmt, kind="op", op=expr.op, args=tuple(args), span=expr.span, label=label, via=via)
        if isinstance(expr, ast.Neg):
            args = (self.lower(expr.operand, env, stmt, via),)
            return self._new(stmt, kind="op", op="neg", args=args, span=expr.span, label=label, via=via)
        if isinstance(expr, ast.Transpose):
            args = (self.lower(expr.operand, env, stmt, via),)
            return self._new(stmt, kind="op", op="transpose", args=args, span=expr.span, label=label, via=via)
        if isinstance(expr, ast.Index):  # x[2] is the op index, x[2:4] slice; start and stop count from 1
            args = (self.lower(expr.operand, env, stmt, via),)
            stop = expr.start if expr.stop is None else expr.stop
            return self._new(stmt, kind="op", op="index" if expr.stop is None else "slice", args=args,
                             span=expr.span, label=label, via=via, start=int(expr.start.text),
                             stop=int(stop.text), bound_spans=(expr.start.span, stop.span))
        if isinstance(expr, ast.Member) or expr.func.id in self.instances or expr.func.id in self.block_defs:
            from .blocks import lower_call  # a call of a block's instance: its body, inlined
            return lower_call(self, expr, env, stmt, via)
        fn = self.resolve_function(expr.func)
        if fn == "prev":  # its first argument names a node, not a value to compute first
            from .sequences import lower_prev
            return lower_prev(self, expr, env, stmt, via, label)
        args = [self.lower(a, env, stmt, via) for a in expr.args]
        if fn in FUNCTIONS:
            arity = FUNCTIONS[fn].arity
            if (arity is None and not args) or (arity is not None and len(args) != arity):
                wanted = "at least 1 argument" if arity is None else f"{arity} argument{'s' * (arity != 1)}"
                raise ArityError(f"'{fn}' takes {wanted}, not {len(args)}", expr.span)
            for position, lo, hi in FUNCTIONS[fn].numbers:
                self._check_number(fn, args[position], expr.args[position], lo, hi)
            return self._new(stmt, kind="op", op=fn, args=tuple(args), span=expr.span, label=label, via=via)
        definition = self.defs[fn]
        if len(args) != len(definition.params):
            raise ArityError(f"'{fn}' takes {len(definition.params)} argument(s) "
                             f"({', '.join(p.id for p in definition.params)}), not {len(args)}", expr.span)
        if fn in self.expanding:
            raise CycleError(f"function '{fn}' calls itself ({' → '.join(self.expanding + [fn])})", expr.span)
        for param, arg in zip(definition.params, args):
            if self.nodes.get(arg, {}).get("kind") == "op" and not self.nodes[arg].get("hint"):
                self.nodes[arg]["hint"] = f"{fn}_{param.id}"
        self.expanding.append(fn)
        try:
            return self.lower(definition.body, {p.id: a for p, a in zip(definition.params, args)}, stmt, fn)
        finally:
            self.expanding.pop()

    def _check_power_of_t(self, expr: ast.BinOp, env: dict[str, str]) -> None:
        """``W^T`` with no ``T`` in the spec would raise W to the power of a new parameter T: surely a
        transpose meant."""
        right = expr.right
        if not (isinstance(right, ast.Name) and right.id == "T" and right.id not in self.param_decls
                and self._value_kind(right.id, frozenset(env)) == "param"):
            return
        base = source_text(self.program.source, expr.left.span)
        if not isinstance(expr.left, (ast.Name, ast.Call, ast.Transpose, ast.Index)):
            base = f"({base})"
        left, t = expr.left.span, right.span
        where = t
        if left.end_line == t.line:  # from the operator (^ or **) to the T
            gap = _lines(self.program.source)[t.line - 1][left.end_column - 1:t.column - 1]
            where = Span(t.file, t.line, left.end_column + min(i for i, ch in enumerate(gap) if ch in "^*"),
                         t.end_line, t.end_column)
        raise KindError(f"'{source_text(self.program.source, expr.span)}' raises {base} to the power of 'T', "
                        "which is no name of this spec and would become a new parameter", expr.span,
                        notes=((f"for the transpose write {base}ᵀ (or {base}'); for a power, declare "
                                "'param T'", where),))

    def _check_number(self, fn: str, node: str, expr, lo: float, hi: float) -> None:
        """An argument that must be a number written in the spec, in [lo, hi) (a dropout rate)."""
        attrs = self.nodes.get(node, {})
        if attrs.get("kind") != "const" or not lo <= attrs["value"] < hi:
            what = source_text(self.program.source, expr.span)
            raise ArgumentError(f"'{fn}' needs a number from {lo:g} up to (not including) {hi:g} here, not "
                                f"'{what}'", expr.span)

    def build_nodes(self) -> None:
        for name, decl in self.inputs.items():
            self.nodes[name] = dict(kind="input", name=name, stmt=None, span=decl.name.span, order=len(self.nodes),
                                    dims=decl.dims or (), sequence=decl.steps is not None)
        for name, span in self.params.items():
            decl = self.param_decls.get(name)
            # `param a` declares a scalar; an undeclared parameter's shape comes from its uses
            dims = (decl.dims or ()) if decl else None
            self.nodes[name] = dict(kind="param", name=name, stmt=None, span=span, order=len(self.nodes),
                                    dims=dims, declared=decl is not None)
        for name, decl in self.fixed_decls.items():  # `fixed mu` (no size): its shape comes from its uses
            self.nodes[name] = dict(kind="fixed", name=name, stmt=None, span=decl.name.span, order=len(self.nodes),
                                    dims=decl.dims)
        for name, stmt in self.assigns.items():
            self.counter = 0
            try:
                top = self.lower(stmt.expr, {}, name, None)
            except RecursionError:  # def bodies inlined into def bodies, many levels deep
                raise LimitError("this statement nests its function calls too deeply; split it into named "
                                 "nodes", stmt.span) from None
            if top.startswith(name + "/") and self.nodes[top]["kind"] == "op" and "call" not in self.nodes[top]:
                attrs = self.nodes.pop(top)
            else:  # `y = x`, `y = 2`: a node of its own that passes the value on
                attrs = dict(kind="op", op="identity", args=(top,), stmt=name, via=None,
                             label=source_text(self.program.source, stmt.expr.span))
            attrs.update(name=name, span=stmt.target.name.span, stmt_span=stmt.span, expr_span=stmt.expr.span,
                         order=len(self.nodes),
                         dims=stmt.target.dims)
            self.nodes[name] = attrs

    # ------------------------------------------------------------ outputs, shapes, roles, inits
    def outputs(self) -> list[ast.Decl]:
        if self.output_decl is not None:
            seen = set()
            for decl in self.output_decl.decls:
                if decl.name.id not in self.assigns and decl.name.id not in self.inputs:
                    raise UnknownNameError(f"output '{decl.name.id}' is not a node of this spec", decl.name.span)
                if decl.name.id in seen:
                    raise RedefinitionError(f"output '{decl.name.id}' is listed twice", decl.name.span)
                seen.add(decl.name.id)
            return list(self.output_decl.decls)
        # "Used" is textual: a name in another assignment or in a def body, called or not.
        used = names_used(self.assigns, self.defs)
        sinks = [ast.Decl(ast.Name(name, s.target.name.span), None, s.target.span)
                 for name, s in self.assigns.items() if name not in used]
        if not sinks:
            raise SpecError("the spec defines no nodes, so it has no outputs",
                            Span(self.program.file, 1, 1, 1, 2))
        return sinks


def _pos(span: Span) -> tuple[int, int]:
    return span.line, span.column


def build_graph(program: ast.Program, unifier: Unifier | None = None, limits: Limits = DEFAULT) -> Graph:
    """The IR of a parsed program, with every shape inferred; raises :class:`SpecError`. Warnings
    (specc/lint.py) go to ``graph.graph["warnings"]``. ``unifier``: one to infer with, kept by the
    caller (``specc explain`` reads where each size came from). ``limits``: what the spec may hold,
    and its numbers-only arithmetic finite (specc/limits.py)."""
    builder = _Builder(program)
    builder.limits = limits  # what a used file may hold (specc/blocks.py)
    unifier = Unifier() if unifier is None else unifier
    try:
        builder.collect()
        builder.find_params()
        builder.build_nodes()
        graph = Graph(file=program.file, source=program.source, program=program, inputs=list(builder.inputs),
                           outputs=[], params=list(builder.params), fixed=list(builder.fixed_decls))
        for node, attrs in builder.nodes.items():
            graph.add_node(node, **attrs)
            if attrs["kind"] == "param":
                graph.nodes[node].update(role="other", fan_in=None)
        if builder.library is not None:  # blocks: their parameters, calls and instances (specc/blocks.py)
            builder.library.describe(builder, graph)
        for node, attrs in builder.nodes.items():
            for position, arg in enumerate(attrs.get("args", ())):
                if graph.has_edge(arg, node):
                    graph.edges[arg, node]["positions"].append(position)
                else:
                    graph.add_edge(arg, node, positions=[position])
        _check_cycles(graph)
        outputs = builder.outputs()
        graph.graph["outputs"] = [d.name.id for d in outputs]
        mark_steps(graph, outputs)  # which values vary per time step (specc/sequences.py)
        try:
            infer(graph, [(d.name.id, d.dims, d.span) for d in outputs], unifier)
        except ShapeError as err:
            raise star_notes(builder, err) from None
        mark_batched_steps(graph)
        if builder.library is not None:
            builder.library.check_ports(graph)
        check_sizes(graph, unifier, limits)
        check_numbers(graph)
        for decl in outputs:
            source = graph.nodes[decl.name.id]
            graph.add_node(f"output:{decl.name.id}", kind="output", name=decl.name.id, stmt=None, span=decl.span,
                           order=len(graph), args=(decl.name.id,), shape=source["shape"],
                           batched=source["batched"], stepped=source["stepped"])
            graph.add_edge(decl.name.id, f"output:{decl.name.id}", positions=[0])
        assign_roles(graph)
        apply_init_lines(graph, builder.inits, builder.what_is)
        if builder.library is not None:
            builder.library.apply_inits(graph)
        graph.graph["warnings"] = diagnose(builder, graph)
    except SpecError as err:
        if builder.library is not None:
            builder.library.annotate(err)
        raise err.with_source(program.source) from None
    return graph


@contextmanager
def collector_paused():
    """Pause Python's cycle collector while a compiler stage allocates many small objects: they are
    all still in use, so the collections it would run cost time (~40 % of a large spec's parse) and
    free nothing."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def graph_of(text: str, file: str = "<spec>", limits: Limits = DEFAULT) -> Graph:
    """The IR of spec text, built once per distinct (text, file, limits) and shared: treat it as
    read-only. A spec that uses other files is built again when one of them has changed since (a
    language server or a notebook lives through many edits)."""
    graph = _built(text, file, limits)
    if not _used_files_unchanged(graph):
        _built.cache_clear()
        graph = _built(text, file, limits)
    return graph


@lru_cache(maxsize=8)  # a few: one command reads one or two specs, and a large IR holds much memory
def _built(text: str, file: str, limits: Limits) -> Graph:
    with collector_paused():
        graph = build_graph(ast.parse_program(text, file, limits), limits=limits)
    issue(graph)  # here, so that a memoised IR warns once
    return graph


def _used_files_unchanged(graph: Graph) -> bool:
    """Whether every file the spec uses (``use "enc.spec"``) still reads as it did when it was built."""
    from .api import read_spec_file
    for name, text in graph.graph.get("block_sources", {}).items():
        if name == graph.graph["file"]:
            continue
        try:
            current = read_spec_file(name)[0]
        except SpecError:
            return False
        if ast.normalise_newlines(current.removeprefix("\ufeff")) != text:
            return False
    return True


graph_of.cache_clear = _built.cache_clear  # type: ignore[attr-defined]


def spec_graph(model_or_graph) -> Graph:
    """The IR of a module compiled by specc: the one it carries (``spec_ir``), else the one its
    ``spec_source`` builds (memoised, so never built twice); an IR is returned as it is."""
    if isinstance(model_or_graph, Graph):
        return model_or_graph
    carried = getattr(model_or_graph, "spec_ir", None)
    if isinstance(carried, Graph):
        return carried
    source = getattr(model_or_graph, "spec_source", None)
    if source is None:
        raise DataError("the model was not compiled by specc (it has no spec_source)")
    # the module exists, so the limits on what it may hold have nothing left to prevent
    return graph_of(source, getattr(model_or_graph, "spec_file", "<spec>"), UNLIMITED)


def _check_cycles(graph: Graph) -> None:
    cycle = graph.cycle()
    if not cycle:
        return
    named = [u for u in cycle if graph.nodes[u].get("name") and graph.nodes[u]["kind"] == "op"]
    first = min(named, key=lambda n: _pos(graph.nodes[n]["span"]))
    path = " → ".join(named[named.index(first):] + named[:named.index(first)] + [first])
    raise CycleError(f"'{first}' depends on itself: {path}", graph.nodes[first]["span"])
