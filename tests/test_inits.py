"""specc/inits.py and default initialisation: PyTorch's own numbers under the same seed."""
import math
from pathlib import Path

import pytest
import torch
from torch import nn

import specc
from references.seed_polynomial import LEGENDRE_START, Polynomial3
from specc.inits import INITIALIZERS

SPECS = Path(__file__).resolve().parent.parent / "specs"


def _values(module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


# ---------------------------------------------------------------- the nn.Linear habit
@pytest.mark.parametrize("n_in,n_hidden,n_out", [(2, 5, 1), (3, 7, 4), (1, 1, 1)])
def test_two_sigmoid_layers_start_like_nn_sequential(n_in, n_hidden, n_out):
    torch.manual_seed(1234)
    model = specc.load(f"input x[{n_in}]\nh[{n_hidden}] = sigmoid(W1·x + b1)\ny[{n_out}] = sigmoid(W2·h + b2)")
    torch.manual_seed(1234)
    reference = nn.Sequential(nn.Linear(n_in, n_hidden), nn.Sigmoid(), nn.Linear(n_hidden, n_out), nn.Sigmoid())
    assert [n for n, _ in model.named_parameters()] == ["W1", "b1", "W2", "b2"]
    for ours, theirs in zip(_values(model), _values(reference), strict=True):
        assert torch.equal(ours, theirs)
    x = torch.randn(6, n_in)
    assert torch.equal(model(x), reference(x))


@pytest.mark.parametrize("spec,reference", [
    ("sine_nnet.spec", lambda: nn.Sequential(nn.Linear(1, 4), nn.Sigmoid(), nn.Linear(4, 1))),
    ("curve_tanh.spec", lambda: nn.Sequential(nn.Linear(1, 10), nn.Tanh(), nn.Linear(10, 1))),
])
def test_bundled_layer_specs_start_like_nn_linear(spec, reference):
    torch.manual_seed(7)
    ours = _values(specc.load(SPECS / spec))
    torch.manual_seed(7)
    for a, b in zip(ours, _values(reference()), strict=True):
        assert torch.equal(a, b)


def test_two_io_weights_and_bias_follow_nn_linear():
    def weight(n_out, n_in):  # nn.Linear.reset_parameters, weight part
        return nn.init.kaiming_uniform_(torch.empty(n_out, n_in), a=math.sqrt(5))

    def bias(n, fan_in):  # nn.Linear.reset_parameters, bias part
        return nn.init.uniform_(torch.empty(n), -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))

    torch.manual_seed(3)
    model = specc.load(SPECS / "two_io.spec")
    torch.manual_seed(3)
    # drawn in the spec's order: W1, V1, b (bias of their sum, fan-in 5), W2, b_w, V2, b_v
    expected = [weight(10, 5), weight(10, 5), bias(10, 5), weight(3, 10), bias(3, 10), weight(3, 10), bias(3, 10)]
    for (name, ours), theirs in zip(model.named_parameters(), expected, strict=True):
        assert torch.equal(ours, theirs), name


def test_cubic_starts_from_four_randn_draws_like_the_tutorial():
    torch.manual_seed(0)
    model = specc.load(SPECS / "cubic.spec")
    torch.manual_seed(0)
    tutorial = Polynomial3()
    assert [n for n, _ in model.named_parameters()] == ["a", "b", "c", "d"]
    for ours, theirs in zip(_values(model), _values(tutorial), strict=True):
        assert ours.shape == () and torch.equal(ours, theirs)


def test_legendre_starts_from_the_tutorial_values():
    model = specc.load(SPECS / "legendre.spec")
    assert {n: p.item() for n, p in model.named_parameters()} == pytest.approx(LEGENDRE_START, abs=1e-7)


def test_reset_parameters_draws_again_in_the_same_order():
    model = specc.load(SPECS / "two_io.spec")
    torch.manual_seed(5)
    model.reset_parameters()
    first = _values(model)
    torch.manual_seed(5)
    assert all(torch.equal(a, b) for a, b in zip(first, _values(specc.load(SPECS / "two_io.spec"))))


# ---------------------------------------------------------------- every init form
def _drawn(init):
    def draw():
        tensor = torch.empty(2, 3)
        init(tensor)
        return tensor
    return draw


INIT_FORMS = [
    # (the init line's right-hand side, the same draw written with torch on an empty [2, 3] tensor)
    ("-1", _drawn(lambda t: t.fill_(-1))),
    ("1/12", _drawn(lambda t: t.fill_(1 / 12))),
    ("2*pi", _drawn(lambda t: t.fill_(2 * math.pi))),
    ("-pi/4 + e", _drawn(lambda t: t.fill_(-math.pi / 4 + math.e))),
    ("sqrt(2)", _drawn(lambda t: t.fill_(math.sqrt(2)))),
    ("2^-3", _drawn(lambda t: t.fill_(0.125))),
    ("constant(3)", _drawn(lambda t: t.fill_(3))),
    ("zeros", _drawn(nn.init.zeros_)),
    ("ones", _drawn(nn.init.ones_)),
    ("uniform", _drawn(nn.init.uniform_)),
    ("uniform(-2, 3)", _drawn(lambda t: nn.init.uniform_(t, -2, 3))),
    ("uniform(-1/sqrt(3), 1/sqrt(3))", _drawn(lambda t: nn.init.uniform_(t, -1 / math.sqrt(3), 1 / math.sqrt(3)))),
    ("normal", _drawn(nn.init.normal_)),
    ("normal(1, 0.5)", _drawn(lambda t: nn.init.normal_(t, 1, 0.5))),
    ("randn", lambda: torch.randn(2, 3)),
    ("rang", _drawn(lambda t: nn.init.uniform_(t, -0.7, 0.7))),
    ("rang(0.5)", _drawn(lambda t: nn.init.uniform_(t, -0.5, 0.5))),
    ("xavier_uniform", _drawn(nn.init.xavier_uniform_)),
    ("xavier_uniform(2)", _drawn(lambda t: nn.init.xavier_uniform_(t, gain=2))),
    ("xavier_normal", _drawn(nn.init.xavier_normal_)),
    ("kaiming_uniform", _drawn(nn.init.kaiming_uniform_)),
    ("kaiming_uniform(1)", _drawn(lambda t: nn.init.kaiming_uniform_(t, a=1))),
    ("kaiming_normal", _drawn(nn.init.kaiming_normal_)),
    ("orthogonal", _drawn(nn.init.orthogonal_)),
    ("orthogonal(2)", _drawn(lambda t: nn.init.orthogonal_(t, gain=2))),
    ("linear_weight", lambda: nn.Linear(3, 2).weight.detach()),
    ("linear_bias(3)", _drawn(lambda t: nn.init.uniform_(t, -1 / math.sqrt(3), 1 / math.sqrt(3)))),
]


def test_every_initializer_has_a_row():
    schemes = {text.split("(")[0] for text, _ in INIT_FORMS if text.split("(")[0] in INITIALIZERS}
    assert schemes | {"constant", "values"} == set(INITIALIZERS)  # values: tests/test_fixed_constants.py


@pytest.mark.parametrize("dist,draw", INIT_FORMS, ids=[text for text, _ in INIT_FORMS])
def test_init_form(dist, draw):
    text = f"input x[3]\ny[2] = W·x + b\ninit W = {dist}"
    torch.manual_seed(11)
    weight = specc.load(text).W.detach()
    torch.manual_seed(11)
    assert torch.equal(weight, draw())
    assert specc.graph(text).nodes["W"]["init"] == (dist.split("(")[0] if dist.split("(")[0] in INITIALIZERS
                                                    else "constant")


def test_init_lines_do_not_change_what_the_other_parameters_draw():
    torch.manual_seed(2)
    plain = specc.load("input x[3]\ny[2] = W·x + b")
    torch.manual_seed(2)
    with_init = specc.load("input x[3]\ny[2] = W·x + b\ninit W = kaiming_uniform(2.23606797749979)")
    assert torch.equal(plain.b, with_init.b)


@pytest.mark.parametrize("dist,value", [("0.5", 0.5), ("uniform(2, 2)", 2.0), ("normal(3, 0)", 3.0), ("ones", 1.0)])
def test_init_on_a_scalar_and_a_vector(dist, value):
    model = specc.load(f"input x[3]\nparam s, v[3]\ny = s * v * x\ninit s = {dist}\ninit v = {dist}")
    assert model.s.shape == () and model.s.item() == value
    assert torch.equal(model.v.detach(), torch.full((3,), value))
