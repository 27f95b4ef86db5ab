"""How parameters and fixed values start: one table of initialisers, written as PyTorch source.

Each row turns a parameter's code (``self.W1``) and the ``init`` line's
constant arguments into one statement of the generated ``reset_parameters``
(``reset_fixed`` for fixed values, which start at zeros without an init line);
the in-memory module runs the same generated code, so ``specc.load`` and
``specc compile`` start from identical numbers under the same seed.
Adding a scheme is one row here plus one row in tests/test_inits.py.
:func:`init_scheme` reads an ``init`` line's right-hand side into a row and its arguments;
:func:`assign_roles` gives each parameter its role (weight, bias, other) and default scheme (and
each fixed value ``zeros``), and
:func:`apply_init_lines` applies the spec's ``init`` lines.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from . import parser as ast
from .errors import ArityError, InitError, RedefinitionError, Span
from .ir import Graph
from .ops import FUNCTIONS, OPS


def number(value: float) -> str:
    """A float as Python source that reads back exactly (whole numbers without '.0')."""
    if math.isinf(value):
        return "math.inf" if value > 0 else "-math.inf"
    if math.isnan(value):
        return "math.nan"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


@dataclass(frozen=True)
class Initializer:
    name: str
    defaults: tuple[float | None, ...]  # one per argument; None marks a required one
    write: Callable[..., str]  # (param_code, *float_args) -> statement
    min_dims: int = 0
    doc: str = ""
    # (filled args) -> what is wrong with them, or None; torch would raise on them when the module is built
    refuse: Callable[..., str | None] = lambda *args: None

    @property
    def arity(self) -> tuple[int, int]:
        return sum(d is None for d in self.defaults), len(self.defaults)

    def code(self, param: str, args: tuple[float, ...]) -> str:
        filled = tuple(args) + tuple(self.defaults[len(args):])
        return self.write(param, *filled)


n = number


def _at_least_0(what: str, value: float) -> str | None:
    return f"{what} of at least 0, not {n(value)}" if value < 0 else None


def _nested(values) -> str:
    """Numbers written out (``init mu = [0.5, -1, 2]``) as a Python list literal."""
    if isinstance(values, tuple):
        return "[" + ", ".join(_nested(v) for v in values) + "]"
    return n(values)


def _rows(*rows: Initializer) -> dict[str, Initializer]:
    return {row.name: row for row in rows}


INITIALIZERS: dict[str, Initializer] = _rows(
    Initializer("constant", (None,), lambda p, v: f"nn.init.constant_({p}, {n(v)})", doc="every entry v"),
    Initializer("zeros", (), lambda p: f"nn.init.zeros_({p})"),
    Initializer("ones", (), lambda p: f"nn.init.ones_({p})"),
    Initializer("uniform", (0.0, 1.0), lambda p, lo, hi: f"nn.init.uniform_({p}, {n(lo)}, {n(hi)})",
                refuse=lambda lo, hi: f"lo ≤ hi, not {n(lo)} > {n(hi)}" if lo > hi else None),
    Initializer("normal", (0.0, 1.0), lambda p, m, s: f"nn.init.normal_({p}, {n(m)}, {n(s)})",
                refuse=lambda m, s: _at_least_0("a standard deviation", s)),
    # torch.randn draws the same numbers as normal_ on an empty tensor of that shape.
    Initializer("randn", (), lambda p: f"nn.init.normal_({p})", doc="standard normal, as torch.randn"),
    Initializer("rang", (0.7,), lambda p, r: f"nn.init.uniform_({p}, {n(-r)}, {n(r)})",
                doc="nnet's uniform(-rang, rang)", refuse=lambda r: _at_least_0("a range", r)),
    Initializer("xavier_uniform", (1.0,), lambda p, g: f"nn.init.xavier_uniform_({p}, gain={n(g)})", min_dims=2,
                refuse=lambda g: _at_least_0("a gain", g)),
    Initializer("xavier_normal", (1.0,), lambda p, g: f"nn.init.xavier_normal_({p}, gain={n(g)})", min_dims=2,
                refuse=lambda g: _at_least_0("a gain", g)),
    Initializer("kaiming_uniform", (0.0,), lambda p, a: f"nn.init.kaiming_uniform_({p}, a={n(a)})", min_dims=2),
    Initializer("kaiming_normal", (0.0,), lambda p, a: f"nn.init.kaiming_normal_({p}, a={n(a)})", min_dims=2),
    Initializer("orthogonal", (1.0,), lambda p, g: f"nn.init.orthogonal_({p}, gain={n(g)})", min_dims=2),
    # nn.Linear's own scheme; the defaults for W in W·x and for the bias added to it.
    Initializer("linear_weight", (), lambda p: f"nn.init.kaiming_uniform_({p}, a=math.sqrt(5))", min_dims=2,
                doc="as nn.Linear.weight"),
    # Numbers written out: init_args are the entries (rows of a matrix as tuples), copied in float64.
    Initializer("values", (), lambda p, *rows: f"{p}.detach().copy_(torch.tensor({_nested(rows)}, "
                f"dtype=torch.float64))", doc="the numbers written: [0.5, -1, 2], [[1, 2], [3, 4]]"),
    Initializer("linear_bias", (None,),
                lambda p, fan: f"nn.init.uniform_({p}, -1 / math.sqrt({n(fan)}), 1 / math.sqrt({n(fan)}))",
                doc="as nn.Linear.bias for fan-in n"),
)


def init_scheme(dist: ast.Expr) -> tuple[str, tuple[float, ...]]:
    """The initialiser an ``init`` line names, with its arguments: ``zeros``, ``uniform(-1, 1)``, a
    constant expression (``2*pi``), which is the scheme ``constant``, or numbers written out
    (``[0.5, -1, 2]``), the scheme ``values`` with the entries (rows as tuples) as its arguments."""
    if isinstance(dist, ast.Array):
        return "values", _array(dist)
    if isinstance(dist, ast.Name) and dist.id in INITIALIZERS:
        return dist.id, ()
    if isinstance(dist, ast.Call) and dist.func.id in INITIALIZERS:
        return dist.func.id, tuple(_constant(a) for a in dist.args)
    return "constant", (_constant(dist),)


def _array(array: ast.Array) -> tuple:
    """The entries of ``[…]``: constant expressions, or rows ``[[1, 2], [3, 4]]`` all of one shape."""
    entries = tuple(_array(item) if isinstance(item, ast.Array) else _constant(item) for item in array.items)
    if len({values_shape(e) if isinstance(e, tuple) else None for e in entries}) > 1:
        raise InitError("the rows of these numbers differ in length or nesting; a matrix is written "
                        "[[1, 2], [3, 4]], each row as long as the others", array.span)
    return entries


def values_shape(values: tuple) -> tuple[int, ...]:
    """The shape of numbers written out (``values``' init_args): (3,) for [a, b, c]."""
    return (len(values),) + (values_shape(values[0]) if values and isinstance(values[0], tuple) else ())


def _constant(expr: ast.Expr) -> float:
    """The value of a constant expression; it must be a finite number."""
    value = _number(expr)
    if not math.isfinite(value):
        raise InitError(f"this constant is {value}, not a finite number", expr.span)
    return value


def _number(expr: ast.Expr) -> float:
    """Evaluate a constant expression by walking its AST (never ``eval``), as the forward pass would."""
    if isinstance(expr, ast.Num):
        return expr.value
    if isinstance(expr, ast.Name) and expr.id in ast.CONSTANTS:
        return ast.CONSTANTS[expr.id]
    if isinstance(expr, ast.Neg):
        return OPS["neg"].fold(_number(expr.operand))
    if isinstance(expr, ast.BinOp) and OPS[expr.op].foldable:
        return OPS[expr.op].fold(_number(expr.left), _number(expr.right))
    if isinstance(expr, ast.Call) and expr.func.id in FUNCTIONS and FUNCTIONS[expr.func.id].foldable \
            and len(expr.args) == FUNCTIONS[expr.func.id].arity:
        return FUNCTIONS[expr.func.id].fold(*(_number(a) for a in expr.args))
    raise InitError(f"an init value is a constant expression (numbers, pi, e, + - * / ^, built-in functions such "
                    f"as sqrt) or one of: {', '.join(INITIALIZERS)}", expr.span)


# ---------------------------------------------------------------- roles and default initialisers
def assign_roles(graph: Graph) -> None:
    """Each parameter's role and default initialiser, as nn.Linear would start it.

    A matrix on the left of · is a weight (fan-in: its columns); a parameter added to such a
    product is a bias (fan-in: the product's); anything else starts standard normal.
    """
    order = graph.topological()
    for node in order:
        attrs = graph.nodes[node]
        if attrs.get("op") == "matmul":
            left = graph.nodes[attrs["args"][0]]
            while left.get("op") in ("neg", "transpose"):  # -W·x is (-W)·x; in Wᵀ·x, W is still a weight
                left = graph.nodes[left["args"][0]]
            if left["kind"] == "param" and len(left["shape"]) == 2 and left["role"] != "weight":
                left.update(role="weight", fan_in=left["shape"][1])
    for node in order:
        attrs = graph.nodes[node]
        if attrs.get("op") not in ("add", "sub") or any(
                graph.nodes[c].get("op") in ("add", "sub") for c in graph.successors(node)):
            continue
        terms = [term for term, _ in graph.sum_terms(node)]
        products = [graph.nodes[t] for t in terms if graph.nodes[t].get("op") == "matmul"
                    and len(graph.nodes[graph.nodes[t]["args"][0]]["shape"]) == 2]
        for term in terms:
            param = graph.nodes[term]
            if products and param["kind"] == "param" and param["role"] == "other":
                param.update(role="bias", fan_in=graph.nodes[products[0]["args"][0]]["shape"][1])
    for node in graph.graph["params"]:
        attrs = graph.nodes[node]
        attrs["init"], attrs["init_args"] = {"weight": ("linear_weight", ()), "bias": (
            "linear_bias", (attrs["fan_in"],)), "other": ("randn", ())}[attrs["role"]]
    for node in graph.graph["fixed"]:  # until an init line or a weights file sets them, like torch.zeros
        graph.nodes[node].update(init="zeros", init_args=())


def start_value(attrs: dict):
    """What a parameter or fixed value starts at when its initialiser draws no random numbers (zeros,
    ones, a constant, numbers written out): a float, or nested tuples of its shape; else None."""
    args = attrs["init_args"]
    return {"zeros": 0.0, "ones": 1.0, "constant": args[0] if args else None, "values": args}.get(attrs["init"])


def _close(name: str, known: list[str]) -> str:
    import difflib  # only on this error path

    close = difflib.get_close_matches(name, known, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def apply_init_lines(graph: Graph, lines: list[ast.Init], what_is: Callable[[str], str | None]) -> None:
    """The spec's ``init`` lines over the defaults; ``what_is(name)`` says what a name means."""
    done: dict[str, Span] = {}
    params, fixed = graph.graph["params"], graph.graph["fixed"]
    for line in lines:
        name = line.name.id
        if name not in params and name not in fixed:
            what = what_is(name)
            # Fixed values are named only in specs that have some: other specs keep the plain message.
            held, one = ("parameters and fixed values", "parameter or fixed value") if fixed else \
                ("parameters", "parameter")
            known = f"parameters: {', '.join(params) or 'none'}" + (f"; fixed: {', '.join(fixed)}" if fixed else "")
            message = f"init applies to {held}; '{name}' is {what}" if what else \
                f"'{name}' is not a {one} of this spec ({known}){_close(name, params + fixed)}"
            raise InitError(message, line.name.span)
        if name in done:
            raise RedefinitionError(f"'{name}' already has an init line", line.name.span,
                                    notes=(("first init line", done[name]),))
        done[name] = line.span
        scheme, args = init_scheme(line.dist)
        lo, hi = INITIALIZERS[scheme].arity
        if scheme == "values":
            written, shape = values_shape(args), graph.nodes[name]["shape"]
            if written != shape:
                raise InitError(f"these numbers have shape {list(written)}, but '{name}' has shape {list(shape)}",
                                line.dist.span)
        elif not lo <= len(args) <= hi:
            raise ArityError(f"init scheme '{scheme}' takes {lo if lo == hi else f'{lo} to {hi}'} "
                             f"argument(s), not {len(args)}", line.dist.span)
        row = INITIALIZERS[scheme]
        wrong = None if scheme == "values" else row.refuse(*(tuple(args) + row.defaults[len(args):]))
        if wrong:
            raise InitError(f"init scheme '{scheme}' needs {wrong}", line.dist.span)
        shape = graph.nodes[name]["shape"]
        if len(shape) < INITIALIZERS[scheme].min_dims:
            raise InitError(f"init scheme '{scheme}' needs a matrix; '{name}' has shape {list(shape)}",
                            line.dist.span)
        graph.nodes[name].update(init=scheme, init_args=args)
