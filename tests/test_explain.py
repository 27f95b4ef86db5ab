"""`specc explain SPEC [NAME]`: each size and the chain of statements that fixed it (specc/explain.py)."""
import json

import pytest

import specc
from conftest import ROOT, SPECS
from specc.cli import main
from specc.explain import explain, format_explanation
from specc.shapes import Unifier

TWO_IO = """input in1[5], in2[5]
g = relu
h[10] = g(W1·in1 + V1·in2 + b)
out1[3] = relu(W2·h + b_w)
out2[3] = relu(V2·h + b_v)
"""


def lines(text: str, name: str | None = None) -> list[str]:
    return format_explanation(explain(text, "s.spec", name)[1]).splitlines()


def test_every_name_with_where_its_sizes_came_from():
    assert lines(TWO_IO) == [
        "in1 [5]: 5 from 'input in1[5]' (1:7)",
        "in2 [5]: 5 from 'input in2[5]' (1:15)",
        "W1 [10, 5]: 10 from 'h[10]' (3:1) through 'W1·in1' (3:11); 5 from 'input in1[5]' (1:7) through 'W1·in1' (3:11)",
        "V1 [10, 5]: 10 from 'h[10]' (3:1) through 'W1·in1 + V1·in2' (3:11), 'V1·in2' (3:20); "
        "5 from 'input in2[5]' (1:15) through 'V1·in2' (3:20)",
        "b [10]: 10 from 'h[10]' (3:1) through 'W1·in1 + V1·in2 + b' (3:11)",
        "W2 [3, 10]: 3 from 'out1[3]' (4:1) through 'W2·h' (4:16); 10 from 'h[10]' (3:1) through 'W2·h' (4:16)",
        "b_w [3]: 3 from 'out1[3]' (4:1) through 'W2·h + b_w' (4:16)",
        "V2 [3, 10]: 3 from 'out2[3]' (5:1) through 'V2·h' (5:16); 10 from 'h[10]' (3:1) through 'V2·h' (5:16)",
        "b_v [3]: 3 from 'out2[3]' (5:1) through 'V2·h + b_v' (5:16)",
        "h [10]: 10 from 'h[10]' (3:1)",
        "out1 [3]: 3 from 'out1[3]' (4:1)",
        "out2 [3]: 3 from 'out2[3]' (5:1)",
    ]


def test_one_name():
    assert lines(TWO_IO, "V2") == ["V2 [3, 10]: 3 from 'out2[3]' (5:1) through 'V2·h' (5:16); "
                                   "10 from 'h[10]' (3:1) through 'V2·h' (5:16)"]


def test_sizes_from_an_output_line_a_concat_and_a_slice():
    text = "input u[6]\nr[8] = relu(A·u[2:4])\nout = P·concat(r, u) + q\noutput out[3]\n"
    assert lines(text, "A") == ["A [8, 3]: 8 from 'r[8]' (2:1) through 'A·u[2:4]' (2:13); "
                                "3 from the slice 'u[2:4]' (2:15) through 'A·u[2:4]' (2:13)"]
    assert lines(text, "P") == ["P [3, 14]: 3 from 'output out[3]' (4:8) through 'P·concat(r, u)' (3:7); "
                                "14 from the sizes joined by concat (3:9) through 'P·concat(r, u)' (3:7)"]


def test_scalars_and_a_tied_transpose():
    assert lines("input x\ny = a + b*x\n") == ["x scalar", "a scalar", "b scalar", "y scalar"]
    text = "input x[8]\ncode[3] = sigmoid(W·x + b)\nxhat = sigmoid(Wᵀ·code + c)\n"
    assert lines(text, "W") == ["W [3, 8]: 3 from 'code[3]' (2:1) through 'W·x' (2:19); "
                                "8 from 'input x[8]' (1:7) through 'W·x' (2:19)"]


def test_a_long_chain_is_shortened_in_text_but_not_in_json():
    # each layer's size is a new one (the rows of W_i), made equal to the last layer's by the `+`
    text = "input x[4]\n" + "".join(f"h{i} = elu(W{i}·{'x' if i == 1 else f'h{i - 1}'}) + "
                                    f"{'x' if i == 1 else f'h{i - 1}'}\n" for i in range(1, 21))
    _, found = explain(text, "s.spec", "h20")
    assert len(found["names"][0]["sizes"][0]["through"]) == 20
    (line,) = lines(text, "h20")
    assert line.startswith("h20 [4]: 4 from 'input x[4]' (1:7) through 'elu(W1·x) + x' (2:6), ")
    assert "… 15 more …" in line and line.endswith("'elu(W20·h19) + h19' (21:7)")


def test_a_very_long_chain_keeps_its_ends_only():
    """Explaining every name of a deep stack stays linear: chains past 50 steps keep 3 + 2 of them."""
    text = "input x[4]\n" + "".join(f"h{i} = elu(W{i}·{'x' if i == 1 else f'h{i - 1}'}) + "
                                    f"{'x' if i == 1 else f'h{i - 1}'}\n" for i in range(1, 61))
    _, found = explain(text, "s.spec")
    (h60,) = [entry for entry in found["names"] if entry["name"] == "h60"]
    assert [step["what"] for step in h60["sizes"][0]["through"]] == [
        "'elu(W1·x) + x'", "'elu(W2·h1) + h1'", "'elu(W3·h2) + h2'", "… 55 more …", "'elu(W59·h58) + h58'",
        "'elu(W60·h59) + h59'"]


def test_json(tmp_path, capsys):
    spec = tmp_path / "two_io.spec"
    spec.write_text(TWO_IO, encoding="utf-8")
    assert main(["explain", str(spec), "W1", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found == {"file": str(spec), "names": [{
        "name": "W1", "kind": "param", "shape": [10, 5], "at": "3:11", "sizes": [
            {"size": 10, "from": "'h[10]'", "at": "3:1", "through": [{"what": "'W1·in1'", "at": "3:11"}]},
            {"size": 5, "from": "'input in1[5]'", "at": "1:7", "through": [{"what": "'W1·in1'", "at": "3:11"}]}]}]}


def test_unknown_name_lists_the_known_ones_closest_first(tmp_path, capsys):
    spec = tmp_path / "two_io.spec"
    spec.write_text(TWO_IO, encoding="utf-8")
    assert main(["explain", str(spec), "W3"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"error: 'W3' is not an input, parameter or node of {spec}; it has: W1, W2, V1, b, V2, h, "
                   "in1, in2, b_w, b_v, out1, out2\n")


def test_a_spec_with_a_mistake_is_reported_as_check_reports_it(tmp_path, capsys):
    spec = tmp_path / "bad.spec"
    spec.write_text("input x[3]\nh[4] = relu(W·x + b)\ny[2] = W·h\n", encoding="utf-8")
    assert main(["explain", str(spec)]) == 1
    assert capsys.readouterr().err.startswith(f"{spec}:3:8: error: size conflict in 'W·h'")


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_explaining_changes_no_inferred_shape(path):
    ir, found = explain(path.read_text(encoding="utf-8"), str(path))
    plain = specc.graph(path)
    assert {n: ir.nodes[n]["shape"] for n in ir} == {n: plain.nodes[n]["shape"] for n in plain}
    for entry in found["names"]:
        assert [size["size"] for size in entry["sizes"]] == entry["shape"]
        assert all(size["from"] for size in entry["sizes"])  # every size has an origin


def test_inference_keeps_no_record_unless_asked():
    assert Unifier().trace is None


def test_the_readme_line_is_what_specc_prints(capsys, monkeypatch):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = readme.split("$ specc explain specs/two_io.spec W1\n", 1)[1].splitlines()[0]
    monkeypatch.chdir(ROOT)
    assert main(["explain", "specs/two_io.spec", "W1"]) == 0
    assert capsys.readouterr().out == shown + "\n"
