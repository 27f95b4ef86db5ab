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


# ---------------------------------------------------------------- vmmin's loop in C
def same(a, b) -> bool:
    """Equal to the last bit (NaN equal to NaN), as arrays of the same shape."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def assert_same_run(c, reference):
    assert (c.iterations, c.fn_evals, c.converged) == (reference.iterations, reference.fn_evals, reference.converged)
    assert same(c.x, reference.x) and same(c.fmin, reference.fmin) and same(c.history, reference.history)
    assert type(c.x) is type(reference.x)


def python_runs(layout, x, t, decay, x0, **stops):
    """The Python vmmin on the kernel's criterion and on the NumPy fallback's."""
    runs = []
    for backend in BACKENDS:
        objective = NnetObjective(layout, x, t, decay, backend=backend)
        with np.errstate(over="ignore"):
            runs.append(vmmin(objective.value, x0, gradient=objective.gradient, **stops))
    return runs


# (layout index, decay, input scale, target scale, start scale, max_iter, abstol, reltol, seed)
C_LOOP_CASES = [
    (0, 0.0, 1.0, 1.0, 0.7, 100, 1e-4, 1e-8, 1),      # nnet's defaults
    (0, 0.01, 1.0, 1.0, 0.7, 2000, -math.inf, 1e-12, 2),
    (0, 0.0, 3.0, 1.0, 5.0, 25, -math.inf, 0.0, 3),   # max_iter, and starts beyond the ±15 clamp
    (0, 0.0, 1.0, 5e152, 0.7, 300, -math.inf, 1e-8, 0),  # trial values overflow to inf
    (1, 0.0, 1.0, 1.0, 0.7, 500, 1e-4, 1e-8, 4),      # logistic outputs, two of them
    (1, 0.013, 2.0, 1.0, 2.0, 3000, -math.inf, 1e-10, 5),
    (2, 0.1, 1.0, 1.0, 0.7, 400, 1e-4, 1e-8, 6),      # three linear outputs
    (2, 0.0, 4.0, 1.0, 1.0, 60, -math.inf, 1e-6, 7),
    (2, 0.0, 1.0, 1e153, 0.7, 300, -math.inf, 1e-8, 1),  # a search that shrinks until x no longer moves
    (3, 0.0, 1.0, 1.0, 0.7, 1000, -math.inf, 1e-9, 8),  # a scalar output
    (3, 0.0, 1.0, 1.0, 0.7, 1, -math.inf, 1e-9, 9),     # max_iter 1: one pass (it may still take a step)
    (4, 0.0, 1.0, 1.0, 0.7, 300, 20.0, 1e-8, 10),       # stops on abstol
    (4, 0.05, 1e150, 1.0, 3.0, 200, -math.inf, 1e-8, 11),  # saturated hidden units
]


def case_problem(case):
    """(layout, inputs, targets, decay, x0, stops) of a case above."""
    index, decay, input_scale, target_scale, start_scale, max_iter, abstol, reltol, seed = case
    layout = nnet_layout(specc.load(LAYOUTS[index][0]))
    rng = np.random.default_rng(seed)
    x, t = rng.normal(size=(23, layout.n_in)) * input_scale, rng.normal(size=(23, layout.n_out)) * target_scale
    if not layout.linout:
        t = rng.uniform(size=t.shape)
    x0 = rng.uniform(-start_scale, start_scale, size=layout.n_weights)
    return layout, x, t, decay, x0, dict(max_iter=max_iter, abstol=abstol, reltol=reltol)


@pytest.mark.parametrize("case", C_LOOP_CASES, ids=range(len(C_LOOP_CASES)))
def test_the_c_loop_is_pythons_vmmin_to_the_last_bit(case):
    layout, x, t, decay, x0, stops = case_problem(case)
    c = NnetObjective(layout, x, t, decay, backend="c").vmmin(x0, **stops)
    for reference in python_runs(layout, x, t, decay, x0, **stops):
        assert_same_run(c, reference)


def test_the_c_loop_cases_stop_in_every_way():
    """The cases above stop on max_iter, on reltol and on abstol, and some meet non-finite trial values."""
    seen = set()
    for case in C_LOOP_CASES:
        layout, x, t, decay, x0, stops = case_problem(case)
        objective = NnetObjective(layout, x, t, decay)
        r = objective.vmmin(x0, **stops)
        seen.add("max_iter" if not r.converged else "abstol" if r.fmin <= stops["abstol"] else "reltol")
        with np.errstate(over="ignore"):
            values = []
            vmmin(lambda w: values.append(objective.value(w)) or values[-1], x0, gradient=objective.gradient, **stops)
        if not np.isfinite(values).all():
            seen.add("non-finite")
    assert seen == {"max_iter", "abstol", "reltol", "non-finite"}


@pytest.mark.parametrize("start", ["seq", "zeros", "rang"])
@pytest.mark.parametrize("decay", [0.0, 0.01])
def test_the_c_loop_on_the_sine_story(start, decay):
    model = sine_model()
    layout = nnet_layout(model)
    data = tensors_for(model, SINE_DATA, dtype=F64)
    x0 = {"seq": np.array(SEQ), "zeros": np.zeros(13),
          "rang": np.random.default_rng(0).uniform(-0.7, 0.7, 13)}[start]
    stops = dict(max_iter=3000, abstol=1e-8, reltol=1e-9)
    c = NnetObjective(layout, data["x"], data["y"], decay, backend="c").vmmin(x0, **stops)
    for reference in python_runs(layout, data["x"], data["y"], decay, x0, **stops):
        assert_same_run(c, reference)
    if (start, decay) == ("seq", 0.0):
        assert c.iterations == 1436 and c.fmin == 1.5547170296255401e-05  # R's, as above


def test_the_c_loop_retraces_r_from_a_torch_start():
    model = sine_model()
    data = tensors_for(model, SINE_DATA, dtype=F64)
    objective = NnetObjective(nnet_layout(model), data["x"], data["y"], backend="c")
    result = objective.vmmin(torch.tensor(SEQ, dtype=F64), max_iter=10000, abstol=1e-8, reltol=1e-9)
    assert isinstance(result.x, torch.Tensor) and result.x.dtype == F64
    assert (result.iterations, result.fn_evals, result.fmin, result.converged) == (1436, 2588, 1.5547170296255401e-05,
                                                                                  True)
    assert len(result.history) == 1436  # (fmin is the last search's value, after the last accepted step)


def test_the_c_loop_grows_its_history_and_reports_progress_in_rounds():
    """More iterations than the first history holds (2048), and a callback every few passes: the same run."""
    layout = nnet_layout(specc.load(LAYOUTS[2][0]))
    rng = np.random.default_rng(12)
    x, t = rng.normal(size=(40, 2)) * 3, rng.normal(size=(40, 3))
    x0 = rng.uniform(-0.7, 0.7, layout.n_weights)
    stops = dict(max_iter=2600, abstol=-math.inf, reltol=0.0)
    calls = []
    c = NnetObjective(layout, x, t, backend="c").vmmin(x0, callback=lambda i, f: calls.append((i, f)), rounds=97,
                                                       **stops)
    numpy = NnetObjective(layout, x, t, backend="numpy")
    python_calls = []
    reference = vmmin(numpy.value, x0, gradient=numpy.gradient, callback=lambda i, f: python_calls.append((i, f)),
                      **stops)
    assert_same_run(c, reference)
    assert c.iterations > 2048
    # A call after every 97 passes (and where the history filled up), each as vmmin's after that pass.
    assert len(python_calls) // 97 <= len(calls) <= len(python_calls) // 97 + 2 and calls[-1] == python_calls[-1]
    assert calls[0] == python_calls[96]
    passes = iter(python_calls)
    assert all(call in passes for call in calls)  # in order


def test_the_c_loop_stops_at_once_where_the_gradient_vanishes():
    layout = nnet_layout(specc.load(SINE))
    objective = NnetObjective(layout, np.linspace(-1, 1, 9), np.zeros(9), backend="c")
    r = objective.vmmin(np.zeros(13), max_iter=100)
    assert (r.iterations, r.fn_evals, r.converged, r.fmin, r.history) == (1, 1, True, 0.0, [0.0])
    assert same(r.x, np.zeros(13))


def test_the_c_loop_with_nonpositive_max_iter_only_evaluates():
    layout = nnet_layout(specc.load(SINE))
    rng = np.random.default_rng(0)
    objective = NnetObjective(layout, rng.normal(size=9), rng.normal(size=9), backend="c")
    x0 = rng.normal(size=13)
    for max_iter in (0, -3):
        r = objective.vmmin(x0, max_iter=max_iter)
        assert (r.iterations, r.fn_evals, r.converged, r.history, r.fmin) == (0, 0, True, [], objective.value(x0))
        assert same(r.x, x0)


def test_the_c_loop_refuses_a_non_finite_start_as_vmmin_does():
    layout = nnet_layout(specc.load(SINE))
    x0 = np.array(SEQ)
    for backend in BACKENDS:
        objective = NnetObjective(layout, np.zeros(3), np.array([0.0, math.inf, 1.0]), backend=backend)
        with pytest.raises(ValueError, match=r"not finite at the starting point \(f = inf\)"):
            objective.vmmin(x0)


def test_the_c_loop_keeps_no_state_between_runs():
    layout = nnet_layout(specc.load(LAYOUTS[1][0]))
    rng = np.random.default_rng(5)
    objective = NnetObjective(layout, rng.normal(size=(11, 1)), rng.uniform(size=(11, 2)), backend="c")
    a, b = rng.uniform(-1, 1, size=(2, layout.n_weights))
    first = objective.vmmin(a, max_iter=200)
    objective.vmmin(b, max_iter=50)
    objective.value(b)
    assert_same_run(objective.vmmin(a, max_iter=200), first)
    assert same(objective.value(a), objective.value(a.copy()))


def test_the_c_loop_uses_bfgs_constants():
    """nnet_kernel.c's copy of the minimiser's constants is bfgs.py's."""
    import re

    from specc.train import bfgs
    source = (ROOT / "specc" / "train" / "nnet_kernel.c").read_text()
    defined = dict(re.findall(r"^#define (SHRINK|ARMIJO|MOVE_OFFSET) (\S+)$", source, re.MULTILINE))
    assert {k: float(v) for k, v in defined.items()} == {"SHRINK": bfgs.SHRINK, "ARMIJO": bfgs.ARMIJO,
                                                         "MOVE_OFFSET": bfgs.MOVE_OFFSET}


def test_a_kernel_with_another_interface_is_not_used(monkeypatch):
    import specc.train.nnet
    monkeypatch.setattr(specc.train.nnet, "_INTERFACE", specc.train.nnet._INTERFACE + 1)
    with pytest.warns(RuntimeWarning, match="does not match specc/train/nnet.py"):
        assert specc.train.nnet._load_kernel() is None


@pytest.mark.parametrize("decay", [0.0, 0.02])
def test_fit_runs_the_c_loop_and_gets_the_python_loops_fit(monkeypatch, decay):
    """fit(engine="nnet") runs vmmin's loop in C where the kernel is built, else the Python vmmin on the
    NumPy criterion: the same history, counts and weights."""
    import specc.train.nnet
    import specc.train.optimizers

    def fit(**kw):
        model = sine_model()
        result = specc.fit(model, SINE_DATA, loss="sse", optimizer="bfgs", engine="nnet", decay=decay,
                           max_iter=2000, abstol=1e-8, reltol=1e-9, progress=False, **kw)
        return result, tensors_to_wts(model, nnet_layout(model))

    def python_vmmin_must_not_run(*args, **kw):
        raise AssertionError("the nnet engine ran the Python vmmin although the kernel is built")

    with monkeypatch.context() as patch:
        patch.setattr(specc.train.optimizers, "vmmin", python_vmmin_must_not_run)
        c, c_wts = fit()
    monkeypatch.setattr(specc.train.nnet, "KERNEL", None)
    python, python_wts = fit()
    assert (c.iterations, c.evaluations, c.converged, c.loss) == (python.iterations, python.evaluations,
                                                                  python.converged, python.loss)
    assert c.history == python.history and torch.equal(c_wts, python_wts)
    if decay == 0.0:
        assert c.iterations == 1436
