"""Sequences (specc/sequences.py, specc/loops.py): the three recurrent specs against torch.nn.RNN, GRU
and LSTM (outputs and every gradient, float64, batch 5 × 20 steps), what the IR says, the generated
loop, and the errors.

The weight mapping (also in docs/language.md, "Sequences and recurrence"): torch stacks the gates'
blocks in one matrix, weight_ih_l0 = [W_ir; W_iz; W_in] for the GRU, and so on; the specs name each
block.
"""
import pytest
import torch

import specc
from conftest import ROOT, assert_spec_error
from specc.errors import ArgumentError, ArityError, KindError, ShapeError, SpecSyntaxError, UnknownNameError

# torch module, its gate letters in stacking order, and the spec's names of one block (g: a gate letter).
MAPPING = {
    "elman": (torch.nn.RNN, "h", {"weight_ih_l0": "W_i{g}", "weight_hh_l0": "W_h{g}", "bias_ih_l0": "b_i{g}",
                                  "bias_hh_l0": "b_h{g}"}),
    "gru": (torch.nn.GRU, "rzn", {"weight_ih_l0": "W_i{g}", "weight_hh_l0": "W_h{g}", "bias_ih_l0": "b_i{g}",
                                  "bias_hh_l0": "b_h{g}"}),
    "lstm": (torch.nn.LSTM, "ifgo", {"weight_ih_l0": "W_i{g}", "weight_hh_l0": "W_h{g}", "bias_ih_l0": "b_i{g}",
                                     "bias_hh_l0": "b_h{g}"}),
}
INPUT, HIDDEN, BATCH, STEPS = 3, 8, 5, 20
TIGHT = dict(atol=1e-10, rtol=1e-10)


def _spec_name(template: str, gate: str) -> str:
    # Elman's one block per matrix is gate "h": W_ih, W_hh, b_ih, b_hh, torch's own names.
    return template.format(g=gate)


def _pair(name: str):
    """The spec's module and torch's, with the same weights (torch's random ones, split into blocks)."""
    cls, gates, table = MAPPING[name]
    torch.manual_seed(0)
    reference = cls(INPUT, HIDDEN, batch_first=True).double()
    model = specc.load(ROOT / "specs" / f"{name}.spec").double()
    with torch.no_grad():
        for stacked, template in table.items():
            blocks = getattr(reference, stacked).chunk(len(gates), dim=0)
            for gate, block in zip(gates, blocks):
                getattr(model, _spec_name(template, gate)).copy_(block)
    return model, reference


def test_the_mapping_covers_every_parameter_of_both():
    for name, (cls, gates, table) in MAPPING.items():
        model = specc.load(ROOT / "specs" / f"{name}.spec")
        names = {_spec_name(t, g) for t in table.values() for g in gates}
        assert names == {n for n, _ in model.named_parameters()}, name
        assert len((ROOT / "specs" / f"{name}.spec").read_text().splitlines()) <= 10


@pytest.mark.parametrize("name", list(MAPPING))
def test_recurrent_spec_matches_torch_outputs_and_gradients(name):
    model, reference = _pair(name)
    x = torch.randn(BATCH, STEPS, INPUT, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ours = model(x)
    theirs, final = reference(x)
    assert ours.shape == (BATCH, STEPS, HIDDEN)
    assert torch.allclose(ours, theirs, atol=1e-12, rtol=1e-12)
    final_h = final[0] if isinstance(final, tuple) else final
    assert torch.allclose(ours[:, -1], final_h[0], atol=1e-12, rtol=1e-12)
    weights = torch.randn(BATCH, STEPS, HIDDEN, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    (ours * weights).sum().backward()
    (theirs * weights).sum().backward()
    _, gates, table = MAPPING[name]
    for stacked, template in table.items():
        grads = getattr(reference, stacked).grad.chunk(len(gates), dim=0)
        for gate, grad in zip(gates, grads):
            mine = getattr(model, _spec_name(template, gate)).grad
            assert torch.allclose(mine, grad, atol=1e-9, rtol=1e-9), (stacked, gate)


def test_last_h_is_torchs_h_n_and_a_named_start_state_is_learnt():
    text = (ROOT / "specs" / "elman.spec").read_text().replace("prev(h)", "prev(h, h0)").replace(
        "output h", "y = last(h)\noutput h, y")
    model = specc.load(text).double()
    reference = torch.nn.RNN(INPUT, HIDDEN, batch_first=True).double()
    with torch.no_grad():
        for ours, theirs in (("W_ih", "weight_ih_l0"), ("W_hh", "weight_hh_l0"), ("b_ih", "bias_ih_l0"),
                             ("b_hh", "bias_hh_l0")):
            getattr(model, ours).copy_(getattr(reference, theirs))
        model.h0.copy_(torch.linspace(-1, 1, HIDDEN))
    x = torch.randn(BATCH, STEPS, INPUT, dtype=torch.float64)
    h0 = model.h0.detach().expand(1, BATCH, HIDDEN).contiguous()
    out, h_n = reference(x, h0)
    got = model(x)
    assert got.y.shape == (BATCH, HIDDEN) and got.h.shape == (BATCH, STEPS, HIDDEN)
    assert torch.allclose(got.h, out, **TIGHT) and torch.allclose(got.y, h_n[0], **TIGHT)
    got.y.sum().backward()
    assert model.h0.grad is not None and model.h0.grad.abs().sum() > 0


def test_ir_marks_steps_sequences_and_recurrent_pairs():
    g = specc.graph("input x[T, 3], c\nh[4] = tanh(W·x + U·prev(h) + c)\ny = last(h)\nq[2] = V·y\noutput h, q")
    stepped = {n for n in g if g.nodes[n]["stepped"]}
    assert {"x", "h", "output:h"} <= stepped and not {"c", "W", "U", "y", "q", "output:q"} & stepped
    assert g.nodes["x"]["sequence"] and not g.nodes["c"]["sequence"]
    ((of, prev),) = g.graph["recurrent"]
    assert of == "h" and g.nodes[prev]["op"] == "prev" and g.nodes[prev]["of"] == "h"
    assert g.nodes[g.nodes[prev]["args"][0]]["value"] == 0.0 and not g.has_edge("h", prev)
    assert g.nodes["U"]["shape"] == (4, 4) and g.nodes["y"]["op"] == "last" and g.nodes["V"]["shape"] == (2, 4)
    assert g.is_acyclic()


def test_sizes_are_inferred_through_the_recurrence_and_starts_broadcast():
    g = specc.graph("input x[T, 3]\nh = tanh(W·x + U·prev(h, h0) + b)\noutput h[8]")
    assert g.nodes["U"]["shape"] == (8, 8) and g.nodes["h0"]["shape"] == (8,)
    g = specc.graph("input x[T]\nparam s\nh = tanh(w*x + u*prev(h, s))\nk[5] = prev(h, 1) + 0 * W·x")
    assert g.nodes["h"]["shape"] == () and g.nodes["s"]["shape"] == ()


def test_non_sequence_specs_have_no_steps():
    g = specc.graph(ROOT / "specs" / "xor.spec")
    assert g.graph["recurrent"] == [] and not any(a["stepped"] for a in g.nodes.values())
    assert all(g.nodes[i]["sequence"] is False for i in g.graph["inputs"])


def test_generated_loop_is_readable():
    source = specc.to_source(ROOT / "specs" / "elman.spec")
    forward = source[source.index("    def forward"):]
    assert "        h_prev = x.new_zeros(batch_size, 8)  # prev(h) at the first step\n" in forward
    assert "        for t in range(steps):\n            x_t = x[:, t]\n" in forward
    assert "            h_steps.append(h)\n            h_prev = h\n" in forward
    assert "        return torch.stack(h_steps, dim=1)\n" in forward
    assert '"""x[T, 3] -> h[T, 8]"""' in source


def test_spec_names_that_the_loop_would_use_are_renamed():
    text = "input t[T, 2], steps[T, 2]\nh_prev[3] = tanh(A·t + B·steps + C·prev(h_prev))\nh_steps = last(h_prev)\n" \
           "output h_prev, h_steps"
    model = specc.load(text).double()
    source = specc.to_source(text)
    assert "for t_ in range(steps_):" in source and "h_prev_steps = []" in source
    t, s = torch.randn(2, 4, 2, dtype=torch.float64), torch.randn(2, 4, 2, dtype=torch.float64)
    out = model(t, s)
    assert torch.equal(out.h_prev[:, -1], out.h_steps)


def test_two_steps_back_plain_inputs_and_a_scalar_sequence():
    text = "input x[T], c[2]\nh[2] = tanh(a*x + W·c + U·prev(h))\nhp = prev(h)\nk = h + prev(hp, c)\noutput k"
    model = specc.load(text).double()
    x, c = torch.randn(3, 6, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)
    h, states = [], torch.zeros(3, 2, dtype=torch.float64)
    for t in range(6):
        states = torch.tanh(model.a * x[:, t, None] + c @ model.W.T + states @ model.U.T)
        h.append(states)
    expected = [h[t] + (h[t - 2] if t >= 2 else c if t == 0 else 0) for t in range(6)]
    assert torch.allclose(model(x, c), torch.stack(expected, 1), **TIGHT)


@pytest.mark.parametrize("args, message", [
    ((torch.randn(5, 20),), "input 'x' must have shape [B, T, 3], got [5, 20]"),
    ((torch.randn(5, 0, 3),), "input 'x' has no time steps"),
])
def test_module_refuses_inputs_that_are_not_sequences(args, message):
    model = specc.load(ROOT / "specs" / "elman.spec")
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        model(*args)


def test_module_refuses_sequences_of_different_lengths():
    model = specc.load("input x[T, 2], y[T]\nh = tanh(W·x + v*y + U·prev(h))\noutput h[3]")
    with pytest.raises(ValueError, match="input 'y' has 4 time steps, the sequences before it 5"):
        model(torch.randn(2, 5, 2), torch.randn(2, 4))


GOOD = [
    "input x[T, 3]\nh[4] = tanh(W·x + U·prev(h))",
    "input x[T, 3]\nh = tanh(W·x + U·prev(h, 0.5))\noutput h[T, 4]",
    "input x[T, 3], h0[4]\nh = tanh(W·x + U·prev(h, h0))\ny = last(h)\noutput y",
    "input x[T]\ns = x + prev(x)\noutput s",
    "input x[T, 3]\nfixed z[4]\nh[4] = relu(W·x + prev(h, z))",
    "input x[T, 3]\nh[4] = tanh(W·x + U·h[t-1] + b)",
    "input x[T, 3]\nh[4] = tanh(W·x + U·h[t - 1])\nhp = h[t-1]\ny = hp[t-1] + x[1]",
]


def test_h_t_minus_1_is_prev_h():
    written = specc.graph("input x[T, 3]\nh[4] = tanh(W·x + U·h[t-1] + b)\n")
    called = specc.graph("input x[T, 3]\nh[4] = tanh(W·x + U·prev(h) + b)\n")
    assert written.graph["recurrent"] == called.graph["recurrent"] == [("h", "h/3")]
    assert written.nodes["h/3"]["label"] == "h[t-1]"
    assert specc.to_source(written).replace("h[t-1]", "prev(h)") == specc.to_source(called)


@pytest.mark.parametrize("text", GOOD)
def test_good_snippets(text):
    model = specc.load(text).double()
    g = specc.graph(text)
    args = [torch.randn(2, 3, *g.nodes[i]["shape"], dtype=torch.float64) if g.nodes[i]["sequence"] else
            torch.randn(2, *g.nodes[i]["shape"], dtype=torch.float64) for i in g.graph["inputs"]]
    out = model(*args)
    name = g.graph["outputs"][0]
    assert out.shape == (2, *((3,) if g.nodes[name]["stepped"] else ()), *g.nodes[name]["shape"])


BAD = [
    ("param W[T, 3]\ninput x\ny = W", ShapeError, 1, 9, "is a size of sequence inputs only, not of a parameter"),
    ("input x[3, T]\ny = x", ShapeError, 1, 12, "can only be the first size"),
    ("input x[T, 3]\nh[T, 4] = W·x", ShapeError, 2, 3, "not of a node"),
    ("input x[N, 3]\ny = x", SpecSyntaxError, 1, 9, "a size must be a whole number"),
    ("input x[3]\nh[4] = tanh(W·x + U·prev(h))", ShapeError, 2, 21, "no sequence input"),
    ("input x[T, 3], c[3]\nd = W·c\nh = tanh(V·x + prev(d))", KindError, 3, 16, "'d' does not vary"),
    ("input x[T, 3]\nh[4] = tanh(W·x + U·prev(hh))", UnknownNameError, 2, 26, "did you mean 'h'?"),
    ("input x[T, 3]\nh[4] = tanh(W·x + prev(W))", KindError, 2, 24, "is a parameter"),
    ("input x[T, 3]\nh[4] = tanh(W·x + prev(h + 1))", ArgumentError, 2, 24, "takes the name of a node"),
    ("input x[T, 3]\nh[4] = tanh(W·x + prev(h, 1, 2))", ArityError, 2, 19, "takes 1 or 2 arguments"),
    ("input x[T, 3]\nh[4] = tanh(W·x + prev(h, W·x))", KindError, 2, 27, "the start value varies"),
    ("input x[T, 3]\nh[4] = prev(h)\ny = W·x + h", ArgumentError, 2, 8, "its own previous value"),
    ("input x[3]\ny = last(W·x)", KindError, 2, 5, "last(..) takes a value that varies"),
    ("input x[T, 3]\nh[4] = tanh(W·x)\ny = last(h)\nz = h + y", KindError, 4, 1, "uses 'last(h)'"),
    ("input x[T, 3], c\nh[4] = tanh(W·x)\noutput c[T]", ShapeError, 3, 10, "does not vary per time step"),
    ("input x[T, 3]\nh[4] = tanh(W·x + U·h[s-1])", SpecSyntaxError, 2, 23, "the step before is written h[t-1]"),
    ("input x[T, 3]\nh[4] = tanh(W·x + U·h[t-2])", SpecSyntaxError, 2, 23, "only one step back"),
    ("input x[T, 3]\nh[4] = tanh(W·x + U·(h + 1)[t-1])", ArgumentError, 2, 22, "takes the name of a node"),
    ("input x[4]\ny = x[i]", SpecSyntaxError, 2, 7, "not the name 'i'"),
]


@pytest.mark.parametrize("text, error, line, column, message", BAD)
def test_bad_snippets(text, error, line, column, message):
    assert_spec_error(text, error, line, column, message)


def test_generated_recurrent_specs_run_without_specc(run_standalone):
    cases, expected = [], []
    for name in MAPPING:
        model = specc.load(ROOT / "specs" / f"{name}.spec").double()
        x = torch.randn(2, 7, INPUT, dtype=torch.float64)
        cases.append({"source": specc.to_source(ROOT / "specs" / f"{name}.spec"), "class": type(model).__name__,
                      "state": model.state_dict(), "args": [x]})
        expected.append(model(x).detach())
    for result, want in zip(run_standalone(cases), expected):
        assert torch.equal(result["outputs"][0], want)
