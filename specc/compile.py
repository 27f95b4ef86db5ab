"""IR → PyTorch: readable standalone source, and the ``nn.Module`` built from exactly that source.

One code generator serves both ``specc compile`` and ``specc.load``, so the
file a user imports and the module specc hands back cannot drift apart.
Spec identifiers reach the generated code only as checked Python identifiers
(renamed by :func:`python_name` where Python needs it) or as ``repr`` string
literals; numbers only as literals this module formats. The spec text itself
is never evaluated.
"""
from __future__ import annotations

import hashlib
import keyword
import linecache
import re
import types

import networkx as nx
import torch.nn

from .functions import FUNCTIONS
from .graph import _ordered, source_text
from .inits import INITIALIZERS, number

# Names the generated module itself uses; a spec name equal to one is renamed.
GENERATED_NAMES = frozenset({"self", "torch", "nn", "F", "math", "NamedTuple", "Outputs", "batch_size",
                             "check_input", "getattr", "__debug__"})

_ATOM, _POW, _UNARY, _MUL, _ADD = 100, 90, 80, 70, 60
_BINARY = {"add": ("+", _ADD), "sub": ("-", _ADD), "mul": ("*", _MUL), "div": ("/", _MUL)}


def python_name(name: str, taken: set[str] | frozenset = frozenset()) -> str:
    """The Python identifier for a spec name.

    The spec name itself, unless Python or the generated code needs another:
    a name starting with ``__`` gets the prefix ``spec`` (Python would mangle it
    inside a class); a keyword or a name the generated code uses (``self``,
    ``torch``, ``nn``, ``F``, ``math`` …) gets a trailing ``_``; and a trailing
    ``_`` is added until the name differs from every name already taken.
    """
    candidate = "spec" + name if name.startswith("__") else name
    if keyword.iskeyword(candidate) or candidate in GENERATED_NAMES:
        candidate += "_"
    while candidate in taken:
        candidate += "_"
    return candidate


def field_name(name: str, taken: set[str]) -> str:
    """A NamedTuple field for an output: as :func:`python_name`, and ``out`` before a leading ``_``."""
    return python_name("out" + name if name.startswith("_") else name, taken)


def class_name(file: str) -> str:
    """A CamelCase class name from a spec's file name (``two_io.spec`` → ``TwoIo``)."""
    stem = re.sub(r"\.spec$", "", file.replace("\\", "/").rsplit("/", 1)[-1])
    words = re.findall(r"[A-Za-z0-9]+", stem)
    name = "".join(w[:1].upper() + w[1:] for w in words)
    if not name or name[0].isdigit():
        name = "Spec" + name
    if not name.isascii() or keyword.iskeyword(name) or name in GENERATED_NAMES or name == "SpecModel":
        name += "Model"
    return name


def comment(text: str) -> str:
    """Text safe inside a ``#`` comment: control and line-breaking characters are escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _attribute(name: str) -> str:
    """``self.W1``, or ``getattr(self, 'class')`` where attribute syntax would not work."""
    plain = not keyword.iskeyword(name) and not name.startswith("__")
    return f"self.{name}" if plain else f"getattr(self, {name!r})"


class _Writer:
    def __init__(self, graph: nx.DiGraph):
        self.g = graph
        self.locals: dict[str, str] = {}  # node id → Python local name
        self.needs_batch = False
        taken: set[str] = set()
        spec_names = graph.graph["inputs"] + [n for n in _ordered(graph)
                                              if graph.nodes[n]["kind"] == "op" and graph.nodes[n]["name"]]
        for name in sorted(spec_names, key=lambda n: python_name(n) != n):  # unchanged names first
            self.locals[name] = python_name(name, taken)
            taken.add(self.locals[name])
        self.taken = taken

    # ------------------------------------------------------------ expressions
    def code(self, node: str) -> tuple[str, int]:
        if node in self.locals:
            return self.locals[node], _ATOM
        attrs = self.g.nodes[node]
        if attrs["kind"] == "param":
            return _attribute(node), _ATOM
        if attrs["kind"] == "const":
            text = f"math.{attrs['name']}" if attrs.get("name") else number(attrs["value"])
            return text, _ATOM
        return self.expression(node)

    def operand(self, node: str, least: int, vector_partner: bool = False) -> str:
        text, prec = self.code(node)
        attrs = self.g.nodes[node]
        if vector_partner and attrs["batched"] and attrs["shape"] == ():
            text, prec = f"{_paren(text, prec, _ATOM)}.unsqueeze(-1)", _ATOM  # [B] → [B, 1] to meet [B, n]
        return _paren(text, prec, least)

    def expression(self, node: str) -> tuple[str, int]:
        attrs = self.g.nodes[node]
        op, args = attrs["op"], attrs["args"]
        shapes = [self.g.nodes[a]["shape"] for a in args]
        if op in _BINARY:
            symbol, prec = _BINARY[op]
            left = self.operand(args[0], prec, len(shapes[1]) > 0)
            right = self.operand(args[1], prec + 1, len(shapes[0]) > 0)
            return f"{left} {symbol} {right}", prec
        if op == "pow":
            left = self.operand(args[0], _POW + 1, len(shapes[1]) > 0)
            return f"{left} ** {self.operand(args[1], _UNARY, len(shapes[0]) > 0)}", _POW
        if op == "neg":
            return f"-{self.operand(args[0], _UNARY)}", _UNARY
        if op == "matmul":
            if len(shapes[0]) == 2:  # A·v is v @ A.T on a batch of rows, as nn.Linear computes it
                vector = self.operand(args[1], _MUL, vector_partner=True)
                return f"{vector} @ {self.operand(args[0], _ATOM)}.T", _MUL
            return f"({self.operand(args[0], _MUL)} * {self.operand(args[1], _MUL + 1)}).sum(-1)", _ATOM
        if op == "concat":
            return f"torch.cat([{', '.join(self.concat_part(a, attrs['batched']) for a in args)}], dim=-1)", _ATOM
        text, prec = self.code(args[0])
        if op in ("identity", "linear"):
            return text, prec
        return FUNCTIONS[op].code([text]), _ATOM

    def concat_part(self, node: str, batched: bool) -> str:
        attrs = self.g.nodes[node]
        text, prec = self.code(node)
        if attrs["batched"] or not batched:
            return f"{_paren(text, prec, _ATOM)}.unsqueeze(-1)" if attrs["shape"] == () and attrs["batched"] \
                else (f"{_paren(text, prec, _ATOM)}.reshape(1)" if attrs["shape"] == () else text)
        self.needs_batch = True  # a per-model value joined to per-sample ones is repeated for each sample
        return f"{_paren(text, prec, _ATOM)}.expand(batch_size, {attrs['shape'][0] if attrs['shape'] else 1})"

    # ------------------------------------------------------------ statements
    def forward_lines(self) -> list[str]:
        g = self.g
        outputs = g.graph["outputs"]
        needed = set(outputs).union(*(nx.ancestors(g, o) for o in outputs))
        consumers = {n: sum(len(d["positions"]) for _, _, d in g.out_edges(n, data=True)) for n in g}
        lines = []
        for node in _ordered(g):
            attrs = g.nodes[node]
            if node not in needed or attrs["kind"] != "op":
                continue
            if attrs["name"]:
                text, _ = self.expression(node)
                stmt = source_text(g.graph["source"], attrs["stmt_span"])
                lines.append(f"{self.locals[node]} = {text}  # line {attrs['stmt_span'].line}: {comment(stmt)}")
            elif consumers[node] > 1:  # used twice (e.g. a function argument): compute it once
                name = python_name(attrs.get("hint") or "t", self.taken)
                self.taken.add(name)
                text, _ = self.expression(node)
                lines.append(f"{name} = {text}  # {comment(attrs['label'])}")
                self.locals[node] = name
        returned = []
        for name in outputs:
            text, prec = self.code(name)
            attrs = g.nodes[name]
            if g.graph["inputs"] and not attrs["batched"]:  # same value for every sample
                self.needs_batch = True
                text = f"{_paren(text, prec, _ATOM)}.expand(batch_size{', -1' * len(attrs['shape'])})"
            returned.append(text)
        if len(returned) == 1:
            lines.append(f"return {returned[0]}")
        else:
            lines.append(f"return Outputs({', '.join(returned)})")
        checks = [f"check_input({self.locals[i]}, {i!r}, {g.nodes[i]['shape'][0] if g.nodes[i]['shape'] else None})"
                  for i in g.graph["inputs"]]
        if self.needs_batch:
            checks.append(f"batch_size = {self.locals[g.graph['inputs'][0]]}.shape[0]")
        return checks + lines


def _paren(text: str, prec: int, least: int) -> str:
    return text if prec >= least else f"({text})"


def _source_literal(text: str, indent: str) -> str:
    lines = text.splitlines(keepends=True) or [""]
    if len(lines) == 1:
        return repr(lines[0])
    return "(\n" + "".join(f"{indent}    {line!r}\n" for line in lines) + f"{indent})"


_CHECK_INPUT = '''

def check_input(value: torch.Tensor, name: str, size: int | None) -> None:
    """Raise a clear error unless value has shape [B, size] (or [B] for a scalar input)."""
    expected = [] if size is None else [size]
    if value.dim() != 1 + len(expected) or list(value.shape[1:]) != expected:
        wanted = "[B" + "".join(f", {s}" for s in expected) + "]"
        raise ValueError(f"input {name!r} must have shape {wanted}, got {list(value.shape)}")
'''


def emit_source(graph: nx.DiGraph) -> str:
    """Standalone PyTorch source for the spec: imports only torch and the standard library."""
    g = graph
    file = g.graph["file"]
    cls = class_name(file)
    writer = _Writer(g)
    forward = writer.forward_lines()
    inputs = [writer.locals[i] for i in g.graph["inputs"]]
    outputs = g.graph["outputs"]

    def signature(names):
        return ", ".join(f"{n}{list(g.nodes[n]['shape'])}" if g.nodes[n]["shape"] else n for n in names)

    out = [f"# Generated by specc from {comment(file)}. Edit the spec and run `specc compile` again,",
           "# rather than editing this file.", "from __future__ import annotations", "", "import math",
           "from typing import NamedTuple", "", "import torch", "from torch import nn",
           "from torch.nn import functional as F", _CHECK_INPUT]
    if len(outputs) > 1:
        taken: set[str] = set()
        out += ["", "class Outputs(NamedTuple):"]
        for name in outputs:
            field = field_name(name, taken)
            taken.add(field)
            out.append(f"    {field}: torch.Tensor" + (f"  # {comment(name)}" if field != name else ""))
        out.append("")
    out += ["", f"class {cls}(nn.Module):",
            f'    """{comment(signature(g.graph["inputs"]))} -> {comment(signature(outputs))}"""', "",
            f"    spec_file = {file!r}",
            f"    spec_inputs = {tuple(g.graph['inputs'])!r}",
            f"    spec_outputs = {tuple(outputs)!r}",
            f"    spec_source = {_source_literal(g.graph['source'], '    ')}", "",
            "    def __init__(self) -> None:", "        super().__init__()"]
    for name in g.graph["params"]:
        attrs = g.nodes[name]
        shape = ", ".join(map(str, attrs["shape"])) if attrs["shape"] else "()"
        created = f"nn.Parameter(torch.empty({shape}))"
        role = {"weight": "  # weight", "bias": "  # bias"}.get(attrs["role"], "")
        out.append(f"        self.{name} = {created}{role}" if _attribute(name).startswith("self.")
                   else f"        self.register_parameter({name!r}, {created}){role}")
    out += ["        self.reset_parameters()", "", "    def reset_parameters(self) -> None:",
            "        # In order of first appearance, so a fixed torch.manual_seed gives fixed numbers."]
    for name in g.graph["params"]:
        attrs = g.nodes[name]
        out.append("        " + INITIALIZERS[attrs["init"]].code(_attribute(name), attrs["init_args"]))
    if not g.graph["params"]:
        out.append("        pass")
    args = "".join(f", {a}: torch.Tensor" for a in inputs)
    result = "Outputs" if len(outputs) > 1 else "torch.Tensor"
    out += ["", f"    def forward(self{args}) -> {result}:"]
    out += ["        " + line for line in forward]
    return "\n".join(out) + "\n"


def load_module(graph: nx.DiGraph) -> torch.nn.Module:
    """An instance of the class :func:`emit_source` writes, loaded the way ``import`` would load that file."""
    source = emit_source(graph)
    digest = hashlib.sha1(source.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    filename = f"<specc {digest}>"
    module = types.ModuleType(f"specc_generated_{digest}")
    module.__file__ = filename
    # Registered so that inspect.getsource, tracebacks and torch.compile can see the generated lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    exec(compile(source, filename, "exec"), module.__dict__)  # our generated code, not spec text
    return getattr(module, class_name(graph.graph["file"]))()
