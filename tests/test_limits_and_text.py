"""Issue 11, the spec's text: limits on sizes and numbers held, ASCII numbers, numbers-only arithmetic
that must be finite, constants that must fit the module's dtype, line ends, no Lark exception
escaping, and no file read or quoted that is not a spec (specc/limits.py, docs/language.md)."""
from __future__ import annotations

import os

import pytest
import torch
from lark.exceptions import VisitError

import specc
from conftest import ROOT, assert_spec_error
from specc.cli import main
from specc.errors import ConstantError, InitError, LimitError, SpecError, SpecSyntaxError, split_lines
from specc.parser import _parser, _ToAst

NINES = "9" * 5000
HUGE = "99999999999999999999"
OVER_SIZE = "is over the limit of 100,000,000 units per dimension"
FINITE = "a spec's numbers must be finite"

# (spec, error class, line, column, the whole message)
BAD = [
    # sizes and indices past the limit per dimension, refused where they are written
    (f"input x[{HUGE}]\ny = 2*x", LimitError, 1, 9, f"size {HUGE} {OVER_SIZE}"),
    (f"input x[{NINES}]\ny = 2*x", LimitError, 1, 9, f"size 99999999…9999 (5000 digits) {OVER_SIZE}"),
    ("input x[100000001]\ny = 2*x", LimitError, 1, 9, f"size 100000001 {OVER_SIZE}"),
    (f"param W[3, {HUGE}]\ny = W", LimitError, 1, 12, f"size {HUGE} {OVER_SIZE}"),
    (f"input x[3]\ny = x[{HUGE}]", LimitError, 2, 7, f"index {HUGE} {OVER_SIZE}"),
    (f"input x[3]\ny = x[1:{NINES}]", LimitError, 2, 9, f"index 99999999…9999 (5000 digits) {OVER_SIZE}"),
    ("input x[60000000]\ny = concat(x, x)", LimitError, 2, 5,
     f"size 120,000,000 from the sizes joined by concat {OVER_SIZE}"),
    # the numbers a spec holds
    ("input x[1000000]\ny[1000000] = W·x", LimitError, 2, 14,
     "'W' [1000000, 1000000] would hold 1,000,000,000,000 numbers, over the limit of 100,000,000"),
    ("param W[100000, 100000]\ny = sum(W·v)", LimitError, 1, 7,
     "'W' [100000, 100000] would hold 10,000,000,000 numbers, over the limit of 100,000,000"),
    ("input x[20000]\nfixed mu[20000, 20000]\ny = mu·x", LimitError, 2, 7,
     "'mu' [20000, 20000] would hold 400,000,000 numbers, over the limit of 100,000,000"),
    ("input x[6000]\nh[6000] = W·x\ny[6000] = V·h + U·x", LimitError, 2, 11,
     "the spec would hold 108,030,000 numbers, over the limit of 100,000,000; the largest value is 'W' "
     "[6000, 6000], with 36,000,000"),
    # numbers are ASCII digits
    ("input x[\u09ea]\ny = 2*x", SpecSyntaxError, 1, 9, "unexpected character '\u09ea'"),
    ("input x[3]\ny = x[\u0663]", SpecSyntaxError, 2, 7, "unexpected character '\u0663'"),
    ("input x\ny = \uff12*x", SpecSyntaxError, 2, 5, "unexpected character '\uff12'"),
    ("input x\ny = 2\u00b2*x", SpecSyntaxError, 2, 6, "unexpected character '\u00b2'"),
    # numbers-only arithmetic is finite, and nothing is divided by a zero constant
    ("input x\ny = x + 1/0", ConstantError, 2, 9, f"'1/0' divides by zero: {FINITE}"),
    ("input x\ny = x + 0/0", ConstantError, 2, 9, f"'0/0' divides by zero: {FINITE}"),
    ("input x\ny = x/0", ConstantError, 2, 5, "'x/0' divides by zero: every unit would be inf or nan"),
    ("input x\ny = x/(1 - 1)", ConstantError, 2, 5, "'x/(1 - 1)' divides by zero: every unit would be inf or nan"),
    ("input x\ny = x * log(-1)", ConstantError, 2, 9, f"'log(-1)' is nan in float64: {FINITE}"),
    ("input x\ny = x + log(0)", ConstantError, 2, 9, f"'log(0)' is -inf in float64: {FINITE}"),
    ("input x\ny = x + sqrt(-1)", ConstantError, 2, 9, f"'sqrt(-1)' is nan in float64: {FINITE}"),
    ("input x\ny = x * exp(1000)", ConstantError, 2, 9, f"'exp(1000)' is inf in float64: {FINITE}"),
    ("input x\ny = x * (1e308*1e308)", ConstantError, 2, 10, f"'1e308*1e308' is inf in float64: {FINITE}"),
    ("input x\nc = 10^400\ny = c*x", ConstantError, 2, 5, f"'10^400' is inf in float64: {FINITE}"),
    ("input x\ny = (-8)^(1/3) * x", ConstantError, 2, 5, f"'(-8)^(1/3)' is nan in float64: {FINITE}"),
    ("input x\ny = x + 1e400", ConstantError, 2, 9,
     f"the number 1e400 is inf in float64 (the largest is about 1.8e308): {FINITE}"),
    (f"input x\ny = x + {'9' * 400}", ConstantError, 2, 9,
     f"the number 99999999…9999 (400 digits) is inf in float64 (the largest is about 1.8e308): {FINITE}"),
    # init schemes' arguments that torch would refuse when the module is built
    ("input x[3]\ny[2] = W·x\ninit W = normal(0, -1)", InitError, 3, 10,
     "init scheme 'normal' needs a standard deviation of at least 0, not -1"),
    ("input x[3]\ny[2] = W·x\ninit W = uniform(1, 0)", InitError, 3, 10, "init scheme 'uniform' needs lo ≤ hi, not 1 > 0"),
    ("input x[3]\ny[2] = W·x\ninit W = rang(-0.5)", InitError, 3, 10,
     "init scheme 'rang' needs a range of at least 0, not -0.5"),
    ("input x[3]\ny[2] = W·x\ninit W = xavier_normal(-1)", InitError, 3, 10,
     "init scheme 'xavier_normal' needs a gain of at least 0, not -1"),
]


@pytest.mark.parametrize("text,error,line,column,message", BAD, ids=[b[4][:50] for b in BAD])
def test_bad_spec_text(text, error, line, column, message):
    err = assert_spec_error(text, error, line, column)
    assert err.message == message
    assert len(err.format().splitlines()[1]) <= 4 + 242  # an excerpt of a long line is cut around the caret


def test_a_limit_error_says_how_to_raise_the_limit():
    err = assert_spec_error("input x[1000000]\ny[1000000] = W·x", LimitError, 2, 14)
    assert err.format().splitlines()[2:] == [
        "                 ^",
        "<spec>:2:1: note: size 1000000 comes from 'y[1000000]'",
        "    y[1000000] = W·x",
        "    ^",
        "<spec>:1:7: note: size 1000000 comes from 'input x[1000000]'",
        "    input x[1000000]",
        "          ^",
        "note: a spec may hold at most 100,000,000 numbers: its parameters and fixed values, and one sample's "
        "value of every input and operation; raise the limit with --max-elements N (max_elements=N in Python)"]
    err = assert_spec_error(f"input x[{HUGE}]", LimitError, 1, 9)
    assert err.notes == (("a value may have at most 100,000,000 units along each dimension; raise the limit "
                          "with --max-size N (max_size=N in Python)", None),)


# ---------------------------------------------------------------- the limits, set by the API and the CLI
TERA = "input x[1000000]\ny[1000000] = W·x\n"


def test_the_api_raises_or_lowers_the_limits():
    assert specc.graph(TERA, max_elements=10 ** 13).nodes["W"]["shape"] == (1000000, 1000000)
    assert specc.parse(f"input x[{HUGE[:18]}]", max_size=10 ** 18).statements[0].decls[0].dims == (int(HUGE[:18]),)
    assert_spec_error(lambda: specc.graph(TERA, max_elements=10 ** 13, max_size=999999), LimitError, 1, 9)
    assert_spec_error(lambda: specc.graph("input x[3]\ny[4] = W·x", max_elements=18), LimitError, 2, 8)
    err = assert_spec_error(lambda: specc.parse("input x[11]", max_size=10), LimitError, 1, 9)
    assert err.message == "size 11 is over the limit of 10 units per dimension"
    # max_size follows max_elements unless given
    assert specc.graph("input x[200000000]\ny = 2*x", max_elements=10 ** 9).nodes["x"]["shape"] == (200000000,)
    with pytest.raises(LimitError):
        specc.to_source(TERA)
    with pytest.raises(LimitError):
        specc.load(TERA)


@pytest.mark.parametrize("name,value", [("max_elements", 0), ("max_size", -1), ("max_elements", 2 ** 63),
                                        ("max_size", 1.5), ("max_elements", True)])
def test_a_bad_limit_is_refused(name, value):
    shown = {True: "True", 1.5: "1.5"}.get(value, str(value))
    with pytest.raises(SpecError) as caught:
        specc.graph("input x\ny = 2*x", **{name: value})
    assert caught.value.message == f"{name} must be a whole number from 1 to 2**63 - 1, not {shown}"


def _write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


COMMANDS = [  # every command that builds an IR, with what it needs besides the spec
    ["check"], ["inspect"], ["explain"], ["compile"], ["draw", "-o", "{tmp}/x.dot"],
    ["train", "--data", "{tmp}/data.csv"], ["predict", "--weights", "{tmp}/w.safetensors", "--data", "{tmp}/d.csv"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_every_command_takes_the_limit_flags(command, tmp_path, capsys):
    spec = _write(tmp_path, "tera.spec", TERA)
    argv = [a.format(tmp=tmp_path) for a in command]
    assert main(argv + [str(spec)]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith(f"{spec}:2:14: error: 'W' [1000000, 1000000] would hold 1,000,000,000,000 "
                                   "numbers, over the limit of 100,000,000\n")
    assert "Traceback" not in captured.err
    assert main(argv + ["--max-elements", "10", "--max-size", "100", str(spec)]) == 1
    assert capsys.readouterr().err.startswith(f"{spec}:1:9: error: size 1000000 is over the limit of 100 units")
    small = _write(tmp_path, "small.spec", "input x[3]\ny[2] = W·x + b\n")
    assert main(argv + ["--max-elements", "10", str(small)]) == 1
    assert capsys.readouterr().err.startswith(f"{small}:2:8: error: the spec would hold 15 numbers, over the "
                                              "limit of 10; the largest value is 'W' [2, 3], with 6\n")


def test_the_check_command_with_a_raised_limit_and_a_bad_one(tmp_path, capsys):
    spec = _write(tmp_path, "tera.spec", TERA)
    assert main(["check", "--max-elements", str(10 ** 13), str(spec)]) == 0
    assert capsys.readouterr().out == f"{spec}: ok (1 parameters, 1000000000000 numbers)\n"
    assert main(["check", "--max-elements", "0", str(spec)]) == 1
    assert capsys.readouterr().err == "error: --max-elements must be a whole number from 1 to 2**63 - 1, not 0\n"


# ---------------------------------------------------------------- constants and the module's dtype
C308 = "input x\ny = concat(a*x, 1e308)\n"
TOO_BIG_FOR_FLOAT32 = [
    (C308, 2, 17, "the number 1e308 does not fit float32"),
    ("input x\nc = 1e39\ny = c*x", 2, 5, "the number 1e39 does not fit float32"),
    ("input x\ny = x * (1e38*10)", 2, 10, "'1e38*10' is 1e+39, which does not fit float32"),
    ("input x[2]\nfixed mu[2]\ninit mu = [1, 1e39]\ny = x - mu", 3, 11,
     "the init value 1e+39 of 'mu' does not fit float32"),
    ("input x\ny = a*x\ninit a = normal(-1e39, 1)", 3, 10, "the init value -1e+39 of 'a' does not fit float32"),
    ("input x[2]\ny[2] = W·x\ninit W = uniform(-1e300, 1e300)", 3, 10,
     "the init value -1e+300 of 'W' does not fit float32"),
]
RANGE = " (at most ±3.40282e+38): compute in float64 (specc.load(…, dtype=torch.float64); specc train --dtype float64)"


@pytest.mark.parametrize("text,line,column,message", TOO_BIG_FOR_FLOAT32, ids=[t[3] for t in TOO_BIG_FOR_FLOAT32])
def test_a_constant_beyond_the_dtype_is_refused_when_the_module_is_built(text, line, column, message):
    specc.graph(text)  # the spec itself is fine: its numbers are finite in float64
    err = assert_spec_error(lambda: specc.load(text), ConstantError, line, column)
    assert err.message == message + RANGE
    model = specc.load(text, dtype=torch.float64)
    inputs = [torch.ones(4, *model.spec_ir.nodes[name]["shape"], dtype=torch.float64) for name in model.spec_inputs]
    assert torch.isfinite(model(*inputs)[0]).all()


def test_fit_checks_the_constants_against_its_dtype():
    model = specc.load(C308, dtype=torch.float64)
    data = {"x": torch.linspace(0, 1, 8, dtype=torch.float64), "y": torch.zeros(8, 2, dtype=torch.float64)}
    err = assert_spec_error(lambda: specc.fit(model, data, dtype=torch.float32, progress=False),
                            ConstantError, 2, 17)
    assert err.message == "the number 1e308 does not fit float32" + RANGE


def test_train_refuses_a_constant_beyond_its_dtype(tmp_path, capsys):
    spec = _write(tmp_path, "c.spec", C308)
    data = _write(tmp_path, "d.csv", "x,y[1],y[2]\n0,0,0\n1,1,1\n")
    out = tmp_path / "w.safetensors"
    assert main(["train", str(spec), "--data", str(data), "--out", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [f"{spec}:2:17: error: the number 1e308 does not fit float32" + RANGE,
                                "    y = concat(a*x, 1e308)", "                    ^~~~~"]
    assert not out.exists()


# ---------------------------------------------------------------- no Lark exception escapes
@pytest.fixture
def fresh_parser():
    """The parser binds its callbacks when it is built: build it again around a patched one."""
    _parser.cache_clear()
    yield
    _parser.cache_clear()


def _raising(error: Exception):
    def callback(self, children):
        raise error
    return callback


@pytest.mark.parametrize("error,message", [
    (RuntimeError("boom"), "cannot parse this (RuntimeError: boom)"),
    (VisitError("transpose", None, ValueError("deep")), "cannot parse this (ValueError: deep)"),
])
def test_an_unforeseen_failure_in_a_parser_callback_is_a_syntax_error(monkeypatch, fresh_parser, error, message):
    monkeypatch.setattr(_ToAst, "transpose", _raising(error))
    err = assert_spec_error("input x\ny = x'\n", SpecSyntaxError, 2, 7)
    assert err.message == message


# ---------------------------------------------------------------- line ends
CONFLICT = ["input x[3]", "# a comment{}that goes on", "h[4] = relu(W·x + b)", "y[2] = W·h"]
ENDS = {"LF": "\n", "CRLF": "\r\n", "CR": "\r"}
IN_COMMENTS = {"none": "", "FF": "\f", "VT": "\v", "NEL": "\x85", "LS": "\u2028", "PS": "\u2029", "FS": "\x1c"}


@pytest.mark.parametrize("inside", IN_COMMENTS, ids=list(IN_COMMENTS))
@pytest.mark.parametrize("end", ENDS, ids=list(ENDS))
def test_errors_point_at_the_right_line_whatever_the_line_ends(end, inside):
    text = ENDS[end].join(CONFLICT).format(IN_COMMENTS[inside]) + ENDS[end]
    err = assert_spec_error(text, specc.errors.SizeConflictError, 4, 8)
    report = err.format().splitlines()
    assert report[:3] == ["<spec>:4:8: error: size conflict in 'W·h': 3 from 'input x[3]' meets 4 from 'h[4]'",
                          "    y[2] = W·h", "           ^~~"]
    assert report[6:8] == ["<spec>:3:1: note: size 4 comes from 'h[4]'", "    h[4] = relu(W·x + b)"]
    syntax = ENDS[end].join(CONFLICT[:3] + ["y = x $ 2"]).format(IN_COMMENTS[inside])
    err = assert_spec_error(syntax, SpecSyntaxError, 4, 7)
    assert err.format().splitlines()[1:] == ["    y = x $ 2", "          ^"]


def test_a_form_feed_between_tokens_keeps_columns_and_the_excerpt_one_line():
    err = assert_spec_error("input x\ny =\f2*x $ 1\n", SpecSyntaxError, 2, 9)
    assert err.format().splitlines()[1:] == ["    y = 2*x $ 1", "            ^"]
    err = assert_spec_error("input x # a\u2028b\ny = x\u2028+ 1\n", SpecSyntaxError, 2, 6)
    assert err.format().splitlines()[1:] == ["    y = x + 1", "         ^"]


def test_labels_and_notes_come_from_the_same_lines(tmp_path, capsys):
    text = "input x[3]\r# odd\u2028comment\rh[4] = relu(W·x + b)\ry[2] = W·h\r"
    path = tmp_path / "cr.spec"
    path.write_bytes(text.encode("utf-8"))
    assert main(["check", str(path)]) == 1
    assert capsys.readouterr().err.splitlines()[:3] == [
        f"{path}:4:8: error: size conflict in 'W·h': 3 from 'input x[3]' meets 4 from 'h[4]'",
        "    y[2] = W·h", "           ^~~"]
    crlf = tmp_path / "crlf.spec"
    crlf.write_bytes(b"input x\r\nh[2] = relu(W\xc2\xb7x)\r\ny = sum(h)\r\n")
    ir = specc.graph(crlf)
    assert ir.nodes["h"]["label"] == "relu(W·x)" and ir.graph["source"] == "input x\nh[2] = relu(W·x)\ny = sum(h)\n"
    assert split_lines("a\rb\r\nc\u2028d\fe\n") == ["a", "b", "c\u2028d\fe", ""]


def test_a_very_long_line_is_shown_around_the_caret():
    text = "input x\ny = " + "x+" * 400 + "x $ 1"
    err = assert_spec_error(text, SpecSyntaxError, 2, 807)
    line, caret = err.format().splitlines()[1:]
    assert line.startswith("    …+x+x") and line.endswith("x $ 1") and len(line) == 4 + 1 + 240
    assert line[caret.index("^")] == "$"


# ---------------------------------------------------------------- no file oracle
def test_a_file_that_is_no_spec_is_never_read(tmp_path, capsys):
    for source in (__import__("pathlib").Path("/proc/self/environ"), tmp_path / "secret.txt"):
        with pytest.raises(SpecError) as caught:
            specc.load(source)
        assert caught.value.message == f"cannot read {source}: a spec file's name ends in .spec"
        assert main(["check", str(source)]) == 1
        assert capsys.readouterr().err == f"error: cannot read {source}: a spec file's name ends in .spec\n"
    with pytest.raises(SpecSyntaxError) as caught:  # a string is text unless it is one line ending in .spec
        specc.load("/proc/self/environ")
    assert "PATH=" not in caught.value.format()


def test_a_spec_named_file_that_is_not_text_is_refused_unquoted(tmp_path, capsys):
    nul = tmp_path / "nul.spec"
    nul.write_bytes(b"input x\ny = x # SECRET=1\x00TOKEN=2\n")
    with pytest.raises(SpecError) as caught:
        specc.graph(nul)
    assert caught.value.message == f"{nul} is not a text file (a NUL byte at byte 24)"
    environ = tmp_path / "environ.spec"
    environ.symlink_to("/proc/self/environ")
    assert main(["check", str(environ)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {environ} is not a text file (a NUL byte at byte ") and "PATH" not in err
    fifo = tmp_path / "pipe.spec"
    os.mkfifo(fifo)
    with pytest.raises(SpecError, match=r"pipe.spec: it is not a regular file$"):
        specc.graph(fifo)  # opening it would wait for a writer forever
    big = tmp_path / "big.spec"
    with open(big, "wb") as file:
        file.truncate((16 << 20) + 1)
    with pytest.raises(LimitError, match=r"big.spec: it is larger than 16 MiB, which no spec is$"):
        specc.graph(big)


def test_the_bundled_specs_still_pass():
    for path in sorted((ROOT / "specs").glob("*.spec")):
        ir = specc.graph(path)
        specc.limits.check_dtype(ir, torch.float32)
