"""specc/functions.py: every built-in function computes what PyTorch computes, on vectors, scalars and numbers."""
import math

import pytest
import torch
import torch.nn.functional as F

import specc
from specc.functions import FUNCTIONS, evaluate

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
}
POSITIVE_ONLY = {"log", "sqrt"}


def test_every_function_has_an_expected_row():
    assert set(EXPECTED) == set(FUNCTIONS)


def _batch(name, shape):
    values = torch.randn(*shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    return values.abs() + 0.1 if name in POSITIVE_ONLY else values


@pytest.mark.parametrize("name", sorted(set(FUNCTIONS) - {"concat"}))
def test_function_on_a_vector_input(name):
    x = _batch(name, (5, 4))
    model = specc.load(f"input x[4]\ny = {name}(x)").double()
    torch.testing.assert_close(model(x), EXPECTED[name](x), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(n for n, f in FUNCTIONS.items() if f.elementwise))
def test_elementwise_function_on_a_scalar_input_and_on_a_number(name):
    x = _batch(name, (5,))
    model = specc.load(f"input x\ny = x * {name}(2) + {name}(x)").double()
    two = torch.tensor(2.0, dtype=torch.float64)
    torch.testing.assert_close(model(x), x * EXPECTED[name](two) + EXPECTED[name](x), atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_template_and_callable_agree(name):
    """The code the generator writes and the callable it folds numbers with are one function."""
    function = FUNCTIONS[name]
    x = _batch(name, (3, 4))
    args = [x, x * 2] if function.arity is None else [x]
    written = specc.load(f"input x[4]\ny = {name}({', '.join(['x', '2*x'][:len(args)])})").double()(x)
    torch.testing.assert_close(written, function.apply(*args), atol=0, rtol=0)


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
    ("add", (1, 2), 3.0), ("div", (1, 0), math.inf), ("pow", (-8, 1 / 3), math.nan), ("neg", (2,), -2.0),
    # torch's own sqrt: on some CPUs its vectorised float64 sqrt is one ulp from math.sqrt(2)
    ("sqrt", (2,), torch.sqrt(torch.tensor(2.0, dtype=torch.float64)).item()), ("log", (0,), -math.inf), ("concat", (1, 2), None), ("softmax", (1,), None),
])
def test_evaluate_on_numbers_is_pytorch_float64(op, args, value):
    result = evaluate(op, *args)
    if value is None or math.isnan(value):
        assert result is value or math.isnan(result)
    else:
        assert result == value
