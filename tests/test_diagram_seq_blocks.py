"""Drawing sequences (recurrent edges, marked t−1) and blocks (clusters; --collapse boxes, × N).

Structure is checked on the DOT text itself, so these tests need no Graphviz; the last ones render
with ``dot`` when it is installed.
"""
from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

import specc
from specc.cli import main
from specc.diagram import connections_text, draw, write_drawing
from specc.diagram_calls import chains

SPECS = Path(__file__).resolve().parents[1] / "specs"
EDGE = re.compile(r"^\t(n\d+) -> (n\d+) \[(.*)\]$", re.M)
NODE = re.compile(r"^\t+(n\d+) \[(.*)\]$", re.M)


def edges(dot) -> list[tuple[str, str, str]]:
    return EDGE.findall(dot.source)


def classed(items, word: str) -> list:
    return [item for item in items if re.search(rf'class="?[^"\]]*\b{word}\b', item[-1])]


def labels(dot) -> dict[str, str]:
    """Node id → its label as plain text."""
    found = {}
    for node, attrs in NODE.findall(dot.source):
        label = re.search(r"label=<(.*?)>(?= \w+=|$)", attrs)
        found[node] = re.sub(r"<[^>]+>", " ", label.group(1)) if label else ""
    return {node: " ".join(text.split()) for node, text in found.items()}


def clusters(dot) -> list[str]:
    return re.findall(r"subgraph cluster_\d+ \{\n[^\n]* label=<<B>(.*?)</B>>", dot.source)


# ---------------------------------------------------------------- sequences
# spec: (recurrent weight edges in the neuron view = units² per U·prev(h)), loop edges in the layers view
RECURRENT = {"elman": (64, 1), "gru": (3 * 64 + 8, 4), "lstm": (4 * 64 + 8, 5)}


@pytest.mark.parametrize("stem", sorted(RECURRENT))
def test_recurrent_edges_are_drawn_delayed_in_the_neuron_view(stem):
    dot = draw(SPECS / f"{stem}.spec", view="neurons")
    delayed = classed(edges(dot), "recurrent")
    assert len(delayed) == RECURRENT[stem][0]
    assert all("style=dashed" in attrs and "t−1" in attrs for *_, attrs in delayed)  # tooltip t−1: U[i,j]
    assert sum("label=<<FONT" in attrs for *_, attrs in delayed) >= 1  # the t−1 mark, once per pair of layers
    names = labels(dot)
    assert {re.sub(r"\s.*", "", names[tail]) for tail, _, _ in delayed} <= {"h 1", "h", "c"} | {
        names[tail] for tail, _, _ in delayed}  # drawn from the units of h (or c), not from a prev layer
    assert not any("prev(" in names[node] and "=" not in names[node] for node in names)  # no prev layer
    assert "x [T, 3]" in dot.source.replace("</B> ", " ").replace("<B>", "")  # a sequence input


def test_elman_recurrent_edges_go_from_every_unit_of_h_to_every_unit_of_h():
    dot = draw(SPECS / "elman.spec")
    names = labels(dot)
    pairs = {(names[t], names[h]) for t, h, _ in classed(edges(dot), "recurrent")}
    units = {f"h {i}" for i in range(1, 9)}
    assert pairs == {(a, b) for a in units for b in units}
    assert "tailport=e" in dot.source  # loops on the far side of the layer (and no crash in Graphviz 2.43)
    assert "a recurrent connection, from the previous time step (at the first step: h: 0)" in dot.source


def test_weights_colour_recurrent_edges_like_any_other():
    model = specc.load(SPECS / "elman.spec")
    dot = draw(model)
    colours = Counter(re.search(r'color="([^"]+)"', a).group(1) for *_, a in classed(edges(dot), "recurrent"))
    assert set(colours) <= {"#007700", "#ff7777", "#8a8a8a"} and len(colours) >= 2
    widths = {re.search(r"penwidth=([\d.]+)", a).group(1) for *_, a in classed(edges(dot), "recurrent")}
    assert len(widths) > 5  # |w| scales them


@pytest.mark.parametrize("stem", sorted(RECURRENT))
def test_layers_view_draws_a_loop_edge(stem):
    dot = draw(SPECS / f"{stem}.spec", view="layers")
    loops = classed(edges(dot), "recurrent")
    assert len(loops) == RECURRENT[stem][1]  # one per use of prev(…)
    names = labels(dot)
    assert all("t−1" in attrs and "constraint=false" in attrs for *_, attrs in loops)
    assert {names[tail].split()[0] for tail, _, _ in loops} <= {"h", "c"}
    assert not any(label.startswith("prev(") for label in names.values())


def test_graph_view_draws_prev_nodes_with_a_delayed_edge_from_their_node():
    graph = specc.graph(SPECS / "gru.spec")
    dot = draw(graph, view="graph")
    delayed = classed(edges(dot), "recurrent")
    assert len(delayed) == len(graph.graph["recurrent"]) == 4
    assert all("t−1" in attrs and "style=dashed" in attrs for *_, attrs in delayed)
    assert "input <B>x</B> [T, 3]" in dot.source


@pytest.mark.parametrize("source, start", [
    ("input x[T, 2]\nparam h0[3]\nh[3] = tanh(W·x + U·prev(h, h0) + b)\noutput h\n", "h: h0"),
    ("input x[T, 2]\nh[4] = tanh(W·x + U·prev(y) + b)\ny[2] = V·h + c\noutput y\n", "y: 0"),  # Jordan
    ("input x[T]\nh[3] = tanh(w*x + U·prev(h))\noutput h\n", "h: 0"),
    ("input x[T, 3]\nh[4] = tanh(W·x + U·prev(h) + b)\ny[2] = V·last(h) + c\noutput y\n", "h: 0"),
])
def test_other_recurrences_draw_in_every_view(source, start):
    for view in ("neurons", "layers", "graph"):
        dot = draw(source, view=view)
        assert classed(edges(dot), "recurrent") and f"(at the first step: {start})" in dot.source


def test_jordan_edges_go_back_from_the_output_layer():
    dot = draw("input x[T, 2]\nh[4] = tanh(W·x + U·prev(y) + b)\ny[2] = V·h + c\noutput y\n")
    names = labels(dot)
    pairs = {(names[t], names[h]) for t, h, _ in classed(edges(dot), "recurrent")}
    assert pairs == {(f"y {j}", f"h {i}") for j in (1, 2) for i in (1, 2, 3, 4)}
    assert "tailport" not in dot.source  # between two layers: no loop ports needed


def test_connections_text_says_which_inputs_are_delayed():
    text = connections_text(SPECS / "elman.spec", weights=dict(specc.load(SPECS / "elman.spec")
                                                                           .state_dict()))
    assert "h1(t-1)->h2" in text and "x1->h2" in text and "h1->h2" not in text


# ---------------------------------------------------------------- blocks
@pytest.mark.parametrize("view", ["neurons", "layers", "graph"])
def test_each_call_is_a_labelled_cluster(view):
    assert clusters(draw(SPECS / "residual_blocks.spec", view=view)) == ["r1: res", "r2: res", "r3: res"]
    assert clusters(draw(SPECS / "autoencoder.spec", view=view)) == ["enc: encoder.spec", "dec: decoder.spec"]


def test_cluster_members_are_the_calls_own_layers_and_parameters():
    dot = draw(SPECS / "residual_blocks.spec", view="layers")
    bodies = re.findall(r"subgraph cluster_\d+ \{(.*?)\n\t\}", dot.source, re.S)
    assert len(bodies) == 3
    for k, body in enumerate(bodies, 1):
        said = " ".join(re.sub(r"<[^>]+>", " ", body).split())
        assert all(f"r{k}.{p}" in said for p in ("W1", "b1", "W2", "b2")) and "h [16]" in said
        assert "x [4]" not in said and "h0" not in said and "Wout" not in said


def test_neuron_view_puts_units_inside_clusters():
    dot = draw(SPECS / "autoencoder.spec", view="neurons")
    bodies = re.findall(r"subgraph cluster_\d+ \{(.*?)\n\t\}", dot.source, re.S)
    units = [len(re.findall(r'class="unit', body)) for body in bodies]
    assert units == [4 + 2, 4 + 8]  # enc: h, code; dec: h, y (the spec's output, named as it names it)
    assert "x<SUB>1</SUB>" not in "".join(bodies)


def test_a_call_called_twice_has_two_clusters_and_shares_its_parameters():
    source = "block res {\n    input u[4]\n    y = u + W·u\n}\ninput x[4]\nr1 = use res\na = r1(x)\nb = r1(a)\n"
    dot = draw(source, view="layers")
    assert clusters(dot) == ["r1: res (call 1 of 2)", "r1: res (call 2 of 2)"]
    assert dot.source.count("<B>r1.W</B>") == 1


def test_collapse_draws_three_identical_blocks_as_one_box():
    graph = specc.graph(SPECS / "residual_blocks.spec")
    assert [chain.calls for chain in chains(graph)] == [["c1", "c2", "c3"]]
    for view in ("layers", "graph", "neurons"):
        dot = draw(graph, view=view, collapse=True)
        boxes = [label for node, label in labels(dot).items() if node in dict(NODE.findall(dot.source))
                 and 'class=block' in dict(NODE.findall(dot.source))[node]]
        assert boxes == ["r1…r3: res × 3 u [8] → y [8]"], view
        assert "cluster_" not in dot.source and "r2.W1" not in dot.source and "h [16]" not in dot.source
    layers = labels(draw(graph, collapse=True))  # the layers view by default
    assert {"x [4] input", "h0 [8] tanh", "y [1] linear · output"} <= set(layers.values())


def test_collapse_draws_one_box_per_call_and_keeps_named_values_between():
    dot = draw(SPECS / "autoencoder.spec", collapse=True)
    names = labels(dot)
    assert sorted(n for n in names.values() if "→" in n) == ["dec: decoder.spec code [2] → y [8]",
                                                              "enc: encoder.spec x [8] → code [2]"]
    assert {"x [8] input", "code [2] identity", "y [8] identity · output"} <= set(names.values())
    ends = Counter((names[t].split()[0], names[h].split()[0]) for t, h, _ in edges(dot))
    assert ends == Counter({("x", "enc:"): 1, ("enc:", "code"): 1, ("code", "dec:"): 1, ("dec:", "y"): 1})


def test_identical_calls_that_do_not_feed_each_other_stay_apart():
    source = ("block lin {\n    input u[3]\n    y[3] = W·u\n}\ninput x[3]\na = use lin\nb = use lin\n"
              "p = a(x)\nq = b(x)\ns = p + q\n")
    dot = draw(source, collapse=True)
    assert sorted(n for n in labels(dot).values() if "→" in n) == ["a: lin u [3] → y [3]", "b: lin u [3] → y [3]"]


def test_without_blocks_collapse_changes_nothing():
    for stem in ("two_io", "elman"):
        for view in ("neurons", "layers", "graph"):
            assert draw(SPECS / f"{stem}.spec", view=view, collapse=True).source == \
                draw(SPECS / f"{stem}.spec", view=view).source


def test_cli_collapse(tmp_path):
    out = tmp_path / "r.dot"
    assert main(["draw", str(SPECS / "residual_blocks.spec"), "--collapse", "-o", str(out)]) == 0
    assert "× 3" in out.read_text() and "(layers view)" in out.read_text()


# ---------------------------------------------------------------- rendering
@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
@pytest.mark.parametrize("stem, options", [("elman", {}), ("gru", {}), ("lstm", {"view": "layers"}),
                                           ("residual_blocks", {"view": "layers"}),
                                           ("residual_blocks", {"collapse": True}),
                                           ("autoencoder", {"view": "neurons"})])
def test_rendering_with_graphviz(tmp_path, stem, options):
    svg = write_drawing(draw(SPECS / f"{stem}.spec", **options), tmp_path / f"{stem}.svg").read_text()
    assert svg.count('class="edge') > 5
    if "collapse" in options:
        assert "× 3" in svg
    elif stem in RECURRENT:
        assert 'class="edge weight recurrent"' in svg or 'class="edge data recurrent"' in svg
    else:
        assert 'class="cluster' in svg


def test_a_picture_of_many_edges_is_the_layers_view_by_default():
    assert "(layers view)" in draw(SPECS / "residual_blocks.spec").source  # 913 edges as neurons
    assert "(neurons view)" in draw(SPECS / "residual_blocks.spec", view="neurons").source
    assert "(neurons view)" in draw(SPECS / "lstm.spec").source  # 488
