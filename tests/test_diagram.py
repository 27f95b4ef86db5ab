"""Tests for specc.draw (the three views, output, escaping) and specc.diagram_units (the unit reading).

Structure is checked on Graphviz's own reading of the DOT text (``dot -Tdot_json``),
so a test also proves the text parses; nodes and edges are told apart by the
``class`` attribute the views set (``unit input``, ``bias``, ``weight`` …).
"""
from __future__ import annotations

import html
import json
import re
import struct
import subprocess
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest
import torch

import specc
from specc.cli import main
from specc.diagram import SKIP, connections_list, connections_text, draw, text, write_drawing
from specc.diagram_units import NotDrawable, format_connections, read_units
from specc.errors import DataError, SpecError

SPECS = Path(__file__).resolve().parents[1] / "specs"
POS, NEG = "#007700", "#ff7777"


def read_back(digraph) -> tuple[dict, list[dict], list[dict]]:
    """(graph attributes, nodes, edges) as Graphviz parses them; edges get 'tail'/'head' node dicts."""
    run = subprocess.run(["dot", "-Gsplines=false", "-Tdot_json"], input=digraph.source.encode(),
                         capture_output=True, check=True)
    assert run.stderr == b"", run.stderr
    data = json.loads(run.stdout)
    nodes = data.get("objects", [])
    edges = [dict(e, tail=nodes[e["tail"]], head=nodes[e["head"]]) for e in data.get("edges", [])]
    return data, nodes, edges


def plain(label: str) -> str:
    """What an HTML-like label says, as text."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", label.replace("<BR/>", " "))).split())


def of_class(items, prefix: str) -> list[dict]:
    return [i for i in items if i.get("class", "").startswith(prefix)]


# ---------------------------------------------------------------- neuron view of every bundled spec
# spec: unit counts by class, bias node → edges out of it, edge counts by class, captions (name, size, what)
NEURONS = {
    "sine_nnet": ({"unit input": 1, "unit node": 4, "unit output": 1}, {"B1": 4, "B2": 1}, {"weight": 13},
                  ["x input", "h [4] logistic", "y [1] linear · output"]),
    "curve_tanh": ({"unit input": 1, "unit node": 10, "unit output": 1}, {"B1": 10, "B2": 1}, {"weight": 31},
                   ["x input", "h [10] tanh", "y [1] linear · output"]),
    "xor": ({"unit input": 2, "unit node": 5, "unit output": 1}, {}, {"weight": 15},
            ["X [2] input", "h [5] sigmoid", "y [1] sigmoid · output"]),
    "two_io": ({"unit input": 10, "unit node": 10, "unit output": 6}, {"B1": 10, "B2": 6}, {"weight": 176},
               ["in1 [5] input", "in2 [5] input", "h [10] relu", "out1 [3] relu · output",
                "out2 [3] relu · output"]),
    "cubic": ({"unit input": 1, "unit op": 2, "unit output": 1}, {"B1": 1}, {"weight": 4, "wire": 2},
              ["x input", "t1 = x^2", "t2 = x^3", "y linear · output"]),
    "legendre": ({"unit input": 1, "unit node": 1, "unit op": 1, "unit output": 1}, {"B1": 1, "B2": 1},
                 {"weight": 5, "wire": 1}, ["x input", "P3_z = c + d*x", "t1 = P3_z^3 (in P3)", "y linear · output"]),
    "dropout_mlp": ({"unit input": 4, "unit node": 48, "unit output": 3}, {"B1": 16, "B2": 8, "B3": 3},
                    {"weight": 243, "fixed": 24},
                    ["x [4] input", "t1 [16] = relu(W1·x + b1)", "h1 [16] dropout", "t2 [8] = relu(W2·h1 + b2)",
                     "h2 [8] dropout", "y [3] linear · output"]),
    "tied_autoencoder": ({"unit input": 8, "unit node": 3, "unit output": 8}, {"B1": 3, "B2": 8}, {"weight": 59},
                         ["x [8] input", "code [3] sigmoid", "xhat [8] sigmoid · output"]),
    # layer_norm: each of its 8 units wired to all 8 of r (64 wires)
    "layer_norm_residual": ({"unit input": 8, "unit node": 24, "unit op": 8, "unit output": 8},
                            {"B1": 16, "B2": 8, "B3": 8}, {"weight": 296, "wire": 64, "skip": 8},
                            ["x [8] input", "h [16] relu", "r [8] linear", "t1 [8] = layer_norm(r)",
                             "y [8] linear · output"]),
    # mu is subtracted (fed by B1, its edges fixed); sd is a column of fixed units the division reads
    "input_scaled": ({"unit input": 3, "unit fixed": 3, "unit op": 3, "unit node": 8, "unit output": 1},
                     {"B1": 3, "B2": 5, "B3": 1}, {"weight": 26, "fixed": 9, "wire": 3},
                     ["x [3] input", "sd [3] fixed value", "t1 [3] = x - mu", "z [3] = t1/sd", "h [5] tanh",
                      "y linear · output"]),
    "residual": ({"unit input": 4, "unit node": 24, "unit op": 8, "unit output": 3}, {"B1": 8, "B2": 3},
                 {"weight": 143, "wire": 16, "skip": 8, "fixed": 8},
                 ["u [4] input", "r [8] relu", "t1 [8] = sigmoid(G·r) (in gate)", "t2 [8] = t1*r (in gate)",
                  "s [8] linear", "out [3] log_softmax over the layer · output"]),
    # sequences: prev(h) is no layer; its edges come from h's units, delayed (class "… recurrent")
    "elman": ({"unit input": 3, "unit output": 8}, {"B1": 16}, {"weight": 40, "weight recurrent": 64},
              ["x [T, 3] input", "h [8] tanh · output"]),
    "gru": ({"unit input": 3, "unit node": 40, "unit op": 24, "unit output": 8}, {"B1": 40, "B3": 8},
            {"weight": 120, "fixed": 32, "wire": 40, "skip": 8, "weight recurrent": 192, "wire recurrent": 8},
            ["x [T, 3] input", "r [8] sigmoid", "z [8] sigmoid", "t1 [8] = W_hn·prev(h) + b_hn", "t2 [8] = r*t1",
             "t3 [8] = 1 - z", "t5 [8] = z*prev(h)", "n [8] tanh", "t4 [8] = t3*n", "h [8] linear · output"]),
    "lstm": ({"unit input": 3, "unit node": 48, "unit op": 16, "unit output": 8}, {"B1": 64},
             {"weight": 160, "wire": 40, "fixed": 24, "wire recurrent": 8, "weight recurrent": 256},
             ["x [T, 3] input", "i [8] sigmoid", "f [8] sigmoid", "g [8] tanh", "o [8] sigmoid", "t1 [8] = f*prev(c)",
              "t2 [8] = i*g", "c [8] linear", "t3 [8] = tanh(c)", "h [8] = o*t3 · output"]),
    # blocks: each call's layers (named by the block's author) in a cluster, written after the top level's
    "residual_blocks": ({"unit input": 4, "unit node": 80, "unit output": 1},
                        {"B1": 8, "B2": 16, "B3": 8, "B4": 16, "B5": 8, "B6": 16, "B7": 8, "B8": 1},
                        {"weight": 889, "skip": 24},
                        ["x [4] input", "h0 [8] tanh", "y [1] linear · output", "h [16] relu", "y [8] linear",
                         "h [16] relu", "y [8] linear", "h [16] relu", "y [8] linear"]),
    "autoencoder": ({"unit input": 8, "unit node": 10, "unit output": 8}, {"B1": 4, "B2": 2, "B3": 4, "B4": 8},
                    {"weight": 98}, ["x [8] input", "h [4] tanh", "code [2] linear", "h [4] tanh",
                                     "y [8] linear · output"]),
    "encoder": ({"unit input": 8, "unit node": 4, "unit output": 2}, {"B1": 4, "B2": 2}, {"weight": 46},
                ["x [8] input", "h [4] tanh", "code [2] linear · output"]),
    "decoder": ({"unit input": 2, "unit node": 4, "unit output": 8}, {"B1": 4, "B2": 8}, {"weight": 52},
                ["code [2] input", "h [4] tanh", "y [8] linear · output"]),
}


def test_every_bundled_spec_has_a_row():
    assert sorted(p.stem for p in SPECS.glob("*.spec")) == sorted(NEURONS)


def test_a_constant_term_is_drawn_as_its_number_not_as_a_bias_node():
    _, nodes, edges = read_back(draw(specc.graph("input x[2]\ng[3] = sigmoid(W·x + b)\ny[3] = 1 - g\n")))
    assert [plain(n["label"]) for n in of_class(nodes, "bias")] == ["B1"]  # b's bias node only
    constant = of_class(nodes, "constant")
    assert [plain(n["label"]) for n in constant] == ["1"]
    assert sum(e["tail"] is constant[0] for e in edges) == 3
    assert any("a number of the spec" in line for line in draw(specc.graph("input x\ny = 2 + x*a\n")).source
               .splitlines() if "label" in line)


def test_skip_connections_stand_apart_from_the_mesh():
    _, _, edges = read_back(draw(SPECS / "layer_norm_residual.spec"))
    skips = of_class(edges, "skip")
    assert len(skips) == 8 and {e["color"] for e in skips} == {SKIP}
    assert all(plain(e["head"]["label"]).startswith("r") and plain(e["tail"]["label"]).startswith("x")
               for e in skips)  # x → r, past h
    _, _, plain_net = read_back(draw(SPECS / "two_io.spec"))
    assert not of_class(plain_net, "skip")


@pytest.mark.parametrize("stem", sorted(NEURONS))
def test_neuron_view_structure(stem):
    units, biases, edge_counts, captions = NEURONS[stem]
    _, nodes, edges = read_back(draw(SPECS / f"{stem}.spec", view="neurons"))
    assert Counter(n["class"] for n in of_class(nodes, "unit")) == Counter(units)
    bias_nodes = of_class(nodes, "bias")
    assert {plain(b["label"]): sum(e["tail"] is b for e in edges) for b in bias_nodes} == biases
    assert Counter(e["class"] for e in edges) == Counter(edge_counts)
    assert [plain(n["label"]) for n in of_class(nodes, "caption")] == captions


@pytest.mark.parametrize("stem", ["sine_nnet", "curve_tanh", "xor", "two_io", "residual", "cubic"])
def test_one_edge_per_weight(stem):
    """Without shared parameters every scalar of every parameter is exactly one edge (its tooltip)."""
    graph = specc.graph(SPECS / f"{stem}.spec")
    expected = set()
    for name in graph.graph["params"]:
        shape = graph.nodes[name]["shape"]
        for index in torch.ones(shape).nonzero().tolist() if shape else [[]]:
            expected.add(name + (f"[{','.join(str(i + 1) for i in index)}]" if index else ""))
    _, _, edges = read_back(draw(SPECS / f"{stem}.spec"))
    tooltips = [e["tooltip"] for e in of_class(edges, "weight")]
    assert sorted(tooltips) == sorted(expected)


def test_units_keep_their_order_and_inputs_are_left():
    _, nodes, _ = read_back(draw(SPECS / "two_io.spec"))
    where = {n["tooltip"].removeprefix("bias node ").split(":")[0]:
             tuple(float(v) for v in n["pos"].rstrip("!").split(",")) for n in nodes if "tooltip" in n}
    hidden = [where[f"h{i}"] for i in range(1, 11)]
    assert [y for _, y in hidden] == sorted((y for _, y in hidden), reverse=True)  # h1 on top
    assert where["in1_1"][0] < where["h1"][0] < where["out1_1"][0]
    assert where["B1"][1] > max(y for x, y in where.values() if x == where["B1"][0] and y != where["B1"][1])


def test_no_bias_spec_has_no_bias_node_and_hide_bias_removes_them():
    _, nodes, _ = read_back(draw(SPECS / "xor.spec"))
    assert of_class(nodes, "bias") == []
    _, nodes, edges = read_back(draw(SPECS / "sine_nnet.spec", show_bias=False))
    assert of_class(nodes, "bias") == [] and len(edges) == 8


def test_wide_layers_fall_back_to_the_layers_view_unless_asked():
    spec = "input x[40]\nh[40] = tanh(W·x)\ny[1] = V·h"
    assert "(layers view)" in plain(read_back(draw(spec))[0]["label"])
    assert "(neurons view)" in plain(read_back(draw(spec, max_units=40))[0]["label"])
    assert len(of_class(read_back(draw(spec, view="neurons"))[1], "unit")) == 40 + 40 + 1


# ---------------------------------------------------------------- unit reading of other constructs
READINGS = [  # spec, {column name: (activation, op, [(term kind, param, const)])}, connection count
    ("input x[2]\ny = -x", {"y": (None, None, [("scale", None, -1.0)])}, 2),
    ("input x[2]\ny = x/2", {"y": (None, None, [("scale", None, 0.5)])}, 2),
    ("input x[3]\nparam w[3]\ny = w·x", {"y": (None, None, [("matrix", "w", 1.0)])}, 3),
    ("input x[2]\ny[2] = 2*x + 1", {"y": (None, None, [("scale", None, 2.0), ("bias", None, 1.0)])}, 4),
    ("input x[2]\nparam a\ny = a*x", {"y": (None, None, [("scale", "a", 1.0)])}, 2),
    ("input x[2]\nparam W[2,2]\ny = -W·x", {"y": (None, None, [("matrix", "W", -1.0)])}, 4),
    ("input x\ny = x", {"y": ("identity", None, [("scale", None, 1.0)])}, 1),
    ("input x[2]\ny = exp(x) * x", {"t1": ("exp", None, [("scale", None, 1.0)]), "y": (None, "mul", [])}, 6),
    ("input x[2]\ny = a*b*x", {"a": (None, None, []), "t1": (None, "mul", []), "y": (None, "mul", [])}, 8),
    ("input x[2]\nh[3] = tanh(W·x)\ny[3] = W2·(h + c)",  # a product of a sum: the sum gets units of its own
     {"t1": (None, None, [("scale", None, 1.0), ("bias", "c", 1.0)]), "y": (None, None, [("matrix", "W2", 1.0)])},
     6 + 3 + 3 + 9),
]


@pytest.mark.parametrize("spec, expected, count", READINGS)
def test_unit_reading(spec, expected, count):
    net = read_units(specc.graph(spec))
    columns = {c.name: c for c in net.columns.values()}
    for name, (activation, op, terms) in expected.items():
        column = columns[name]
        assert (column.activation, column.op) == (activation, op)
        assert [(t.kind, t.param, t.const) for t in column.terms] == terms
    assert len(net.connections()) == count
    read_back(draw(spec))  # and every such spec draws


def test_matrix_expressions_are_drawn_as_the_graph_with_a_note():
    spec = "input x[2]\nparam W[2,2], V[2,2]\ny = (W+V)·x"
    with pytest.raises(NotDrawable):
        read_units(specc.graph(spec))
    data, nodes, _ = read_back(draw(spec, view="neurons"))
    assert "(graph view)" in plain(data["label"]) and "W+V" in plain(data["label"])
    assert len(nodes) == len(specc.graph(spec))


# ---------------------------------------------------------------- weights: colour, width, labels
SINE_WEIGHTS = {"W1": torch.tensor([[1.0], [-2.0], [0.5], [0.0]]), "b1": torch.tensor([0.25, -0.25, 4.0, -1.0]),
                "W2": torch.tensor([[-0.5, 3.0, -3.0, 2.0]]), "b2": torch.tensor([0.125])}


def weight_edges(digraph) -> dict[str, dict]:
    return {e["tooltip"].split(" = ")[0]: e for e in of_class(read_back(digraph)[2], "weight")}


def test_colour_is_the_sign_and_width_the_rescaled_magnitude():
    edges = weight_edges(draw(SINE_WEIGHTS and SPECS / "sine_nnet.spec", weights=SINE_WEIGHTS))
    assert edges["W1[1,1]"]["color"] == POS and edges["W1[2,1]"]["color"] == NEG
    assert edges["W1[4,1]"]["color"] == "#8a8a8a"  # exactly zero: neither sign
    widths = {ref: float(e["penwidth"]) for ref, e in edges.items()}
    assert widths["W1[4,1]"] == 0.6 and widths["b1[3]"] == 5.0  # |w| from 0 to 4 onto the width range
    assert widths["W2[1,2]"] == widths["W2[1,3]"] == pytest.approx(0.6 + 4.4 * 3 / 4, abs=0.01)
    assert edges["W2[1,3]"]["tooltip"] == "W2[1,3] = -3"


def test_style_options_reach_the_edges():
    edges = weight_edges(draw(SPECS / "sine_nnet.spec", weights=SINE_WEIGHTS, pos_color="blue",
                              neg_color="#aa0000", width_range=(1, 2), weight_labels=True))
    assert edges["W1[1,1]"]["color"] == "blue" and edges["W2[1,1]"]["color"] == "#aa0000"
    assert {float(e["penwidth"]) for e in edges.values()} <= {x / 100 for x in range(100, 201)}
    assert plain(edges["W2[1,1]"]["label"]) == "-0.50"


def test_without_weights_edges_are_neutral():
    edges = weight_edges(draw(SPECS / "sine_nnet.spec"))
    assert {(e["color"], e["penwidth"]) for e in edges.values()} == {("#8a8a8a", "1")}


def test_module_file_and_mapping_give_the_same_picture(tmp_path):
    module = specc.load(SPECS / "sine_nnet.spec")
    with torch.no_grad():
        for name, param in module.named_parameters():
            param.copy_(SINE_WEIGHTS[name])
    specc.save_weights(module, tmp_path / "w.safetensors")
    from_module = draw(module).source
    assert from_module == draw(SPECS / "sine_nnet.spec", weights=SINE_WEIGHTS).source.replace(
        str(SPECS / "sine_nnet.spec"), module.spec_file)
    assert draw(module, weights=tmp_path / "w.safetensors").source == from_module


@pytest.mark.parametrize("weights, message", [
    ({"W1": torch.zeros(4, 1)}, "no value for parameter 'b1'"),
    (dict(SINE_WEIGHTS, W1=torch.zeros(1, 4)), "has shape [1, 4] in the file but [4, 1] in the spec"),
    (dict(SINE_WEIGHTS, extra=torch.zeros(1)), "'extra' is not a parameter"),
])
def test_weights_that_do_not_fit_are_refused(weights, message):
    with pytest.raises(DataError, match=re.escape(message)):
        draw(SPECS / "sine_nnet.spec", weights=weights)


def test_shared_parameters_are_marked_and_drawn_once():
    spec = "input x[3]\nh = tanh(W·x + b)\ny = W·h"
    data, _, edges = read_back(draw(spec))
    shared = [e for e in of_class(edges, "weight") if e["tooltip"].startswith("W[")]
    assert len(shared) == 18 and {e["style"] for e in shared} == {"dashed"}
    assert "the same parameter on several edges (W)" in plain(data["label"])
    _, nodes, edges = read_back(draw(spec, view="layers"))
    (w,) = [n for n in of_class(nodes, "param") if plain(n["label"]).startswith("W ")]
    assert sum(e["tail"] is w for e in edges) == 2


def test_legendre_scaled_parameter_edges_say_their_factor():
    edges = weight_edges(draw(SPECS / "legendre.spec"))
    assert sorted(plain(e["label"]) for e in edges.values() if e.get("label")) == ["-1.5·b", "2.5·b"]


# ---------------------------------------------------------------- layers and graph views
def test_layers_view_of_two_io():
    _, nodes, edges = read_back(draw(SPECS / "two_io.spec", view="layers"))
    assert Counter(n["class"] for n in nodes) == Counter(
        {"layer input": 2, "layer node": 1, "layer output": 2, "param": 7, "junction": 4})
    labels = sorted(plain(n["label"]) for n in of_class(nodes, "param"))
    assert labels == ["V1 [10×5]", "V2 [3×10]", "W1 [10×5]", "W2 [3×10]", "b [10]", "b_v [3]", "b_w [3]"]
    assert Counter(e["class"] for e in edges) == Counter({"data": 8, "weight": 4, "bias": 3})


def test_layers_view_shows_value_ranges_with_weights():
    _, nodes, _ = read_back(draw(SPECS / "sine_nnet.spec", view="layers", weights=SINE_WEIGHTS))
    assert "W2 [1×4] -3 … 3" in [plain(n["label"]) for n in of_class(nodes, "param")]


@pytest.mark.parametrize("stem", sorted(NEURONS))
def test_graph_view_is_the_ir(stem):
    graph = specc.graph(SPECS / f"{stem}.spec")
    _, nodes, edges = read_back(draw(SPECS / f"{stem}.spec", view="graph"))
    nodes = [n for n in nodes if n.get("class") != "block"]  # Graphviz lists clusters (block calls) too
    data = [e for e in edges if e["class"] != "recurrent"]  # h → prev(h), drawn delayed: no edge in the IR
    assert len(nodes) == len(graph) and len(data) == len(graph.edges)
    assert len(edges) - len(data) == len(graph.graph.get("recurrent", ()))
    ops = [plain(n["label"]) for n in nodes if n["class"] == "op"]
    assert ops and all(re.search(r"line \d+", label) for label in ops)


# ---------------------------------------------------------------- escaping
HOSTILE = ['a"b\\" ]; } digraph x { n0 -> n1 }', "<B>bold</B> &amp; </TABLE></TD>", "\\N \\G \\L \\", "end\\",
           "tab\there, line\nbreak", "ctrl\x00\x07\x1b[0m chars", "<<>>", "日本語 · ∑"]


@pytest.mark.parametrize("title", HOSTILE)
@pytest.mark.parametrize("view", ["neurons", "layers", "graph"])
def test_hostile_titles_cannot_break_the_dot_text(title, view):
    digraph = draw(SPECS / "sine_nnet.spec", view=view, title=title)
    data, nodes, _ = read_back(digraph)
    assert len(nodes) == {"neurons": 11, "layers": 9, "graph": 11}[view]
    svg = subprocess.run(["dot", "-Tsvg"], input=digraph.source.encode(), capture_output=True, check=True).stdout
    said = " ".join(html.unescape(t) for t in re.findall(rb"<text[^>]*>(.*?)</text>", svg, re.S)
                    for t in [t.decode()])
    expected = " ".join("".join(ch for ch in title if ch.isprintable() or ch in "\t\n").split())
    assert expected in " ".join(said.replace("\xa0", " ").split())


@pytest.mark.parametrize("raw, escaped", [
    ("a<b>&c", "a&lt;b&gt;&amp;c"), ('"q"', "&quot;q&quot;"), ("x\\G", "x\\\\G"), ("one\ntwo", "one<BR/>two"),
    ("bell\x07", "bell"), ("W1·x", "W1·x"),
])
def test_text_escaping(raw, escaped):
    assert text(raw) == escaped


def test_names_that_are_dot_keywords_or_look_like_ids():
    spec = "input node[2]\nedge[3] = tanh(graph·node + subgraph)\nB1[1] = strict·edge + n0"
    _, nodes, edges = read_back(draw(spec))
    assert Counter(n["class"] for n in nodes) == Counter(
        {"unit input": 2, "unit node": 3, "unit output": 1, "bias": 2, "caption": 3})
    assert [plain(n["label"]) for n in of_class(nodes, "bias")] == ["B1", "B2"] and len(edges) == 6 + 3 + 3 + 1


# ---------------------------------------------------------------- output files
def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_real_rendering_to_svg_png_and_pdf(tmp_path):
    digraph = draw(SPECS / "sine_nnet.spec", weights=SINE_WEIGHTS)
    root = ET.parse(write_drawing(digraph, tmp_path / "net.svg")).getroot()
    classes = Counter(g.get("class") for g in root.iter("{http://www.w3.org/2000/svg}g"))
    assert classes["node unit node"] == 4 and classes["node bias"] == 2 and classes["edge weight"] == 13
    small = png_size(write_drawing(digraph, tmp_path / "net.png").read_bytes())
    large = png_size(write_drawing(digraph, tmp_path / "big.png", dpi=192).read_bytes())
    assert large[0] == pytest.approx(2 * small[0], rel=0.05)
    assert write_drawing(digraph, tmp_path / "net.pdf").read_bytes()[:5] == b"%PDF-"


def test_dot_text_needs_no_graphviz_but_pictures_say_how_to_install_it(tmp_path, monkeypatch):
    digraph = draw(SPECS / "residual.spec")
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` to be found
    assert write_drawing(digraph, tmp_path / "net.dot").read_text(encoding="utf-8") == digraph.source
    with pytest.raises(SpecError, match=r"apt-get install graphviz"):
        write_drawing(digraph, tmp_path / "net.svg")
    assert not (tmp_path / "net.svg").exists()


def test_unknown_extension_is_refused(tmp_path):
    with pytest.raises(SpecError, match=r"unsupported format '\.jpeg' \(specc draws \.dot, \.gv, \.pdf, \.png or \.svg\)"):
        write_drawing(draw(SPECS / "xor.spec"), tmp_path / "net.jpeg")


@pytest.mark.parametrize("options, message", [
    (dict(view="neuron"), "unknown view"), (dict(pos_color="red; evil"), "is not a colour"),
    (dict(rankdir="LEFT"), "rankdir must be"), (dict(width_range=(3, 1)), "width_range must be"),
])
def test_bad_options(options, message):
    with pytest.raises(SpecError, match=message):
        draw(SPECS / "xor.spec", **options)


# ---------------------------------------------------------------- nnet-style summary and the CLI
def test_connections_in_nnet_summary_style():
    text_out = connections_text(SPECS / "sine_nnet.spec", weights=SINE_WEIGHTS)
    lines = text_out.splitlines()
    assert lines[1] == "h = logistic(W1·x + b1)"
    assert lines[2].split() == ["B1->h1", "x->h1"] and lines[3].split() == ["0.25", "1"]
    assert lines[-3] == "y = W2·h + b2"
    assert lines[-2].split() == ["B2->y", "h1->y", "h2->y", "h3->y", "h4->y"]
    assert lines[-1].split() == ["0.125", "-0.5", "3", "-3", "2"]
    assert len(connections_list(SPECS / "sine_nnet.spec", weights=SINE_WEIGHTS)) == 13


def test_connections_mark_what_the_spec_fixes():
    net = read_units(specc.graph(SPECS / "residual.spec"))
    values = {n: p.detach().double() for n, p in specc.load(SPECS / "residual.spec").named_parameters()}
    summary = format_connections(net, values)
    assert "s = gate(G·r, r) + r" in summary and "t2_1->s" in summary and "(1)" in summary
    assert max(len(line) for line in summary.splitlines()[1:]) <= 100


def test_cli_draw_and_inspect(tmp_path, capsys):
    weights = tmp_path / "w.safetensors"
    module = specc.load(SPECS / "sine_nnet.spec")
    specc.save_weights(module, weights)
    assert main(["draw", str(SPECS / "sine_nnet.spec"), "-o", str(tmp_path / "n.svg"), "--weights", str(weights),
                 "--rankdir", "TB", "--title", "t", "--width-range", "1", "3", "--weight-labels"]) == 0
    assert ET.parse(tmp_path / "n.svg").getroot().tag.endswith("svg")
    assert main(["draw", str(SPECS / "two_io.spec"), "-o", str(tmp_path / "l.dot"), "--view", "layers"]) == 0
    assert "junction" in (tmp_path / "l.dot").read_text()
    capsys.readouterr()
    assert main(["inspect", str(SPECS / "sine_nnet.spec"), "--weights", str(weights)]) == 0
    assert "B1->h1" in capsys.readouterr().out
    assert main(["inspect", str(SPECS / "sine_nnet.spec"), "--weights", str(weights), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["connections"]) == 13
    assert main(["draw", str(SPECS / "xor.spec"), "-o", str(tmp_path / "x.png"), "--weights", str(weights)]) == 1
    assert "has shape [4, 1] in the file but [5, 2] in the spec" in capsys.readouterr().err


def test_cli_draw_without_graphviz(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["draw", str(SPECS / "xor.spec"), "-o", str(tmp_path / "x.png")]) == 1
    assert "apt-get install graphviz" in capsys.readouterr().err
    assert main(["draw", str(SPECS / "xor.spec"), "-o", str(tmp_path / "x.dot")]) == 0


@pytest.mark.parametrize("has_dot, suffix", [(True, ".svg"), (False, ".dot")])
def test_demo_draws_every_spec(tmp_path, monkeypatch, has_dot, suffix):
    if not has_dot:
        monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["demo", "--specs", str(SPECS), "--out", str(tmp_path / "out")]) == 0
    drawn = sorted(p.name for p in (tmp_path / "out").glob("*" + suffix))
    assert drawn == sorted(stem + suffix for stem in NEURONS)


def test_operation_layers_say_what_they_compute():
    _, nodes, _ = read_back(draw("input x[2]\ny = a*b*x"))
    assert [plain(n["label"]) for n in of_class(nodes, "caption")] == [
        "x [2] input", "a [2] parameter", "b [2] parameter", "t1 [2] = a*b", "y [2] = t1*x · output"]
    assert len(of_class(nodes, "unit param")) == 4
