"""Warnings that catch typos (specc/lint.py), the capitalised-keyword hint and the `W*x` note: each at its
place, once per command and once per spec in Python, errors under `specc check --strict`."""
import random
import warnings

import pytest

import specc
from conftest import ROOT, SPECS, assert_spec_error
from specc.cli import main
from specc.errors import ShapeError, SizeConflictError, SpecDiagnostic, SpecSyntaxError
from specc.lint import _Index, closeness, distance
from specc.lower import build_graph, graph_of
from specc.parser import parse_program


def diagnostics(text: str) -> list[tuple[str, int, int, str]]:
    """(code, line, column, message) of each warning, without the warnings module."""
    ir = build_graph(parse_program(text))
    return [(w.code, w.span.line, w.span.column, w.message) for w in ir.graph["warnings"]]


# ---------------------------------------------------------------- the table
CASES = [
    ("input x[3]\nr[3] = relu(W·x + b)\ny = relu(x + rr)\n",
     [("extra-output", 2, 1, "nothing uses 'r', so it becomes an extra output; was 'r' meant where 'rr' is written?"),
      ("free-name", 3, 14, "'rr' becomes a parameter; did you mean 'r'?")]),
    ("input x[3]\nr[3] = relu(W·x + b)\ny = relu(x + rr)\noutput y\n",
     [("dead-node", 2, 1, "nothing uses 'r' and the output line does not list it: it is dead code"),
      ("free-name", 3, 14, "'rr' becomes a parameter; did you mean 'r'?")]),
    ("input x[3]\nh[3] = tanh(X) + b\n", [("free-name", 2, 13, "'X' becomes a parameter; did you mean 'x'?")]),
    ("input x1, x2\ny = a*x1 + b*x3\n", [("free-name", 2, 14, "'x3' becomes a parameter; did you mean 'x1' or 'x2'?")]),
    ("input x[3]\nhidden[3] = tanh(x)\ny = hidden + hdiden\n",  # two neighbours swapped
     [("free-name", 3, 14, "'hdiden' becomes a parameter; did you mean 'hidden'?")]),
    ("input x[3]\nhidden[3] = tanh(x)\ny = hidden + hddien\n",  # two edits in a long name
     [("free-name", 3, 14, "'hddien' becomes a parameter; did you mean 'hidden'?")]),
    ("input x[3]\ndef gate(a, c) = sigmoid(a) * c\ny = gate(x, x) * gatee + tahn\n",
     [("free-name", 3, 18, "'gatee' becomes a parameter; did you mean 'gate'?"),
      ("free-name", 3, 26, "'tahn' becomes a parameter; did you mean 'tanh'?")]),
    ("input x[3]\nfixed mu[3]\ny = x - muu\n", [("free-name", 3, 9, "'muu' becomes a parameter; did you mean 'mu'?")]),
    ("input x[3]\ny = relu(W*x + b)\n",
     [("matrix-star", 2, 10, "'W*x' multiplies 'W' elementwise, so 'W' becomes a vector [3]; for a matrix product "
                             "write 'W·x' or 'W@x'")]),
    ("input x[3]\ny = relu(W1*(x + 1) + b)\n",
     [("matrix-star", 2, 10, "'W1*(x + 1)' multiplies 'W1' elementwise, so 'W1' becomes a vector [3]; for a matrix "
                             "product write 'W1·(x + 1)' or 'W1@(x + 1)'")]),
    ("input x[3]\ny = tanh(x*W)\n",
     [("matrix-star", 2, 10, "'x*W' multiplies 'W' elementwise, so 'W' becomes a vector [3]; for a matrix product "
                             "write 'W·x' or 'W@x'")]),
]


@pytest.mark.parametrize("text,expected", CASES, ids=[c[1][0][3][:40] for c in CASES])
def test_each_warning_at_its_place(text, expected):
    assert diagnostics(text) == expected


@pytest.mark.parametrize("text", [
    # naming schemes, not typos
    "input x[3]\nh1[4] = tanh(W1·x + b1)\nh2[4] = tanh(W2·h1 + b2)\ny[1] = W3·h2 + b3\n",
    "input x[3]\nh[4] = tanh(Wx·x + Wh·h0 + bh)\ny[1] = W_out·h + b_out\nparam h0[4]\n",
    "input x[3]\nh[3] = tanh(x) * h2\n",
    "input x\ny = a + sig*sin(x) + cs*cos(x) + self*x + math*x\n",
    "input x[2]\ns[3] = S·x\ny = softmax(s)\n",  # a matrix S beside a node s: a convention, not a typo
    # a declared parameter is meant
    "input x[3]\nr[3] = relu(W·x + b)\nparam rr[3]\ny = relu(x + rr) + r\n",
    # elementwise on purpose: a lower-case or declared parameter, or a number
    "input x[3]\ny = w*x\n", "input x[3]\nparam W[3]\ny = W*x\n", "input x[3]\ny = relu(W·x) * 2\nW = 3\n",
    # an unused node that becomes an output with no typo near it
    "input x[3]\nh[4] = tanh(W·x)\ng[2] = V·x\n",
])
def test_no_warning(text):
    assert diagnostics(text) == []


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_bundled_specs_have_no_warning(path):
    assert specc.graph(path).graph["warnings"] == []


def test_large_generated_specs_have_no_warning():
    """The shapes of benchmarks/bench_core.py: families h1 … hN, W1 … WN, b1 … bN, A…, c…, s…."""
    chain = ["input x[4]"] + [f"h{i}[4] = tanh(W{i}·{'x' if i == 1 else f'h{i - 1}'} + b{i})" for i in range(1, 300)]
    mixed = ["input x[4]", "def gate(a, c) = sigmoid(a) * c"]
    forms = ("h{i} = gate(A{i}·{p} + c{i}, {p}) + {p}", "h{i} = {p} * s{i} - {q} / 2",
             "h{i} = elu(W{i}·{p}) * 0.5 + square({q})")
    for i in range(1, 300):
        p, q = (f"h{j}" if j >= 1 else "x" for j in (i - 1, i - 2))
        mixed.append(forms[i % 3].format(i=i, p=p, q=q))
    for lines in (chain, mixed):
        assert diagnostics("\n".join(lines) + "\n") == []


# ---------------------------------------------------------------- closeness
@pytest.mark.parametrize("free,known,expected", [
    ("rr", "r", 1), ("X", "x", 0), ("Hidden", "hidden", 0), ("hiden", "hidden", 1), ("hdiden", "hidden", 1),
    ("hddien", "hidden", 2), ("hidn", "hidden", None), ("x3", "x1", 1), ("h10", "h1", 1), ("tahn", "tanh", 1),
    ("b1", "h1", None), ("b12", "h1", None), ("W1000", "h100", None), ("W_h", "b_h", None), ("Wx", "x", None),
    ("bh", "h", None), ("W_out", "out", None), ("h2", "h", None), ("hidden2", "hidden", None), ("r", "rr", None),
    ("ab", "xy", None), ("x", "x", None),
])
def test_closeness(free, known, expected):
    assert closeness(free, known) == expected


def test_distance_is_optimal_string_alignment():
    assert [distance(a, b) for a, b in [("", ""), ("ab", "ba"), ("abc", "acb"), ("kitten", "sitting")]] == [0, 1, 1, 3]
    assert distance("kitten", "sitting", limit=1) == 2  # past the limit: limit + 1


def test_the_index_finds_what_comparing_every_pair_finds():
    rng = random.Random(0)
    alphabet = "abhxWX_12"
    names = sorted({"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(400)})
    names = [n for n in names if not n[0].isdigit()]
    known, free = names[::2], names[1::2]
    index = _Index(known)
    for name in free:
        scored = [(closeness(name, k), k) for k in known]
        scored = sorted((d, k) for d, k in scored if d is not None)
        best = [k for d, k in scored if d == scored[0][0]] if scored else []
        assert [k for _, k in index.closest(name)] == best, name


# ---------------------------------------------------------------- the errors' hints
@pytest.mark.parametrize("keyword", ["Input", "INPUT", "Param", "Output", "Def", "Init", "Fixed"])
def test_capitalised_keyword_gets_a_hint(keyword):
    lines = {"Input": "Input x[3]\ny = 2*x\n", "INPUT": "INPUT x[3]\ny = 2*x\n", "Param": "input x\nParam W[2, 1]\n",
             "Output": "input x\ny = 2*x\nOutput y\n", "Def": "input x\nDef f(z) = z\n",
             "Init": "input x\ny = a*x; Init a = 1\n", "Fixed": "Fixed mu[3]\ny = 1\n"}[keyword]
    with pytest.raises(SpecSyntaxError) as caught:
        specc.parse(lines)
    ((note, span),) = caught.value.notes
    assert note == f"keywords are lower case: write '{keyword.lower()}'"
    assert lines.splitlines()[span.line - 1][span.column - 1:span.end_column - 1] == keyword


@pytest.mark.parametrize("text", ["input x\nFoo y = 2\n", "input x\ny = Input x\n"])
def test_no_keyword_hint_elsewhere(text):
    with pytest.raises(SpecSyntaxError) as caught:
        specc.parse(text)
    assert caught.value.notes == ()


def test_matrix_star_note_on_a_size_conflict():
    err = assert_spec_error("input x[3]\ny[2] = relu(W*x + b)\n", SizeConflictError, 2, 1)
    assert err.notes[-1][0] == "for a matrix product write 'W·x' or 'W@x'"
    assert (err.notes[-1][1].line, err.notes[-1][1].column) == (2, 13)


def test_matrix_star_note_on_a_declared_matrix():
    err = assert_spec_error("input x[3]\nparam W[2, 3]\ny = W*x\n", ShapeError, 3, 5)
    assert err.notes == (("for a matrix product write 'W·x' or 'W@x'", None),)  # the error's own place
    err = assert_spec_error("input x[3]\nh[2] = V·x\ny = relu(V*h)\n", ShapeError, 3, 10)
    assert err.notes[-1][0] == "for a matrix product write 'V·h' or 'V@h'"


def test_no_matrix_star_note_without_a_star():
    err = assert_spec_error("input x[3]\nh[4] = relu(W·x + b)\ny[2] = W·h\n", SizeConflictError, 3, 8)
    assert not any("matrix product" in text for text, _ in err.notes)


# ---------------------------------------------------------------- the command line
TYPO = "input x[3]\nr[3] = relu(W·x + b)\ny = relu(x + rr)\n"


def _write(tmp_path, text=TYPO):
    path = tmp_path / "typo.spec"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_check_prints_warnings_and_succeeds(tmp_path, capsys):
    spec = _write(tmp_path)
    for _ in range(2):  # the IR is memoised: the second check still prints them
        assert main(["check", spec]) == 0
        out, err = capsys.readouterr()
        assert out == f"{spec}: ok (3 parameters, 15 numbers, 2 warnings)\n"
        assert err.count(": warning: ") == 2 and err.startswith(f"{spec}:2:1: warning: nothing uses 'r'")
        assert f"{spec}:3:14: warning: 'rr' becomes a parameter; did you mean 'r'?\n    y = relu(x + rr)\n" \
               f"                 ^~\n" in err


def test_strict_makes_warnings_errors(tmp_path, capsys):
    spec, good = _write(tmp_path), str(ROOT / "specs" / "xor.spec")
    assert main(["check", "--strict", spec, good]) == 1
    out, err = capsys.readouterr()
    assert out == f"{good}: ok (2 parameters, 15 numbers)\n"
    assert err.count(": error: ") == 2 and ": warning: " not in err
    assert main(["check", "--strict", good]) == 0


@pytest.mark.parametrize("command", ["inspect", "compile", "draw", "explain"])
def test_other_commands_print_the_warnings_once(tmp_path, capsys, command):
    spec = _write(tmp_path)
    argv = {"inspect": ["inspect", spec], "compile": ["compile", spec, "-o", str(tmp_path / "t.py")],
            "draw": ["draw", spec, "-o", str(tmp_path / "t.dot")], "explain": ["explain", spec]}[command]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert err.count(": warning: ") == 2 and err.count("'rr' becomes a parameter") == 1


def test_train_prints_the_warnings_once(tmp_path, capsys):
    spec = _write(tmp_path, "input x\nh[2] = tanh(W·x + b)\ny[1] = V·h + X\n")
    data = tmp_path / "d.csv"
    data.write_text("x,y\n0,1\n1,2\n2,3\n", encoding="utf-8")
    assert main(["train", spec, "--data", str(data), "--optimizer", "adam", "--epochs", "2", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.count("'X' becomes a parameter; did you mean 'x'?") == 1


# ---------------------------------------------------------------- Python
def test_python_api_warns_once_per_spec():
    text = "input x[3]\nr[3] = relu(W·x + b)\ny = relu(x + rr)  # test_python_api_warns_once\n"
    graph_of.cache_clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        specc.load(text)
        specc.graph(text)
        specc.to_source(text)
    found = [w for w in caught if issubclass(w.category, SpecDiagnostic)]
    assert [w.message.code for w in found] == ["extra-output", "free-name"]
    assert all(w.filename == __file__ for w in found)  # shown at the caller's line, not inside specc
    assert str(found[1].message) == "<spec>:3:14: 'rr' becomes a parameter; did you mean 'r'?"
    assert found[1].message.format().startswith("<spec>:3:14: warning: 'rr' becomes a parameter")


def test_warnings_can_be_made_errors_in_python():
    graph_of.cache_clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SpecDiagnostic)
        with pytest.raises(SpecDiagnostic, match="did you mean 'x'"):
            specc.graph("input x[3]\nh[3] = tanh(X) + b  # made an error\n")
