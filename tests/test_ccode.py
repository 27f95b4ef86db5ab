"""The compiled criterion (specc/train/ccode.py, cbuild.py, the ``compiled`` engine): value and gradient
against torch autograd on every bundled spec, every loss and random specs; its minimiser against the
NumPy one; the cache; and the fallback where no C compiler is."""
import subprocess
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import specc
from specc.errors import SpecWarning
from specc.files import bundled
from specc.ops import OPS
from specc.train import cbuild
from specc.train.ccode import c_source
from specc.train.data import tensors_for
from specc.train.engines import ENGINES, CompiledObjective
from specc.train.losses import LOSSES, Criterion
from specc.train.multistart import minimize, starting_points
from specc.train.tape import Tape
from test_properties import specs
from test_tape import (BATCHED, SOFTMAX_OUTPUTS, _classification_data, _data, _losses_for,
                       _reference)


def _engine(spec: str, inputs: dict, targets: dict, loss: str, decay: float = 0.0):
    model = specc.load(spec).double()
    tensors = {name: torch.tensor(value) for name, value in (inputs | targets).items()}
    engine = ENGINES["compiled"](model, Criterion(model, tensors, LOSSES[loss], decay))
    assert isinstance(engine, CompiledObjective)  # built, not fallen back
    return engine


def assert_backends_match_autograd(spec: str, thetas, inputs: dict, targets: dict, loss: str = "sse",
                                   decay: float = 0.0, rtol: float = 1e-10, atol: float = 1e-12):
    """The NumPy tape and the compiled criterion, at each row of ``thetas``, against torch autograd."""
    graph = specc.graph(spec)
    expected_f, expected_g = _reference(spec, graph, thetas, inputs, targets, loss, decay)
    for f, g in (Tape(graph, inputs, targets, loss=loss, decay=decay).evaluate(thetas),
                 _engine(spec, inputs, targets, loss, decay).evaluate(thetas)):
        np.testing.assert_allclose(f, expected_f, rtol=rtol, atol=atol)
        np.testing.assert_allclose(g, expected_g, rtol=rtol, atol=atol)
    return expected_f, expected_g


def _points(graph, spec, seed=0, count=3):
    model = specc.load(spec).double()
    rng = np.random.default_rng(seed)
    size = sum(p.numel() for p in model.parameters())
    return 0.5 * rng.random((count, size)) + 0.2  # away from log/sqrt/pow edges


def _inputs_for(name, spec, graph, loss, seed=0):
    inputs, targets = _data(graph, seed=seed)
    if name == "pow_param_exponent" or "log(" in spec or "sqrt" in spec:
        inputs = {k: np.abs(v) + 0.1 for k, v in inputs.items()}
    if loss == "bce":
        targets = {k: (v > 0).astype(float) for k, v in targets.items()}
    if loss == "cross_entropy":
        targets = {k: np.eye(v.shape[-1])[np.argmax(v, -1)] for k, v in targets.items()}
    return inputs, targets


CASES = [(name, spec, loss) for name, spec in BATCHED for loss in _losses_for(specc.graph(spec), spec)]


@pytest.mark.parametrize("decay", [0.0, 0.01])
@pytest.mark.parametrize("name,spec,loss", CASES, ids=[f"{c[0]}-{c[2]}" for c in CASES])
def test_value_and_gradient_match_autograd(name, spec, loss, decay):
    graph = specc.graph(spec)
    inputs, targets = _inputs_for(name, spec, graph, loss)
    thetas = _points(graph, spec)
    expected_f, expected_g = _reference(spec, graph, thetas, inputs, targets, loss, decay)
    engine = _engine(spec, inputs, targets, loss, decay)
    F, G = engine.evaluate(thetas)
    np.testing.assert_allclose(F, expected_f, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(G, expected_g, rtol=1e-10, atol=1e-12)
    f, g = engine.value_and_grad(thetas[0])
    assert f == F[0] and engine.value(thetas[0]) == F[0]
    np.testing.assert_array_equal(g, G[0])


def test_every_operation_has_c_rules_or_a_shape_rule_here():
    from specc.train.ccode import _BY_SHAPE
    assert all(op.c is not None or op.shape in _BY_SHAPE for op in OPS.values() if not (op.random or op.timed))
    text = "input x[2]\ny[2] = " + " + ".join(f"{name}(W·x)" for name, op in OPS.items()
                                               if op.called and op.arity == 1 and not op.timed
                                               and name not in ("log", "sqrt")) + "\n"
    graph = specc.graph(text)
    inputs, targets = _data(graph)
    thetas = _points(graph, text)
    expected_f, expected_g = _reference(text, graph, thetas, inputs, targets, "sse", 0.0)
    F, G = _engine(text, inputs, targets, "sse").evaluate(thetas)
    np.testing.assert_allclose(F, expected_f, rtol=1e-10)
    np.testing.assert_allclose(G, expected_g, rtol=1e-10, atol=1e-12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.large_base_example])
@pytest.mark.filterwarnings("ignore::specc.errors.SpecDiagnostic")  # random specs: dead code, look-alike names
@given(specs(), st.integers(0, 2 ** 16))
def test_random_specs_gradients_match_autograd(drawn, seed):
    text, _, _ = drawn
    graph = specc.graph(text)
    if not graph.graph["params"]:
        return
    inputs, targets = _data(graph, seed=seed)
    thetas = np.random.default_rng(seed).normal(size=(2, sum(p.numel() for p in specc.load(text).parameters())))
    expected_f, expected_g = _reference(text, graph, thetas, inputs, targets, "sse", 0.001)
    F, G = _engine(text, inputs, targets, "sse", 0.001).evaluate(thetas)
    finite = np.isfinite(expected_f)
    np.testing.assert_allclose(F[finite], expected_f[finite], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(G[finite], expected_g[finite], rtol=1e-9, atol=1e-10)


def test_names_that_are_c_keywords_or_its_variables_are_safe():
    spec = ("input int, theta[2]\nparam grad[3, 2], qq_sum[3]\ndouble[3] = tanh(grad·theta + rows)\n"
            "f = qq_sum·double + int\n")
    graph = specc.graph(spec)
    assert "grad" in c_source(graph, "sse")  # the runtime's own grad …
    assert "qq_sum" not in c_source(graph, "sse")  # … but nothing the spec named
    inputs, targets = _data(graph)
    thetas = _points(graph, spec)
    expected_f, expected_g = _reference(spec, graph, thetas, inputs, targets, "mse", 0.0)
    F, G = _engine(spec, inputs, targets, "mse").evaluate(thetas)
    np.testing.assert_allclose(F, expected_f, rtol=1e-10)
    np.testing.assert_allclose(G, expected_g, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- the minimiser in C
def test_the_c_minimiser_takes_the_numpy_minimisers_steps():
    spec = "input x\nh[4] = logistic(W·x + b)\ny = w·h + c\nparam w[4]\n"
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 2 * np.pi, 50)
    inputs, targets = {"x": x}, {"y": np.sin(x)}
    engine = _engine(spec, inputs, targets, "sse")
    torch.manual_seed(0)
    model = specc.load(spec).double()
    x0 = starting_points(model, [None, 1, 2, 3])
    ours = engine.minimize(x0, max_iter=25, abstol=None, reltol=1e-8)
    theirs = minimize(engine.evaluate, x0, max_iter=25, abstol=None, reltol=1e-8)
    np.testing.assert_array_equal(ours.iterations, theirs.iterations)
    np.testing.assert_allclose(ours.f, theirs.f, rtol=1e-9)
    np.testing.assert_allclose(ours.x, theirs.x, rtol=1e-6, atol=1e-9)
    assert ours.status == theirs.status
    for a, b in zip(ours.histories, theirs.histories):
        np.testing.assert_allclose(a, b, rtol=1e-9)


def test_a_fit_runs_on_the_compiled_engine_by_default():
    torch.manual_seed(0)
    model = specc.load(bundled("specs") / "sine_nnet.spec")
    result = specc.fit(model, bundled("examples") / "sine50.csv", progress=False)
    assert result.settings["engine"] == "compiled" and result.loss <= 1e-6
    one = specc.fit(specc.load(bundled("specs") / "xor.spec"), {"X": [[0, 0], [0, 1], [1, 0], [1, 1]],
                                                                             "y": [0, 1, 1, 0]},
                    optimizer="bfgs", progress=False)
    assert one.settings["engine"] == "compiled" and len(one.history) == one.iterations


# ---------------------------------------------------------------- building and the cache
def test_a_library_is_built_once_and_then_read_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECC_CACHE", str(tmp_path))
    monkeypatch.setattr(cbuild, "_LOADED", {})
    source = c_source(specc.graph("input x\ny = a*x\n"), "sse")
    cbuild.build(source)
    assert len(list(tmp_path.glob("criterion-*"))) == 1
    monkeypatch.setattr(cbuild, "_LOADED", {})
    class Compiled(Exception):
        pass

    def compile_again(*args, **kwargs):
        raise Compiled
    monkeypatch.setattr(subprocess, "run", compile_again)
    cbuild.build(source)  # from the cache: no compiler run
    with pytest.raises(Compiled):
        cbuild.build(c_source(specc.graph("input x\ny = a*x + b\n"), "sse"))  # another spec: compiled
    assert not list(tmp_path.glob(".build-*"))  # no half-built leftovers


@pytest.mark.parametrize("cc", ["/nonexistent/cc", "false"])
def test_without_a_compiler_the_fit_warns_once_and_uses_the_tape(tmp_path, monkeypatch, cc):
    monkeypatch.setenv("SPECC_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", cc)
    monkeypatch.setattr(cbuild, "_LOADED", {})
    torch.manual_seed(0)
    model = specc.load("input x\ny = a*x + b\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = specc.fit(model, {"x": [0.0, 1.0, 2.0], "y": [1.0, 3.0, 5.0]}, restarts=2, progress=False)
    messages = [str(w.message) for w in caught if issubclass(w.category, SpecWarning)]
    assert len(messages) == 1 and "fitting with the NumPy tape instead" in messages[0]
    assert ("no C compiler" in messages[0]) == (cc != "false")
    assert result.settings["engine"] == "numpy" and result.loss < 1e-10


def test_the_cli_prints_the_fallback_as_one_line(tmp_path, monkeypatch, capsys):
    from specc.cli import main
    monkeypatch.setenv("SPECC_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setattr(cbuild, "_LOADED", {})
    data = tmp_path / "line.csv"
    data.write_text("x,y\n0,1\n1,3\n2,5\n")
    spec = tmp_path / "line.spec"
    spec.write_text("input x\ny = a*x + b\n")
    assert main(["train", str(spec), "--data", str(data), "--quiet"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if "warning" in line] == [
        "specc: warning: no compiled criterion (no C compiler: '/nonexistent/cc' was not found (set CC, or "
        "install gcc)); fitting with the NumPy tape instead (slower)"]


@pytest.mark.parametrize("scale", [1.0, 300.0])  # 300: probabilities underflow, their logs are clamped
@pytest.mark.parametrize("name,spec", list(SOFTMAX_OUTPUTS.items()), ids=list(SOFTMAX_OUTPUTS))
def test_cross_entropy_of_softmax_outputs_and_labels_match_the_torch_criterion(name, spec, scale):
    graph = specc.graph(spec)
    torch.manual_seed(2)
    model = specc.load(spec).double()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    tensors = tensors_for(model, _classification_data(graph, "labels"), labels=True, dtype=torch.float64)
    criterion = Criterion(model, tensors, LOSSES["cross_entropy"], 0.01)
    expected = criterion()
    expected.backward()
    engine = ENGINES["compiled"](model, criterion)
    value, gradient = engine.value_and_grad(engine.x0)
    assert value == pytest.approx(expected.item(), rel=1e-10)
    np.testing.assert_allclose(gradient, torch.cat([p.grad.reshape(-1) for p in model.parameters()]).numpy(),
                               rtol=1e-10, atol=1e-12)
