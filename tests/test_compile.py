"""specc/compile.py: bundled specs against hand-written PyTorch, standalone source, golden files, exports.

Golden files: tests/golden/<spec>.py is the source `specc compile` writes for specs/<spec>.spec.
After an intended change to the generated code, regenerate them with

    SPECC_UPDATE_GOLDEN=1 python -m pytest tests/test_compile.py -k golden

and review the diff.
"""
import ast
import inspect
import io
import os

import numpy as np
import pytest
import torch

import specc
from conftest import ROOT, SPECS, as_list, example_inputs, randomise
from references import layers, seed_polynomial, seed_two_io, seed_xor
from specc import cli
from specc.lower import MODULE_ATTRIBUTES

F64 = torch.float64
EXACT = {"atol": 1e-12, "rtol": 0}
GOLDEN = ROOT / "tests" / "golden"
ALLOWED_IMPORTS = {"__future__", "math", "typing", "torch", "torch.nn", "torch.nn.functional"}


def load64(name: str):
    return specc.load(ROOT / "specs" / name).double()



def copy_parameters(model, reference, names: dict[str, str]):
    """Copy the spec module's parameters into the reference module under the mapped names."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            reference.get_parameter(names[name]).copy_(p)


def batch(*shape, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


# ---------------------------------------------------------------- parity with hand-written modules
PARITY_TESTED = {"elman", "gru", "lstm"}  # against torch.nn.RNN, GRU and LSTM in tests/test_sequences.py


def parity(stem):
    PARITY_TESTED.add(stem)
    return lambda test: test


@parity("two_io")
def test_two_io_matches_the_seed_answers_custom_layer():
    model = randomise(load64("two_io.spec"))
    seed = seed_two_io.NN(5, 10, 3).double()
    assert [seed_two_io.SPEC_TO_SEED[n] for n, _ in model.named_parameters()] == \
        [n for n, _ in seed.named_parameters()]  # the same 7 parameters, in the same order
    copy_parameters(model, seed, seed_two_io.SPEC_TO_SEED)
    i1, i2 = batch(7, 5, seed=1), batch(7, 5, seed=2)
    out, (o1, o2) = model(i1, i2), seed(i1, i2)
    assert out._fields == ("out1", "out2")
    torch.testing.assert_close(out.out1, o1, **EXACT)
    torch.testing.assert_close(out.out2, o2, **EXACT)


@parity("cubic")
def test_cubic_matches_the_tutorials_polynomial3():
    model = randomise(load64("cubic.spec"))
    tutorial = seed_polynomial.Polynomial3().double()
    copy_parameters(model, tutorial, {n: n for n in "abcd"})
    x = torch.linspace(-torch.pi, torch.pi, 2000, dtype=F64)
    torch.testing.assert_close(model(x), tutorial(x), **EXACT)


@parity("legendre")
def test_legendre_matches_the_tutorials_legendre_polynomial3():
    model = load64("legendre.spec")
    x = torch.linspace(-torch.pi, torch.pi, 2000, dtype=F64)
    for seed in (None, 0):  # the tutorial's starting values, then random ones
        if seed is not None:
            randomise(model, seed)
        p = dict(model.named_parameters())
        torch.testing.assert_close(model(x), seed_polynomial.legendre_model(x, p["a"], p["b"], p["c"], p["d"]),
                                   **EXACT)


@parity("xor")
def test_xor_matches_the_numpy_forward_pass():
    model = randomise(load64("xor.spec"))
    X = batch(4, 2)
    # numpy stores W1 as [in, hidden] and computes X·W1; the spec's W1 is PyTorch's [out, in]
    expected = seed_xor.forward(X.numpy(), model.W1.detach().numpy().T, model.W2.detach().numpy().T)
    np.testing.assert_allclose(model(X).detach().numpy(), expected, atol=1e-12, rtol=0)


@parity("sine_nnet")
@parity("curve_tanh")
@pytest.mark.parametrize("name,reference", [("sine_nnet", layers.sine_nnet), ("curve_tanh", layers.curve_tanh)])
def test_layer_specs_match_nn_sequential(name, reference):
    model = randomise(load64(f"{name}.spec"))
    sequential = reference().double()
    copy_parameters(model, sequential, layers.SEQUENTIAL_NAMES)
    x = batch(9)
    torch.testing.assert_close(model(x), sequential(x[:, None]), **EXACT)  # x is a scalar input: [B]


@parity("dropout_mlp")
def test_dropout_mlp_matches_nn_sequential_in_both_modes():
    model = randomise(load64("dropout_mlp.spec"))
    sequential = layers.dropout_mlp().double()
    copy_parameters(model, sequential, layers.DROPOUT_NAMES)
    x = batch(64, 4)
    for mode in (True, False):
        model.train(mode)
        sequential.train(mode)
        torch.manual_seed(3)  # the same masks: F.dropout and nn.Dropout draw alike, in the same order
        ours = model(x)
        torch.manual_seed(3)
        torch.testing.assert_close(ours, sequential(x), **EXACT)
    model.train()
    assert not torch.equal(model(x), model(x))  # training mode: random


@parity("residual")
def test_residual_matches_a_hand_written_module():
    model = randomise(load64("residual.spec"))
    reference = layers.Residual().double()
    copy_parameters(model, reference, layers.RESIDUAL_NAMES)
    u = batch(5, 4)
    torch.testing.assert_close(model(u), reference(u), **EXACT)


@parity("tied_autoencoder")
def test_tied_autoencoder_matches_a_module_with_one_w_used_twice():
    model = randomise(load64("tied_autoencoder.spec"))
    reference = layers.TiedAutoencoder().double()
    assert [n for n, _ in model.named_parameters()] == ["W", "b", "c"]  # W once, though used twice
    copy_parameters(model, reference, {"W": "W", "b": "b", "c": "c"})
    x = batch(6, 8)
    torch.testing.assert_close(model(x), reference(x), **EXACT)


@parity("layer_norm_residual")
def test_layer_norm_residual_matches_linear_linear_and_nn_layer_norm():
    model = randomise(load64("layer_norm_residual.spec"))  # the gain and bias too, not LayerNorm's 1 and 0
    reference = layers.LayerNormResidual().double()
    copy_parameters(model, reference, layers.LAYER_NORM_NAMES)
    x = batch(16, 8)
    torch.testing.assert_close(model(x), reference(x), **EXACT)


@parity("input_scaled")
def test_input_scaled_matches_a_module_with_registered_buffers():
    model = randomise(load64("input_scaled.spec"))
    reference = layers.InputScaled().double()
    copy_parameters(model, reference, layers.INPUT_SCALED_NAMES)
    assert [n for n, _ in model.named_parameters()] == ["W1", "b1", "w2", "b2"]  # mu, sd: buffers, not trained
    assert [n for n, _ in model.named_buffers()] == ["mu", "sd"]
    torch.testing.assert_close((model.mu, model.sd), (reference.mean, reference.scale), **EXACT)
    x = batch(10, 3)
    torch.testing.assert_close(model(x), reference(x), **EXACT)


def test_every_bundled_spec_has_a_parity_test():
    from test_blocks import PARITY_STEMS  # the block specs' parity tests are in tests/test_blocks.py
    assert {p.stem for p in SPECS} == PARITY_TESTED | PARITY_STEMS


# ---------------------------------------------------------------- standalone source, without specc
def _standalone_agrees(run_standalone, sources):
    """Load each spec with specc and as a generated file in a `python -I` without specc; compare."""
    models, cases = [], []
    for source in sources:
        model = randomise(specc.load(source).double()).eval()  # dropout: the identity
        graph = specc.graph(source)
        models.append((model, graph))
        cases.append({"source": specc.to_source(source), "class": type(model).__name__,
                      "state": model.state_dict(), "args": example_inputs(graph)})
    results = run_standalone(cases)
    for (model, graph), case, result in zip(models, cases, results, strict=True):
        assert result["keys"] == list(model.state_dict()) == graph.graph["params"] + graph.graph["fixed"]
        assert result["parameters"] == graph.graph["params"]
        ours = as_list(model(*case["args"]))
        assert len(ours) == len(result["outputs"]) == len(graph.graph["outputs"])
        for a, b in zip(ours, result["outputs"]):
            assert torch.equal(a.detach(), b)
        if len(ours) > 1:
            assert result["fields"] == type(model(*case["args"]))._fields
    return results


def test_generated_source_of_every_bundled_spec_runs_without_specc(run_standalone):
    _standalone_agrees(run_standalone, SPECS)


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_generated_source_imports_only_torch_and_the_standard_library(path):
    tree = ast.parse(specc.to_source(path))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= ALLOWED_IMPORTS
    calls = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert not calls & {"eval", "exec", "compile", "__import__"}


def test_generated_forward_is_one_line_per_statement_pointing_at_the_spec():
    source = specc.to_source(ROOT / "specs" / "two_io.spec")
    forward = source[source.index("def forward"):]
    assert [line.split("# ")[1] for line in forward.splitlines() if "# line" in line] == [
        "line 5: h[10] = g(W1·in1 + V1·in2 + b)", "line 6: out1[3] = f(W2·h + b_w)", "line 7: out2[3] = f(V2·h + b_v)"]


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_golden_source(path, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)  # the command a user runs from the project's root
    written = tmp_path / f"{path.stem}.py"
    assert cli.main(["compile", f"specs/{path.name}", "-o", str(written)]) == 0
    source = written.read_text(encoding="utf-8")
    golden = GOLDEN / f"{path.stem}.py"
    if os.environ.get("SPECC_UPDATE_GOLDEN") == "1":
        golden.write_text(source, encoding="utf-8")
    assert golden.read_text(encoding="utf-8") == source, "generated source changed; see this file's docstring"


GOLDEN_FILES = sorted(GOLDEN.glob("*.py"))


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=[p.stem for p in GOLDEN_FILES])
def test_golden_files_are_lint_clean(path):
    """What a reviewer's linter would say: no unused imports or names (pyflakes), lines ≤ 100."""
    from pyflakes.api import check
    from pyflakes.reporter import Reporter

    out, err = io.StringIO(), io.StringIO()
    assert check(path.read_text(encoding="utf-8"), str(path), Reporter(out, err)) == 0, out.getvalue()
    long = [n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if len(line) > 100]
    assert not long, f"lines longer than 100 characters: {long}"


@pytest.mark.parametrize("text", [
    "input x\ny = 2*x  # not code: math.pi, F.relu\n",                        # imports follow the code only
    "input x\ny = x * pi + relu(x)\nz = softplus(y)\n",                        # math and F both used
    "y = a\n",                                                                # no input, no F, no math
    "input a[2], b[2]\nc[3] = tanh(W·a + V·b + d)\n",                         # linear_sum
])
def test_generated_source_imports_exactly_what_it_uses(text):
    from pyflakes.api import check
    from pyflakes.reporter import Reporter

    out = io.StringIO()
    assert check(specc.to_source(text), "generated.py", Reporter(out, io.StringIO())) == 0, out.getvalue()


def test_long_statements_names_and_comments_stay_within_100_columns():
    text = ("input " + ", ".join(f"an_input_with_a_long_name_{i}[3]" for i in range(6)) + "\n"
            "a_node_with_a_rather_long_name[7] = tanh(" + " + ".join(
                f"A_weight_matrix_named_at_length_{i}·an_input_with_a_long_name_{i}" for i in range(6))
            + " + a_bias_vector_with_a_long_name)  # and a long comment, too, to make the line longer still\n")
    source = specc.to_source(text)
    assert max(len(line) for line in source.splitlines()) <= 100
    compile(source, "<long>", "exec")
    model = specc.load(text).double()
    inputs = [batch(2, 3, seed=i) for i in range(6)]
    p = dict(model.named_parameters())
    expected = torch.tanh(sum(x @ p[f"A_weight_matrix_named_at_length_{i}"].T for i, x in enumerate(inputs))
                          + p["a_bias_vector_with_a_long_name"])
    torch.testing.assert_close(model(*inputs), expected, **EXACT)


# ---------------------------------------------------------------- hostile names
HOSTILE = ["self", "torch", "nn", "F", "math", "class", "lambda", "None", "True", "False", "__x", "__import__",
           "getattr", "check_input", "Outputs", "NamedTuple", "batch_size", "_y", "out", "float", "print", "super",
           "spec__x", "__debug__", "annotations", "x_", "T", "list", "int", "__", "_"]


def _hostile_specs() -> list[str]:
    specs = []
    for name in HOSTILE:
        specs += [
            f"input {name}[2]\ny[3] = tanh(W·{name} + b)",                             # an input
            f"input x[2]\n{name}[3] = tanh(W·x)\nz = {name} * 2",                      # a node
            f"input x, v[2]\n{name} = x * 2\nq = v + {name}\noutput q, {name}",        # an output (a field)
        ]
        if name not in MODULE_ATTRIBUTES:  # those are refused as parameters (tested in test_lower.py)
            specs += [
                f"input x[2]\ny[3] = {name}·x + c * {name}·x\ninit {name} = 0.5",      # a parameter, shared
                f"param {name}[2]\ninput x\ny = concat({name}, x) * {name}·{name}",   # declared, per-model
            ]
    # everything at once, plus names that collide after renaming
    specs.append("param _y[2]\ninput self[2], torch, nn[2], F, class\ninput lambda[2]\nNone = self + nn\n"
                 "True[3] = tanh(math·None + F) * torch\n__x = class * lambda + getattr\n"
                 "__import__[2] = check_input·__x + Outputs\nclass_ = concat(__import__, batch_size * True, _y)\n"
                 "out = out_y * class_\nspec__x = __x + 1\noutput out, class_, True, __x, spec__x")
    return specs


def test_hostile_identifiers_compile_load_and_agree_without_specc(run_standalone):
    specs = _hostile_specs()
    results = _standalone_agrees(run_standalone, specs)
    for text, result in zip(specs, results):
        graph = specc.graph(text)
        assert result["keys"] == graph.graph["params"]  # state_dict keys are the spec's names, never renamed


def test_hostile_names_as_forward_keywords():
    model = specc.load("input self[2], class, x\ny = self * class + x").double()
    s, c, x = batch(3, 2), batch(3), batch(3)
    assert torch.equal(model(self_=s, class_=c, x=x), model(s, c, x))
    assert list(inspect.signature(model.forward).parameters) == ["self_", "class_", "x"]


HOSTILE_FILES = ["it's.spec", 'say "hi".spec', "two words.spec", "new\nline.spec", "ünïcödé.spec", "1st.spec",
                 "none.spec", "class.spec", "f.spec", "outputs.spec", "named_tuple.spec", "'''.spec", "back\\slash.spec",
                 "$(rm -rf x).spec", "-.spec", ".spec"]


def test_hostile_file_names(tmp_path, run_standalone):
    paths = []
    for i, name in enumerate(HOSTILE_FILES):
        folder = tmp_path / str(i)
        folder.mkdir()
        path = folder / name
        path.write_text("input x[2]\ny[3] = relu(W·x + b)\n", encoding="utf-8")
        paths.append(path)
    _standalone_agrees(run_standalone, paths)
    for path in paths:
        model = specc.load(path)
        assert type(model).__name__.isidentifier() and type(model).__name__.isascii()
        assert model.spec_file == str(path)


# ---------------------------------------------------------------- code generation details
CODEGEN = [
    # (spec, inputs, expected output as a function of the inputs and the parameters p)
    ("input x\nparam v[1]\ny = v·x", [(5,)], lambda x, p: (p["v"] * x[:, None]).sum(-1)),   # dot with a scalar
    ("input x\nparam A[2, 1], a\ny = A·a + A·2 + A·x", [(5,)],
     lambda x, p: p["A"][:, 0] * p["a"] + p["A"][:, 0] * 2 + x[:, None] * p["A"][:, 0]),
    ("input x\ny = x * sqrt(2) + exp(-1) * x", [(5,)], lambda x, p: x * 2 ** 0.5 + x * torch.exp(torch.tensor(-1.0, dtype=F64))),
    ("input x\ny = (-2)^x + x * 2^0.5", [(5,)], lambda x, p: (-2.0) ** x + x * 2 ** 0.5),  # 1/0: an error
    ("input x\ny = 2", [(5,)], lambda x, p: torch.full((5,), 2.0, dtype=F64)),
    ("input x[3]\nparam v[3]\ny = v", [(5, 3)], lambda x, p: p["v"].expand(5, 3)),
    ("input x[3]\ny = concat(x, 1, pi)", [(5, 3)],
     lambda x, p: torch.cat([x, torch.ones(5, 1, dtype=F64), torch.full((5, 1), torch.pi, dtype=F64)], -1)),
    ("input x\nz = sin(1)\ny = x + z", [(5,)], lambda x, p: x + torch.sin(torch.tensor(1.0, dtype=F64))),
    ("input x[2]\ny = -x^2 + x^-1 + 2^x^2", [(5, 2)], lambda x, p: -(x ** 2) + x ** -1 + 2 ** (x ** 2)),
    ("input x[2]\ny = x / x / 2 - (x - x - 1)", [(5, 2)], lambda x, p: x / x / 2 - (x - x - 1)),
    ("input x[2]\nparam a\ny = a * W·x\noutput y[3]", [(5, 2)], lambda x, p: p["a"] * (x @ p["W"].T)),
    ("input x[2]\nparam A[4, 2]\ny = B·A·x\noutput y[3]", [(5, 2)], lambda x, p: (x @ p["A"].T) @ p["B"].T),
    ("input x\nz = y * 2; y = (x +\n  1) ** 2  # used before it is defined\noutput z", [(5,)],
     lambda x, p: (x + 1) ** 2 * 2),
    ("input x, v[3]\ny = x + v - v * x", [(5,), (5, 3)], lambda x, v, p: x[:, None] + v - v * x[:, None]),
    ("input a[2], b[2]\nparam W[3, 2]\ny = W·a + W@b", [(5, 2), (5, 2)],     # one W, used twice
     lambda a, b, p: a @ p["W"].T + b @ p["W"].T),
    ("float = 2\nint = concat(float, 3)\nlist = int * k", [],                # no inputs; builtins' names
     lambda p: torch.tensor([2.0, 3.0], dtype=F64) * p["k"]),
]


@pytest.mark.parametrize("text,shapes,expected", CODEGEN, ids=[t.replace("\n", "; ") for t, _, _ in CODEGEN])
def test_code_generation(text, shapes, expected):
    model = randomise(specc.load(text).double())
    inputs = [batch(*shape, seed=i) for i, shape in enumerate(shapes)]
    p = dict(model.named_parameters())
    torch.testing.assert_close(model(*inputs), expected(*inputs, p), atol=1e-12, rtol=1e-12, equal_nan=True)


def test_specs_without_inputs_return_per_model_values():
    model = specc.load("y = a + 1")
    assert model().shape == () and torch.equal(model(), model.a + 1)
    assert torch.equal(specc.load("y = concat(1, 2)")(), torch.tensor([1.0, 2.0]))
    assert specc.load("y = 2").double()().dtype == torch.get_default_dtype()


def test_deeply_nested_def_calls_are_split_into_lines():
    text = "input x\ndef f(z) = z*2 + 1\ndef g(z) = f(f(f(f(f(z)))))\ndef h(z) = g(g(g(g(g(z)))))\ny = h(h(h(x)))"
    source = specc.to_source(text)
    assert max(len(line) for line in source.splitlines()) < 600
    x = batch(4)
    expected = x.clone()
    for _ in range(75):
        expected = expected * 2 + 1
    torch.testing.assert_close(specc.load(text).double()(x), expected, rtol=1e-12, atol=0)


# ---------------------------------------------------------------- no graph walking: export works
def test_forward_is_straight_line_code():
    model = specc.load(ROOT / "specs" / "residual.spec")
    forward = inspect.getsource(type(model).forward)
    assert "graph" not in forward and "for " not in forward and "while " not in forward
    generated_module = type(model).forward.__globals__  # what forward can reach: the generated file's names
    assert set(generated_module) >= {"torch", "nn", "F", "math", "input_error", "Residual"}
    assert not [name for name, value in generated_module.items()
                if getattr(value, "__name__", "").split(".")[0] in ("networkx", "specc")]


@pytest.mark.parametrize("name", ["two_io", "residual"])
def test_torch_export(name):
    model = specc.load(ROOT / "specs" / f"{name}.spec")
    graph = specc.graph(ROOT / "specs" / f"{name}.spec")
    inputs = [x.float() for x in example_inputs(graph)]
    exported = torch.export.export(model, tuple(inputs))
    for a, b in zip(as_list(exported.module()(*inputs)), as_list(model(*inputs))):
        torch.testing.assert_close(a, b)


@pytest.mark.filterwarnings("ignore:.*LeafSpec:FutureWarning")  # inside torch.onnx's exporter, not ours
def test_onnx_export(tmp_path):
    onnx = pytest.importorskip("onnx")
    reference = pytest.importorskip("onnx.reference")
    model = specc.load(ROOT / "specs" / "two_io.spec")
    inputs = [x.float() for x in example_inputs(specc.graph(ROOT / "specs" / "two_io.spec"))]
    path = tmp_path / "two_io.onnx"
    model.eval()  # export the inference graph (specc modules behave the same in both modes)
    torch.onnx.export(model, tuple(inputs), str(path))
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert [i.name for i in proto.graph.input] == ["in1", "in2"]
    outputs = reference.ReferenceEvaluator(proto).run(None, {"in1": inputs[0].numpy(), "in2": inputs[1].numpy()})
    for ours, theirs in zip(model(*inputs), outputs, strict=True):
        np.testing.assert_allclose(ours.detach().numpy(), theirs, atol=1e-6)
