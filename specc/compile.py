"""IR → PyTorch: readable standalone source, and the ``nn.Module`` built from exactly that source.

One code generator serves both ``specc compile`` and ``specc.load``, so the
file a user imports and the module specc hands back cannot drift apart.
Each operation is written from its row in :mod:`specc.ops`; a sum of matrix
products and a bias is written as ``F.linear``/``torch.addmm`` (one kernel per
product, the bias folded into the first), as a hand-tuned module would be.
Spec identifiers reach the generated code only as checked Python identifiers
(renamed by :func:`python_name` where Python needs it) or as ``repr`` string
literals; numbers only as literals this module formats. The spec text itself
is never evaluated. Writing source needs no torch; :func:`load_module` imports it.
"""
from __future__ import annotations

import hashlib
import linecache
import math
import re
import types

from .lower import collector_paused, source_text
from .inits import INITIALIZERS, number
from .ir import Graph
from .compile_runtime import _INPUT_ERROR, _LINEAR_SUM, _PARAMETER_PROPERTY
from .layout import WIDTH, code_lines, comment, input_guard, string_literal, wrap
from .notebook import add_display
from .ops import ADD, ATOM, MUL, OPS, PYTHON_ARITHMETIC, UNARY
from .reserved import _attribute, class_name, field_name, python_name
from .sequences import is_sequential

FORWARD_WIDTH = WIDTH - 8  # forward's body is indented by 8
_MAX_HEIGHT = 50  # operations nested in one line of forward before a temporary takes over


def _paren(text: str, prec: int, least: int) -> str:
    return text if prec >= least else f"({text})"


def _literal(value: float) -> tuple[str, int]:
    text = number(value)
    return text, (UNARY if text.startswith("-") else ATOM)


def dims_text(shape: tuple[int, ...]) -> str:
    return f"[{', '.join(map(str, shape))}]" if shape else ""


class _Writer:
    def __init__(self, graph: Graph):
        self.g = graph
        self.locals: dict[str, str] = {}  # node id → Python local name
        self.needs_batch = False
        taken: set[str] = set()
        spec_names = graph.graph["inputs"] + [n for n in graph.topological()
                                              if graph.nodes[n]["kind"] == "op" and graph.nodes[n]["name"]]
        for name in sorted(spec_names, key=lambda n: python_name(n) != n):  # unchanged names first
            self.locals[name] = python_name(name, taken)
            taken.add(self.locals[name])
        self.taken = taken
        self.numbers: dict[str, float | None] = {}
        self.helpers: set[str] = set()  # module-level helpers the forward uses
        self.input_error = _INPUT_ERROR  # the helper explaining refused inputs (sequences have their own)

    # ------------------------------------------------------------ expressions
    def code(self, node: str) -> tuple[str, int]:
        if node in self.locals:
            return self.locals[node], ATOM
        attrs = self.g.nodes[node]
        if attrs["kind"] in ("param", "fixed"):  # a fixed value is a buffer: self.mu
            return _attribute(node), ATOM
        if attrs["kind"] == "const":
            return (f"math.{attrs['name']}", ATOM) if attrs.get("name") else _literal(attrs["value"])
        return self.definition(node)

    def definition(self, node: str) -> tuple[str, int]:
        """The code computing an operation node (its right-hand side, for a named one)."""
        call = self.g.nodes[node].get("module_call")
        if call is not None:  # a block's submodule called: self.enc(x), self.vae(x).mu (specc/compile_blocks.py)
            attribute, args, field = call
            text = f"{attribute}({', '.join(self.tensor(a, ()) for a in args)})"
            return (f"{text}.{field}" if field else text), ATOM
        if self.g.nodes[node]["shape"] and self._scalar_value(node) is not None:
            return self.filled(node), ATOM
        if self._as_literal(node):
            return _literal(self.number(node))
        return self.expression(node)

    def number(self, node: str) -> float | None:
        """The value of a node computed from numbers alone (no input, no parameter), else None.

        Computed once, here, in float64 by the operation's NumPy rule: ``sqrt(2)`` in a spec means
        what it would mean on a float64 tensor (to the last bit for + - * / and sqrt). A number that
        is not finite never gets here: building the IR refuses it (specc/limits.py).
        """
        if node not in self.numbers:
            attrs = self.g.nodes[node]
            value = None
            if attrs["kind"] == "const":
                value = float(attrs["value"])
            elif attrs["kind"] == "op" and not attrs["shape"]:  # a constant vector (h0[4] = 0) is no number
                value = self._scalar_value(node)
            self.numbers[node] = value
        return self.numbers[node]

    def _scalar_value(self, node: str) -> float | None:
        """The number an operation computes from numbers alone, whatever its shape (``h0[4] = 0``: 0)."""
        if "module_call" in self.g.nodes[node] or not self.row(node).foldable:
            return None
        values = [self.number(a) for a in self.g.nodes[node]["args"]]
        return None if None in values else self.row(node).fold(*values)

    def filled(self, node: str) -> str:
        """A named constant broadcast to a vector, as a tensor like the module's own: ``x.new_zeros(4)``."""
        value, size = self._scalar_value(node), self.g.nodes[node]["shape"][0]
        maker = {0.0: "zeros", 1.0: "ones"}.get(value)
        reference = self.reference()
        if reference is None:  # a spec of numbers alone: PyTorch's default dtype
            return f"torch.{maker}({size})" if maker else \
                f"torch.full(({size},), {_literal(value)[0]}, dtype=torch.get_default_dtype())"
        return f"{reference}.new_{maker}({size})" if maker else f"{reference}.new_full(({size},), {_literal(value)[0]})"

    def _as_literal(self, node: str) -> bool:
        """Numbers-only arithmetic stays readable (``2 * math.pi``) where Python's float arithmetic gives
        exactly the folded value; anything else (a function call, ``2^0.5``) is written as its
        computed value."""
        value = self.number(node)
        attrs = self.g.nodes[node]
        if value is None or attrs["kind"] != "op":
            return False
        if attrs["op"] not in PYTHON_ARITHMETIC:
            return True
        try:
            python = PYTHON_ARITHMETIC[attrs["op"]](*(self.number(a) for a in attrs["args"]))
        except ArithmeticError:
            return True
        return not (python == value or (math.isnan(python) and math.isnan(value)))

    def tensor(self, node: str, shape: tuple) -> str:
        """The node's code as a tensor of ``shape``: a number becomes a tensor like the module's own."""
        text, prec = self.code(node)
        if self.number(node) is None:
            return _paren(text, prec, ATOM)
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
        if self.g.graph["params"] or self.g.graph["fixed"]:
            return _attribute((self.g.graph["params"] or self.g.graph["fixed"])[0])
        return None

    def operand(self, node: str, least: int, vector_partner: bool = False) -> str:
        text, prec = self.code(node)
        attrs = self.g.nodes[node]
        if vector_partner and attrs["batched"] and attrs["shape"] == ():
            text, prec = f"{_paren(text, prec, ATOM)}.unsqueeze(-1)", ATOM  # [B] → [B, 1] to meet [B, n]
        return _paren(text, prec, least)

    def row(self, node: str):
        """The node's row of the operation table, for its operands' shapes (``sum`` of a scalar is
        ``identity``)."""
        attrs = self.g.nodes[node]
        return OPS[attrs["op"]].on(*(self.g.nodes[a]["shape"] for a in attrs["args"]))

    def expression(self, node: str) -> tuple[str, int]:
        attrs = self.g.nodes[node]
        row, args = self.row(node), attrs["args"]
        if row.name in ("add", "sub"):
            fused = self.affine_sum(node)
            if fused is not None:
                return fused
        if row.shape == "product":
            return self.product(args[0], args[1])
        if row.shape == "concat":
            return row.code([self.concat_part(a, attrs["batched"]) for a in args]), row.precedence
        if row.shape == "broadcast":  # a per-sample scalar meeting a vector gets a unit axis
            shapes = [self.g.nodes[a]["shape"] for a in args]
            numbers = [self.number(a) is not None for a in args]
            # torch.maximum takes tensors only; torch.clamp numbers or tensors as bounds, not one of each
            as_tensors = row.tensors == "all" or (row.tensors == "mixed" and not all(numbers[1:]))
            parts = [self.tensor(a, ()) if as_tensors and numbers[i] else
                     self.operand(a, row.operand_precedence(i), any(s for j, s in enumerate(shapes) if j != i))
                     for i, a in enumerate(args)]
            return row.code(parts), row.precedence
        if row.passes_through:
            return self.code(args[0])
        units = self.g.nodes[args[0]]["shape"][0] if self.g.nodes[args[0]]["shape"] else 1
        return row.code([self.operand(a, row.operand_precedence(i)) for i, a in enumerate(args)],
                        units=units, attrs=attrs), row.precedence

    def _inline_terms(self, node: str) -> list[tuple[str, int]]:
        """The terms of a sum written in this line: inner sums held in a local, or numbers alone, are
        single terms."""
        return self.g.sum_terms(node, lambda n: n not in self.locals and self.number(n) is None)

    def _linear_term(self, node: str) -> bool:
        """A batched ``W·x``: a matrix times a per-sample vector, which F.linear/addmm compute."""
        attrs = self.g.nodes[node]
        if attrs.get("op") != "matmul" or node in self.locals:
            return False
        left, right = (self.g.nodes[a] for a in attrs["args"])
        return len(left["shape"]) == 2 and len(right["shape"]) == 1 and right["batched"]

    def affine_sum(self, node: str) -> tuple[str, int] | None:
        """``W·x + b (+ rest)`` as ``F.linear(x, W, b) + rest``, and ``W1·x1 + V1·x2 + b`` as
        ``linear_sum([x1, x2], [W1, V1], b)``: the bias inside the GEMM, and for several products the
        faster of one joined GEMM or one each, by batch size (see the generated helper). The
        parameters stay the spec's own. None when the sum has no per-sample product."""
        terms = self._inline_terms(node)
        products = [t for t in terms if self._linear_term(t[0])]
        if not products:
            return None
        rows = self.g.nodes[node]["shape"]
        bias = next((t for t in terms if t[1] > 0 and self.g.nodes[t[0]]["kind"] == "param"
                     and self.g.nodes[t[0]]["shape"] == rows), None)
        inputs, weights = [], []
        for term, sign in products:
            weight, x = self.g.nodes[term]["args"]
            inputs.append(self.operand(x, ATOM))
            weights.append(self.operand(weight, ATOM) if sign > 0 else f"-{self.operand(weight, UNARY)}")
        extra = f", {self.operand(bias[0], ATOM)}" if bias else ""
        if len(products) == 1:
            text = f"F.linear({inputs[0]}, {weights[0]}{extra})"
        else:
            self.helpers.add("linear_sum")
            text = f"linear_sum([{', '.join(inputs)}], [{', '.join(weights)}]{extra or ', None'})"
        prec = ATOM
        folded = {t for t, _ in products} | ({bias[0]} if bias else set())
        for term, sign in terms:
            if term not in folded:
                part = self.operand(term, ADD + 1, vector_partner=True)
                text, prec = f"{text} {'+' if sign > 0 else '-'} {part}", ADD
        return text, prec

    def product(self, left: str, right: str) -> tuple[str, int]:
        """``A·v`` and ``u·v``; a scalar on the right counts as a vector of size 1."""
        matrix = len(self.g.nodes[left]["shape"]) == 2
        scalar = self.g.nodes[right]
        if matrix and scalar["shape"] == () and not scalar["batched"]:  # A[m, 1]·s is s times A's column
            return f"{self.operand(left, ATOM)}[:, 0] * {self.operand(right, MUL + 1)}", MUL
        transposed = self.g.nodes[left].get("op") == "transpose" and left not in self.locals
        if matrix and transposed:  # Wᵀ·v is v @ W, not v @ W.T.T
            inner = self.g.nodes[left]["args"][0]
            return f"{self.operand(right, MUL, vector_partner=True)} @ {self.operand(inner, MUL + 1)}", MUL
        if matrix:  # A·v is v @ A.T on a batch of rows, as nn.Linear computes it
            return f"F.linear({self.operand(right, ATOM, vector_partner=True)}, {self.operand(left, ATOM)})", ATOM
        return (f"({self.operand(left, MUL, vector_partner=True)} * "
                f"{self.operand(right, MUL + 1, vector_partner=True)}).sum(-1)"), ATOM

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
        if is_sequential(g):  # a loop over time steps: specc/loops.py
            from .loops import loop_forward_lines
            return loop_forward_lines(self)
        wanted = g.ancestors(g.graph["outputs"])
        height: dict[str, int] = {}  # how deep the code written so far for an unnamed node nests
        lines = []
        for node in g.topological():
            attrs = g.nodes[node]
            self.number(node)  # in dependency order, so that computing numbers never recurses deeply
            if node not in wanted or attrs["kind"] != "op":
                continue
            height[node] = 1 + max((height.get(a, 0) for a in attrs["args"] if a not in self.locals), default=0)
            if attrs["name"]:
                text, _ = self.definition(node)
                statement = comment(source_text(g.graph["source"], attrs["stmt_span"]))
                lines += code_lines(f"{self.locals[node]} = {text}",
                                    f"line {attrs['stmt_span'].line}: {statement}")
            elif g.uses(node) > 1 or height[node] >= _MAX_HEIGHT:
                # used twice (e.g. a function argument): compute it once; or too deep for one line
                name = python_name(attrs.get("hint") or "t", self.taken)
                self.taken.add(name)
                text, _ = self.definition(node)
                lines += code_lines(f"{name} = {text}", comment(attrs["label"]))
                self.locals[node] = name
        returned = []
        for name in g.graph["outputs"]:
            attrs = g.nodes[name]
            if g.graph["inputs"] and not attrs["batched"]:  # same value for every sample
                self.needs_batch = True
                text = self.tensor(name, ("batch_size",)) if self.number(name) is not None else \
                    f"{self.tensor(name, ())}.expand(batch_size{', -1' * len(attrs['shape'])})"
            else:
                text = self.tensor(name, ())
            returned.append(text)
        lines += wrap(f"return {returned[0]}" if len(returned) == 1 else f"return Outputs({', '.join(returned)})",
                      width=FORWARD_WIDTH)
        head = self.input_check()
        if self.needs_batch:
            head.append(f"batch_size = {self.locals[g.graph['inputs'][0]]}.shape[0]")
        return head + lines

    def input_check(self) -> list[str]:
        """One condition over every input (shape, and one batch size for all), checked on each call
        unless ``check_inputs`` is switched off; the precise message is built only on failure."""
        names = [self.locals[i] for i in self.g.graph["inputs"]]
        if not names:
            return []
        inputs = self.g.graph["inputs"]
        first, size = names[0], lambda i: self.g.nodes[i]["shape"][0] if self.g.nodes[i]["shape"] else None
        # .shape builds a new torch.Size on each access (~0.3 µs): each test reads it at most twice.
        tests = [f"isinstance({name}, torch.Tensor)" for name in names]
        for k, (i, name) in enumerate(zip(inputs, names)):
            if k and size(i) == size(inputs[0]):  # the same shape as the first input, batch size included
                tests.append(f"{name}.shape == {first}.shape")
                continue
            tests += [f"{name}.dim() == 2", f"{name}.shape[1] == {size(i)}"] if size(i) else [f"{name}.dim() == 1"]
            if k:
                tests.append(f"{name}.shape[0] == {first}.shape[0]")
        sizes = tuple(size(i) for i in inputs)
        values = f"({names[0]},)" if len(names) == 1 else f"({', '.join(names)})"
        return input_guard(tests, f"raise input_error({tuple(inputs)!r}, {sizes!r}, {values})", FORWARD_WIDTH)


def signature(graph: Graph) -> str:
    """``in1[5], in2[5] -> out1[3], out2[3]``: the class docstring, and the first line of its repr."""
    def sized(names: list[str]) -> str:  # a sequence is [T, …]
        return ", ".join(f"{n}{dims_text(('T',) * graph.nodes[n]['stepped'] + graph.nodes[n]['shape'])}"
                         for n in names)
    return f"{sized(graph.graph['inputs'])} -> {sized(graph.graph['outputs'])}"


def emit_source(graph: Graph, spec_file: str | None = None) -> str:
    """Standalone PyTorch source for the spec: imports only torch and the standard library.

    ``spec_file`` is the name the file records for its spec (default: the IR's own file name).
    """
    g = graph
    if g.graph.get("blocks"):  # one class per block (specc/compile_blocks.py)
        from .compile_blocks import emit_blocks_source
        return emit_blocks_source(g, spec_file)
    file = g.graph["file"] if spec_file is None else spec_file
    cls = g.graph.get("class") or class_name(g.graph["file"])
    submodules = g.graph.get("submodules", ())  # (attribute, class) of each block instance, created first
    writer = _Writer(g)
    forward = writer.forward_lines()
    inputs = [writer.locals[i] for i in g.graph["inputs"]]
    outputs = g.graph["outputs"]
    body = ["", f"class {cls}(nn.Module):", *wrap(f'"""{comment(signature(g))}"""', "    ", docstring=True), "",
            f"    spec_file = {string_literal(file, '    ')}",
            *wrap(f"spec_inputs = {tuple(g.graph['inputs'])!r}", "    "),
            *wrap(f"spec_outputs = {tuple(outputs)!r}", "    "),
            f"    spec_source = {string_literal(g.graph['source'], '    ')}",
            "    check_inputs = True  # False skips the shape check on each call (torch.compile, export)", ""]
    body += ["    def __init__(self) -> None:", "        super().__init__()"]
    body += [f"        self.{name} = {kind}()" if _attribute(name).startswith("self.") else
             f"        self.add_module({name!r}, {kind}())" for name, kind in submodules]
    for name in g.graph["params"]:
        attrs = g.nodes[name]
        shape = ", ".join(map(str, attrs["shape"])) if attrs["shape"] else "()"
        created = f"nn.Parameter(torch.empty({shape}))"
        role = {"weight": "  # weight", "bias": "  # bias"}.get(attrs["role"], "")
        body += wrap((f"self.{name} = {created}" if _attribute(name).startswith("self.")
                      else f"self.register_parameter({name!r}, {created})") + role, "        ")
    fixed, held = _fixed_lines(g)
    body += fixed + ["        self.reset_parameters(blocks=False)" if submodules else "        self.reset_parameters()"]
    body += ["        self.reset_fixed()"] * bool(fixed)
    body += ["", "    def reset_parameters(self, blocks: bool = True) -> None:" if submodules else
             "    def reset_parameters(self) -> None:"]
    if submodules:  # __init__ passes False: each block drew its own when it was created
        body += ["        if blocks:"] + [f"            {_attribute(name)}.reset_parameters()" for name, _ in submodules]
    if g.graph["params"] or not submodules:
        body += ["        # In order of first appearance, so a fixed torch.manual_seed gives fixed numbers."]
    initialisers = _initialisers(g, "params")
    body += initialisers
    if not g.graph["params"] and not submodules:
        body.append("        pass")
    body += held
    body += ["", "    def extra_repr(self) -> str:",  # the spec file, inputs -> outputs, every parameter
             '        shapes = ", ".join(f"{name}{list(p.shape)}" for name, p in self.named_parameters())']
    if g.graph["fixed"]:
        body += ['        fixed = ", ".join(f"{name}{list(b.shape)}" for name, b in self.named_buffers())',
                 '        text = f"{self.spec_file}: {\' \'.join(self.__doc__.split())}\\nparameters: '
                 '{shapes or \'none\'}"', '        return f"{text}\\nfixed: {fixed}"']
    else:
        body.append('        return f"{self.spec_file}: {\' \'.join(self.__doc__.split())}\\nparameters: '
                    '{shapes or \'none\'}"')
    args = "".join(f", {a}: torch.Tensor" for a in inputs)
    result = "Outputs" if len(outputs) > 1 else "torch.Tensor"
    body += ["", *wrap(f"def forward(self{args}) -> {result}:", "    ")]
    body += ["        " + line for line in forward]
    if g.graph["params"]:
        names = tuple(g.graph["params"])
        body += ["", "", "# Parameters as class attributes: Python finds them before nn.Module's __getattr__, which costs",
                 "# about 1 µs a lookup on every call of forward.",
                 *wrap(f"for name in {names!r}:" if len(names) > 1 else f"for name in ({names[0]!r},):"),
                 f"    setattr({cls}, name, parameter_property(name))"]
    if len(outputs) > 1:
        taken: set[str] = set()
        fields = ["", "", "class Outputs(NamedTuple):"]
        for name in outputs:
            field = field_name(name, taken)
            taken.add(field)
            fields.append(f"    {field}: torch.Tensor" + (f"  # {comment(name)}" if field != name else ""))
        body = fields + [""] + body
    text = "\n".join(body)
    helpers = [helper.strip("\n") for helper, used in (
        (writer.input_error, g.graph["inputs"]), (_PARAMETER_PROPERTY, g.graph["params"]),
        (_LINEAR_SUM, "linear_sum" in writer.helpers)) if used]
    # Only code counts: the spec's own text (a comment saying `math.pi`, say) is inside a string literal.
    code = "\n".join(forward + initialisers + held + helpers)
    imports = [line for line, used in (
        ("import math", re.search(r"\bmath\.", code)),
        ("from typing import NamedTuple", len(outputs) > 1)) if used]
    imports += ["", "import torch", "from torch import nn"]
    if re.search(r"\bF\.", code):
        imports.append("from torch.nn import functional as F")
    head = [f"# Generated by specc from {comment(file)}. Edit the spec and run `specc compile` again,",
            "# rather than editing this file."]
    if len(head[0]) > WIDTH:  # a long file name: the advice on a line of its own
        head = [f"# Generated by specc from {comment(file)}.",
                "# Edit the spec and run `specc compile` again, rather than editing this file."]
    head += imports if imports[0] else imports[1:]
    # Two blank lines between top-level blocks, as PEP 8 has them.
    return "\n\n\n".join(["\n".join(head), *helpers, text.strip("\n")]) + "\n"


def _initialisers(g: Graph, table: str) -> list[str]:
    """The init statements of the parameters (``table`` 'params') or of the fixed values ('fixed')."""
    return [line for name in g.graph[table] for line in wrap(
        INITIALIZERS[g.nodes[name]["init"]].code(_attribute(name), g.nodes[name]["init_args"]), "        ")]


def _fixed_lines(g: Graph) -> tuple[list[str], list[str]]:
    """Fixed values: buffers (in state_dict and weights files, not in parameters(), so no optimizer
    sees them), created in __init__ and set by ``reset_fixed``, which restarts never call."""
    if not g.graph["fixed"]:
        return [], []
    created = [line for name in g.graph["fixed"] for line in wrap(
        f"self.register_buffer({name!r}, torch.empty({', '.join(map(str, g.nodes[name]['shape'])) or '()'}))"
        "  # fixed", "        ")]
    method = ["", "    def reset_fixed(self) -> None:",
              "        # The fixed values' init lines (zeros without one); training never changes them."]
    return created, method + _initialisers(g, "fixed")


def _digest(source: str) -> str:
    return hashlib.sha1(source.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def load_module(graph: Graph, dtype=None):
    """An instance of the class :func:`emit_source` writes, loaded the way ``import`` would load that file;
    built with ``dtype`` as torch's default dtype when given (else in torch's own default)."""
    with collector_paused():
        source = emit_source(graph)
        code = compile(source, filename := f"<specc {_digest(source)}>", "exec")
    module = types.ModuleType(f"specc_generated_{_digest(source)}")
    module.__file__ = filename
    # Registered so that inspect.getsource, tracebacks and torch.compile can see the generated lines.
    linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
    exec(code, module.__dict__)  # our generated code, not spec text
    cls = getattr(module, class_name(graph.graph["file"]))
    add_display(cls)  # Jupyter's rich display (specc/notebook.py), outside the generated source
    if dtype is None:
        instance = cls()
    else:
        import torch
        previous = torch.get_default_dtype()
        torch.set_default_dtype(dtype)
        try:
            instance = cls()
        finally:
            torch.set_default_dtype(previous)
    instance.spec_ir = graph  # a plain attribute: not in state_dict, and fit/draw/data need not rebuild it
    return instance
