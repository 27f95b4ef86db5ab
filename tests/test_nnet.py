"""specc.train.nnet: nnet's weight order, its rang scheme, and its criterion, against R's nnet as an oracle.

The R numbers come from R 4.2 with nnet 7.3 on examples/sine50.csv (benchmarks/sine_nnet.R):
    nnet(x, y, size=4, linout=TRUE, Wts=seq(0, 1, by=1/12), maxit=10000, abstol=1e-8, reltol=1e-9)
    $value 1.5547170296255401e-05, 1436 vmmin iterations, predict(nn, pi/2) 1.000250762905595
"""
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import specc
from specc.train.bfgs import vmmin
from specc.train.data import tensors_for
from specc.errors import SpecError
from specc.train.nnet import KERNEL, NnetObjective, load_wts, logistic, nnet_layout, rang_init, tensors_to_wts, wts_to_tensors

ROOT = Path(__file__).resolve().parent.parent
SINE = ROOT / "specs" / "sine_nnet.spec"
SINE_DATA = ROOT / "examples" / "sine50.csv"
SEQ = [i * (1 / 12) for i in range(13)]  # R's seq(0, 1, by=1/12) computes from + i*by
F64 = torch.float64

# (spec text, expected (n_in, n_hidden, n_out, linout, scalar_output))
LAYOUTS = [
    (SINE.read_text(), (1, 4, 1, True, False)),
    ("input x\nh[3] = sigmoid(b1 + W1·x)\ny[2] = sigmoid(W2·h + b2)\n", (1, 3, 2, False, False)),
    ("input x[2]\nh[5] = logistic(W1·x + b1)\nz[3] = W2·h + b2\n", (2, 5, 3, True, False)),
    ("param w2[3]\ninput x[2]\nh[3] = logistic(W1·x + b1)\ny = w2·h + b2\n", (2, 3, 1, True, True)),
    ("input x\nh[2] = logistic(W1·x + b1)\ny[1] = linear(W2·h + b2)\n", (1, 2, 1, True, False)),
]

# (spec text, words the refusal must contain)
NOT_NNET = [
    ((ROOT / "specs" / "xor.spec").read_text(), "not a weighted sum plus a bias"),
    ((ROOT / "specs" / "two_io.spec").read_text(), "exactly one input and one output"),
    ((ROOT / "specs" / "cubic.spec").read_text(), "weight matrix times a vector plus a bias"),
    ("input x\nh[4] = tanh(W1·x + b1)\ny[1] = W2·h + b2\n", "not a logistic hidden layer"),
    ("input x\nh[4] = logistic(W1·x + b1)\ny[1] = W2·h + b2 + c\n", "not a weight matrix times a vector"),
    ("input x\nh[4] = logistic(W1·x + b1)\ng[4] = logistic(V·h + c)\ny[1] = W2·g + b2\n",
     "not computed from the input"),
]


def sine_model() -> torch.nn.Module:
    model = specc.load(SINE)
    load_wts(model, SEQ)
    return model


@pytest.mark.parametrize("text, expected", LAYOUTS, ids=range(len(LAYOUTS)))
def test_layout_of_one_hidden_layer_specs(text, expected):
    layout = nnet_layout(specc.load(text))
    assert (layout.n_in, layout.n_hidden, layout.n_out, layout.linout, layout.scalar_output) == expected
    assert layout.n_weights == expected[1] * (expected[0] + 1) + expected[2] * (expected[1] + 1)


@pytest.mark.parametrize("text, words", NOT_NNET, ids=range(len(NOT_NNET)))
def test_other_specs_are_refused_with_a_reason(text, words):
    with pytest.raises(SpecError, match=words):
        nnet_layout(specc.load(text))


def test_wts_follow_nnets_order():
    tensors = wts_to_tensors(SEQ, specc.load(SINE))
    # b->h1, i1->h1, b->h2, i1->h2, … , b->o, h1->o … h4->o
    assert tensors["b1"].tolist() == [SEQ[0], SEQ[2], SEQ[4], SEQ[6]]
    assert tensors["W1"].tolist() == [[SEQ[1]], [SEQ[3]], [SEQ[5]], [SEQ[7]]]
    assert tensors["b2"].tolist() == [SEQ[8]]
    assert tensors["W2"].tolist() == [SEQ[9:13]]
    assert nnet_layout(specc.load(SINE)).weight_names()[:3] == ["b->h1", "i1->h1", "b->h2"]
    assert nnet_layout(specc.load(SINE)).weight_names()[-2:] == ["h3->o", "h4->o"]


@pytest.mark.parametrize("text, expected", LAYOUTS, ids=range(len(LAYOUTS)))
def test_wts_round_trip(text, expected):
    model = specc.load(text)
    layout = nnet_layout(model)
    wts = torch.arange(layout.n_weights, dtype=F64) / 7
    tensors = wts_to_tensors(wts, layout)
    assert {k: tuple(v.shape) for k, v in tensors.items()} == {k: tuple(p.shape) for k, p in model.named_parameters()}
    assert torch.equal(tensors_to_wts(tensors, layout), wts)


def test_wrong_number_of_wts():
    with pytest.raises(SpecError, match="has 13 numbers, not 12"):
        wts_to_tensors(SEQ[:12], specc.load(SINE))


def test_load_wts_keeps_rs_doubles():
    model = sine_model()
    assert model.W2.dtype == F64 and model.W2[0, 0].item() == SEQ[9]


@pytest.mark.parametrize("rang", [0.7, 0.1, 0.0])
def test_rang_scheme(rang):
    model = specc.load(SINE)
    rang_init(model, rang, generator=torch.Generator().manual_seed(0))
    values = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert values.abs().max() <= rang
    assert (values != 0).all() if rang else (values == 0).all()


def test_rang_must_not_be_negative():
    with pytest.raises(SpecError, match="rang"):
        rang_init(specc.load(SINE), -1.0)


# (spec text, decay): the objective must equal the module's SSE and its autograd gradient
OBJECTIVES = [(SINE.read_text(), 0.0), (SINE.read_text(), 0.01), (LAYOUTS[1][0], 0.0), (LAYOUTS[2][0], 0.1),
              (LAYOUTS[3][0], 0.0)]


@pytest.mark.parametrize("text, decay", OBJECTIVES, ids=range(len(OBJECTIVES)))
def test_objective_matches_the_module(text, decay):
    torch.manual_seed(0)
    model = specc.load(text).double()
    layout = nnet_layout(model)
    x = torch.randn(7, layout.n_in, dtype=F64).squeeze(-1) if layout.n_in == 1 else torch.randn(7, layout.n_in,
                                                                                                   dtype=F64)
    out = model(x)
    target = torch.randn_like(out)
    sse = ((out - target) ** 2).sum() + decay * sum((p * p).sum() for p in model.parameters())
    grads = torch.autograd.grad(sse, list(model.parameters()))
    f, g = NnetObjective(layout, x, target, decay)(tensors_to_wts(model, layout))
    assert f == pytest.approx(sse.item(), rel=1e-13)
    expected = tensors_to_wts(dict(zip(dict(model.named_parameters()), grads)), layout)
    assert torch.allclose(g, expected, rtol=1e-12, atol=1e-14)


def test_logistic_saturates_as_nnets():
    s = np.array([[-16.0, -15.0, 0.0, 15.0, 16.0, -800.0, 800.0, math.nan]])
    h = logistic(s)[0]
    assert h[:-1].tolist() == [0.0, 1 / (1 + math.exp(15)), 0.5, 1 / (1 + math.exp(-15)), 1.0, 0.0, 1.0]
    assert math.isnan(h[-1])  # as in C: NaN is neither below -15 nor above 15
    assert logistic(np.array([-1.0, 2.5])).tolist() == [1 / (1 + math.exp(1.0)), 1 / (1 + math.exp(-2.5))]


BACKENDS = ["c", "numpy"]


def test_the_compiled_kernel_is_built_in_this_install():
    # Without it everything still works through NumPy, only several times slower: fail loudly here instead.
    assert KERNEL is not None
    assert NnetObjective(nnet_layout(specc.load(SINE)), torch.zeros(1), torch.zeros(1)).backend == "c"


def test_a_kernel_built_from_another_struct_is_not_used(monkeypatch):
    import ctypes

    import specc.train.nnet

    class Wider(ctypes.Structure):
        _fields_ = specc.train.nnet._Problem._fields_ + [("extra", ctypes.c_double)]

    monkeypatch.setattr(specc.train.nnet, "_Problem", Wider)
    with pytest.warns(RuntimeWarning, match="does not match specc/train/nnet.py"):
        assert specc.train.nnet._load_kernel() is None


@pytest.mark.parametrize("decay", [0.0, 0.013])
@pytest.mark.parametrize("text", [text for text, _ in LAYOUTS], ids=range(len(LAYOUTS)))
def test_kernel_and_numpy_implementation_agree_to_the_last_bit(text, decay):
    layout = nnet_layout(specc.load(text))
    rng = np.random.default_rng(7)
    x, t = rng.normal(size=(29, layout.n_in)) * 4, rng.normal(size=(29, layout.n_out))
    kernel, numpy = (NnetObjective(layout, x, t, decay, backend=b) for b in BACKENDS)
    for scale in (0.01, 1.0, 30.0):  # 30: many hidden sums land beyond the ±15 clamp
        for _ in range(40):
            w = rng.normal(size=layout.n_weights) * scale
            (f_kernel, g_kernel), (f_numpy, g_numpy) = kernel(w), numpy(w)
            assert f_kernel == f_numpy and kernel.value(w) == f_kernel == numpy.value(w)
            assert np.array_equal(g_kernel, g_numpy)
            assert np.array_equal(kernel.gradient(w), g_kernel) and np.array_equal(numpy.gradient(w), g_kernel)


def test_kernel_keeps_no_state_between_points():
    layout = nnet_layout(specc.load(LAYOUTS[2][0]))
    rng = np.random.default_rng(3)
    objective = NnetObjective(layout, rng.normal(size=(5, 2)), rng.normal(size=(5, 3)))
    a, b = rng.normal(size=(2, layout.n_weights))
    first = objective.value(a), objective.gradient(a)
    objective.value(b)
    assert objective.gradient(a).tolist() == first[1].tolist()  # a gradient asked for at another point
    assert objective.value(a) == first[0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_wrong_number_of_weights_is_refused(backend):
    objective = NnetObjective(nnet_layout(specc.load(SINE)), torch.zeros(3), torch.zeros(3), backend=backend)
    for wts in (np.zeros(12), np.zeros(1), np.zeros(14)):
        with pytest.raises(SpecError, match=f"1-4-1 network has 13 weights, not {wts.size}"):
            objective.value(wts)


def test_an_unknown_backend_is_refused():
    with pytest.raises(SpecError, match="'c' or 'numpy', not 'fortran'"):
        NnetObjective(nnet_layout(specc.load(SINE)), torch.zeros(1), torch.zeros(1), backend="fortran")


@pytest.mark.parametrize("backend", BACKENDS)
def test_bfgs_retraces_rs_nnet_fit_bit_for_bit(backend):
    model = sine_model()
    layout = nnet_layout(model)
    data = tensors_for(model, SINE_DATA, dtype=F64)
    objective = NnetObjective(layout, data["x"], data["y"], backend=backend)
    result = vmmin(objective.value, torch.tensor(SEQ, dtype=F64), gradient=objective.gradient, max_iter=10000,
                   abstol=1e-8, reltol=1e-9)
    assert result.iterations == 1436
    assert result.fmin == 1.5547170296255401e-05
    model_values = wts_to_tensors(result.x, layout)
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.copy_(model_values[name])
        assert model(torch.tensor([math.pi / 2], dtype=F64)).item() == pytest.approx(1.000250762905595, rel=1e-14)


def test_without_the_kernel_the_numpy_implementation_retraces_r(monkeypatch):
    """An install without a C compiler has no kernel: the nnet engine runs in NumPy, same fit."""
    import specc.train.nnet
    monkeypatch.setattr(specc.train.nnet, "KERNEL", None)
    model = specc.load(SINE)
    load_wts(model, [i * (1 / 12) for i in range(13)])
    result = specc.fit(model, SINE_DATA, loss="sse", optimizer="bfgs", engine="nnet", max_iter=10000,
                       abstol=1e-8, reltol=1e-9, progress=False)
    assert result.iterations == 1436
    with pytest.raises(SpecError, match="kernel is not built"):
        NnetObjective(nnet_layout(model), torch.zeros(1), torch.zeros(1), backend="c")
