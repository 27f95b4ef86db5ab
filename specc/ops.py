"""Every operation of the language: one table, one row per operation, read by every stage.

A row says how the language writes the operation (an operator symbol and how
tightly it binds, or a call by name), its shape rule (``specc.shapes.RULES``),
its PyTorch template and that template's precedence, and the facts other stages
need: whether it acts on each unit alone (the neuron view draws it unit to unit,
and numbers-only uses of it are computed at compile time), whether it is affine
(the unit views fold it into edge weights), and its backends. The ``numpy``
backend is a forward and a backward rule on float64 arrays: the NumPy training
tape runs it, and the compiler folds numbers-only expressions (``sqrt(2)``,
``2^0.5``) with its forward rule (one that is not finite, ``1/0``, is an error: specc/limits.py). The ``c`` backend is the same pair of rules in C,
which the compiled criterion (``specc.train.ccode``) writes into its source.

Stages dispatch on the row: parse (operator → row name), shapes (``shape``),
compile (``torch``, ``precedence``, ``operands``), training (``numpy``, ``c``), draw
(``elementwise``, ``affine``, ``wiring``). Adding a function is one row here
plus one row in tests/test_ops.py.

Importing this module imports nothing heavy: rules name NumPy through a proxy
that imports it on first use, so ``specc check`` never loads it.
"""
from __future__ import annotations

import importlib
import math
import operator
from dataclasses import dataclass
from typing import Callable


class _OnUse:
    """A module imported on first attribute access."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr: str):
        return getattr(importlib.import_module(self._name), attr)


np = _OnUse("numpy")

# Python precedence of generated expressions (higher binds tighter); templates are parenthesised by them.
ATOM, POW, UNARY, MUL, ADD, ANY = 100, 90, 80, 70, 60, 0


@dataclass(frozen=True)
class C:
    """An operation's rules in C, for the compiled criterion.

    Per unit (the default): ``forward`` is an expression of one unit of the result from the same
    unit of each operand, ``{0}``, ``{1}`` …; ``backward`` has one expression per operand, that
    operand's share of the gradient, from ``{g}`` (the result's gradient at that unit), the operands
    and ``{y}`` (the result). Otherwise (``per_unit=False``, operations over a whole vector) both
    are C statements on pointers: ``{0}`` the operand, ``{y}`` the result, ``{g}`` its gradient,
    ``{g0}`` the operand's gradient (to add to), ``{n}`` the result's units and ``{n0}`` the
    first operand's (a reduction's input). Helper functions (``sp_…``)
    are in specc/train/criterion_runtime.c.
    """
    forward: str
    backward: tuple[str, ...]
    per_unit: bool = True


@dataclass(frozen=True)
class Op:
    name: str
    shape: str  # rule in specc.shapes.RULES: broadcast, same, vector, reduce, product, concat, transpose, index, slice
    torch: str  # Python expression; {0}, {1} … are the operands' code, {all} all of them comma-joined
    precedence: int = ATOM  # of the template's result
    operands: tuple[int, ...] = (ANY,)  # least precedence each operand's code needs (else it is parenthesised)
    arity: int | None = 1  # None: any number ≥ 1
    symbol: str | None = None  # an operator's spelling in the language ('+', '·'); None: called by name
    binds: int | None = None  # the language's binding level for an operator (higher binds tighter)
    elementwise: bool = False  # each unit of the result depends on that unit of each operand alone
    affine: bool = False  # linear in its operands (mul and div when a factor is a constant)
    wiring: str = "unit"  # how the unit views wire its operands: unit to unit, 'gather' (concat), 'pick' (x[2:4]),
    # 'all' (each unit of the result from every unit of each operand: sum, layer_norm)
    numpy: tuple[Callable, Callable] | None = None  # (forward(*xs), backward(g, *xs, out) -> grads per operand)
    c: C | None = None  # the same rules in C (products and concat: by their shape, in specc.train.ccode)
    numbers: tuple[tuple[int, float, float], ...] = ()  # (operand, lo, hi): a number written in the spec, lo ≤ it < hi
    random: bool = False  # random in training mode (dropout): no deterministic criterion, so no quasi-Newton fit
    scalar: str | None = None  # the row it is on a scalar operand (a reduction: 'identity', or 'abs' for norm)
    tensors: str = ""  # torch takes tensors here: 'all' operands, or 'mixed' (bounds all numbers or all tensors)
    timed: bool = False  # prev, last: about time steps (specc/sequences.py), never a number known when compiling
    doc: str = ""

    @property
    def called(self) -> bool:
        """Written as a call, ``name(args)``: a built-in function."""
        return self.symbol is None

    @property
    def passes_through(self) -> bool:
        return self.torch == "{0}"

    @property
    def foldable(self) -> bool:
        """Computed at compile time when every operand is a number."""
        return self.elementwise and self.numpy is not None

    def code(self, operands: list[str], units: int | None = None, attrs: dict | None = None) -> str:
        """The template filled with operand code (already parenthesised as :attr:`operands` asks);
        ``{n}`` is ``units``, the size of the first operand (layer_norm's normalized shape); for indexing,
        ``{first}`` and ``{stop}`` are the node's units as Python counts them (``x[2:4]`` is 1:4)."""
        picked = {"first": attrs["start"] - 1, "stop": attrs["stop"]} if attrs and "start" in attrs else {}
        return self.torch.format(*operands, all=", ".join(operands), n=units, **picked)

    def on(self, *shapes: tuple) -> "Op":
        """The row that computes this operation on operands of these IR shapes: a reduction of a
        scalar is the row its :attr:`scalar` names (``sum(s)`` is ``s``, ``norm(s)`` is ``abs(s)``)."""
        return OPS[self.scalar] if self.scalar and shapes and shapes[0] == () else self

    def operand_precedence(self, position: int) -> int:
        return self.operands[min(position, len(self.operands) - 1)]

    def fold(self, *values: float) -> float:
        """The operation on plain numbers, as float64 arrays compute it (``1/0`` is inf, ``log(-1)`` nan:
        never an exception; specc/limits.py makes a spec's non-finite numbers errors, with their place).

        Python's own float arithmetic where it is exactly that (so ``init c = -1`` needs no NumPy);
        NumPy's float64 for the rest, and where Python would raise instead (``1/0``).
        """
        exact = PYTHON_ARITHMETIC.get(self.name)
        if exact is not None:
            try:
                return float(exact(*values))
            except ArithmeticError:
                pass
        with np.errstate(all="ignore"):
            return float(self.numpy[0](*(np.float64(v) for v in values)))


# Operations on which Python's float arithmetic is IEEE float64 arithmetic, as a float64 tensor's is
# (pow is not: 2^0.5 may round differently); where Python raises (1/0), NumPy's answer is taken.
PYTHON_ARITHMETIC: dict[str, Callable[..., float]] = {
    "add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
    "neg": operator.neg, "identity": lambda v: v, "linear": lambda v: v}


def _rows(*rows: Op) -> dict[str, Op]:
    return {row.name: row for row in rows}


def _unary(name: str, torch: str, c: tuple[str, str], forward: Callable, backward: Callable, doc: str = "",
           **flags) -> Op:
    """A function of one value, unit by unit: ``c`` is its (forward, backward) in C, ``forward`` and
    ``backward(g, x, y)`` the same in NumPy (the gradient through ``y = f(x)``)."""
    return Op(name, "same", torch, numpy=(forward, lambda g, x, y: (backward(g, x, y),)), elementwise=True,
              c=C(c[0], (c[1],)), doc=doc, **flags)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _logsumexp(x):
    top = x.max(-1, keepdims=True)
    return top + np.log(np.exp(x - top).sum(-1, keepdims=True))


def _erf(x):
    return np.vectorize(math.erf, otypes=[float])(x)


_SQRT_HALF, _INV_SQRT_2PI = math.sqrt(0.5), 1.0 / math.sqrt(2.0 * math.pi)


def _pow_backward(g, a, b, y):
    # d(a^b)/db = a^b·ln a, defined for a > 0; elsewhere the exponent gets no gradient.
    return g * b * a ** (b - 1), g * y * np.log(np.where(a > 0, a, 1.0))


# ---- reductions over the units (the last axis), and layer_norm; a gradient comes back in the shape
# the operand and the result's gradient broadcast to (the tape sums it back to the operand's).
def _spread(g, x):
    return np.broadcast_to(g, np.broadcast_shapes(g.shape, x.shape))


def _extreme_backward(g, x, y):
    # torch's amax/amin: the gradient shared evenly by the units equal to the result (ties included)
    hit = x == y
    return (g / hit.sum(-1, keepdims=True) * hit,)


def _norm_backward(g, x, y):
    # torch's vector_norm: x · (g / ‖x‖), and 0 for a zero vector
    with np.errstate(divide="ignore", invalid="ignore"):
        return (x * np.where(y == 0, 0.0, g / y),)


LAYER_NORM_EPS = 1e-5  # torch.nn.LayerNorm's and F.layer_norm's default


def _layer_norm_parts(x):
    centred = x - x.mean(-1, keepdims=True)
    return centred, 1.0 / np.sqrt(np.square(centred).mean(-1, keepdims=True) + LAYER_NORM_EPS)  # biased variance


def _layer_norm(x):
    centred, rstd = _layer_norm_parts(x)
    return centred * rstd


def _layer_norm_backward(g, x, y):
    rstd = _layer_norm_parts(x)[1]
    return (rstd * (g - g.mean(-1, keepdims=True) - y * (g * y).mean(-1, keepdims=True)),)


def _maximum_backward(g, a, b, y):
    # torch.maximum and torch.minimum: a tie shares the gradient, half each
    half = np.where(a == b, 0.5 * g, g)
    return np.where(a < b, 0.0, half), np.where(a > b, 0.0, half)


def _minimum_backward(g, a, b, y):
    half = np.where(a == b, 0.5 * g, g)
    return np.where(a > b, 0.0, half), np.where(a < b, 0.0, half)


def _clamp_backward(g, x, lo, hi, y):
    # torch.clamp with tensor bounds: x takes it inside [lo, hi] (ends included); lo where x is below it
    # and lo < hi; hi where x is above it or hi < lo (the result is hi then); lo = hi < x: lo gets none
    return (np.where((x >= lo) & (x <= hi), g, 0.0), np.where((x < lo) & (lo < hi), g, 0.0),
            np.where((x > hi) | (hi < lo), g, 0.0))


OPS: dict[str, Op] = _rows(
    # ---- operators, loosest first
    Op("add", "broadcast", "{0} + {1}", ADD, (ADD, ADD + 1), 2, "+", 1, elementwise=True, affine=True,
       numpy=(lambda a, b: a + b, lambda g, a, b, y: (g, g)), c=C("{0} + {1}", ("{g}", "{g}"))),
    Op("sub", "broadcast", "{0} - {1}", ADD, (ADD, ADD + 1), 2, "-", 1, elementwise=True, affine=True,
       numpy=(lambda a, b: a - b, lambda g, a, b, y: (g, -g)), c=C("{0} - {1}", ("{g}", "-{g}"))),
    Op("mul", "broadcast", "{0} * {1}", MUL, (MUL, MUL + 1), 2, "*", 2, elementwise=True, affine=True,
       numpy=(lambda a, b: a * b, lambda g, a, b, y: (g * b, g * a)),
       c=C("{0} * {1}", ("{g} * {1}", "{g} * {0}"))),
    Op("div", "broadcast", "{0} / {1}", MUL, (MUL, MUL + 1), 2, "/", 2, elementwise=True, affine=True,
       numpy=(lambda a, b: a / b, lambda g, a, b, y: (g / b, -g * a / (b * b))),
       c=C("{0} / {1}", ("{g} / {1}", "-{g} * {0} / ({1} * {1})"))),
    # A·v for a matrix A is v @ A.T on a batch of rows, as nn.Linear computes it; compile writes
    # F.linear for W·x + b and a dot product for vector·vector (specc.compile.product).
    Op("matmul", "product", "{1} @ {0}.T", MUL, (ATOM, MUL), 2, "·", 3, affine=True),
    Op("neg", "same", "-{0}", UNARY, (UNARY,), 1, "-", 4, elementwise=True, affine=True,
       numpy=(lambda a: -a, lambda g, a, y: (-g,)), c=C("-{0}", ("-{g}",))),
    Op("pow", "broadcast", "{0} ** {1}", POW, (POW + 1, UNARY), 2, "^", 5, elementwise=True,
       numpy=(lambda a, b: a ** b, _pow_backward),
       c=C("pow({0}, {1})", ("{g} * {1} * pow({0}, {1} - 1.0)", "{g} * {y} * log({0} > 0.0 ? {0} : 1.0)"))),
    # ---- postfix, tightest: a matrix's transpose; a vector's units start … stop (node attributes, from 1,
    # both included). Not 'affine' for the drawing: it folds a transpose into W's edges itself (diagram_units)
    # and draws a slice as units wired through. The NumPy and C rules of indexing are in the tape and
    # ccode (by shape: they need the node's start and stop).
    Op("transpose", "transpose", "{0}.T", ATOM, (ATOM,), 1, "ᵀ", 6,
       numpy=(lambda a: np.swapaxes(a, -1, -2), lambda g, a, y: (np.swapaxes(g, -1, -2),)),
       doc="the transpose of a matrix: Wᵀ or W'"),
    Op("index", "index", "{0}[..., {first}]", ATOM, (ATOM,), 1, "[{start}]", 6, wiring="pick",
       doc="one unit of a vector, counted from 1: x[2]"),
    Op("slice", "slice", "{0}[..., {first}:{stop}]", ATOM, (ATOM,), 1, "[{start}:{stop}]", 6, wiring="pick",
       doc="units start … stop of a vector, both included: x[2:4]"),
    # ---- built-in functions: name, PyTorch, (C forward, C backward), NumPy forward, NumPy backward
    _unary("identity", "{0}", ("{0}", "{g}"), lambda x: x, lambda g, x, y: g, "the value itself", affine=True),
    _unary("linear", "{0}", ("{0}", "{g}"), lambda x: x, lambda g, x, y: g, "the value itself (nnet's linout)",
           affine=True),
    _unary("relu", "torch.relu({0})", ("({0} > 0.0 ? {0} : 0.0)", "({0} > 0.0 ? {g} : 0.0)"),
           lambda x: np.maximum(x, 0.0), lambda g, x, y: g * (x > 0)),
    _unary("tanh", "torch.tanh({0})", ("tanh({0})", "{g} * (1.0 - {y} * {y})"),
           lambda x: np.tanh(x), lambda g, x, y: g * (1.0 - y * y)),
    _unary("sigmoid", "torch.sigmoid({0})", ("sp_sigmoid({0})", "{g} * {y} * (1.0 - {y})"),
           _sigmoid, lambda g, x, y: g * y * (1.0 - y)),
    _unary("logistic", "torch.sigmoid({0})", ("sp_sigmoid({0})", "{g} * {y} * (1.0 - {y})"),
           _sigmoid, lambda g, x, y: g * y * (1.0 - y), "sigmoid"),
    Op("softmax", "vector", "torch.softmax({0}, dim=-1)", doc="over the units of a vector",
       numpy=(lambda x: np.exp(x - _logsumexp(x)),
              lambda g, x, y: (y * (g - (g * y).sum(-1, keepdims=True)),)),
       c=C("sp_softmax({0}, {y}, {n});", ("sp_softmax_grad({y}, {g}, {g0}, {n});",), per_unit=False)),
    Op("log_softmax", "vector", "torch.log_softmax({0}, dim=-1)", doc="over the units of a vector",
       numpy=(lambda x: x - _logsumexp(x), lambda g, x, y: (g - np.exp(y) * g.sum(-1, keepdims=True),)),
       c=C("sp_log_softmax({0}, {y}, {n});", ("sp_log_softmax_grad({y}, {g}, {g0}, {n});",), per_unit=False)),
    # torch's softplus switches to the identity above 20 (its default threshold).
    _unary("softplus", "F.softplus({0})", ("sp_softplus({0})", "{g} * ({0} > 20.0 ? 1.0 : sp_sigmoid({0}))"),
           lambda x: np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20)))),
           lambda g, x, y: g * np.where(x > 20, 1.0, _sigmoid(x))),
    _unary("elu", "F.elu({0})", ("({0} > 0.0 ? {0} : expm1({0}))", "{g} * ({0} > 0.0 ? 1.0 : {y} + 1.0)"),
           lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
           lambda g, x, y: g * np.where(x > 0, 1.0, y + 1.0)),
    _unary("gelu", "F.gelu({0})",
           ("0.5 * {0} * (1.0 + erf({0} * SP_SQRT_HALF))",
            "{g} * (0.5 * (1.0 + erf({0} * SP_SQRT_HALF)) + {0} * SP_INV_SQRT_2PI * exp(-0.5 * {0} * {0}))"),
           lambda x: 0.5 * x * (1.0 + _erf(x * _SQRT_HALF)),
           lambda g, x, y: g * (0.5 * (1.0 + _erf(x * _SQRT_HALF)) + x * _INV_SQRT_2PI * np.exp(-0.5 * x * x)),
           "the exact (erf) form, F.gelu's default"),
    _unary("silu", "F.silu({0})",
           ("{0} * sp_sigmoid({0})", "{g} * (sp_sigmoid({0}) * (1.0 + {0} * (1.0 - sp_sigmoid({0}))))"),
           lambda x: x * _sigmoid(x), lambda g, x, y: g * (_sigmoid(x) * (1.0 + x * (1.0 - _sigmoid(x))))),
    _unary("leaky_relu", "F.leaky_relu({0})", ("({0} > 0.0 ? {0} : 0.01 * {0})", "{g} * ({0} > 0.0 ? 1.0 : 0.01)"),
           lambda x: np.where(x > 0, x, 0.01 * x), lambda g, x, y: g * np.where(x > 0, 1.0, 0.01),
           "slope 0.01 below 0"),
    _unary("exp", "torch.exp({0})", ("exp({0})", "{g} * {y}"), lambda x: np.exp(x), lambda g, x, y: g * y),
    _unary("log", "torch.log({0})", ("log({0})", "{g} / {0}"), lambda x: np.log(x), lambda g, x, y: g / x),
    _unary("sin", "torch.sin({0})", ("sin({0})", "{g} * cos({0})"), lambda x: np.sin(x),
           lambda g, x, y: g * np.cos(x)),
    _unary("cos", "torch.cos({0})", ("cos({0})", "-{g} * sin({0})"), lambda x: np.cos(x),
           lambda g, x, y: -g * np.sin(x)),
    _unary("abs", "torch.abs({0})", ("fabs({0})", "{g} * sp_sign({0})"), lambda x: np.abs(x),
           lambda g, x, y: g * np.sign(x)),
    _unary("sqrt", "torch.sqrt({0})", ("sqrt({0})", "{g} * 0.5 / {y}"), lambda x: np.sqrt(x),
           lambda g, x, y: g * 0.5 / y),
    _unary("square", "torch.square({0})", ("{0} * {0}", "{g} * 2.0 * {0}"), lambda x: np.square(x),
           lambda g, x, y: g * 2.0 * x),
    # Active in training mode only (module.train()); in eval mode the identity.
    Op("dropout", "same", "F.dropout({0}, {1}, self.training)", arity=2, elementwise=True, numbers=((1, 0.0, 1.0),),
       random=True, doc="zeroes each unit with probability p in training (scaling the rest by 1/(1-p))"),
    Op("concat", "concat", "torch.cat([{all}], dim=-1)", arity=None, wiring="gather",
       doc="joins scalars and vectors into one vector"),
    # ---- reductions over a vector's units: one scalar per sample. On a scalar there is nothing to
    # reduce: each is the row its `scalar` names (the value itself; for norm its absolute value).
    Op("sum", "reduce", "{0}.sum(-1)", operands=(ATOM,), wiring="all", scalar="identity",
       numpy=(lambda x: x.sum(-1, keepdims=True), lambda g, x, y: (_spread(g, x),)),
       c=C("*{y} = sp_sum({0}, {n0});", ("sp_spread({g}, {g0}, {n0}, 1.0);",), per_unit=False),
       doc="the sum of a vector's units"),
    Op("mean", "reduce", "{0}.mean(-1)", operands=(ATOM,), wiring="all", scalar="identity",
       numpy=(lambda x: x.mean(-1, keepdims=True), lambda g, x, y: (_spread(g / x.shape[-1], x),)),
       c=C("*{y} = sp_sum({0}, {n0}) / {n0};", ("sp_spread({g}, {g0}, {n0}, {n0});",), per_unit=False),
       doc="the mean of a vector's units"),
    # amax/amin rather than max/min(dim): their gradient is defined at ties (shared evenly)
    Op("max", "reduce", "{0}.amax(-1)", operands=(ATOM,), wiring="all", scalar="identity",
       numpy=(lambda x: x.max(-1, keepdims=True), _extreme_backward),
       c=C("*{y} = sp_max({0}, {n0});", ("sp_extreme_grad({0}, {y}, {g}, {g0}, {n0});",), per_unit=False),
       doc="the largest of a vector's units"),
    Op("min", "reduce", "{0}.amin(-1)", operands=(ATOM,), wiring="all", scalar="identity",
       numpy=(lambda x: x.min(-1, keepdims=True), _extreme_backward),
       c=C("*{y} = sp_min({0}, {n0});", ("sp_extreme_grad({0}, {y}, {g}, {g0}, {n0});",), per_unit=False),
       doc="the smallest of a vector's units"),
    Op("norm", "reduce", "torch.linalg.vector_norm({0}, dim=-1)", wiring="all", scalar="abs",
       numpy=(lambda x: np.sqrt(np.square(x).sum(-1, keepdims=True)), _norm_backward),
       c=C("*{y} = sp_norm({0}, {n0});", ("sp_norm_grad({0}, {y}, {g}, {g0}, {n0});",), per_unit=False),
       doc="the Euclidean length of a vector"),
    # No gain or bias of its own: the spec writes them, g * layer_norm(h) + b.
    Op("layer_norm", "vector", "F.layer_norm({0}, ({n},))", wiring="all",
       numpy=(_layer_norm, _layer_norm_backward),
       c=C("sp_layer_norm({0}, {y}, {n});", ("sp_layer_norm_grad({0}, {y}, {g}, {g0}, {n});",), per_unit=False),
       doc="(h - mean) / sqrt(variance + 1e-5) over a vector's units, as F.layer_norm"),
    # ---- elementwise functions of several values, broadcasting as + does
    Op("maximum", "broadcast", "torch.maximum({0}, {1})", arity=2, elementwise=True, tensors="all",
       numpy=(lambda a, b: np.maximum(a, b), _maximum_backward),
       c=C("sp_maximum({0}, {1})", ("({0} > {1} ? {g} : {0} == {1} ? 0.5 * {g} : 0.0)",
                                   "({1} > {0} ? {g} : {0} == {1} ? 0.5 * {g} : 0.0)")),
       doc="the larger of two values, unit by unit"),
    Op("minimum", "broadcast", "torch.minimum({0}, {1})", arity=2, elementwise=True, tensors="all",
       numpy=(lambda a, b: np.minimum(a, b), _minimum_backward),
       c=C("sp_minimum({0}, {1})", ("({0} < {1} ? {g} : {0} == {1} ? 0.5 * {g} : 0.0)",
                                   "({1} < {0} ? {g} : {0} == {1} ? 0.5 * {g} : 0.0)")),
       doc="the smaller of two values, unit by unit"),
    Op("clamp", "broadcast", "torch.clamp({0}, {1}, {2})", arity=3, elementwise=True, tensors="mixed",
       numpy=(lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi), _clamp_backward),
       c=C("sp_minimum(sp_maximum({0}, {1}), {2})",
           ("({0} >= {1} && {0} <= {2} ? {g} : 0.0)", "({0} < {1} && {1} < {2} ? {g} : 0.0)",
            "({0} > {2} || {2} < {1} ? {g} : 0.0)")),
       doc="x held within [lo, hi], unit by unit (hi where lo > hi, as torch.clamp)"),
    # ---- sequences (specc/sequences.py): the IR node of prev(h, start) has args (start,) and `of` = h,
    # with no edge from h (the IR stays acyclic); specc/loops.py writes both into forward's loop over time.
    Op("prev", "prev", "", timed=True,
       doc="prev(h): h at the previous time step; prev(h, start) takes start at the first step (default 0)"),
    Op("last", "same", "{0}", timed=True,
       doc="last(h): h after the final time step, a value that is no longer a sequence"),
)

FUNCTIONS: dict[str, Op] = {name: op for name, op in OPS.items() if op.called}
BINARY_OPERATORS: tuple[str, ...] = tuple(name for name, op in OPS.items() if op.symbol and op.arity == 2)
