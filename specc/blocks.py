"""Reusable blocks: ``block NAME { … }``, ``enc = use "encoder.spec"`` / ``r = use res``, ``enc(x)``.

Lowering flattens: each call of an instance inlines the block's body into the one IR, as a call of
a ``def`` is inlined, so inference (sizes flow both ways across the boundary), the C criterion, the
NumPy tape and the limits see ordinary nodes. An instance's parameters are one node each
(``enc.W1``), shared by all its calls. docs/ir.md ("Blocks") lists the attributes written here.

A used file is read and parsed once per build (:class:`Library`), relative to the using file's
folder (the current folder for spec text); a file or block that uses itself, directly or through
others, is a :class:`CycleError` naming the chain. An error inside a used file is reported in that
file, with a note at each use site on the way (``SpecError.sources`` carries the files' texts).
"""
from __future__ import annotations

import difflib
import os

from . import parser as ast
from .errors import (ArityError, CycleError, KindError, ReservedNameError, SpecError, UnknownNameError)
from .lower import MODULE_ATTRIBUTES, _Builder, source_text



def used_path(written: str, using_file: str) -> str:
    """The file ``use "written"`` names: relative to the using file's folder (for spec text given as a
    string, ``<spec>``, to the current folder)."""
    folder = os.path.dirname(using_file) if using_file != "<spec>" else ""
    return os.path.normpath(os.path.join(folder, written))

class Instance:
    """One ``use``: its builder (the block's names), outputs and where it is written."""

    def __init__(self, name: str, path: str, parent: str | None, block: str, file: str, use: ast.Use,
                 builder: "_BlockBuilder"):
        self.name, self.path, self.parent, self.block, self.file = name, path, parent, block, file
        self.use, self.builder = use, builder
        self.outputs: list[ast.Decl] = []
        self.calls: list[str] = []


class Library:
    """What one build shares: the used files (parsed once), the instances and calls, the chain of
    files and blocks being instantiated (for cycles)."""

    def __init__(self, root: _Builder):
        self.root = root
        self.limits = getattr(root, "limits", None)
        self.programs: dict[str, ast.Program] = {}  # file name → its parse
        self.sources: dict[str, str] = {root.program.file: root.program.source}
        self.instances: dict[str, Instance] = {}  # by path, in use order (outer first)
        self.calls: dict[str, dict] = {}
        self.chain: list[tuple[tuple[str, str | None], ast.Use | None]] = [((root.program.file, None), None)]

    # ------------------------------------------------------------ files
    def program(self, use: ast.Use, using_file: str) -> ast.Program:
        """The parse of the file a ``use`` names, relative to the using file's folder."""
        from .api import read_spec_file  # the one reader of spec files, with its checks
        from .limits import DEFAULT
        name = used_path(use.source.path, using_file)
        if name not in self.programs:
            try:
                text, name = read_spec_file(name)
            except SpecError as err:
                if err.span is None:
                    err.span = use.source.span
                raise
            self.sources[name] = ast.normalise_newlines(text[1:] if text.startswith("\ufeff") else text)
            self.programs[name] = ast.parse_program(text, name, self.limits or DEFAULT)
        return self.programs[name]

    def new_call(self, record: dict) -> str:
        call_id = f"c{len(self.calls) + 1}"
        self.calls[call_id] = record
        return call_id

    # ------------------------------------------------------------ the IR
    def describe(self, builder: _Builder, graph) -> None:
        """Graph attributes: parameters and fixed values in the module's order (own, then each
        instance's), and ``blocks``."""
        params, fixed = list(builder.params), list(builder.fixed_decls)
        for path, inst in self.instances.items():
            if not inst.calls:  # its body was never lowered: nothing would size or use its parameters
                raise SpecError(f"'{inst.name}' is never called: call it ({inst.name}(…)) or remove this line",
                                inst.use.span)
            params += [f"{path}.{p}" for p in inst.builder.params]
            fixed += [f"{path}.{f}" for f in inst.builder.fixed_decls]
        graph.graph.update(params=params, fixed=fixed)
        graph.graph["blocks"] = {
            "instances": {path: dict(name=inst.name, parent=inst.parent, block=inst.block, file=inst.file,
                                     span=inst.use.span, **{"class": None},
                                     inputs=list(inst.builder.inputs),
                                     outputs=[d.name.id for d in inst.outputs],
                                     params=[f"{path}.{p}" for p in inst.builder.params],
                                     fixed=[f"{path}.{f}" for f in inst.builder.fixed_decls],
                                     calls=list(inst.calls))
                          for path, inst in self.instances.items()},
            "calls": self.calls,
        }
        graph.graph["block_sources"] = dict(self.sources)  # each block's file text, for the classes' comments

    def apply_inits(self, graph) -> None:
        """Each instance's ``init`` lines, on its own parameters; then the classes `specc compile` writes."""
        from .inits import apply_init_lines
        for path, inst in self.instances.items():
            sub = inst.builder
            # The block's own view: its names, the same attribute dicts (so the inits land in the IR).
            view = _View({"params": list(sub.params), "fixed": list(sub.fixed_decls)},
                         {name: graph.nodes[f"{path}.{name}"] for name in (*sub.params, *sub.fixed_decls)})
            try:
                apply_init_lines(view, sub.inits, sub.what_is)
            except SpecError as err:
                raise self.noted(err, inst) from None
        assign_classes(graph)

    # ------------------------------------------------------------ errors
    def noted(self, err: SpecError, inst: Instance) -> SpecError:
        """An error inside an instance's file: quoted from that file, with a note at the use site."""
        err.sources.update(self.sources)
        if err.source is None and err.span is not None and err.span.file in self.sources:
            err.source = self.sources[err.span.file]
        what = f"'{inst.file}'" if isinstance(inst.use.source, ast.UseFile) else f"the block '{inst.block}'"
        note = (f"in {what}, used here as '{inst.name}'", inst.use.span)
        if note not in err.notes:
            err.notes += (note,)
        return err

    def check_ports(self, graph) -> None:
        """A block's class takes per-sample values, [B, n], as every spec's module does: an argument that
        is the same for every sample (a parameter, numbers alone) is refused where it is passed."""
        for call in graph.graph["blocks"]["calls"].values():
            for port, arg in zip(call["inputs"], call["args"]):
                if graph.nodes[port]["batched"]:
                    continue
                attrs = graph.nodes[arg]
                shown = attrs.get("name") or attrs.get("label") or arg
                instance = graph.graph["blocks"]["instances"][call["instance"]]["name"]
                raise KindError(f"'{shown}' is the same for every sample (it depends on no input), but a block's "
                                f"inputs vary per sample, as a spec's do: pass {instance}(…) a value computed "
                                "from an input", call["span"])

    def annotate(self, err: SpecError) -> None:
        """An error found after lowering (sizes, inits): the files' texts, and the use site of the
        instance whose file it points into."""
        err.sources.update(self.sources)
        if err.span is None or err.span.file == self.root.program.file:
            return
        if err.source is None:
            err.source = self.sources.get(err.span.file)
        for inst in self.instances.values():
            if inst.file == err.span.file:
                self.noted(err, inst)
                break


class _View:
    """An instance's parameters under its block's names, for the checks that read a graph."""

    def __init__(self, attributes: dict, nodes: dict):
        self.graph, self.nodes = attributes, nodes


class _BlockBuilder(_Builder):
    """The names of one instance's block; lowers a call of it into the root's nodes."""

    def __init__(self, program: ast.Program, parent: _Builder, path: str, library: Library):
        super().__init__(program)
        self.parent, self.path, self.library = parent, path, library
        self.nodes = parent.nodes  # one IR: every call's nodes go into the root's table
        self.limits = parent.limits
        self.call: str | None = None
        self.stmt = ""
        self.bound: dict[str, str] = {}
        self.lowered: dict[str, str] = {}
        self.lowering: list[str] = []

    def _new(self, stmt: str, **attrs) -> str:
        node = self.parent._new(stmt, **attrs)  # the root numbers every node of the statement
        self.nodes[node].update(block=self.path, call=self.call)
        return node

    def lower(self, expr, env, stmt, via):
        if isinstance(expr, ast.Name):
            kind = self._value_kind(expr.id, frozenset(env))
            if kind == "input":
                return self.bound[expr.id]
            if kind == "node":
                return self.node_of(expr.id)
            if kind in ("param", "fixed"):
                return f"{self.path}.{expr.id}"
        return super().lower(expr, env, stmt, via)

    def node_of(self, name: str) -> str:
        """The node of the block's statement ``name`` in the current call, lowered on first use."""
        if name in self.lowered:
            return self.lowered[name]
        stmt = self.assigns[name]
        if name in self.lowering:
            loop = self.lowering[self.lowering.index(name):] + [name]
            raise CycleError(f"'{name}' depends on itself: {' → '.join(loop)}", stmt.target.name.span)
        self.lowering.append(name)
        try:
            top = self.lower(stmt.expr, {}, self.stmt, None)
        finally:
            self.lowering.pop()
        attrs = self.nodes[top]
        if not (attrs.get("call") == self.call and attrs["kind"] == "op" and "local" not in attrs):
            top = self._new(self.stmt, kind="op", op="identity", args=(top,), span=stmt.expr.span,
                            label=source_text(self.program.source, stmt.expr.span), via=None)
            attrs = self.nodes[top]
        attrs.update(local=name, span=stmt.target.name.span, stmt_span=stmt.span, expr_span=stmt.expr.span,
                     dims=stmt.target.dims)
        self.lowered[name] = top
        return top


# ---------------------------------------------------------------- hooks called by specc/lower.py
def collect_block_statement(builder: _Builder, stmt) -> None:
    """A ``block`` definition or a ``use`` line met while collecting names."""
    if builder.library is None:
        builder.library = Library(builder)
    if not builder.block_defs:  # every block of the file, so that a use may come before its block
        for other in builder.program.statements:
            if isinstance(other, ast.Block):
                if other.name.id in builder.block_defs:
                    raise _redefined(other.name, builder.block_defs[other.name.id].name.span)
                builder.block_defs[other.name.id] = other
    if isinstance(stmt, ast.Block):
        if stmt.name.id in builder.defined or stmt.name.id in builder.instances:
            builder._define(stmt.name)  # reports the clash
        return
    builder._define(stmt.name)
    if stmt.name.id in MODULE_ATTRIBUTES:
        raise ReservedNameError(f"'{stmt.name.id}' cannot be an instance's name: it would shadow the "
                                "torch.nn.Module attribute of that name", stmt.name.span)
    library: Library = builder.library
    parent_path = getattr(builder, "path", None)
    path = f"{parent_path}.{stmt.name.id}" if parent_path else stmt.name.id
    file = builder.program.file
    if isinstance(stmt.source, ast.UseFile):
        program = library.program(stmt, file)
        key, block, block_defs = (program.file, None), _stem(program.file), {}
        body = ast.Program(tuple(s for s in program.statements), program.source, program.file)
        where = program.file
    else:
        found = builder.block_defs.get(stmt.source.id)
        if found is None:
            known = sorted(builder.block_defs)
            close = difflib.get_close_matches(stmt.source.id, known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else \
                (f" (blocks of this file: {', '.join(known)})" if known else "; define it with 'block "
                 f"{stmt.source.id} {{ … }}', or use a file: use \"{stmt.source.id}.spec\"")
            raise UnknownNameError(f"no block named '{stmt.source.id}' in this file{hint}", stmt.source.span)
        key, block, block_defs = (file, found.name.id), found.name.id, builder.block_defs
        body = ast.Program(found.statements, builder.program.source, file)
        where = file
    active = [k for k, _ in library.chain]
    if key in active:
        base = os.path.dirname(library.root.program.file)
        names = [_shown(k, base) for k in active[active.index(key):]] + [_shown(key, base)]
        raise CycleError(f"{'the block' if key[1] else 'the file'} '{names[0]}' uses itself: "
                         f"{' → '.join(names)}", stmt.source.span)
    library.chain.append((key, stmt))
    sub = _BlockBuilder(body, builder, path, library)
    sub.block_defs = dict(block_defs)
    inst = Instance(stmt.name.id, path, parent_path, block, where, stmt, sub)
    library.instances[path] = inst  # before the nested ones: outer first
    try:
        sub.collect()
        sub.find_params()
        _add_values(sub)
        inst.outputs = sub.outputs()
    except SpecError as err:
        raise library.noted(err, inst) from None
    finally:
        library.chain.pop()
    builder.instances[stmt.name.id] = inst


def _redefined(name: ast.Name, first) -> SpecError:
    from .errors import RedefinitionError
    return RedefinitionError(f"block '{name.id}' is already defined (at line {first.line})", name.span,
                             notes=((f"first definition of '{name.id}'", first),))


def _stem(file: str) -> str:
    return os.path.basename(file)[:-len(".spec")] if file.endswith(".spec") else os.path.basename(file)


def _shown(key: tuple[str, str | None], base: str) -> str:
    """A block by its name; a file relative to the folder of the spec being built."""
    return key[1] if key[1] else os.path.relpath(key[0], base or ".")


def _add_values(sub: _BlockBuilder) -> None:
    """The instance's parameters and fixed values: one node each, shared by all its calls."""
    for name, span in sub.params.items():
        decl = sub.param_decls.get(name)
        node = f"{sub.path}.{name}"
        sub.nodes[node] = dict(kind="param", name=node, stmt=None, span=span, order=len(sub.nodes),
                               dims=(decl.dims or ()) if decl else None, declared=decl is not None,
                               block=sub.path, local=name)
    for name, decl in sub.fixed_decls.items():
        node = f"{sub.path}.{name}"
        sub.nodes[node] = dict(kind="fixed", name=node, stmt=None, span=decl.name.span, order=len(sub.nodes),
                               dims=decl.dims, block=sub.path, local=name)


def lower_call(builder: _Builder, expr, env: dict, stmt: str, via: str | None) -> str:
    """``enc(x)`` or ``vae(x).mu``: the block's body inlined for this call; its output's node."""
    pick = None
    call = expr
    if isinstance(expr, ast.Member):
        call, pick = expr.operand, expr.name
        if not (isinstance(call, ast.Call) and call.func.id in builder.instances):
            raise KindError(f"'.{pick.id}' picks an output of a block's call (e.g. vae(x).mu); "
                            f"'{source_text(builder.program.source, call.span)}' is not such a call", expr.span)
    name = call.func.id
    if name not in builder.instances:
        raise KindError(f"'{name}' is a block, not an instance of one: write e.g. '{name}1 = use {name}' and "
                        f"call {name}1(…)", call.func.span)
    inst: Instance = builder.instances[name]
    sub = inst.builder
    args = [builder.lower(a, env, stmt, via) for a in call.args]
    inputs = list(sub.inputs.values())
    if len(args) != len(inputs):
        listed = ", ".join(d.name.id for d in inputs) or "none"
        raise ArityError(f"'{name}' takes {len(inputs)} input(s) ({listed}), not {len(args)}", call.span)
    outputs = [d.name.id for d in inst.outputs]
    if pick is not None and pick.id not in outputs:
        raise UnknownNameError(f"'{pick.id}' is not an output of '{name}' (outputs: {', '.join(outputs)})",
                               pick.span)
    if pick is None and len(outputs) > 1:
        raise KindError(f"'{name}' has {len(outputs)} outputs ({', '.join(outputs)}); pick one, e.g. "
                        f"{source_text(builder.program.source, call.span)}.{outputs[0]}", call.span)
    library: Library = builder.library
    record = dict(instance=inst.path, parent=getattr(builder, "call", None), stmt=stmt, span=call.span,
                  args=tuple(args), inputs=(), outputs={}, pick=None if pick is None else pick.id)
    call_id = library.new_call(record)
    inst.calls.append(call_id)
    saved = (sub.call, sub.stmt, sub.bound, sub.lowered)
    sub.call, sub.stmt, sub.bound, sub.lowered = call_id, stmt, {}, {}
    try:
        for decl, arg in zip(inputs, args):
            node = sub._new(stmt, kind="op", op="identity", args=(arg,), span=decl.name.span,
                            label=decl.name.id, via=None)
            sub.nodes[node].update(local=decl.name.id, port="input", dims=decl.dims or None)
            sub.bound[decl.name.id] = node
        for local in sub.assigns:
            sub.node_of(local)
        values = {}
        for decl in inst.outputs:
            node = sub.bound.get(decl.name.id) or sub.node_of(decl.name.id)
            if decl.dims is not None and sub.nodes[node].get("dims") is None:
                sub.nodes[node]["dims"] = decl.dims  # `output y[16]` sizes the instance's output
            values[decl.name.id] = node
        record.update(inputs=tuple(sub.bound[d.name.id] for d in inputs), outputs=values)
    except SpecError as err:
        raise library.noted(err, inst) from None
    finally:
        sub.call, sub.stmt, sub.bound, sub.lowered = saved
    return values[pick.id if pick is not None else outputs[0]]


# ---------------------------------------------------------------- classes
def assign_classes(graph) -> None:
    """The class `specc compile` writes for each instance: one per block and sizes (two instances of
    one block with the same sizes share it; other sizes get a second, numbered class)."""
    from .compile import class_name
    blocks = graph.graph["blocks"]
    instances = blocks["instances"]
    taken = {class_name(graph.graph["file"])}
    by_key: dict[tuple, str] = {}
    for path in sorted(instances, key=lambda p: -p.count(".")):  # the innermost first
        inst = instances[path]
        nested = tuple(sorted((p.rsplit(".", 1)[-1], instances[p]["class"]) for p in instances
                              if instances[p]["parent"] == path))
        first_call = blocks["calls"][inst["calls"][0]] if inst["calls"] else None
        sizes = tuple((graph.nodes[n]["local"], graph.nodes[n]["shape"], graph.nodes[n].get("init"),
                       tuple(graph.nodes[n].get("init_args", ()))) for n in inst["params"] + inst["fixed"])
        ports = () if first_call is None else tuple(
            (graph.nodes[n]["shape"], graph.nodes[n]["batched"])
            for n in (*first_call["inputs"], *first_call["outputs"].values()))
        key = (inst["file"], inst["block"], sizes, ports, nested)
        if key not in by_key:
            base = class_name(inst["block"] + ".spec")
            name, k = base, 1
            while name in taken:
                k += 1
                name = f"{base}{k}"
            taken.add(name)
            by_key[key] = name
        inst["class"] = by_key[key]
