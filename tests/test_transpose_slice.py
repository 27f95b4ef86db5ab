"""The transpose (``Wᵀ``, ``W'``) and 1-based indexing and slicing (``x[2]``, ``x[2:4]``): grammar,
inference in both directions, errors with carets, the generated PyTorch against hand-written
PyTorch, the training backends (NumPy tape, compiled C criterion) against autograd, and drawings."""
import io
import math

import numpy as np
import pytest
import torch
from torch import nn

import specc
from conftest import ROOT, assert_spec_error
from specc.diagram import draw
from specc.diagram_units import read_units
from specc.dump import dump_ast, dump_ir
from specc.errors import IndexRangeError, KindError, ShapeError, SpecSyntaxError, UndeterminedSizeError
from specc.parser import BinOp, Call, Index, Name, Neg, Num, Transpose, parse_program
from test_ccode import assert_backends_match_autograd
from test_tape import _data

F64 = torch.float64
TIED = (ROOT / "specs" / "tied_autoencoder.spec").read_text(encoding="utf-8")


def show(expr) -> str:
    """An expression with its grouping made explicit."""
    if isinstance(expr, Num):
        return expr.text
    if isinstance(expr, Name):
        return expr.id
    if isinstance(expr, Neg):
        return f"(-{show(expr.operand)})"
    if isinstance(expr, Transpose):
        return f"({show(expr.operand)})T"
    if isinstance(expr, Index):
        return f"({show(expr.operand)})[{expr.start.text}{'' if expr.stop is None else ':' + expr.stop.text}]"
    if isinstance(expr, Call):
        return f"{expr.func.id}({', '.join(show(a) for a in expr.args)})"
    assert isinstance(expr, BinOp)
    return f"({show(expr.left)} {expr.op} {show(expr.right)})"


def expression(text: str):
    (statement,) = parse_program(f"y = {text}").statements
    return statement.expr


def load64(text: str, seed: int = 0):
    model = specc.load(text).double()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=F64))
    return model


def batch(*shape, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


# ---------------------------------------------------------------- grammar
@pytest.mark.parametrize("text,grouped", [
    ("Wᵀ·x", "((W)T matmul x)"),
    ("W'·x", "((W)T matmul x)"),                     # the ASCII spelling
    ("-Wᵀ·x", "((-(W)T) matmul x)"),                 # postfix binds tighter than unary minus
    ("Wᵀ^2", "((W)T pow 2)"),                        # … and than power
    ("x^Wᵀ", "(x pow (W)T)"),
    ("W''", "((W)T)T"),
    ("(-W)ᵀ·x", "(((-W))T matmul x)"),
    ("x[2]", "(x)[2]"),
    ("x[2:4]", "(x)[2:4]"),
    ("-x[2]^2", "(-((x)[2] pow 2))"),
    ("(W·x)[2]", "((W matmul x))[2]"),
    ("f(x)[1]", "(f(x))[1]"),                        # indexes the call's result
    ("x[2:5][1]", "((x)[2:5])[1]"),                  # left to right
    ("a * W·x[1:3] + b", "((a mul (W matmul (x)[1:3])) add b)"),
    ("x[ 2 :\n 4 ]", "(x)[2:4]"),                    # spaces, and a newline inside the brackets
])
def test_postfix_binds_tightest(text, grouped):
    assert show(expression(text)) == grouped


def test_sizes_on_the_left_are_declarations_not_indexing():
    program = parse_program("input x[4]\nparam W[2, 4]\nh[2] = W·x[1:4]\noutput h[2]\n")
    assign = program.statements[2]
    assert assign.target.dims == (2,) and isinstance(assign.expr.right, Index)
    assert program.statements[1].decls[0].dims == (2, 4)


def test_spans_cover_the_postfix():
    expr = expression("Wᵀ·x[2:4]")
    assert (expr.left.span.column, expr.left.span.end_column) == (5, 7)
    assert (expr.right.span.column, expr.right.span.end_column) == (8, 14)
    assert (expr.right.stop.span.column, expr.right.stop.span.end_column) == (12, 13)


def test_ast_dump_shows_the_new_nodes():
    text = dump_ast(parse_program("y = Wᵀ·x[2:4]\n"))
    assert "left: Transpose 1:5-1:7" in text and "right: Index 1:8-1:14" in text
    assert "start: Num 1:10-1:11 value=2.0 text='2'" in text and "stop: Num 1:12-1:13 value=4.0 text='4'" in text


# ---------------------------------------------------------------- inference
def test_tied_autoencoder_has_one_w_counted_once():
    graph = specc.graph(TIED)
    assert graph.graph["params"] == ["W", "b", "c"]
    assert graph.nodes["W"]["shape"] == (3, 8)
    transpose = next(n for n, a in graph.nodes.items() if a.get("op") == "transpose")
    assert graph.nodes[transpose]["shape"] == (8, 3) and graph.nodes[transpose]["args"] == ("W",)
    model = specc.load(TIED)
    assert sum(p.numel() for p in model.parameters()) == 3 * 8 + 3 + 8


@pytest.mark.parametrize("text,shapes", [
    # the decoder's size comes through the transpose from the encoder's use of W
    ("input x[8]\ncode[3] = sigmoid(W·x + b)\nxhat = sigmoid(Wᵀ·code + c)", {"W": (3, 8), "xhat": (8,), "c": (8,)}),
    # each use fixes one of W's sizes
    ("input x[8], k[3]\na = W·x\nz = Wᵀ·k", {"W": (3, 8), "a": (3,), "z": (8,)}),
    # used only transposed, with the result's size declared
    ("input x[3]\ny[5] = W'·x", {"W": (3, 5)}),
    # the declared output size reaches W through the transpose
    ("input x[3]\ny = Wᵀ·x\noutput y[5]", {"W": (3, 5)}),
    ("input x[3]\nparam A[2, 3]\ny = (A')ᵀ·x\nu = (-A)ᵀ·y", {"y": (2,), "u": (3,)}),
    # a slice's size is known: it shapes what it meets
    ("input x[6]\nh = tanh(W·x[2:4])\noutput h[5]", {"W": (5, 3), "h": (5,)}),
    ("input x[6]\ny = x[2:4] + b", {"b": (3,), "y": (3,)}),
    ("input x[6]\ny = x[2] * v\nv[4] = W·x", {"y": (4,)}),
    ("input x[6]\nparam p[5]\ny = x[1:5] * p[1] + p", {"y": (5,)}),
    ("input x[4]\nh[3] = W·x\ny = (V·h)[2:3] + h[1]\nparam V[5, 3]", {"y": (2,)}),
    ("input x[4]\ny = softmax(x)[1:2][2]", {"y": ()}),
])
def test_shapes_flow_through_transposes_and_slices(text, shapes):
    graph = specc.graph(text)
    assert {name: graph.nodes[name]["shape"] for name in shapes} == shapes


def test_a_weight_used_only_transposed_starts_as_a_linear_weight():
    graph = specc.graph("input x[3]\ny[5] = Wᵀ·x + c")
    assert (graph.nodes["W"]["role"], graph.nodes["W"]["fan_in"], graph.nodes["W"]["init"]) == \
        ("weight", 5, "linear_weight")
    assert (graph.nodes["c"]["role"], graph.nodes["c"]["init_args"]) == ("bias", (3,))


def test_tied_autoencoder_starts_as_two_nn_linear_layers_would():
    torch.manual_seed(0)
    model = specc.load(TIED)
    torch.manual_seed(0)
    encoder = nn.Linear(8, 3)
    c = torch.empty(8).uniform_(-1 / math.sqrt(3), 1 / math.sqrt(3))  # the decoder's bias: fan-in 3
    torch.testing.assert_close(model.W, encoder.weight, atol=0, rtol=0)
    torch.testing.assert_close(model.b, encoder.bias, atol=0, rtol=0)
    torch.testing.assert_close(model.c, c, atol=0, rtol=0)


def test_ir_nodes_carry_their_units():
    graph = specc.graph("input x[6]\ny = x[2:4]\nz = x[5]\n")
    assert (graph.nodes["y"]["op"], graph.nodes["y"]["start"], graph.nodes["y"]["stop"]) == ("slice", 2, 4)
    assert (graph.nodes["z"]["op"], graph.nodes["z"]["start"], graph.nodes["z"]["stop"]) == ("index", 5, 5)
    assert [(s.column, s.end_column) for s in graph.nodes["y"]["bound_spans"]] == [(7, 8), (9, 10)]
    line = next(line for line in dump_ir(graph).splitlines() if line.startswith("  y "))
    assert "op='slice'" in line and "start=2 " in line and "stop=4 " in line
    assert "bound_spans=(2:7-2:8, 2:9-2:10)" in line


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("text,error,line,column,message", [
    ("input x[4]\ny = x[5]", IndexRangeError, 2, 7, "index 5 is out of range: 'x' has 4 units, so indices are 1 … 4"),
    ("input x[4]\ny = x[2:6]", IndexRangeError, 2, 9, "slice 2:6 is out of range: 'x' has 4 units"),
    ("input x[4]\ny = x[5:6]", IndexRangeError, 2, 7, "slice 5:6 is out of range"),   # under the first past the end
    ("input x[1]\ny = x[2]", IndexRangeError, 2, 7, "'x' has 1 unit, so the only index is 1"),
    ("input x[3]\nh[4] = relu(W·x)\ny = (W·x)[7]", IndexRangeError, 3, 11, "'W·x' has 4 units"),
    # the size is known only from a later statement, or from the output line
    ("input x[3]\ny = h[5]\nh[4] = relu(W·x + b)", IndexRangeError, 2, 7, "'h' has 4 units"),
    ("input x[3]\nh = relu(W·x)\ny = h[3:3]\noutput h[2], y", IndexRangeError, 3, 7, "'h' has 2 units"),
    ("input x[4]\ny = x[0]", IndexRangeError, 2, 7, "0 is not an index: indices count from 1"),
    ("input x[4]\ny = x[-1]", IndexRangeError, 2, 7, "-1 is not an index"),
    ("input x[4]\ny = x[0:2]", IndexRangeError, 2, 7, "0 is not an index"),
    ("input x[4]\ny = x[1.5]", IndexRangeError, 2, 7, "an index is a whole number, not 1.5"),
    ("input x[4]\ny = x[2:3e0]", IndexRangeError, 2, 9, "not 3e0"),
    ("input x[4]\ny = x[4:2]", IndexRangeError, 2, 7, "the slice 4:2 runs backwards"),
    ("input x[4]\ny = x[2:]", SpecSyntaxError, 2, 9, "unexpected ']'"),
    ("input x[4]\ny = x[i]", SpecSyntaxError, 2, 7, "not the name 'i'"),
    ("input t\ny = t[1]", ShapeError, 2, 5, "'t[1]' indexes a scalar; only a vector has units to index"),
    ("input x[4]\nparam W[2, 4]\ny = W[1]·x", ShapeError, 3, 5, "indexes a matrix; only a vector has units to index; "
                                                               "index a product instead, e.g. (W·x)[2]"),
    ("input x[3]\nparam w[3]\ny = wᵀ·x", ShapeError, 3, 5,
     "'wᵀ' transposes a vector; only a matrix has a transpose"),
    ("input x\ny = x'", ShapeError, 2, 5, "'x'' transposes a scalar; only a matrix has a transpose (a scalar is its "
                                          "own transpose: drop the ᵀ)"),
    ("input x[3]\np[2] = x[1:2]\ny = pᵀ", ShapeError, 3, 5, "'pᵀ' transposes a vector"),
    ("input x[8]\ncode[3] = sigmoid(W·x + b)\nxhat[8] = sigmoid(W^T·code + c)", KindError, 3, 19,
     "'W^T' raises W to the power of 'T', which is no name of this spec and would become a new parameter"),
    ("input x[3]\ny = (A + B) ** T·x", KindError, 2, 5, "raises (A + B) to the power of 'T'"),
    ("input x[6]\nh = tanh(W·x[2:4])", UndeterminedSizeError, 2, 1, "the size of 'h' is not determined"),
    ("input x\nparam p\ny = p[1] * x", ShapeError, 3, 5, "indexes a scalar"),
    ("input x\ny = p[2] * x", UndeterminedSizeError, 2, 5, "the shape of parameter 'p' is not determined"),
])
def test_mistakes_are_reported_under_the_index_or_operator(text, error, line, column, message):
    assert_spec_error(text, error, line, column, message)


def test_power_of_t_notes_the_transpose_under_the_operator():
    err = assert_spec_error("input x[8]\ncode[3] = sigmoid(W·x + b)\nxhat[8] = sigmoid(W^T·code + c)", KindError,
                            3, 19)
    ((note, span),) = err.notes
    assert note == "for the transpose write Wᵀ (or W'); for a power, declare 'param T'"
    assert (span.line, span.column, span.end_column) == (3, 20, 22)  # under '^T'
    err = assert_spec_error("input x[3]\ny = W ** T·x", KindError, 2, 5)
    assert (err.notes[0][1].column, err.notes[0][1].end_column) == (7, 11)  # under '** T'


def test_an_index_past_the_end_notes_where_the_size_came_from():
    err = assert_spec_error("input x[4]\ny = x[5]", IndexRangeError, 2, 7)
    assert err.notes == (("size 4 comes from 'input x[4]'", specc.graph("input x[4]\ny = x").nodes["x"]["span"]),)


@pytest.mark.parametrize("text", [
    "input x\nparam T\ny = x^T",              # a declared T: a power, as written
    "input x\nT = 2 * x\ny = x^T",            # a node named T
    "input x\ndef f(z, T) = z^T\ny = f(x, 2)",  # a def's argument
    "input x, T\ny = x^T",                    # an input
])
def test_a_power_of_a_defined_t_is_a_power(text):
    model = specc.load(text).double()
    assert model is not None


# ---------------------------------------------------------------- generated PyTorch against hand-written PyTorch
def test_generated_code_is_what_a_reader_writes():
    source = specc.to_source(TIED)
    assert "xhat = torch.sigmoid(F.linear(code, self.W.T, self.c))" in source
    source = specc.to_source("input x[8], k[3]\nz = Wᵀ·k + W'·x[2:4]\nq = x[2] * x[3:5]\nr = Wᵀ·k\n"
                             "output z[8], q, r")
    assert "z = linear_sum([k, x[..., 1:4]], [self.W.T, self.W.T], None)" in source
    assert "q = x[..., 1].unsqueeze(-1) * x[..., 2:5]" in source
    assert "r = k @ self.W  #" in source
    assert ".T.T" not in source


PARITY = [
    (TIED, [(5, 8)], lambda x, p: torch.sigmoid(torch.sigmoid(x @ p["W"].T + p["b"]) @ p["W"] + p["c"])),
    ("input x[6]\nh[4] = tanh(W·x[2:5] + b)\ny = h[1] * x[6] + h[2:4]", [(5, 6)],
     lambda x, p: (lambda h: h[:, :1] * x[:, 5:6] + h[:, 1:4])(torch.tanh(x[:, 1:5] @ p["W"].T + p["b"]))),
    ("input x[4]\nparam p[5]\ny = x * p[2] + p[2:5][1:2][2] - softmax(x)[1]", [(5, 4)],
     lambda x, p: x * p["p"][1] + p["p"][2] - torch.softmax(x, -1)[:, :1]),
    ("input x[3]\nparam A[2, 3]\ny = (Aᵀ)ᵀ·x + A·(-A)'·z\nz[2] = A·x", [(5, 3)],
     lambda x, p: x @ p["A"].T + ((x @ p["A"].T) @ (-p["A"])) @ p["A"].T),
    ("input t, v[3]\nparam W[1, 3], U[3, 3]\ny = W'·t + Uᵀ·v", [(5,), (5, 3)],   # a scalar on the right is [1]
     lambda t, v, p: t[:, None] * p["W"][0] + v @ p["U"]),
    ("input x[4]\nparam p[4]\ns = p[2:3]\ny = x[4] + s[2] + concat(x[1], s, p[4])", [(5, 4)],
     lambda x, p: x[:, 3:4] + p["p"][2] + torch.cat([x[:, :1], p["p"][1:3].expand(5, 2), p["p"][3:].expand(5, 1)], -1)),
]


@pytest.mark.parametrize("text,shapes,expected", PARITY, ids=[t.replace("\n", "; ") for t, _, _ in PARITY])
def test_matches_hand_written_pytorch(text, shapes, expected):
    model = load64(text)
    inputs = [batch(*shape, seed=i) for i, shape in enumerate(shapes)]
    p = dict(model.named_parameters())
    torch.testing.assert_close(model(*inputs), expected(*inputs, p), atol=1e-12, rtol=1e-12)


def test_generated_files_run_without_specc_and_are_lint_clean(run_standalone):
    from pyflakes.api import check
    from pyflakes.reporter import Reporter
    cases = []
    for text, shapes, _ in PARITY:
        model = load64(text)
        source = specc.to_source(text)
        out = io.StringIO()
        assert check(source, "generated.py", Reporter(out, io.StringIO())) == 0, out.getvalue()
        assert max(len(line) for line in source.splitlines()) <= 100
        cases.append({"source": source, "class": type(model).__name__, "state": model.state_dict(),
                      "args": [batch(*shape, seed=i) for i, shape in enumerate(shapes)], "model": model})
    results = run_standalone([{k: v for k, v in c.items() if k != "model"} for c in cases])
    for case, result in zip(cases, results, strict=True):
        assert torch.equal(case["model"](*case["args"]).detach(), result["outputs"][0])


# ---------------------------------------------------------------- training backends: exact gradients
BACKEND_SPECS = {
    "tied": TIED,
    "tied_one_unit_code": "input x[4]\ncode = tanh(w·x + a)\nxhat = sigmoid(W'·code + c)\nparam W[1, 4]\n"
                        "output xhat[4]",
    "slices": "input x[6]\nparam V[3, 4]\nh[4] = tanh(W·x[2:5] + b)\ny = h[1] * x[6] + (V·h)[2:3]\n"
              "z = u·concat(h[4], x[1:2], h[2:3])\nparam u[5]\noutput y, z\n",
    "parameter_units": "input x[3]\nparam p[5]\ny[2] = W'·x + p[2:3] * p[5]\nq = exp(p[1]) * x[3] + p[4]",
    "per_model_products": "input x[3]\nparam p[5], A[2, 5]\ny[2] = (A·p)[1:2] + p[1] + x[1:2]\nq = (Bᵀ)ᵀ·x\n"
                          "output y, q[2]\n",
    "transposed_difference": "input x[3]\nparam A[3, 2], B[3, 2]\ny = (A - B)ᵀ·x + (-A)'·x",
}


@pytest.mark.parametrize("loss", ["sse", "mse"])
@pytest.mark.parametrize("name", sorted(BACKEND_SPECS))
def test_tape_and_compiled_criterion_match_autograd(name, loss):
    spec = BACKEND_SPECS[name]
    graph = specc.graph(spec)
    inputs, targets = _data(graph, batch=5, seed=2)
    size = sum(int(np.prod(graph.nodes[p]["shape"], dtype=np.int64)) for p in graph.graph["params"])
    thetas = 0.5 * np.random.default_rng(3).random((3, size)) + 0.2
    assert_backends_match_autograd(spec, thetas, inputs, targets, loss, decay=0.01)


def test_the_tied_autoencoder_fits_with_bfgs():
    rng = np.random.default_rng(0)
    x = rng.random((40, 8))
    model = specc.load(TIED).double()
    result = specc.fit(model, {"x": x, "xhat": x}, optimizer="bfgs", loss="mse", max_iter=200, progress=False)
    assert result.loss < 0.05


# ---------------------------------------------------------------- drawings
def test_a_transposed_weight_is_drawn_as_the_same_weight():
    net = read_units(specc.graph(TIED))
    assert net.shared_params() == ["W"]
    into = {(net.unit_name(*c.source), net.unit_name(*c.target)): c.reference() for c in net.connections()
            if c.param == "W"}
    assert into[("x5", "code2")] == "W[2,5]" and into[("code2", "xhat5")] == "W[2,5]"  # one entry, two edges
    assert len(into) == 48 and len(set(into.values())) == 24
    values = {"W": torch.arange(24, dtype=F64).reshape(3, 8), "b": torch.zeros(3, dtype=F64),
              "c": torch.zeros(8, dtype=F64)}
    assert {c.value(values) for c in net.connections() if c.param == "W"} == set(range(24))
    layers = draw(TIED, view="layers").source
    assert layers.count('class=param') == 3 and "ᵀ" in layers  # one box for W, its decoder edge marked ᵀ
    assert "xhat/1" in draw(TIED, view="graph").source or "transpose" in draw(TIED, view="graph").source


def test_a_slice_wires_its_units_through():
    spec = "input x[6]\nh[4] = tanh(W·x[2:5] + b)\ny = h[1] * x[6]\nz = p[2:3]\nparam p[4]\noutput y, z"
    net = read_units(specc.graph(spec))
    captions = {c.name: c.caption()[2] for c in net.columns.values()}
    assert captions["t1"] == "= x[2:5]" and captions["t2"] == "= h[1]" and captions["t3"] == "= x[6]"
    wires = sorted((net.unit_name(*c.source), net.unit_name(*c.target)) for c in net.connections()
                   if c.kind == "wire" and c.target[0] in ("h/1", "y/1", "y/2"))
    assert [w for w in wires if w[1].startswith("t1")] == [("x2", "t1_1"), ("x3", "t1_2"), ("x4", "t1_3"),
                                                            ("x5", "t1_4")]
    assert ("h1", "t2") in wires and ("x6", "t3") in wires
    z = [(net.unit_name(*c.source), net.unit_name(*c.target), c.reference()) for c in net.connections()
         if c.target[0] == "z"]
    assert z == [("p2", "z1", "p[2]"), ("p3", "z2", "p[3]")]  # a parameter's units carry its numbers
    for view in ("neurons", "layers", "graph"):
        assert "x[2:5]" in draw(spec, view=view).source


@pytest.mark.parametrize("text", [TIED, PARITY[1][0]], ids=["tied", "slices"])
def test_torch_export(text):
    model = specc.load(text)
    x = torch.randn(4, specc.graph(text).nodes["x"]["shape"][0])
    exported = torch.export.export(model, (x,))
    torch.testing.assert_close(exported.module()(x), model(x))
