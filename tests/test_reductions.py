"""Reductions over the features (sum, mean, max, min, norm), layer_norm, and the elementwise maximum,
minimum and clamp: shapes in both directions, the generated PyTorch against hand-written PyTorch, the
training backends' values and gradients against autograd (ties included), drawing, the errors, and the
bundled layer-normed residual block against nn.LayerNorm."""
import numpy as np
import pytest
import torch
from torch import nn

import specc
from conftest import assert_spec_error
from references import layers
from specc.diagram_units import read_units
from specc.errors import ArityError, ShapeError, UndeterminedSizeError
from specc.files import bundled
from test_ccode import assert_backends_match_autograd
from test_tape import _data

D = torch.float64


def _randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=D)


# ---------------------------------------------------------------- shapes and the generated PyTorch
def test_a_reduction_of_a_vector_is_a_scalar_per_sample():
    spec = "input x[5]\ns = sum(x)\nm = mean(x)\nhi = max(x)\nlo = min(x)\nn = norm(x)\n"
    graph = specc.graph(spec)
    assert all(graph.nodes[n]["shape"] == () and graph.nodes[n]["batched"] for n in ("s", "m", "hi", "lo", "n"))
    x = _randn(7, 5)
    out = specc.load(spec).double()(x)
    expected = (x.sum(1), x.mean(1), x.max(1).values, x.min(1).values, (x * x).sum(1).sqrt())
    for value, wanted in zip(out, expected):
        torch.testing.assert_close(value, wanted, atol=1e-14, rtol=1e-14)


def test_a_reduction_broadcasts_against_the_vector_it_came_from():
    model = specc.load("input x[4]\ncentred = x - mean(x)\nunit = x / norm(x)\n").double()
    x = _randn(3, 4)
    centred, unit = model(x)
    torch.testing.assert_close(centred, x - x.mean(1, keepdim=True))
    torch.testing.assert_close(unit, x / x.norm(dim=1, keepdim=True))


def test_a_per_model_vector_reduces_once_for_every_sample():
    model = specc.load("input x\nparam p[3]\ny = x * sum(p) + max(p)\n").double()
    x = _randn(4)
    torch.testing.assert_close(model(x), x * model.p.sum() + model.p.max())


def test_on_a_scalar_a_reduction_is_the_scalar_and_norm_its_absolute_value():
    spec = "input x\ny = sum(x) + mean(2*x) + max(x) - min(x) + norm(x)\nz = sum(3) + norm(-2)\n"
    source = specc.to_source(spec)
    assert ".sum(" not in source and "amax" not in source and "vector_norm" not in source
    assert "torch.abs(x)" in source
    x = _randn(6)
    y, z = specc.load(spec).double()(x)
    torch.testing.assert_close(y, x + 2 * x + x - x + x.abs())
    torch.testing.assert_close(z, torch.full((6,), 5.0, dtype=D))  # numbers alone: computed when compiled


def test_the_templates_are_the_ones_a_reader_expects():
    source = specc.to_source("input x[4]\ny = sum(x) * mean(x) * max(x) * min(x) * norm(x)\n"
                             "z[4] = g * layer_norm(x) + b\nw = clamp(x, 0, 1) + maximum(x, lo) + minimum(x, 0)\n")
    for text in ("x.sum(-1)", "x.mean(-1)", "x.amax(-1)", "x.amin(-1)", "torch.linalg.vector_norm(x, dim=-1)",
                 "F.layer_norm(x, (4,))", "torch.clamp(x, 0, 1)", "torch.maximum(x, self.lo)",
                 "torch.minimum(x, x.new_full((), 0))"):
        assert text in source, text


def test_an_operand_nothing_else_shapes_is_taken_for_a_vector():
    with pytest.raises(UndeterminedSizeError, match=r"declare it, e.g. 'param p\[N\]'"):
        specc.graph("input x\ny = x * sum(p)\n")
    assert specc.graph("input x\nparam p[5]\ny = x * sum(p)\n").nodes["p"]["shape"] == (5,)
    # the size of what is reduced comes from elsewhere: here from h's declaration, through W
    graph = specc.graph("input x[3]\nh[6] = tanh(W·x)\ny = max(h) + sum(V·x)\nparam V[2, 3]\n")
    assert graph.nodes["W"]["shape"] == (6, 3) and graph.nodes["y"]["shape"] == ()


def test_maximum_minimum_and_clamp_broadcast_as_plus_does():
    graph = specc.graph("input h[4]\ny = clamp(h, lo, hi)\nz = maximum(h, m)\n")
    assert [graph.nodes[n]["shape"] for n in ("lo", "hi", "m", "y", "z")] == [(4,)] * 5
    graph = specc.graph("input h[4]\nparam lo, hi\ny = clamp(h, lo, hi)\n")
    assert graph.nodes["lo"]["shape"] == () and graph.nodes["y"]["shape"] == (4,)
    model = specc.load("input x, v[3]\ny = clamp(x, v, 1) + maximum(x, v)\n").double()  # a scalar among vectors
    x, v = _randn(5), _randn(5, 3, seed=1)
    torch.testing.assert_close(model(x, v), torch.clamp(x[:, None], v, torch.tensor(1.0, dtype=D))
                               + torch.maximum(x[:, None], v))


@pytest.mark.parametrize("spec,error,line,column,message", [
    ("input x[2]\nh[3] = tanh(W·x + b)\ny = sum(W)", ShapeError, 3, 5,
     "'sum' reduces the units of a vector (or a scalar) to one number; the operand of 'sum(W)' is a matrix [3, 2]"),
    ("input x\ny = layer_norm(x)", ShapeError, 2, 5, "'layer_norm' needs a vector; 'layer_norm(x)' is a scalar"),
    ("input x[3]\ny = clamp(x, 0)", ArityError, 2, 5, "'clamp' takes 3 arguments, not 2"),
    ("input x[3]\ny = maximum(x)", ArityError, 2, 5, "'maximum' takes 2 arguments, not 1"),
    ("input x[3]\ny = norm(x, x)", ArityError, 2, 5, "'norm' takes 1 argument, not 2"),
    ("input x[3]\nparam W[2, 2]\ny = maximum(x, W)", ShapeError, 3, 5, "needs operands of one kind or a scalar"),
])
def test_misuse_is_reported_where_it_is(spec, error, line, column, message):
    assert_spec_error(spec, error, line, column, message)


def test_max_and_min_are_functions_now_not_typos_of_softmax():
    model = specc.load("input x[3]\ny = max(x) - min(x)\n").double()
    x = _randn(2, 3)
    torch.testing.assert_close(model(x), x.amax(1) - x.amin(1))


# ---------------------------------------------------------------- layer_norm against nn.LayerNorm
@pytest.mark.parametrize("dtype,tolerance", [(torch.float32, 1e-6), (torch.float64, 1e-14)])
def test_gain_times_layer_norm_plus_bias_is_nn_layer_norm(dtype, tolerance):
    model = specc.load("input h[6]\ny[6] = g * layer_norm(h) + b\n").to(dtype)
    reference = nn.LayerNorm(6, dtype=dtype)
    with torch.no_grad():
        reference.weight.copy_(_randn(6, seed=2))
        reference.bias.copy_(_randn(6, seed=3))
        model.g.copy_(reference.weight)
        model.b.copy_(reference.bias)
    h = (3 * _randn(50, 6, seed=4) + 1).to(dtype)
    torch.testing.assert_close(model(h), reference(h), atol=tolerance, rtol=tolerance)


# ---------------------------------------------------------------- the training backends
SPECS = {
    "everything": "input x[4]\nh[4] = relu(W1·x + b1)\nr = x + W2·h\ny[4] = g * layer_norm(r) + b\n"
                  "s = sum(r) + mean(r) * max(r) - min(r) + norm(r)\n"
                  "z = clamp(x, lo, hi) + maximum(x, r) - minimum(r, 0.5)\n",
    "scalars": "input x, v[3]\nparam V[3, 3]\ny = sum(x) + norm(a*x) + max(x) + clamp(x, p, 0.3)\n"
               "z = clamp(x, 0, w) + maximum(c, v) + mean(v*x) + layer_norm(V·v)\n",
    "per_model": "input x[2]\nparam p[3], q[2], r[2], W[3, 2]\ny = sum(p) * x + norm(q) + layer_norm(r) + max(W·x)\n",
}


@pytest.mark.parametrize("loss", ["sse", "mse"])
@pytest.mark.parametrize("name", sorted(SPECS))
def test_tape_and_compiled_criterion_match_autograd(name, loss):
    spec = SPECS[name]
    graph = specc.graph(spec)
    inputs, targets = _data(graph)
    size = sum(int(np.prod(graph.nodes[p]["shape"])) for p in graph.graph["params"])
    thetas = np.random.default_rng(0).normal(size=(3, size))
    assert_backends_match_autograd(spec, thetas, inputs, targets, loss)


def _theta(spec: str, **values) -> np.ndarray:
    model = specc.load(spec)
    return np.concatenate([np.ravel(np.asarray(values[name], dtype=float)) for name, _ in model.named_parameters()])


TIES = "input x\nparam u[3], v[3], a, b, c, lo, hi\ny = x * max(u) + x * min(v) + x * maximum(a, b) + x * clamp(c, lo, hi)\n"
TIE_POINTS = [  # (what ties, the parameters)
    ("two largest and two smallest units; a = b; c = lo < hi",
     dict(u=[0.5, 0.5, 0.2], v=[0.1, 0.3, 0.1], a=0.4, b=0.4, c=0.2, lo=0.2, hi=0.7)),
    ("three largest; c below lo = hi (no one gets clamp's gradient)",
     dict(u=[0.5, 0.5, 0.5], v=[0.1, 0.3, 0.2], a=0.4, b=0.1, c=0.1, lo=0.3, hi=0.3)),
    ("c above hi < lo (the result is hi)", dict(u=[0.1, 0.5, 0.2], v=[0.1, 0.1, 0.1], a=0.1, b=0.4, c=0.5,
                                                 lo=0.4, hi=0.2)),
    ("c = hi", dict(u=[0.2, 0.1, 0.2], v=[0.3, 0.1, 0.3], a=-0.4, b=-0.4, c=0.6, lo=0.1, hi=0.6)),
]


@pytest.mark.parametrize("what,values", TIE_POINTS, ids=[t[0] for t in TIE_POINTS])
def test_ties_share_the_gradient_as_torch_does_in_every_backend(what, values):
    graph = specc.graph(TIES)
    inputs, targets = _data(graph)
    thetas = _theta(TIES, **values)[None, :]
    assert_backends_match_autograd(TIES, thetas, inputs, targets, rtol=1e-12, atol=1e-14)


def test_amax_shares_a_tie_evenly_where_max_over_a_dim_would_pick_one():
    """Why the template is amax: its gradient at a tie is defined (half each), so the backends can match it."""
    model = specc.load("input x\nparam u[3]\ny = x * max(u)\n").double()
    with torch.no_grad():
        model.u.copy_(torch.tensor([0.5, 0.5, 0.2]))
    model(torch.ones(1, dtype=D)).sum().backward()
    assert model.u.grad.tolist() == [0.5, 0.5, 0.0]


def test_ties_in_the_data_too():
    spec = "input x[3]\ny = maximum(x, a) + clamp(x, lo, hi) + max(relu(x)) * c\n"
    inputs = {"x": np.array([[0.0, 0.5, 0.5], [-1.0, 0.0, 0.5], [0.2, -0.3, 0.0], [0.0, 0.0, 0.0]])}
    targets = {"y": np.random.default_rng(1).normal(size=(4, 3))}
    thetas = _theta(spec, a=[0.5, 0.0, 0.2], lo=[0.0, 0.5, -0.3], hi=[0.5, 0.5, 0.0], c=2.0)[None, :]
    assert_backends_match_autograd(spec, thetas, inputs, targets, rtol=1e-12, atol=1e-14)


def test_the_norm_of_a_zero_vector_passes_no_gradient():
    spec = "input x\nparam q[3]\ny = x * norm(q)\n"
    graph = specc.graph(spec)
    inputs, targets = _data(graph)
    thetas = np.zeros((1, 3))
    _, expected_g = assert_backends_match_autograd(spec, thetas, inputs, targets, rtol=1e-14, atol=0)
    assert not expected_g.any()  # and so neither backend's (compared with atol 0)


# ---------------------------------------------------------------- drawing
def test_the_unit_views_wire_a_reduction_and_layer_norm_to_every_unit():
    net = read_units(specc.graph("input x[3]\nh[4] = relu(W·x + b)\ns = sum(h)\nr[3] = layer_norm(x)\n"))
    wires = {(c.source, c.target) for c in net.connections() if c.kind == "wire"}
    assert {((("h", j), ("s", 0))) for j in range(4)} <= wires
    assert {(("x", j), ("r", i)) for i in range(3) for j in range(3)} <= wires
    assert net.columns["s"].op == "sum" and net.columns["s"].caption() == ("s", "", "= sum(h) · output")


def test_the_unit_views_wire_maximum_and_clamp_unit_to_unit():
    net = read_units(specc.graph("input x, v[3]\ny = maximum(x, v)\nz = clamp(v, lo, 1)\nparam lo\n"))
    wires = sorted((c.source, c.target) for c in net.connections() if c.target[0] == "y")
    assert wires == sorted([(("x", 0), ("y", i)) for i in range(3)] + [(("v", i), ("y", i)) for i in range(3)])
    assert net.columns["z"].operands == ["v", "lo"]  # the constant stays in the label


@pytest.mark.parametrize("view", ["neurons", "layers", "graph"])
def test_every_view_draws_them(view):
    source = specc.draw(bundled("specs") / "layer_norm_residual.spec", view=view).source
    assert "layer_norm" in source
    dot = specc.draw("input x[3]\ny = clamp(x, lo, hi) + sum(x) + maximum(x, 0)\n", view=view).source
    assert ("clamp" in dot) and ("sum" in dot)


# ---------------------------------------------------------------- the bundled layer-normed residual block
def _copy_into(model, block):
    with torch.no_grad():
        for name, value in block.named_parameters():
            getattr(model, {v: k for k, v in layers.LAYER_NORM_NAMES.items()}[name]).copy_(value)


def test_the_residual_block_starts_as_the_hand_written_one():
    torch.manual_seed(0)
    model = specc.load(bundled("specs") / "layer_norm_residual.spec")
    torch.manual_seed(0)
    block = layers.LayerNormResidual()
    assert [name for name, _ in model.named_parameters()] == ["W1", "b1", "W2", "b2", "g", "b"]
    for mine, theirs in zip(model.parameters(), block.parameters()):
        torch.testing.assert_close(mine, theirs, atol=0, rtol=0)


@pytest.mark.parametrize("dtype,tolerance", [(torch.float32, 1e-6), (torch.float64, 1e-13)])
def test_the_residual_block_computes_what_the_hand_written_one_does(dtype, tolerance):
    model = specc.load(bundled("specs") / "layer_norm_residual.spec").to(dtype)
    block = layers.LayerNormResidual().to(dtype)
    with torch.no_grad():  # a trained-looking gain and bias, not LayerNorm's ones and zeros
        block.norm.weight.copy_(_randn(8, seed=5))
        block.norm.bias.copy_(_randn(8, seed=6))
    _copy_into(model, block)
    x = _randn(64, 8, seed=7).to(dtype)
    torch.testing.assert_close(model(x), block(x), atol=tolerance, rtol=tolerance)
    model(x).square().sum().backward()
    block(x).square().sum().backward()
    for name, theirs in (("W1", block.lin1.weight), ("g", block.norm.weight), ("b", block.norm.bias)):
        torch.testing.assert_close(getattr(model, name).grad, theirs.grad, atol=10 * tolerance, rtol=10 * tolerance)


def test_the_residual_block_fits_on_the_compiled_criterion():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 8))
    y = np.tanh(x[:, ::-1])
    torch.manual_seed(0)
    model = specc.load(bundled("specs") / "layer_norm_residual.spec")
    result = specc.fit(model, {"x": x, "y": y}, optimizer="bfgs", max_iter=50, progress=False)
    assert result.settings["engine"] == "compiled"
    assert result.loss < result.history[0]


# ---------------------------------------------------------------- the language reference
def test_the_examples_in_the_reference_table_compile():
    from test_docs import LANGUAGE
    rows = [line for line in LANGUAGE.splitlines() if line.startswith("| `") and "as PyTorch computes it" not in line]
    table = [row for row in rows if any(f"| `{name}(" in row for name in ("sum", "layer_norm", "maximum", "clamp",
                                                                           "mean", "max", "norm"))]
    assert len(table) == 7
    for row in table:
        example = row.rstrip(" |").rsplit("| `", 1)[1].rstrip("`")
        target = example.split("=")[0].split("[")[0].strip()
        inputs = [n for n in ("x", "h", "r", "q") if n != target]
        model = specc.load(f"input {', '.join(n + '[4]' for n in inputs)}\n{example}\n").double()
        assert model(*(_randn(3, 4, seed=k) for k in range(len(inputs)))).shape[0] == 3
