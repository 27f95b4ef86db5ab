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
import math
import re
import types

import networkx as nx
import torch.nn

from .functions import ARITHMETIC, FUNCTIONS, evaluate
from .graph import _ordered, needed, source_text
from .inits import INITIALIZERS, number

# Names the generated module itself uses; a spec name equal to one is renamed.
GENERATED_NAMES = frozenset({"self", "torch", "nn", "F", "math", "NamedTuple", "Outputs", "batch_size",
                             "check_input", "getattr", "__debug__"})

_ATOM, _POW, _UNARY, _MUL, _ADD = 100, 90, 80, 70, 60
_MAX_HEIGHT = 50  # operations nested in one line of forward before a temporary takes over
_BINARY = {"add": ("+", _ADD), "sub": ("-", _ADD), "mul": ("*", _MUL), "div": ("/", _MUL)}
# Python's own float arithmetic, where it can stand for PyTorch's (not pow: 2^0.5 rounds differently).
_PYTHON_ARITHMETIC = {op: fn for op, fn in ARITHMETIC.items() if op != "pow"} | {
    "identity": lambda v: v, "linear": lambda v: v}


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
        self.numbers: dict[str, float | None] = {}

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
        return self.definition(node)

    def definition(self, node: str) -> tuple[str, int]:
        """The code computing an operation node (its right-hand side, for a named one)."""
        if self._as_literal(node):
            return _literal(self.number(node))
        return self.expression(node)

    def number(self, node: str) -> float | None:
        """The value of a node computed from numbers alone (no input, no parameter), else None.

        Computed once, here, as PyTorch computes it in float64: ``sqrt(2)`` or
        ``1/0`` in a spec mean what they would mean on a tensor.
        """
        if node not in self.numbers:
            attrs = self.g.nodes[node]
            value = None
            if attrs["kind"] == "const":
                value = float(attrs["value"])
            elif attrs["kind"] == "op":
                values = [self.number(a) for a in attrs["args"]]
                if None not in values:
                    value = evaluate(attrs["op"], *values)
            self.numbers[node] = value
        return self.numbers[node]

    def _as_literal(self, node: str) -> bool:
        """Numbers-only arithmetic stays readable (``2 * math.pi``) where Python's float arithmetic gives
        exactly the value PyTorch would; anything else (a function call, ``1/0``, ``2^0.5``) is written
        as its computed value."""
        value = self.number(node)
        attrs = self.g.nodes[node]
        if value is None or attrs["kind"] != "op":
            return False
        if attrs["op"] not in _PYTHON_ARITHMETIC:
            return True
        try:
            python = _PYTHON_ARITHMETIC[attrs["op"]](*(self.number(a) for a in attrs["args"]))
        except ArithmeticError:
            return True
        return not (python == value or (math.isnan(python) and math.isnan(value)))

    def tensor(self, node: str, shape: tuple) -> str:
        """The node's code as a tensor of ``shape``: a number becomes a tensor like the module's own."""
        text, prec = self.code(node)
        if self.number(node) is None:
            return _paren(text, prec, _ATOM)
        reference = self.reference()
        dims = "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"
        if "batch_size" in shape:
            self.needs_batch = True
        if reference is None:  # a spec of numbers alone: PyTorch's default dtype
            return f"torch.full({dims}, {text}, dtype=torch.get_default_dtype())"
        return f"{reference}.new_full({dims}, {text})"

    def reference(self) -> str | None:
        """A tensor whose dtype and device the module computes in: the first input, else the first parameter."""
        if self.g.graph["inputs"]:
            return self.locals[self.g.graph["inputs"][0]]
        if self.g.graph["params"]:
            return _attribute(self.g.graph["params"][0])
        return None

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
            return self.product(args[0], args[1])
        if op == "concat":
            return f"torch.cat([{', '.join(self.concat_part(a, attrs['batched']) for a in args)}], dim=-1)", _ATOM
        text, prec = self.code(args[0])
        if op in ("identity", "linear"):
            return text, prec
        return FUNCTIONS[op].code([text]), _ATOM

    def product(self, left: str, right: str) -> tuple[str, int]:
        """``A·v`` and ``u·v``; a scalar on the right counts as a vector of size 1."""
        matrix = len(self.g.nodes[left]["shape"]) == 2
        scalar = self.g.nodes[right]
        if matrix and scalar["shape"] == () and not scalar["batched"]:  # A[m, 1]·s is s times A's column
            return f"{self.operand(left, _ATOM)}[:, 0] * {self.operand(right, _MUL + 1)}", _MUL
        if matrix:  # A·v is v @ A.T on a batch of rows, as nn.Linear computes it
            return f"{self.operand(right, _MUL, vector_partner=True)} @ {self.operand(left, _ATOM)}.T", _MUL
        return (f"({self.operand(left, _MUL, vector_partner=True)} * "
                f"{self.operand(right, _MUL + 1, vector_partner=True)}).sum(-1)"), _ATOM

    def concat_part(self, node: str, batched: bool) -> str:
        """One part of a concat as a [B, n] tensor (or [n] when nothing in the concat varies per sample)."""
        attrs = self.g.nodes[node]
        size = attrs["shape"][0] if attrs["shape"] else 1
        if batched and not attrs["batched"]:
            # a per-model value joined to per-sample ones is repeated for each sample
            self.needs_batch = True
            if self.number(node) is not None:
                return self.tensor(node, ("batch_size", 1))
            return f"{self.tensor(node, ())}.expand(batch_size, {size})"
        if attrs["shape"]:
            return self.code(node)[0]
        if attrs["batched"]:
            return f"{self.tensor(node, ())}.unsqueeze(-1)"
        return self.tensor(node, (1,)) if self.number(node) is not None else f"{self.tensor(node, ())}.reshape(1)"

    # ------------------------------------------------------------ statements
    def forward_lines(self) -> list[str]:
        g = self.g
        outputs = g.graph["outputs"]
        wanted = needed(g)
        consumers = {n: sum(len(d["positions"]) for _, _, d in g.out_edges(n, data=True)) for n in g}
        height: dict[str, int] = {}  # how deep the code written so far for an unnamed node nests
        lines = []
        for node in _ordered(g):
            attrs = g.nodes[node]
            self.number(node)  # in dependency order, so that computing numbers never recurses deeply
            if node not in wanted or attrs["kind"] != "op":
                continue
            height[node] = 1 + max((height.get(a, 0) for a in attrs["args"] if a not in self.locals), default=0)
            if attrs["name"]:
                text, _ = self.definition(node)
                stmt = source_text(g.graph["source"], attrs["stmt_span"])
                lines.append(f"{self.locals[node]} = {text}  # line {attrs['stmt_span'].line}: {comment(stmt)}")
            elif consumers[node] > 1 or height[node] >= _MAX_HEIGHT:
                # used twice (e.g. a function argument): compute it once; or too deep for one line
                name = python_name(attrs.get("hint") or "t", self.taken)
                self.taken.add(name)
                text, _ = self.definition(node)
                lines.append(f"{name} = {text}  # {comment(attrs['label'])}")
                self.locals[node] = name
        returned = []
        for name in outputs:
            attrs = g.nodes[name]
            if g.graph["inputs"] and not attrs["batched"]:  # same value for every sample
                self.needs_batch = True
                text = self.tensor(name, ("batch_size",)) if self.number(name) is not None else \
                    f"{self.tensor(name, ())}.expand(batch_size{', -1' * len(attrs['shape'])})"
            else:
                text = self.tensor(name, ())
            returned.append(text)
        if len(returned) == 1:
            lines.append(f"return {returned[0]}")
        else:
            lines.append(f"return Outputs({', '.join(returned)})")
        checks = []
        for i in g.graph["inputs"]:  # every input after the first has the first one's batch size
            size = g.nodes[i]["shape"][0] if g.nodes[i]["shape"] else None
            batch = f", {self.locals[g.graph['inputs'][0]]}.shape[0]" if checks else ""
            checks.append(f"check_input({self.locals[i]}, {i!r}, {size}{batch})")
        if self.needs_batch:
            checks.append(f"batch_size = {self.locals[g.graph['inputs'][0]]}.shape[0]")
        return checks + lines


def _literal(value: float) -> tuple[str, int]:
    text = number(value)
    return text, (_UNARY if text.startswith("-") else _ATOM)


def _paren(text: str, prec: int, least: int) -> str:
    return text if prec >= least else f"({text})"


def _source_literal(text: str, indent: str) -> str:
    lines = text.splitlines(keepends=True) or [""]
    if len(lines) == 1:
        return repr(lines[0])
    return "(\n" + "".join(f"{indent}    {line!r}\n" for line in lines) + f"{indent})"


_CHECK_INPUT = '''

def check_input(value: torch.Tensor, name: str, size: int | None, batch: int | None = None) -> None:
    """Raise a clear error unless value has shape [B, size] ([B] for a scalar input), B = batch if given."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"input {name!r} must be a torch.Tensor, got {type(value).__name__}")
    expected = [] if size is None else [size]
    if value.dim() != 1 + len(expected) or list(value.shape[1:]) != expected or batch not in (None, value.shape[0]):
        wanted = "[" + ("B" if batch is None else str(batch)) + "".join(f", {s}" for s in expected) + "]"
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
