"""How parameters start: one table of initialisers, written as PyTorch source.

Each row turns a parameter's code (``self.W1``) and the ``init`` line's
constant arguments into one statement of the generated ``reset_parameters``;
the in-memory module runs the same generated code, so ``specc.load`` and
``specc compile`` start from identical numbers under the same seed.
Adding a scheme is one row here plus one row in tests/test_inits.py.
:func:`init_scheme` reads an ``init`` line's right-hand side into a row and its arguments.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from . import parse as ast
from .errors import InitError
from .functions import FUNCTIONS, evaluate


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

    @property
    def arity(self) -> tuple[int, int]:
        return sum(d is None for d in self.defaults), len(self.defaults)

    def code(self, param: str, args: tuple[float, ...]) -> str:
        filled = tuple(args) + tuple(self.defaults[len(args):])
        return self.write(param, *filled)


n = number


def _rows(*rows: Initializer) -> dict[str, Initializer]:
    return {row.name: row for row in rows}


INITIALIZERS: dict[str, Initializer] = _rows(
    Initializer("constant", (None,), lambda p, v: f"nn.init.constant_({p}, {n(v)})", doc="every entry v"),
    Initializer("zeros", (), lambda p: f"nn.init.zeros_({p})"),
    Initializer("ones", (), lambda p: f"nn.init.ones_({p})"),
    Initializer("uniform", (0.0, 1.0), lambda p, lo, hi: f"nn.init.uniform_({p}, {n(lo)}, {n(hi)})"),
    Initializer("normal", (0.0, 1.0), lambda p, m, s: f"nn.init.normal_({p}, {n(m)}, {n(s)})"),
    # torch.randn draws the same numbers as normal_ on an empty tensor of that shape.
    Initializer("randn", (), lambda p: f"nn.init.normal_({p})", doc="standard normal, as torch.randn"),
    Initializer("rang", (0.7,), lambda p, r: f"nn.init.uniform_({p}, {n(-r)}, {n(r)})",
                doc="nnet's uniform(-rang, rang)"),
    Initializer("xavier_uniform", (1.0,), lambda p, g: f"nn.init.xavier_uniform_({p}, gain={n(g)})", min_dims=2),
    Initializer("xavier_normal", (1.0,), lambda p, g: f"nn.init.xavier_normal_({p}, gain={n(g)})", min_dims=2),
    Initializer("kaiming_uniform", (0.0,), lambda p, a: f"nn.init.kaiming_uniform_({p}, a={n(a)})", min_dims=2),
    Initializer("kaiming_normal", (0.0,), lambda p, a: f"nn.init.kaiming_normal_({p}, a={n(a)})", min_dims=2),
    Initializer("orthogonal", (1.0,), lambda p, g: f"nn.init.orthogonal_({p}, gain={n(g)})", min_dims=2),
    # nn.Linear's own scheme; the defaults for W in W·x and for the bias added to it.
    Initializer("linear_weight", (), lambda p: f"nn.init.kaiming_uniform_({p}, a=math.sqrt(5))", min_dims=2,
                doc="as nn.Linear.weight"),
    Initializer("linear_bias", (None,),
                lambda p, fan: f"nn.init.uniform_({p}, -1 / math.sqrt({n(fan)}), 1 / math.sqrt({n(fan)}))",
                doc="as nn.Linear.bias for fan-in n"),
)


def init_scheme(dist: ast.Expr) -> tuple[str, tuple[float, ...]]:
    """The initialiser an ``init`` line names, with its arguments: ``zeros``, ``uniform(-1, 1)``, or
    a constant expression (``2*pi``), which is the scheme ``constant``."""
    if isinstance(dist, ast.Name) and dist.id in INITIALIZERS:
        return dist.id, ()
    if isinstance(dist, ast.Call) and dist.func.id in INITIALIZERS:
        return dist.func.id, tuple(_constant(a) for a in dist.args)
    return "constant", (_constant(dist),)


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
        return evaluate("neg", _number(expr.operand))
    if isinstance(expr, ast.BinOp) and expr.op != "matmul":
        return evaluate(expr.op, _number(expr.left), _number(expr.right))
    if isinstance(expr, ast.Call) and len(expr.args) == 1 and expr.func.id in FUNCTIONS \
            and FUNCTIONS[expr.func.id].elementwise:
        return evaluate(expr.func.id, _number(expr.args[0]))
    raise InitError(f"an init value is a constant expression (numbers, pi, e, + - * / ^, built-in functions such "
                    f"as sqrt) or one of: {', '.join(INITIALIZERS)}", expr.span)
