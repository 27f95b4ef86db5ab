"""specc/ops.py: every operation of the table computes what PyTorch computes, in every backend.

A new operation is one row in specc/ops.py plus (for a function) one row in EXPECTED here: the tests
below then check its generated PyTorch code, its compile-time folding of numbers, and its NumPy
forward and backward rules against torch autograd.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import specc
from specc.ops import FUNCTIONS, OPS

# What each built-in must compute on a [B, n] batch, written independently of the registry.
EXPECTED = {
    "identity": lambda v: v,
    "linear": lambda v: v,
    "relu": lambda v: v.clamp(min=0),
    "tanh": torch.tanh,
    "sigmoid": lambda v: 1 / (1 + torch.exp(-v)),
    "logistic": lambda v: 1 / (1 + torch.exp(-v)),
    "softmax": lambda v: torch.exp(v) / torch.exp(v).sum(-1, keepdim=True),
    "log_softmax": lambda v: v - torch.logsumexp(v, -1, keepdim=True),
    "softplus": lambda v: torch.log1p(torch.exp(v)),
    "elu": lambda v: torch.where(v > 0, v, torch.expm1(v)),
    "gelu": lambda v: 0.5 * v * (1 + torch.erf(v / math.sqrt(2))),
    "silu": lambda v: v / (1 + torch.exp(-v)),
    "leaky_relu": lambda v: torch.where(v > 0, v, 0.01 * v),
    "exp": torch.exp,
    "log": torch.log,
    "sin": torch.sin,
    "cos": torch.cos,
    "abs": lambda v: v.clamp(min=0) - v.clamp(max=0),
    "sqrt": lambda v: v ** 0.5,
    "square": lambda v: v * v,
    "concat": lambda *parts: torch.cat(parts, dim=-1),
    "dropout": lambda v, p: v,  # in eval mode; training mode: tests/test_dropout.py
    "sum": lambda v: v.sum(-1),
    "mean": lambda v: v.sum(-1) / v.shape[-1],
    "max": lambda v: v.max(-1).values,
    "min": lambda v: v.min(-1).values,
    "norm": lambda v: (v * v).sum(-1).sqrt(),
    "layer_norm": lambda v: torch.nn.LayerNorm(v.shape[-1], elementwise_affine=False, dtype=v.dtype)(v),
    "maximum": lambda a, b: torch.where(a > b, a, b),
    "minimum": lambda a, b: torch.where(a < b, a, b),
    "clamp": lambda v, lo, hi: _at_most(torch.where(v < lo, lo, v), hi),  # hi wins where lo > hi
}
POSITIVE_ONLY = {"log", "sqrt"}


def _at_most(v, hi):
    return torch.where(v > hi, hi, v)


# prev and last are about time steps, not a [B, n] batch: tests/test_sequences.py checks them.
TIMED = {name for name, op in FUNCTIONS.items() if op.timed}


def test_every_function_has_an_expected_row():
    assert set(EXPECTED) == set(FUNCTIONS) - TIMED == set(FUNCTIONS) - {"prev", "last"}


def _batch(name, shape):
    values = torch.randn(*shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return values.abs() + 0.1 if name in POSITIVE_ONLY else values


@pytest.mark.parametrize("name", sorted(n for n, f in FUNCTIONS.items() if f.arity == 1 and not f.timed))
def test_function_on_a_vector_input(name):
    x = _batch(name, (5, 4))
    model = specc.load(f"input x[4]\ny = {name}(x)").double()
    torch.testing.assert_close(model(x), EXPECTED[name](x), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(n for n, f in FUNCTIONS.items() if f.elementwise and f.arity == 1))
def test_elementwise_function_on_a_scalar_input_and_on_a_number(name):
    x = _batch(name, (5,))
    model = specc.load(f"input x\ny = x * {name}(2) + {name}(x)").double()
    two = torch.tensor(2.0, dtype=torch.float64)
    torch.testing.assert_close(model(x), x * EXPECTED[name](two) + EXPECTED[name](x), atol=1e-12, rtol=1e-12)


SEVERAL = sorted(n for n, f in FUNCTIONS.items() if f.elementwise and (f.arity or 1) > 1 and not f.random)


@pytest.mark.parametrize("name", SEVERAL)
def test_elementwise_function_of_several_values_broadcasts_as_plus_does(name):
    """maximum(a, b), clamp(x, lo, hi): each operand in turn a per-sample scalar among vectors, then a number."""
    names = ["a", "b", "c"][:FUNCTIONS[name].arity]
    values = [torch.randn(5, 4, generator=torch.Generator().manual_seed(k), dtype=torch.float64) for k in range(3)]
    for scalar in range(len(names)):
        declared = ", ".join(n if k == scalar else f"{n}[4]" for k, n in enumerate(names))
        model = specc.load(f"input {declared}\ny = {name}({', '.join(names)})").double()
        args = [v[:, 0] if k == scalar else v for k, v in enumerate(values[:len(names)])]
        expected = EXPECTED[name](*[a[:, None] if k == scalar else a for k, a in enumerate(args)])
        torch.testing.assert_close(model(*args), expected, atol=0, rtol=0)
        written = [n if k != scalar else "0.25" for k, n in enumerate(names)]
        model = specc.load(f"input {', '.join(f'{n}[4]' for k, n in enumerate(names) if k != scalar)}\n"
                           f"y = {name}({', '.join(written)})").double()
        number = torch.full((5, 4), 0.25, dtype=torch.float64)
        expected = EXPECTED[name](*[number if k == scalar else a for k, a in enumerate(values[:len(names)])])
        torch.testing.assert_close(model(*[a for k, a in enumerate(values[:len(names)]) if k != scalar]), expected,
                                   atol=0, rtol=0)


def _as_torch(name, args):
    """The row's PyTorch template evaluated on tensors (test code; specc never evaluates spec text)."""
    code = OPS[name].code([f"args[{i}]" for i in range(len(args))], units=args[0].shape[-1] if args[0].dim() else 1)
    return eval(code, {"torch": torch, "F": F, "args": args})  # noqa: S307


NUMPY_ROWS = sorted(name for name, op in OPS.items() if op.numpy is not None)


@pytest.mark.parametrize("name", NUMPY_ROWS)
def test_numpy_rules_agree_with_the_torch_template_and_its_gradient(name):
    """The NumPy backend (the training tape, compile-time folding) and the PyTorch template are one
    function, with one derivative."""
    op = OPS[name]
    arity = op.arity or 2
    args = [_batch(name, (3, 4)) * (1 + i) for i in range(arity)]
    if name == "pow":
        args[0] = args[0].abs() + 0.5
    leaves = [a.clone().requires_grad_() for a in args]
    expected = _as_torch(name, leaves)
    forward, backward = op.numpy
    arrays = [a.numpy() for a in args]
    value = forward(*arrays)
    # a reduction keeps its unit axis in NumPy (the tape's layout), not in PyTorch
    np.testing.assert_allclose(value, expected.detach().numpy().reshape(value.shape), rtol=1e-14, atol=1e-15)
    g = np.linspace(-1, 1, value.size).reshape(value.shape)
    expected.backward(torch.from_numpy(g).reshape(expected.shape))
    for grad, leaf in zip(backward(g, *arrays, value), leaves):
        np.testing.assert_allclose(grad, leaf.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_every_row_is_well_formed():
    for name, op in OPS.items():
        assert op.name == name and op.shape in ("broadcast", "same", "vector", "reduce", "product", "concat",
                                                "transpose", "index", "slice", "prev")
        assert len(op.operands) in (1, op.arity or 1), name
        assert (op.symbol is None) == (op.binds is None), name
        assert not op.called or name.isidentifier(), name


def test_concat_joins_vectors_scalars_parameters_and_numbers():
    model = specc.load("input x, v[3]\nparam p[2], s\ny = concat(x, v, p, s, 1.5)").double()
    x, v = torch.randn(4, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64)
    expected = torch.cat([x[:, None], v, model.p.expand(4, 2), model.s.expand(4, 1),
                          torch.full((4, 1), 1.5, dtype=torch.float64)], dim=1)
    torch.testing.assert_close(model(x, v), expected, atol=0, rtol=0)


def test_concat_of_per_model_values_is_a_vector_repeated_per_sample():
    model = specc.load("input x\nparam p[2]\nc = concat(p, 2)\ny = x * c").double()
    x = torch.randn(3, dtype=torch.float64)
    torch.testing.assert_close(model(x), x[:, None] * torch.cat([model.p, torch.tensor([2.0]).double()]))


def test_leaky_relu_and_softmax_are_the_torch_defaults():
    v = torch.randn(3, 5, dtype=torch.float64)
    torch.testing.assert_close(specc.load("input x[5]\ny = leaky_relu(x)").double()(v), F.leaky_relu(v))
    torch.testing.assert_close(specc.load("input x[5]\ny = softmax(x)").double()(v), torch.softmax(v, dim=1))


@pytest.mark.parametrize("op,args,value", [
    ("add", (1, 2), 3.0), ("div", (1, 0), math.inf), ("div", (0, 0), math.nan), ("pow", (-8, 1 / 3), math.nan),
    ("neg", (2,), -2.0), ("sqrt", (2,), math.sqrt(2)), ("log", (0,), -math.inf), ("log", (-1,), math.nan),
    ("exp", (1000,), math.inf), ("pow", (0, -1), math.inf),
])
def test_folding_numbers_is_float64_arithmetic(op, args, value):
    """``1/0`` is inf and ``log(-1)`` nan, as on a float64 tensor, and never a Python exception."""
    result = OPS[op].fold(*args)
    assert result == value or (math.isnan(value) and math.isnan(result))


@pytest.mark.parametrize("name", sorted(n for n, op in OPS.items() if op.foldable))
def test_folding_matches_torch_float64_to_the_last_bits(name):
    args = [0.7, 1.3, 1.1][:OPS[name].arity]
    folded = OPS[name].fold(*args)
    on_tensors = _as_torch(name, [torch.tensor(a, dtype=torch.float64) for a in args]).item()
    assert folded == pytest.approx(on_tensors, rel=4e-16, abs=0)
