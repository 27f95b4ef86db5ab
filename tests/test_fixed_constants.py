"""Constant vectors (`h0[4] = 0`, `ones = 1` … `ones·v`) and fixed values (`fixed mu[3]`): the
language, the IR, the generated module, weights files, the training backends and the drawings."""
import csv
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import specc
from conftest import assert_spec_error, randomise
from specc.cli import main
from specc.errors import (InitError, RedefinitionError, ReservedNameError, ShapeError, SizeConflictError,
                          SpecError, UndeterminedSizeError)
from specc.train import cbuild
from specc.train.ccode import c_source
from specc.train.engines import ENGINES, CompiledObjective, TapeObjective
from specc.train.losses import LOSSES, Criterion
from specc.train.tape import Tape
from specc.weights import check_against, read_weights, save_weights
from test_diagram import of_class, plain, read_back

ROOT = Path(__file__).resolve().parent.parent
F64 = torch.float64
EXACT = {"atol": 1e-12, "rtol": 0}
SCALED = (ROOT / "specs" / "input_scaled.spec").read_text(encoding="utf-8")


def shapes(text: str) -> dict[str, tuple]:
    graph = specc.graph(text)
    return {n: a["shape"] for n, a in graph.nodes.items() if a.get("name") and a["kind"] != "output"}



def batch(*shape, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


# ---------------------------------------------------------------- constant vectors: which uses size them
@pytest.mark.parametrize("text,expected", [
    # a declared size: the scalar broadcasts
    ("input x[3]\nh0[4] = 0\nh[4] = tanh(W·x + U·h0 + b)", {"h0": (4,), "U": (4, 4)}),
    ("input x[3]\nones[3] = 1\ny = ones·x", {"ones": (3,), "y": ()}),
    ("input x[3]\nc[2] = 2*pi\ny[2] = W·x + c", {"c": (2,)}),
    ("input x[3]\nt[3] = tanh(1)\ny = x * t", {"t": (3,)}),
    # from use: either side of ·
    ("input v[3]\nones = 1\ns = ones·v", {"ones": (3,), "s": ()}),
    ("input x[3]\nparam U[4, 4]\nh0 = 0\nh[4] = tanh(W·x + U·h0 + b)", {"h0": (4,)}),
    # from use: a function of a vector, an output line
    ("input x[3]\nc = 1\ny = x * sum(softmax(c))\noutput y, c[5]", {"c": (5,)}),
    # elementwise partners and concat do not size it: it broadcasts, or is one unit
    ("input x[3], u[5]\nc = 2\ny = c * x\nz = c + u", {"c": (), "y": (3,), "z": (5,)}),
    ("input x[3]\nc = 1\ny = concat(c, x)", {"c": (), "y": (4,)}),
    ("input x[3]\nc = 1\nparam U[2, 2]\ny = concat(c, x)\nz = U·c", {"c": (2,), "y": (5,)}),
    # a constant computed from a constant follows it when it becomes a vector
    ("input x[3]\nc = 1\nd = 2 * c\ny = d·x\nz = c + x", {"c": (), "d": (3,)}),
    ("input x[3]\nc = 1\nd = c * 2\nparam U[3, 3]\ny = U·c\nz = d·x", {"c": (3,), "d": (3,)}),
    # a constant whose value is a vector keeps that shape
    ("input x[2]\nc = concat(1, 2)\ny = x * c", {"c": (2,)}),
])
def test_constant_sizes(text, expected):
    found = shapes(text)
    assert {name: found[name] for name in expected} == expected


@pytest.mark.parametrize("text,error,line,column,message", [
    ("input x[3]\nh0[4] = 0\ny = x + h0", SizeConflictError, 3, 5, "3 from 'input x[3]' meets 4 from 'h0[4]'"),
    ("input x[3]\nh0 = 0\nh[4] = tanh(W·x + U·h0)", UndeterminedSizeError, 2, 1, "the size of 'h0'"),
    ("input x[3]\nparam U[4, 4]\nc = 1\nd = c * 2\ny = U·c\nz = d·x", SizeConflictError, 4, 5, "in 'd'"),
    # c broadcast into a scalar result, then made a vector [2] by a later use
    ("input x\nc = 1\nz = c * p\nw = z + x\nparam U[2, 2]\ny = U·c", ShapeError, 3, 5, "used as a scalar"),
    ("input x[3]\nM[2, 2] = 0\ny = x", ShapeError, 2, 1, "'M' would be a matrix"),
])
def test_constant_size_errors(text, error, line, column, message):
    assert_spec_error(text, error, line, column, message)


def test_a_scalar_constant_still_broadcasts_against_vectors_of_several_sizes():
    model = specc.load("input x[3], u[5]\nhalf = 0.5\ny = half * x\nz = half * u")
    x, u = batch(2, 3).float(), batch(2, 5).float()
    y, z = model(x, u)
    torch.testing.assert_close((y, z), (0.5 * x, 0.5 * u))


# ---------------------------------------------------------------- constant vectors: the module
def test_constant_vectors_are_written_as_tensors_like_the_modules_own():
    source = specc.to_source("input x[3]\nh0[4] = 0\nones = 1\nc[2] = 2.5\nh[4] = tanh(W·x + U·h0 + b)\n"
                             "y = ones·h\nz[2] = V·h + c")
    assert "h0 = x.new_zeros(4)  # line 2: h0[4] = 0" in source
    assert "ones = x.new_ones(4)  # line 3: ones = 1" in source
    assert "c = x.new_full((2,), 2.5)  # line 4: c[2] = 2.5" in source
    assert "register_buffer" not in source  # nothing to move or save: made in forward, like x itself
    no_inputs = specc.to_source("param W[2, 2]\nh0[2] = 0\ny = W·h0")
    assert "h0 = self.W.new_zeros(2)" in no_inputs
    numbers = specc.to_source("h0[3] = -1\ny = h0 * 2")
    assert "torch.full((3,), -1, dtype=torch.get_default_dtype())" in numbers


def test_a_constant_vector_follows_the_modules_dtype_and_device():
    model = specc.load("input x[3]\nh0[4] = 0.25\nh[4] = tanh(W·x + U·h0 + b)")
    assert list(model.state_dict()) == ["W", "U", "b"]  # not state, not a parameter
    assert model(batch(2, 3).float()).dtype == torch.float32
    assert model.double()(batch(2, 3)).dtype == F64
    meta = model.to("meta")(torch.empty(2, 3, dtype=F64, device="meta"))
    assert meta.device.type == "meta" and meta.shape == (2, 4)


def test_rnn_step_from_a_zero_state_matches_nn_rnn_cell():
    model = randomise(specc.load("input x[3]\nh0[4] = 0\nh[4] = tanh(W·x + U·h0 + b)").double())
    cell = nn.RNNCell(3, 4).double()
    with torch.no_grad():
        cell.weight_ih.copy_(model.W)
        cell.weight_hh.copy_(model.U)
        cell.bias_ih.copy_(model.b)
        cell.bias_hh.zero_()
    x = batch(6, 3)
    torch.testing.assert_close(model(x), cell(x, torch.zeros(6, 4, dtype=F64)), **EXACT)


def test_ones_dot_v_is_the_sum_of_v():
    model = specc.load("input v[5]\nones = 1\ns = ones·v\nm[5] = 0.2\naverage = m·v\noutput s, average").double()
    v = batch(4, 5)
    s, average = model(v)
    torch.testing.assert_close((s, average), (v.sum(-1), v.mean(-1)), **EXACT)


def test_constant_vectors_export():
    model = specc.load("input x[3]\nh0[4] = 0\nones = 1\nh[4] = tanh(W·x + U·h0 + b)\ny = ones·h").eval()
    x = batch(5, 3).float()
    exported = torch.export.export(model, (x,))
    torch.testing.assert_close(exported.module()(x), model(x))


# ---------------------------------------------------------------- fixed values: the language and the IR
def test_fixed_values_in_the_ir():
    graph = specc.graph(SCALED)
    assert graph.graph["fixed"] == ["mu", "sd"]
    assert graph.graph["params"] == ["W1", "b1", "w2", "b2"]
    mu = graph.nodes["mu"]
    assert {k: mu[k] for k in ("kind", "shape", "batched", "dims", "init", "init_args", "name", "stmt")} == {
        "kind": "fixed", "shape": (3,), "batched": False, "dims": (3,), "init": "values",
        "init_args": (0.5, -1.0, 2.0), "name": "mu", "stmt": None}
    assert (mu["span"].line, mu["span"].column) == (4, 7)
    assert "role" not in mu and "fan_in" not in mu


@pytest.mark.parametrize("text,expected", [
    ("input x[3]\nfixed mu, sd\nz = (x - mu) / sd", {"mu": (3,), "sd": (3,)}),  # like an undeclared param
    ("input x[3]\nfixed F\ny[2] = F·x", {"F": (2, 3)}),
    ("input x[3]\nfixed s\ny = s * x", {"s": (3,)}),  # an elementwise partner's shape, as for a parameter
    ("input x[3]\nfixed s\ny = s * sum(x)", {"s": ()}),
    ("input x[3]\nfixed k[3]\ny = x * 2", {"k": (3,)}),  # declared, unused: still held
])
def test_fixed_shapes(text, expected):
    found = shapes(text)
    assert {name: found[name] for name in expected} == expected


def test_fixed_init_lines():
    graph = specc.graph("input x[2]\nfixed a[2], b, c[2, 2], d[2]\ninit a = 0.5\ninit c = [[1, 2], [3, -4]]\n"
                        "init d = normal(0, 2)\ny = c·(x - a) * b + d")
    assert [(graph.nodes[n]["init"], graph.nodes[n]["init_args"]) for n in "abcd"] == [
        ("constant", (0.5,)), ("zeros", ()), ("values", ((1.0, 2.0), (3.0, -4.0))), ("normal", (0.0, 2.0))]
    model = specc.load("input x[2]\nfixed a[2], b, c[2, 2]\ninit a = 0.5\ninit c = [[1, 2], [3, -4]]\n"
                       "y = c·(x - a) * b")
    assert model.a.tolist() == [0.5, 0.5] and model.b.tolist() == [0.0, 0.0]
    assert model.c.tolist() == [[1.0, 2.0], [3.0, -4.0]]


def test_numbers_written_out_also_start_a_parameter_exactly():
    model = specc.load("input x[3]\ny[2] = W·x + b\ninit W = [[0.1, 0.2, 0.3], [1/3, -1, 2*pi]]\n"
                       "init b = [1e-3, sqrt(2)]").double()
    model.reset_parameters()  # in float64: the numbers as written, to the last bit
    assert model.W.tolist() == [[0.1, 0.2, 0.3], [1 / 3, -1.0, 2 * math.pi]]
    assert model.b.tolist() == [1e-3, math.sqrt(2)]


def test_a_fixed_values_random_init_draws_after_the_parameters():
    torch.manual_seed(5)
    plain_model = specc.load("input x[3]\ny[2] = W·x + b")
    torch.manual_seed(5)
    held = specc.load("input x[3]\nfixed noise[2]\ninit noise = normal(0, 1)\ny[2] = W·x + b + noise")
    assert torch.equal(plain_model.W, held.W) and torch.equal(plain_model.b, held.b)
    assert not torch.equal(held.noise, torch.zeros(2))


@pytest.mark.parametrize("text,error,line,column,message", [
    ("input x[3]\nfixed mu[3]\nparam mu[3]\ny = x - mu", RedefinitionError, 3, 7, "declared fixed (at line 2)"),
    ("input x[3]\nparam mu[3]\nfixed mu[3]\ny = x - mu", RedefinitionError, 3, 7, "declared a parameter"),
    ("input x[3]\nfixed mu[3]\nmu = x\ny = x", RedefinitionError, 3, 1, "'mu' is already defined"),
    ("input x[3]\nfixed x\ny = x", RedefinitionError, 2, 7, "'x' is already defined"),
    ("input x[3]\nfixed training\ny = x - training", ReservedNameError, 2, 7, "shadow the torch.nn.Module"),
    ("input x[3]\nfixed reset_fixed\ny = x", ReservedNameError, 2, 7, "shadow the torch.nn.Module"),
    ("input x[3]\ny = fixed + x", ReservedNameError, 2, 5, "'fixed' is a keyword"),
    ("input x[3]\nfixed = 2", ReservedNameError, 2, 1, "'fixed' is a keyword"),
    ("input x[3]\nfixed mu[3]\ny = mu(x)", specc.errors.KindError, 3, 5, "'mu' is a value, not a function"),
    ("input x[3]\nfixed mu[3], sd[3]\ninit sdev = 2\ny = (x - mu) / sd", InitError, 3, 6, "did you mean 'sd'?"),
    ("input x[3]\nfixed mu[3]\ninit y = 0\ny = x - mu", InitError, 3, 6,
     "init applies to parameters and fixed values; 'y' is a node"),
    ("input x[3]\ny = x\ninit q = 1", InitError, 3, 6, "'q' is not a parameter of this spec (parameters: none)"),
    ("input x[3]\nfixed mu[3]\ninit mu = [0.5, 1]\ny = x - mu", InitError, 3, 11, "shape [2], but 'mu' has shape [3]"),
    ("input x[3]\nfixed mu[3]\ninit mu = [[1], 2, 3]\ny = x - mu", InitError, 3, 11, "differ in length"),
    ("input x[3]\nfixed mu[3]\ninit mu = [1, x, 3]\ny = x - mu", InitError, 3, 15, "constant expression"),
    ("input x[3]\nfixed mu[3]\ninit mu = [1, 1/0, 3]\ny = x - mu", InitError, 3, 15, "not a finite number"),
    ("input x[3]\nfixed s\ny[2] = W·concat(x, s)", UndeterminedSizeError, 2, 7, "fixed value 's'"),
])
def test_fixed_value_errors(text, error, line, column, message):
    assert_spec_error(text, error, line, column, message)


# ---------------------------------------------------------------- fixed values: the module
def test_fixed_values_are_buffers_not_parameters():
    model = specc.load(SCALED)
    assert [n for n, _ in model.named_parameters()] == ["W1", "b1", "w2", "b2"]
    assert [n for n, _ in model.named_buffers()] == ["mu", "sd"]
    assert list(model.state_dict()) == ["W1", "b1", "w2", "b2", "mu", "sd"]
    assert model.mu.tolist() == [0.5, -1.0, 2.0] and model.sd.tolist() == [2.0, 0.5, 4.0]
    assert not model.mu.requires_grad
    model.double()
    assert model.mu.dtype == model.sd.dtype == F64
    assert model(batch(3, 3)).dtype == F64


def test_repr_and_describe_list_the_fixed_values():
    model = specc.load(SCALED)
    text = repr(model)
    assert "parameters: W1[5, 3], b1[5], w2[5], b2[]\n  fixed: mu[3], sd[3]" in text
    assert specc.describe(specc.graph(SCALED)) in text.replace("\n  ", "\n")


def test_reset_fixed_and_restarts_leave_parameters_and_fixed_values_apart():
    model = specc.load(SCALED)
    with torch.no_grad():
        model.mu.fill_(7.0)
    model.reset_parameters()  # what restarts call: the fixed values stay
    assert model.mu.tolist() == [7.0] * 3
    model.reset_fixed()
    assert model.mu.tolist() == [0.5, -1.0, 2.0]


def test_input_scaled_source_is_standalone_and_lint_clean(tmp_path):
    source = specc.to_source(SCALED)
    assert "self.register_buffer('mu', torch.empty(3))  # fixed" in source
    assert "z = (x - self.mu) / self.sd" in source
    assert max(len(line) for line in source.splitlines()) <= 100
    pyflakes = pytest.importorskip("pyflakes.api")
    from pyflakes.reporter import Reporter
    import io
    out = io.StringIO()
    assert pyflakes.check(source, "input_scaled.py", Reporter(out, out)) == 0, out.getvalue()


def test_input_scaled_exports_with_its_buffers():
    model = specc.load(SCALED).eval()
    x = batch(4, 3).float()
    exported = torch.export.export(model, (x,))
    torch.testing.assert_close(exported.module()(x), model(x))


def test_fixed_values_with_names_python_would_refuse():
    text = "input x[2]\nfixed class[2], __m, self\ninit class = [1, 2]\ninit __m = 3\ninit self = 0.5\n" \
           "y = (x - class) * __m + self"
    model = specc.load(text)
    assert list(model.state_dict()) == ["class", "__m", "self"]
    torch.testing.assert_close(model(torch.ones(1, 2)), torch.tensor([[0.5, -2.5]]))
    assert "getattr(self, 'class').detach().copy_(" in specc.to_source(text)


@pytest.mark.filterwarnings("ignore:.*LeafSpec:FutureWarning")
@pytest.mark.parametrize("text", [SCALED, "input x[3]\nfixed mu[3]\ninit mu = [1, 2, 3]\nh0[4] = 0.5\nones = 1\n"
                                          "h[4] = tanh(W·(x - mu) + U·h0 + b)\ny = ones·h\n"])
def test_onnx_export_of_fixed_values_and_constant_vectors(tmp_path, text):
    onnx = pytest.importorskip("onnx")
    reference = pytest.importorskip("onnx.reference")
    model = specc.load(text).eval()
    with torch.no_grad():
        model.mu.copy_(torch.tensor([1.0, 2.0, 3.0]))  # the buffers' current values go into the graph
    x = batch(4, 3).float()
    path = tmp_path / "input_scaled.onnx"
    torch.onnx.export(model, (x,), str(path))
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    (out,) = reference.ReferenceEvaluator(proto).run(None, {"x": x.numpy()})
    np.testing.assert_allclose(model(x).detach().numpy(), out, atol=1e-6)


# ---------------------------------------------------------------- weights files
def test_fixed_values_round_trip_through_a_weights_file(tmp_path):
    model = randomise(specc.load(SCALED).double())
    with torch.no_grad():
        model.mu.copy_(torch.tensor([0.1, 0.2, 0.3], dtype=F64))
        model.sd.copy_(torch.tensor([3.0, 4.0, 5.0]))
    path = save_weights(model, tmp_path / "w.safetensors")
    tensors, _ = read_weights(path)
    assert sorted(tensors) == ["W1", "b1", "b2", "mu", "sd", "w2"]
    loaded = specc.load(SCALED, weights=path)
    assert loaded.mu.tolist() == [0.1, 0.2, 0.3] and loaded.sd.tolist() == [3.0, 4.0, 5.0]
    x = batch(5, 3)
    torch.testing.assert_close(loaded(x), model(x), **EXACT)


def test_a_weights_file_without_fixed_values_keeps_their_init_values(tmp_path):
    model = randomise(specc.load(SCALED).double())
    path = tmp_path / "params.json"
    path.write_text(json.dumps({n: p.tolist() for n, p in model.named_parameters()}), encoding="utf-8")
    loaded = specc.load(SCALED, weights=path)
    assert loaded.mu.tolist() == [0.5, -1.0, 2.0] and loaded.sd.tolist() == [2.0, 0.5, 4.0]
    torch.testing.assert_close(loaded.W1, model.W1.float())


def test_weights_files_with_wrong_fixed_values_are_refused(tmp_path):
    graph = specc.graph(SCALED)
    good = {n: torch.zeros(graph.nodes[n]["shape"]) for n in graph.graph["params"]}
    check_against(graph, good | {"mu": torch.zeros(3)})
    with pytest.raises(specc.errors.DataError, match=r"fixed value 'sd' has shape \[2\] in the file but \[3\]"):
        check_against(graph, good | {"sd": torch.zeros(2)})
    with pytest.raises(specc.errors.DataError, match=r"'nu' is not a parameter or fixed value of this spec "
                                                     r"\(parameters: W1, b1, w2, b2; fixed: mu, sd\)"):
        check_against(graph, good | {"nu": torch.zeros(3)})
    with pytest.raises(specc.errors.DataError, match="no value for parameter 'W1'"):
        check_against(graph, {"mu": torch.zeros(3)})
    model = specc.load(SCALED)
    with pytest.raises(specc.errors.DataError, match="fixed value 'mu' has shape"):
        specc.weights.apply_weights(model, good | {"mu": torch.zeros(4)})


# ---------------------------------------------------------------- training: constants of the criterion
CRITERION_SPECS = {
    "input_scaled": SCALED,
    "fixed_matrix_and_scalar": "input x[3]\nfixed F[2, 3], s, m\ninit F = [[1, 0, -1], [0.5, 2, 1]]\n"
                               "init s = 1.5\ny[2] = tanh(F·x * s + W·x + b) - m\n",
    "fixed_in_a_def": "input x[2]\nfixed k[2]\ndef f(z) = sigmoid(z - k)\ny = w·f(V·x + c) + f(x)·u\n"
                      "param w[2], u[2]\n",
    "constant_vectors": "input x[3]\nh0[4] = 0.25\nones = 1\nh[4] = tanh(W·x + U·h0 + b)\ny = ones·h + a\n",
    "constant_into_param": "input x[3]\nfixed mu[3]\nc[3] = 2\nz = c * (x - mu)\ny[2] = W·z + V·c\n",
}


def _module(text: str, seed: int = 0):
    """A float64 module with random parameters and fixed values other than its init lines, so that a
    backend that read the init lines instead of the module would be caught."""
    model = randomise(specc.load(text).double(), seed)
    generator = torch.Generator().manual_seed(seed + 100)
    with torch.no_grad():
        for name in specc.graph(text).graph["fixed"]:
            buffer = model.get_buffer(name)
            buffer.copy_(0.5 + torch.rand(buffer.shape, generator=generator, dtype=F64))
    return model


def _problem(text: str, seed: int = 0):
    graph = specc.graph(text)
    rng = np.random.default_rng(seed)
    data = {n: rng.normal(size=(9,) + graph.nodes[n]["shape"]) for n in graph.graph["inputs"] + graph.graph["outputs"]}
    return graph, {n: torch.tensor(v) for n, v in data.items()}


def _autograd(model, tensors, loss, decay):
    reference = Criterion(model, tensors, LOSSES[loss], decay)
    value = reference()
    model.zero_grad()
    value.backward()
    return value.item(), torch.cat([p.grad.reshape(-1) for p in model.parameters()]).numpy()


@pytest.mark.parametrize("loss,decay", [("sse", 0.0), ("mse", 0.01)])
@pytest.mark.parametrize("engine", ["numpy", "compiled"])
@pytest.mark.parametrize("name", sorted(CRITERION_SPECS))
def test_backends_treat_fixed_values_and_constants_as_constants(name, engine, loss, decay):
    text = CRITERION_SPECS[name]
    graph, tensors = _problem(text)
    model = _module(text)
    objective = ENGINES[engine](model, Criterion(model, tensors, LOSSES[loss], decay))
    assert isinstance(objective, {"numpy": TapeObjective, "compiled": CompiledObjective}[engine])
    expected_value, expected_grad = _autograd(model, tensors, loss, decay)
    value, gradient = objective.value_and_grad(objective.x0)
    assert value == pytest.approx(expected_value, rel=1e-10, abs=1e-12)
    np.testing.assert_allclose(gradient, expected_grad, rtol=1e-10, atol=1e-12)
    assert gradient.size == sum(p.numel() for p in model.parameters())  # no entry for a fixed value


def test_the_tape_alone_reads_init_lines_or_given_values():
    graph, tensors = _problem(SCALED)
    arrays = {n: t.numpy() for n, t in tensors.items()}
    model = randomise(specc.load(SCALED).double())
    theta = torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy()
    from_init, _ = Tape(graph, arrays, arrays, "sse")(theta)  # the init lines: as the module starts
    assert from_init == pytest.approx(_autograd(model, tensors, "sse", 0.0)[0], rel=1e-12)
    given, _ = Tape(graph, arrays, arrays, "sse", fixed={"mu": np.zeros(3), "sd": np.ones(3)})(theta)
    with torch.no_grad():
        model.mu.zero_()
        model.sd.fill_(1.0)
    assert given == pytest.approx(_autograd(model, tensors, "sse", 0.0)[0], rel=1e-12)
    with pytest.raises(ValueError, match="needs the value of the fixed value 'r'"):
        Tape(specc.graph("input x\nfixed r\ninit r = normal\ny = r * x"), {"x": np.ones(2)}, {"y": np.ones(2)})


def test_one_compiled_library_serves_any_fixed_values():
    source = c_source(specc.graph(SCALED), "mse")
    other = SCALED.replace("init mu = [0.5, -1, 2]", "init mu = [9, 8, 7]").replace("[2, 0.5, 4]", "[1, 1, 1]")
    assert c_source(specc.graph(other), "mse") == source  # values are data, not literals: one library
    criterion = source.split("static double sp_criterion", 1)[1]
    assert "const double *fx0 = p->data[2];" in criterion  # after the input x and the target y
    assert "const double *fx1 = p->data[3];" in criterion
    assert cbuild.build(source) is cbuild.build(c_source(specc.graph(other), "mse"))  # built once, kept


@pytest.mark.parametrize("optimizer,engine", [("bfgs", "compiled"), ("bfgs", "numpy"), ("bfgs", "autograd"),
                                              ("adam", None), ("lbfgs", None)])
def test_fit_never_changes_fixed_values(optimizer, engine):
    graph, tensors = _problem(SCALED)
    model = _module(SCALED)
    before = {n: b.clone() for n, b in model.named_buffers()}
    params_before = [p.detach().clone() for p in model.parameters()]
    options = dict(max_iter=30) if optimizer != "adam" else dict(epochs=20)
    result = specc.fit(model, {n: t.numpy() for n, t in tensors.items()}, optimizer=optimizer, engine=engine,
                       progress=False, **options)
    assert math.isfinite(result.loss)
    for name, value in model.named_buffers():
        assert torch.equal(value, before[name]), name
    assert any(not torch.equal(a, b) for a, b in zip(model.parameters(), params_before))


def test_restarts_keep_fixed_values():
    graph, tensors = _problem(SCALED)
    model = _module(SCALED)
    before = model.mu.clone()
    specc.fit(model, {n: t.numpy() for n, t in tensors.items()}, optimizer="bfgs", restarts=3, max_iter=20,
              seed=0, progress=False)
    assert torch.equal(model.mu, before)


# ---------------------------------------------------------------- the command line
def _write_csv(path: Path, rows: int = 40, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal([5.0, -2.0, 10.0], [2.0, 0.5, 4.0], size=(rows, 3))  # unscaled: the spec scales it
    y = np.tanh((x[:, 0] - 5.0) / 2.0) - 0.5 * ((x[:, 2] - 10.0) / 4.0)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["x[1]", "x[2]", "x[3]", "y"])
        writer.writerows([[*row, target] for row, target in zip(x.tolist(), y.tolist())])


def test_train_out_and_predict_round_trip_the_fixed_values(tmp_path, capsys):
    spec = tmp_path / "scaled.spec"
    spec.write_text(SCALED.replace("init mu = [0.5, -1, 2]", "init mu = [5, -2, 10]")
                    .replace("init sd = [2, 0.5, 4]", "init sd = [2, 0.5, 4]"), encoding="utf-8")
    data, weights, preds = tmp_path / "data.csv", tmp_path / "w.safetensors", tmp_path / "preds.csv"
    _write_csv(data)
    assert main(["train", str(spec), "--data", str(data), "--optimizer", "bfgs", "--max-iter", "200", "--seed", "0",
                 "--out", str(weights), "--quiet"]) == 0
    tensors, metadata = read_weights(weights)
    assert sorted(tensors) == ["W1", "b1", "b2", "mu", "sd", "w2"]
    assert tensors["mu"].tolist() == [5.0, -2.0, 10.0] and tensors["sd"].tolist() == [2.0, 0.5, 4.0]  # not fitted
    assert main(["predict", str(spec), "--weights", str(weights), "--data", str(data), "-o", str(preds)]) == 0
    with preds.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    model = specc.load(spec, weights=weights)
    x = torch.tensor([[float(r[f"x[{k}]"]) for k in (1, 2, 3)] for r in rows], dtype=model.mu.dtype)
    np.testing.assert_allclose([float(r["y"]) for r in rows], model(x).detach().numpy(), rtol=1e-12)
    # the fixed values come from the file, not from the spec's init lines: another file, other predictions
    other = specc.load(spec, weights=weights)
    with torch.no_grad():
        other.mu.add_(1.0)
    save_weights(other, tmp_path / "moved.safetensors")
    assert main(["predict", str(spec), "--weights", str(tmp_path / "moved.safetensors"), "--data", str(data),
                 "-o", str(tmp_path / "moved.csv")]) == 0
    with (tmp_path / "moved.csv").open(encoding="utf-8") as handle:
        moved = [float(r["y"]) for r in csv.DictReader(handle)]
    np.testing.assert_allclose(moved, other(x).detach().numpy(), rtol=1e-12)
    assert not np.allclose(moved, [float(r["y"]) for r in rows])


def test_inspect_lists_fixed_values_apart(tmp_path, capsys):
    spec = tmp_path / "scaled.spec"
    spec.write_text(SCALED, encoding="utf-8")
    assert main(["inspect", str(spec)]) == 0
    text = capsys.readouterr().out
    assert "  parameters: 26 numbers in 4 tensors\n" in text
    assert "  fixed:      6 numbers in 2 tensors, not trained\n    mu  [3]        init values\n" in text
    assert main(["inspect", str(spec), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert list(info["parameters"]) == ["W1", "b1", "w2", "b2"] and info["parameter_count"] == 26
    assert info["fixed"] == {"mu": {"shape": [3], "init": "values"}, "sd": {"shape": [3], "init": "values"}}
    assert main(["inspect", str(ROOT / "specs" / "xor.spec")]) == 0
    assert "fixed" not in capsys.readouterr().out  # a spec without fixed values: as before


# ---------------------------------------------------------------- drawings: fixed values look fixed in every view
@pytest.mark.parametrize("view", ["neurons", "layers", "graph"])
def test_fixed_values_are_drawn_apart_in_every_view(view):
    _, nodes, edges = read_back(specc.draw(SCALED, view=view))
    fixed_nodes = [n for n in nodes if "fixed" in n.get("class", "").split()]
    assert fixed_nodes and all("dashed" in n["style"] for n in fixed_nodes)
    assert all(n["color"].strip('"') == "#2a7f7f" for n in fixed_nodes)
    held = [e for e in edges if e.get("class") == "fixed" and e.get("color", "").strip('"') == "#2a7f7f"]
    assert held or view == "graph"
    if view != "graph":  # the picture says what teal means
        assert "fixed value" in specc.draw(SCALED, view=view).source


def test_neuron_view_of_fixed_values_carries_their_values():
    model = specc.load(SCALED)
    _, nodes, edges = read_back(specc.draw(model, view="neurons"))
    tooltips = sorted(e["tooltip"] for e in edges if e.get("class") == "fixed" and "mu" in e.get("tooltip", ""))
    assert tooltips == ["fixed value -1·mu[1] = -0.5", "fixed value -1·mu[2] = 1", "fixed value -1·mu[3] = -2"]
    assert [plain(n["label"]) for n in of_class(nodes, "caption")][1] == "sd [3] fixed value"
    assert Counter(n["class"] for n in of_class(nodes, "unit"))["unit fixed"] == 3


def test_drawing_with_a_weights_file_without_fixed_values_uses_their_init_lines(tmp_path):
    model = randomise(specc.load(SCALED))
    path = tmp_path / "params.json"
    path.write_text(json.dumps({n: p.tolist() for n, p in model.named_parameters()}), encoding="utf-8")
    _, _, edges = read_back(specc.draw(SCALED, weights=path, view="neurons"))
    assert "fixed value -1·mu[3] = -2" in {e.get("tooltip") for e in edges}
    text = specc.diagram.connections_text(SCALED, weights=path)
    assert "B1->t1_1  x1->t1_1\n     (-0.5)       (1)" in text


def test_a_random_fixed_value_missing_from_a_file_is_drawn_without_a_value(tmp_path):
    text = "input x[2]\nfixed r[2]\ninit r = normal\ny[2] = W·x - r"
    model = specc.load(text)
    path = tmp_path / "params.json"
    path.write_text(json.dumps({n: p.tolist() for n, p in model.named_parameters()}), encoding="utf-8")
    _, _, edges = read_back(specc.draw(text, weights=path, view="neurons"))
    assert "fixed value -1·r[1]" in {e.get("tooltip") for e in edges}
    assert "(-1·r[1])" in specc.diagram.connections_text(text, weights=path)


def test_constant_vectors_are_drawn_as_constants():
    _, nodes, _ = read_back(specc.draw("input x[3]\nh0[4] = 0\nh[4] = tanh(W·x + U·h0 + b)", view="neurons"))
    assert [plain(n["label"]) for n in of_class(nodes, "caption")] == ["x [3] input", "h0 [4] constant",
                                                                        "h [4] tanh · output"]


def test_every_view_renders(tmp_path):
    if not specc.diagram.shutil.which("dot"):
        pytest.skip("Graphviz's dot is not installed")
    for view in ("neurons", "layers", "graph"):
        specc.diagram.write_drawing(specc.draw(specc.load(SCALED), view=view), tmp_path / f"{view}.svg")
        assert (tmp_path / f"{view}.svg").read_text(encoding="utf-8").startswith("<?xml")


def test_keyword_list_is_documented():
    assert "`input output param fixed def init` are" in (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    with pytest.raises(SpecError):
        specc.graph("input fixed")
