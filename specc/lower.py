"""AST → IR: lowering. Names get their meanings, ``def`` calls are inlined, and every expression
becomes nodes of one :class:`specc.ir.Graph` that compiling, inspecting, drawing and training all
read. Shapes are inferred by :mod:`specc.shapes`, parameter roles and initialisers set by
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
from .errors import (ArgumentError, ArityError, CycleError, DataError, InputAssignmentError, KindError, LimitError,
                     RedefinitionError, ReservedNameError, ShapeError, Span, SpecError,
                     UnknownFunctionError, UnknownNameError, split_lines)
from .inits import apply_init_lines, assign_roles
from .ir import Graph
from .ops import FUNCTIONS
from .limits import DEFAULT, UNLIMITED, Limits, check_numbers, check_sizes
from .lint import diagnose, issue, star_notes
from .sequences import mark_batched_steps, mark_steps, names_used
from .shapes import Unifier, infer

# Attributes of every module specc generates; a parameter of that name would shadow them.
GENERATED_ATTRIBUTES = frozenset({"spec_source", "spec_file", "spec_inputs", "spec_outputs", "spec_ir",
                                  "reset_parameters", "reset_fixed", "check_inputs"})
# torch.nn.Module's own attributes (torch 2.x), written out so that checking a spec never imports torch;
# tests/test_lower.py checks that the list covers the installed torch.
TORCH_MODULE_ATTRIBUTES = frozenset("""
T_destination __annotations__ __call__ __class__ __delattr__ __dict__ __dir__ __doc__ __eq__ __format__
__ge__ __getattr__ __getattribute__ __getstate__ __gt__ __hash__ __init__ __init_subclass__ __le__ __lt__
__module__ __ne__ __new__ __reduce__ __reduce_ex__ __repr__ __setattr__ __setstate__ __sizeof__ __str__
__subclasshook__ __weakref__ _apply _backward_hooks _backward_pre_hooks _buffers _call_impl
_compiled_call_impl _forward_hooks _forward_hooks_always_called _forward_hooks_with_kwargs
_forward_pre_hooks _forward_pre_hooks_with_kwargs _get_backward_hooks _get_backward_pre_hooks _get_name
_is_full_backward_hook _load_from_state_dict _load_state_dict_post_hooks _load_state_dict_pre_hooks
_maybe_warn_non_full_backward_hook _modules _named_members _non_persistent_buffers_set _parameters
_register_load_state_dict_pre_hook _register_state_dict_hook _replicate_for_data_parallel
_save_to_state_dict _slow_forward _state_dict_hooks _state_dict_pre_hooks _version _wrapped_call_impl
add_module apply bfloat16 buffers call_super_init children compile cpu cuda double dump_patches eval
extra_repr float forward get_buffer get_extra_state get_parameter get_submodule half ipu
load_state_dict modules mtia named_buffers named_children named_modules named_parameters parameters
register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
register_full_backward_hook register_full_backward_pre_hook register_load_state_dict_post_hook
register_load_state_dict_pre_hook register_module register_parameter register_state_dict_post_hook
register_state_dict_pre_hook requires_grad_ set_extra_state set_submodule share_memory state_dict to
to_empty train training type xpu zero_grad
""".split())
MODULE_ATTRIBUTES = TORCH_MODULE_ATTRIBUTES | GENERATED_ATTRIBUTES
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


class _Builder:
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

    # ------------------------------------------------------------ names
    def _define(self, name: ast.Name) -> None:
        if name.id in FUNCTIONS:
            raise ReservedNameError(f"'{name.id}' is a built-in function and cannot be redefined", name.span)
        if name.id in self.defined:
            first = self.defined[name.id]
            raise RedefinitionError(f"'{name.id}' is already defined (at line {first.line})", name.span,
                                    notes=((f"first definition of '{name.id}'", first),))
        self.defined[name.id] = name.span

    def collect(self) -> None:
        statements = self.program.statements
        for stmt in statements:  # inputs first: an assignment to one may come before its declaration
            if isinstance(stmt, ast.InputDecl):
                for decl in stmt.decls:
                    self._define(decl.name)
                    if decl.dims is not None and len(decl.dims) != 1:
                        raise ShapeError(f"input '{decl.name.id}' must be a scalar or a vector [n], "
                                         f"not {list(decl.dims)}", decl.span)
                    self.inputs[decl.name.id] = decl
        for stmt in statements:
            if isinstance(stmt, (ast.ParamDecl, ast.FixedDecl)):
                for decl in stmt.decls:
                    self._declare_value(decl, isinstance(stmt, ast.FixedDecl))
            elif isinstance(stmt, ast.Def):
                self._define(stmt.name)
                seen = set()
                for p in stmt.params:
                    if p.id in FUNCTIONS:
                        raise ReservedNameError(f"'{p.id}' is a built-in function and cannot be redefined", p.span)
                    if p.id in seen:
                        raise RedefinitionError(f"argument '{p.id}' appears twice in '{stmt.name.id}'", p.span)
                    seen.add(p.id)
                self.defs[stmt.name.id] = stmt
            elif isinstance(stmt, ast.Assign):
                name = stmt.target.name
                if name.id in self.inputs:
                    raise InputAssignmentError(
                        f"cannot assign to '{name.id}': it is an input", name.span,
                        notes=((f"'{name.id}' is declared as an input here", self.inputs[name.id].name.span),))
                self._define(name)
                self.assigns[name.id] = stmt
            elif isinstance(stmt, ast.Init):
                self.inits.append(stmt)
            elif isinstance(stmt, (ast.Use, ast.Block)):
                from .blocks import collect_block_statement
                collect_block_statement(self, stmt)
            elif isinstance(stmt, ast.OutputDecl):
                if self.output_decl is not None:
                    raise RedefinitionError("outputs are already declared", stmt.span,
                                            notes=(("first output line", self.output_decl.span),))
                self.output_decl = stmt
        for name, stmt in list(self.assigns.items()):
            if isinstance(stmt.expr, ast.Name) and self._is_function(stmt.expr.id):
                if stmt.target.dims is not None:
                    raise KindError(f"'{name}' names the function '{stmt.expr.id}' and cannot have a size",
                                    stmt.target.span)
                self.aliases[name] = stmt.expr
                del self.assigns[name]

    def _declare_value(self, decl: ast.Decl, fixed: bool) -> None:
        """A `param` or `fixed` declaration: a value is trained or fixed, never both."""
        name = decl.name
        other = self.param_decls if fixed else self.fixed_decls
        if name.id in other:
            first = other[name.id].name.span
            was, now = ("a parameter", "fixed") if fixed else ("fixed", "a parameter")
            raise RedefinitionError(f"'{name.id}' is declared {was} (at line {first.line}) and cannot also be "
                                    f"{now}: a value is trained (param) or fixed, not both", name.span,
                                    notes=((f"'{name.id}' is declared {was} here", first),))
        self._define(name)
        if fixed:
            if name.id in MODULE_ATTRIBUTES:
                raise ReservedNameError(f"'{name.id}' cannot be a fixed value's name: it would shadow the "
                                        f"torch.nn.Module attribute of that name", name.span)
            self.fixed_decls[name.id] = decl
        else:
            self.param_decls[name.id] = decl

    def _is_function(self, name: str) -> bool:
        """Whether a name means a function: a built-in, a def, or a chain of `g = f` lines ending in one."""
        seen = set()
        while name not in seen:  # a loop, not recursion: `g = h; h = g` is a cycle of nodes, not an alias
            if name in FUNCTIONS or name in self.defs or name in self.aliases:
                return True
            stmt = self.assigns.get(name)
            if stmt is None or not isinstance(stmt.expr, ast.Name) or stmt.target.dims is not None:
                return False
            seen.add(name)
            name = stmt.expr.id
        return False

    def resolve_function(self, name: ast.Name) -> str:
        """Follow aliases to a built-in or user-defined function name."""
        while name.id in self.aliases:  # _is_function admitted only chains that end in a function
            name = self.aliases[name.id]
        if name.id in FUNCTIONS or name.id in self.defs:
            return name.id
        if name.id in self.assigns or name.id in self.inputs or name.id in self.param_decls \
                or name.id in self.fixed_decls:
            raise KindError(f"'{name.id}' is a value, not a function", name.span)
        import difflib  # only on this error path

        known = sorted(set(FUNCTIONS) | set(self.defs) | set(self.aliases))
        close = difflib.get_close_matches(name.id, known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else "; define it with 'def'"
        raise UnknownFunctionError(f"unknown function '{name.id}'{hint} (built-in: {', '.join(sorted(FUNCTIONS))})",
                                   name.span)

    def _value_kind(self, name: str, local: frozenset) -> str:
        if name in local:
            return "local"
        if name in ast.CONSTANTS:
            return "const"
        if name in self.inputs:
            return "input"
        if name in self.fixed_decls:
            return "fixed"
        if name in self.assigns:
            return "node"
        if name in self.aliases or name in FUNCTIONS or name in self.defs or name in self.instances \
                or name in self.block_defs:
            return "function"
        return "param"

    def find_params(self) -> None:
        """Every free name is a parameter; order is first textual appearance outside init lines."""
        def see(name: ast.Name):
            if name.id not in self.params:
                if name.id in MODULE_ATTRIBUTES:
                    raise ReservedNameError(f"'{name.id}' cannot be a parameter name: it would shadow the "
                                            f"torch.nn.Module attribute of that name", name.span)
                self.params[name.id] = name.span

        def scan(expr, local):
            for node in ast.walk(expr):
                if isinstance(node, ast.Name) and self._value_kind(node.id, local) == "param":
                    see(node)

        for stmt in self.program.statements:
            if isinstance(stmt, ast.ParamDecl):
                for decl in stmt.decls:
                    see(decl.name)
            elif isinstance(stmt, ast.Def):
                scan(stmt.body, frozenset(p.id for p in stmt.params))
            elif isinstance(stmt, ast.Assign) and stmt.target.name.id in self.assigns:
                scan(stmt.expr, frozenset())

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

    def what_is(self, name: str) -> str | None:
        """What a name means, for messages about a name used in the wrong place."""
        if name in self.params:
            return "a parameter"
        if name in self.fixed_decls:
            return "a fixed value"
        return ("an input" if name in self.inputs else "a node" if name in self.assigns
                else "a function" if self._is_function(name) else None)


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
