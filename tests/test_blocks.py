"""Reusable blocks (specc/blocks.py, specc/compile_blocks.py): `block`, `use`, calls of instances.

Parity of the bundled block specs with hand-written PyTorch modules (outputs and gradients, float64),
state_dict keys, sharing, sizes across the boundary both ways, errors (in the used file, with the
use-site note; cycles), and the one standalone file with one class per block.
"""
import ast
import textwrap

import pytest
import torch
from torch import nn

import specc
from conftest import ROOT, as_list, assert_spec_error, example_inputs, randomise
from specc.errors import (ArityError, CycleError, InitError, KindError, RedefinitionError, ReservedNameError,
                          SizeConflictError, SpecError, SpecSyntaxError, UnknownFunctionError,
                          UnknownNameError)

F64 = torch.float64
SPECS = ROOT / "specs"
# The bundled specs whose parity with hand-written PyTorch this file tests (tests/test_compile.py
# checks that every bundled spec has one).
PARITY_STEMS = {"residual_blocks", "autoencoder", "encoder", "decoder"}



def batch(*shape, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


# ---------------------------------------------------------------- hand-written references
class Res(nn.Module):
    def __init__(self):
        super().__init__()
        self.W1, self.b1 = nn.Parameter(torch.empty(16, 8)), nn.Parameter(torch.empty(16))
        self.W2, self.b2 = nn.Parameter(torch.empty(8, 16)), nn.Parameter(torch.empty(8))

    def forward(self, u):
        return u + torch.relu(u @ self.W1.T + self.b1) @ self.W2.T + self.b2


class ResidualBlocks(nn.Module):
    def __init__(self):
        super().__init__()
        self.Win, self.bin = nn.Parameter(torch.empty(8, 4)), nn.Parameter(torch.empty(8))
        self.Wout, self.bout = nn.Parameter(torch.empty(1, 8)), nn.Parameter(torch.empty(1))
        self.r1, self.r2, self.r3 = Res(), Res(), Res()

    def forward(self, x):
        h0 = torch.tanh(x @ self.Win.T + self.bin)
        return self.r3(self.r2(self.r1(h0))) @ self.Wout.T + self.bout


class Half(nn.Module):
    """The encoder (8 → 4 → 2) or the decoder (2 → 4 → 8)."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.W1, self.b1 = nn.Parameter(torch.empty(4, n_in)), nn.Parameter(torch.empty(4))
        self.W2, self.b2 = nn.Parameter(torch.empty(n_out, 4)), nn.Parameter(torch.empty(n_out))

    def forward(self, x):
        return torch.tanh(x @ self.W1.T + self.b1) @ self.W2.T + self.b2


class Autoencoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc, self.dec = Half(8, 2), Half(2, 8)

    def forward(self, x):
        return self.dec(self.enc(x))


def _agree(model, reference, x):
    """Same names, same weights: same outputs and same gradients, to float64 precision."""
    assert list(model.state_dict()) == list(reference.state_dict())
    reference.double().load_state_dict(model.state_dict())
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    ours, theirs = model(x1), reference(x2)
    close = {"atol": 1e-9, "rtol": 1e-12}  # float64; F.linear and @ sum in different orders
    torch.testing.assert_close(ours, theirs, **close)
    ours.square().sum().backward()
    theirs.square().sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, **close)
    for (name, p), (_, q) in zip(model.named_parameters(), reference.named_parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, **close, msg=name)


@pytest.mark.parametrize("stem,reference,width", [
    ("residual_blocks", ResidualBlocks, 4), ("autoencoder", Autoencoder, 8),
    ("encoder", lambda: Half(8, 2), 8), ("decoder", lambda: Half(2, 8), 2),
])
def test_bundled_block_specs_match_hand_written_modules(stem, reference, width):
    model = randomise(specc.load(SPECS / f"{stem}.spec").double())
    _agree(model, reference(), batch(7, width))


def test_state_dict_keys_read_instance_dot_name():
    model = specc.load(SPECS / "autoencoder.spec")
    assert list(model.state_dict()) == [f"{i}.{p}" for i in ("enc", "dec") for p in ("W1", "b1", "W2", "b2")]
    assert type(model.enc).__name__ == "Encoder" and type(model.dec).__name__ == "Decoder"
    assert [n for n, _ in model.enc.named_parameters()] == ["W1", "b1", "W2", "b2"]  # the author's names
    assert specc.graph(SPECS / "autoencoder.spec").graph["params"] == list(model.state_dict())


def test_default_init_of_an_instance_is_what_the_block_alone_draws():
    torch.manual_seed(3)
    whole = specc.load(SPECS / "autoencoder.spec")
    torch.manual_seed(3)
    alone = specc.load(SPECS / "encoder.spec")
    for name, p in alone.state_dict().items():
        assert torch.equal(whole.state_dict()[f"enc.{name}"], p), name


def test_reset_parameters_draws_every_block_again():
    model = specc.load(SPECS / "residual_blocks.spec")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.reset_parameters()
    assert all(not torch.equal(before[k], v) for k, v in model.state_dict().items())


# ---------------------------------------------------------------- sharing
SHARED = """
block lin {
    input u[3]
    y[3] = W·u + b
}
input x[3]
f = use lin
g = use lin
a = f(x)
b = f(a)
c = g(b)
output c
"""


def test_one_instance_called_twice_shares_its_parameters_and_two_uses_do_not():
    graph = specc.graph(SHARED)
    assert graph.graph["params"] == ["f.W", "f.b", "g.W", "g.b"]
    model = randomise(specc.load(SHARED).double())
    x = batch(5, 3)
    sd = model.state_dict()
    step = lambda p, v: v @ sd[f"{p}.W"].T + sd[f"{p}.b"]  # noqa: E731
    torch.testing.assert_close(model(x), step("g", step("f", step("f", x))), atol=1e-12, rtol=0)
    blocks = graph.graph["blocks"]
    assert blocks["instances"]["f"]["calls"] == ["c1", "c2"] and blocks["instances"]["g"]["calls"] == ["c3"]
    assert blocks["instances"]["f"]["class"] == blocks["instances"]["g"]["class"] == "Lin"
    source = specc.to_source(SHARED)
    assert source.count("class Lin(nn.Module)") == 1


def test_ir_of_a_call_carries_block_call_and_the_authors_names():
    graph = specc.graph(SHARED)
    call = graph.graph["blocks"]["calls"]["c2"]
    assert call["args"] == ("a",) and call["stmt"] == "b" and call["instance"] == "f"
    (port,) = call["inputs"]
    assert graph.nodes[port]["port"] == "input" and graph.nodes[port]["local"] == "u"
    out = call["outputs"]["y"]
    assert out.startswith("b/") and graph.nodes[out]["local"] == "y"
    assert {graph.nodes[n].get("block") for n in graph if graph.nodes[n].get("call") == "c2"} == {"f"}
    assert graph.nodes["b"]["args"] == (out,) and "block" not in graph.nodes["b"]
    assert graph.nodes["f.W"]["local"] == "W" and graph.nodes["f.W"]["block"] == "f"


# ---------------------------------------------------------------- sizes both ways
def test_sizes_flow_from_the_caller_into_an_undeclared_block_and_back():
    spec = """
block act {
    input u
    y = tanh(A·u + c)
}
input x[5]
a = use act
h[3] = a(x)
z = V·h
output z[2]
"""
    graph = specc.graph(spec)
    assert graph.nodes["a.A"]["shape"] == (3, 5)  # from the caller: x[5] in, h[3] out
    assert graph.nodes["V"]["shape"] == (2, 3)


def test_sizes_a_block_declares_size_the_callers_parameters():
    spec = """
block emb {
    input u
    output y[6]
    y = W·u
}
input x[2]
emb1 = use emb
z = Q·emb1(x)
output z[1]
"""
    graph = specc.graph(spec)
    assert graph.nodes["Q"]["shape"] == (1, 6) and graph.nodes["emb1.W"]["shape"] == (6, 2)


def test_several_outputs_are_picked_by_name(tmp_path):
    (tmp_path / "two.spec").write_text("input u[2]\nmu = A·u\ns = exp(B·u)\noutput mu[3], s[3]\n")
    (tmp_path / "top.spec").write_text('input x[2]\nv = use "two.spec"\ny = v(x).mu * v(x).s\n')
    model = randomise(specc.load(tmp_path / "top.spec").double())
    x = batch(4, 2)
    sd = model.state_dict()
    torch.testing.assert_close(model(x), (x @ sd["v.A"].T) * torch.exp(x @ sd["v.B"].T), atol=1e-12, rtol=0)
    assert "class TwoOutputs(NamedTuple)" in specc.to_source(tmp_path / "top.spec")


def test_nested_uses_name_parameters_by_path(tmp_path):
    (tmp_path / "inner.spec").write_text("input u[2]\ny[2] = W·u\n")
    (tmp_path / "outer.spec").write_text('input u[2]\nin = use "inner.spec"\ny = relu(in(u))\n')
    (tmp_path / "top.spec").write_text('input x[2]\no = use "outer.spec"\nz = o(x) + o(x)\n')
    graph = specc.graph(tmp_path / "top.spec")
    assert graph.graph["params"] == ["o.in.W"]
    model = randomise(specc.load(tmp_path / "top.spec").double())
    assert list(model.state_dict()) == ["o.in.W"]
    x = batch(3, 2)
    torch.testing.assert_close(model(x), 2 * torch.relu(x @ model.state_dict()["o.in.W"].T), atol=1e-12, rtol=0)


def test_different_sizes_give_a_second_class():
    spec = """
block sq {
    input u
    y = W·u
}
input x[2]
a = use sq
b = use sq
p[3] = a(x)
q[4] = b(p)
"""
    source = specc.to_source(spec)
    assert "class Sq(nn.Module)" in source and "class Sq2(nn.Module)" in source
    model = specc.load(spec)
    assert type(model.a).__name__ == "Sq" and type(model.b).__name__ == "Sq2"


# ---------------------------------------------------------------- errors
BAD_TEXT = [  # (spec, error, line, column, part of the message)
    ("block b {\n input u[3]\n y[2] = tanh(W·u)\n}\ninput x\nparam h0[3]\nr = use b\nz = r(h0) * x\n", KindError, 8, 5,
     "'h0' is the same for every sample"),
    ("input x\nr = use nob\ny = r(x)\n", UnknownNameError, 2, 9, "no block named 'nob'"),
    ("block b {\n input u\n y = 2*u\n}\ninput x\ny = b(x)\n", KindError, 6, 5, "'b' is a block, not an instance"),
    ("block b {\n input u\n y = 2*u\n}\ninput x\nr = use b\ny = r(x, x)\n", ArityError, 7, 5, "takes 1 input(s)"),
    ("block b {\n input u\n y = 2*u\n}\ninput x\nr = use b\ny = r(x).z\n", UnknownNameError, 7, 10,
     "'z' is not an output of 'r'"),
    ("block b {\n input u\n output p, q\n p = 2*u\n q = 3*u\n}\ninput x\nr = use b\ny = r(x)\n", KindError, 9, 5,
     "pick one, e.g. r(x).p"),
    ("input x\ny = relu(x).a\n", KindError, 2, 5, "picks an output of a block's call"),
    ("block b {\n input u\n y = 2*u\n}\ninput x\nr = use b\nr = 3\n", RedefinitionError, 7, 1, "already defined"),
    ("block b {\n input u\n y = 2*u\n}\nblock b {\n input u\n y = u\n}\ninput x\nr = use b\ny = r(x)\n",
     RedefinitionError, 5, 7, "block 'b' is already defined"),
    ("block b {\n input u\n y = 2*u\n}\ninput x\nr = use b\ny = x\n", SpecError, 6, 1, "'r' is never called"),
    ("block b {\n input u\n y = 2*u\n}\ninput x\nforward = use b\ny = forward(x)\n", ReservedNameError, 6, 1,
     "torch.nn.Module attribute"),
    ("block b {\n input u\n r = use b\n y = r(u)\n}\ninput x\nq = use b\nz = q(x)\n", CycleError, 3, 10,
     "the block 'b' uses itself: b → b"),
    ("block b {\n input u[3]\n y[4] = W·u\n}\ninput x[3]\nr = use b\nv[5] = r(x)\n", SizeConflictError, 7, 1,
     "4 from 'y[4]' meets 5 from 'v[5]'"),
    ("block b {\n input u\n y = zz(u)\n}\ninput x\nr = use b\nv = r(x)\n", UnknownFunctionError, 3, 6,
     "unknown function 'zz'"),
    ("block b {\n input u\n use = 2\n}\n", ReservedNameError, 3, 2, "'use' is a keyword"),
    ("input x\nr = use\n", SpecSyntaxError, 2, 8, "expected"),
]


@pytest.mark.parametrize("text,error,line,column,part", BAD_TEXT, ids=[b[4][:30] for b in BAD_TEXT])
def test_bad_snippets(text, error, line, column, part):
    assert_spec_error(text, error, line, column, part)


def _files(tmp_path, files: dict[str, str]):
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")


TOP = 'input x[8]\ne1 = use "enc.spec"\ny = e1(x)\n'
BAD_FILES = [  # (files, the spec to read, error, its file, line, column, message part, notes as (file, line))
    ({"enc.spec": "input x[8]\nh[4] = tanh(W1·x + + b1)\n", "top.spec": TOP},
     SpecSyntaxError, "enc.spec", 2, 20, "unexpected '+'", []),
    ({"enc.spec": "input x[8]\nh[4] = tanhh(W1·x)\n", "top.spec": TOP},
     UnknownFunctionError, "enc.spec", 2, 8, "did you mean 'tanh'", [("top.spec", 2)]),
    ({"enc.spec": "input u[8]\nv = W·u\n", "top.spec": 'input x[3]\ne1 = use "enc.spec"\ny = e1(x)\n'},
     SizeConflictError, "enc.spec", 1, 7, "3 from 'input x[3]' meets 8 from 'u[8]'",
     [("top.spec", 1), ("top.spec", 2)]),
    ({"enc.spec": "input u[8]\nv[2] = W·u\ninit Q = zeros\n", "top.spec": TOP},
     InitError, "enc.spec", 3, 6, "'Q' is not a parameter of this spec (parameters: W)", [("top.spec", 2)]),
    ({"top.spec": 'input x\ne1 = use "missing.spec"\ny = e1(x)\n'},
     SpecError, "top.spec", 2, 10, "no such file", []),
    ({"a.spec": 'input x\ns = use "a.spec"\ny = s(x)\n'},
     CycleError, "a.spec", 2, 9, "the file 'a.spec' uses itself: a.spec → a.spec", []),
    ({"a.spec": 'input x\ns = use "b.spec"\ny = s(x)\n', "b.spec": 'input x\nt = use "a.spec"\ny = t(x)\n'},
     CycleError, "b.spec", 2, 9, "a.spec → b.spec → a.spec", [("a.spec", 2)]),
]


@pytest.mark.parametrize("files,error,where,line,column,part,notes", BAD_FILES,
                         ids=[f"{b[1].__name__}-{b[5][:20]}" for b in BAD_FILES])
def test_errors_in_used_files_point_into_them(tmp_path, files, error, where, line, column, part, notes):
    _files(tmp_path, files)
    top = next(n for n in ("top.spec", "a.spec") if n in files)
    err = assert_spec_error(lambda: specc.graph(tmp_path / top), error, line, column, part,
                            file=str(tmp_path / where))
    report = err.format()
    quoted = (tmp_path / where).read_text().splitlines()[line - 1]
    assert report.splitlines()[1] == "    " + quoted  # the used file's own line, not the parent's
    placed = [(span.file, span.line) for _, span in err.notes if span is not None]
    for file, note_line in notes:
        assert (str(tmp_path / file), note_line) in placed, report
    for text, span in err.notes:  # each note quotes its own file's line
        if span is not None:
            assert f"{span}: note: {text}\n    " + (tmp_path / span.file).read_text().splitlines()[span.line - 1] \
                in report


def test_use_site_note_names_the_file_and_instance(tmp_path):
    _files(tmp_path, {"enc.spec": "input x[8]\nh[4] = tanhh(W1·x)\n",
                      "top.spec": 'input x[8]\ne1 = use "enc.spec"\ny = e1(x)\n'})
    with pytest.raises(UnknownFunctionError) as caught:
        specc.graph(tmp_path / "top.spec")
    report = caught.value.format()
    assert f"{tmp_path / 'top.spec'}:2:1: note: in '{tmp_path / 'enc.spec'}', used here as 'e1'" in report
    assert '    e1 = use "enc.spec"' in report


def test_spec_text_uses_files_relative_to_the_current_folder(tmp_path, monkeypatch):
    _files(tmp_path, {"enc.spec": "input u[2]\nv[3] = W·u\n"})
    monkeypatch.chdir(tmp_path)
    assert specc.graph('input x[2]\ne1 = use "enc.spec"\ny = e1(x)\n').nodes["y"]["shape"] == (3,)


# ---------------------------------------------------------------- the compiled file
def test_compiled_file_has_one_class_per_block_and_runs_without_specc(run_standalone):
    cases, models = [], []
    for stem in ("residual_blocks", "autoencoder"):
        path = SPECS / f"{stem}.spec"
        model = randomise(specc.load(path).double()).eval()
        graph = specc.graph(path)
        models.append(model)
        cases.append({"source": specc.to_source(path), "class": type(model).__name__,
                      "state": model.state_dict(), "args": example_inputs(graph)})
    classes = [sorted(n.name for n in ast.parse(c["source"]).body if isinstance(n, ast.ClassDef)) for c in cases]
    assert classes == [["Res", "ResidualBlocks"], ["Autoencoder", "Decoder", "Encoder"]]
    assert "self.enc = Encoder()" in cases[1]["source"] and "code = self.enc(x)" in cases[1]["source"]
    for model, case, result in zip(models, cases, run_standalone(cases), strict=True):
        assert result["keys"] == list(model.state_dict())
        for a, b in zip(as_list(model(*case["args"])), result["outputs"], strict=True):
            assert torch.equal(a.detach(), b)


def test_specs_without_blocks_compile_as_before():
    # The golden files of tests/test_compile.py pin every bundled spec's source; here, the one switch.
    assert "blocks" not in specc.graph(SPECS / "two_io.spec").graph


def test_a_used_file_edited_since_the_last_build_is_read_again(tmp_path, monkeypatch):
    # The IR is memoised by the top file's text; a language server or a notebook lives through edits
    # of the files it uses, so a changed used file must not give the old IR.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "enc.spec").write_text("input x[4]\ny[3] = W·x + b\n", encoding="utf-8")
    (tmp_path / "top.spec").write_text('enc = use "enc.spec"\ninput x[4]\nz = enc(x)\n', encoding="utf-8")
    assert specc.graph("top.spec").nodes["enc.W"]["shape"] == (3, 4)
    assert specc.graph("top.spec") is specc.graph("top.spec")  # unchanged: the memoised IR
    (tmp_path / "enc.spec").write_text("input x[4]\ny[5] = W·x + b\n", encoding="utf-8")
    assert specc.graph("top.spec").nodes["enc.W"]["shape"] == (5, 4)
    (tmp_path / "enc.spec").unlink()
    assert_spec_error(lambda: specc.graph("top.spec"), SpecError, 1, 11, "no such file", file="top.spec")
