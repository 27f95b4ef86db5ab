"""The command line's core: check, inspect, compile, `python -m specc`; user mistakes never show a traceback."""
import importlib
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, SPECS
from specc.cli import main
from specc.parser import parse_program
from specc.limits import DEFAULT

BAD = "input x[3]\nh[4] = relu(W·x + b)\ny[2] = W·h\n"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- check
def test_check_good_files(capsys):
    assert main(["check", *map(str, SPECS)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(SPECS) and all(line.endswith(")") and ": ok (" in line for line in out)
    assert f"{ROOT / 'specs' / 'two_io.spec'}: ok (7 parameters, 176 numbers)" in out


def test_check_reports_a_mistake_like_a_compiler(tmp_path, capsys):
    bad = write(tmp_path, "bad.spec", BAD)
    assert main(["check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[:3] == [f"{bad}:3:8: error: size conflict in 'W·h': 3 from 'input x[3]' meets 4 "
                                    "from 'h[4]'", "    y[2] = W·h", "           ^~~"]
    assert "Traceback" not in err


def test_check_goes_on_after_a_bad_file(tmp_path, capsys):
    bad = write(tmp_path, "bad.spec", "input x\ny = x $ 1\n")
    good = SPECS[0]
    assert main(["check", str(bad), str(good)]) == 1
    captured = capsys.readouterr()
    assert f"{bad}:2:7: error: unexpected character '$'" in captured.err
    assert f"{good}: ok" in captured.out


@pytest.mark.parametrize("text,where", [
    ("input x\ny = rleu(x)\n", ":2:5: error: unknown function 'rleu'"),
    ("input x\ninput = 2\n", ":2:1: error: 'input' is a keyword"),
    ("input x\na = b\nb = a\ny = x\n", ":2:1: error: 'a' depends on itself"),
    ("input x\n" + "y = " + "-" * 300 + "x\n", ":2:1: error: this statement nests more than"),
])
def test_check_errors_have_a_place_and_a_caret(tmp_path, capsys, text, where):
    bad = write(tmp_path, "bad.spec", text)
    assert main(["check", str(bad)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith(str(bad) + where)
    assert lines[2].strip().startswith("^")


def test_check_a_missing_or_unreadable_file(tmp_path, capsys):
    assert main(["check", str(tmp_path / "missing.spec")]) == 1
    assert capsys.readouterr().err == f"error: no such file: {tmp_path / 'missing.spec'}\n"
    assert main(["check", str(tmp_path)]) == 1
    assert "is a directory" in capsys.readouterr().err
    (tmp_path / "latin.spec").write_bytes(b"input x\ny = x # \xe9\n")
    assert main(["check", str(tmp_path / "latin.spec")]) == 1
    assert "is not UTF-8" in capsys.readouterr().err


# ---------------------------------------------------------------- inspect
def test_inspect_text(capsys):
    assert main(["inspect", str(ROOT / "specs" / "two_io.spec")]) == 0
    out = capsys.readouterr().out
    assert "inputs:     in1 [5], in2 [5]" in out and "outputs:    out1 [3], out2 [3]" in out
    assert "parameters: 176 numbers in 7 tensors" in out
    assert "W1   [10, 5]" in out and "b_w  [3]" in out


def test_inspect_json_counts_a_shared_parameter_once(tmp_path, capsys):
    spec = write(tmp_path, "shared.spec", "input x[3], z[3]\nh[4] = tanh(W·x + b)\ng = tanh(W·z + b)\ny = h + g\n")
    assert main(["inspect", str(spec), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"] == {"W": {"shape": [4, 3], "role": "weight", "init": "linear_weight"},
                                  "b": {"shape": [4], "role": "bias", "init": "linear_bias"}}
    assert info["parameter_count"] == 16  # W and b once each, though each is used twice
    assert info["inputs"] == {"x": [3], "z": [3]} and info["outputs"] == {"y": [4]}
    assert info["nodes"] == {"h": [4], "g": [4], "y": [4]}


def test_inspect_a_bad_file(tmp_path, capsys):
    assert main(["inspect", str(write(tmp_path, "bad.spec", BAD))]) == 1
    assert ":3:8: error: size conflict" in capsys.readouterr().err


# ---------------------------------------------------------------- compile
def test_compile_to_a_file_and_to_stdout(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    out = tmp_path / "two_io.py"
    assert main(["compile", "specs/two_io.spec", "-o", str(out)]) == 0
    assert capsys.readouterr().err.strip() == f"wrote {out}"
    assert "class TwoIo(nn.Module):" in out.read_text(encoding="utf-8")
    assert not list(tmp_path.glob("*.tmp"))
    assert main(["compile", "specs/two_io.spec"]) == 0
    assert capsys.readouterr().out == out.read_text(encoding="utf-8")


def test_compile_into_a_missing_folder_is_an_error_not_a_traceback(tmp_path, capsys):
    assert main(["compile", str(ROOT / "specs" / "xor.spec"), "-o", str(tmp_path / "no" / "x.py")]) == 1
    assert capsys.readouterr().err.startswith(f"error: cannot write {tmp_path / 'no' / 'x.py'}")


# ---------------------------------------------------------------- as a program
def test_python_dash_m_specc(tmp_path):
    bad = write(tmp_path, "bad.spec", BAD)
    good = subprocess.run([sys.executable, "-m", "specc", "check", str(ROOT / "specs" / "xor.spec")],
                          capture_output=True, text=True)
    assert good.returncode == 0 and good.stdout.strip().endswith("ok (2 parameters, 15 numbers)")
    failed = subprocess.run([sys.executable, "-m", "specc", "check", "bad.spec"], capture_output=True, text=True,
                            cwd=tmp_path)
    assert failed.returncode == 1 and failed.stdout == ""
    assert failed.stderr.startswith("bad.spec:3:8: error: size conflict") and "Traceback" not in failed.stderr
    out = tmp_path / "xor.py"
    compiled = subprocess.run([sys.executable, "-m", "specc", "compile", str(ROOT / "specs" / "xor.spec"), "-o",
                               str(out)], capture_output=True, text=True)
    assert compiled.returncode == 0 and "class Xor(nn.Module):" in out.read_text(encoding="utf-8")
    assert bad.exists()


def test_python_dash_m_specc_train_with_class_labels(tmp_path):
    # issue 9: one column of class labels 0 … k-1 for an output y[k], with --loss cross_entropy
    write(tmp_path, "classes.spec", "input x[2]\ny[3] = softmax(W·x + b)\n")
    rows = [(0.0, 2.0, 0), (0.2, 1.8, 0), (-2.0, -1.0, 1), (-1.8, -1.2, 1), (2.0, -1.0, 2), (2.2, -0.8, 2)]
    write(tmp_path, "labels.csv", "x[1],x[2],y\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows))
    write(tmp_path, "bad.csv", "x[1],x[2],y\n0,2,0\n-2,-1,2.5\n")
    train = [sys.executable, "-m", "specc", "train", "classes.spec", "--loss", "cross_entropy", "--seed", "0", "--data"]
    good = subprocess.run(train + ["labels.csv"], capture_output=True, text=True, cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("classes.spec: bfgs ×10 restarts (small data: 6 rows × 9 parameters), loss "
                                  "cross_entropy, float64: cross_entropy ")
    bad = subprocess.run(train + ["bad.csv"], capture_output=True, text=True, cwd=tmp_path)
    assert (bad.returncode, bad.stdout) == (1, "") and "Traceback" not in bad.stderr
    assert bad.stderr.splitlines() == ["bad.csv:3:7: error: column 'y': class label 2.5 is not a whole number: 'y' "
                                       "has 3 classes, so labels are 0, 1 or 2 (data row 2)", "    -2,-1,2.5", "          ^~~"]


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["check"])
    assert caught.value.code == 2


def test_output_cut_short_by_a_closed_pipe_is_not_an_error():
    # `specc inspect … | head -1`: the reader stops early; no traceback, exit status 0.
    process = subprocess.Popen([sys.executable, "-m", "specc", "inspect", str(ROOT / "specs" / "two_io.spec")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.close()
    _, err = process.communicate()
    assert process.returncode == 0
    assert b"Traceback" not in err


# ---------------------------------------------------------------- usage mistakes
@pytest.mark.parametrize("argv,usage,message", [
    (["train", "x.spec", "--data", "d.csv", "--optimiser", "bfgs"], "usage: specc train ",
     "specc train: error: unrecognized arguments: --optimiser bfgs (did you mean --optimizer?)"),
    (["check", "x.spec", "--dmup", "ir"], "usage: specc check ", "specc check: error: unrecognized arguments: "
                                                                 "--dmup ir (did you mean --dump?)"),
    (["compile", "x.spec", "extra.spec"], "usage: specc compile ",
     "specc compile: error: unrecognized arguments: extra.spec"),
    (["train", "x.spec", "--data", "d.csv", "--optimizer", "bgfs"], "usage: specc train ",
     "specc train: error: argument --optimizer: invalid choice: 'bgfs' (choose from 'sgd', 'adam', 'rmsprop', "
     "'adagrad', 'lbfgs', 'bfgs')"),
    (["train", "x.spec"], "usage: specc train ", "specc train: error: the following arguments are required: --data"),
    (["chekc", "x.spec"], "usage: specc [-h]", "specc: error: argument COMMAND: invalid choice: 'chekc'"),
])
def test_a_usage_mistake_prints_that_commands_usage_and_exits_2(capsys, argv, usage, message):
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(usage) and err.splitlines()[-1].startswith(message)


def test_train_options_list_the_tables_of_specc_train(capsys):
    from specc.train import DTYPES, ENGINES, LOSSES, OPTIMIZERS
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for table in (OPTIMIZERS, LOSSES, DTYPES):
        assert ", ".join(table) in help_text
    assert all(engine in help_text for engine in ENGINES)


def test_version_says_whether_the_kernel_was_built(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    out = capsys.readouterr().out
    assert caught.value.code == 0 and out.startswith("specc 0.1.0\nnnet C kernel: ")


# ---------------------------------------------------------------- compile: the spec's recorded name
def test_compile_records_the_spec_as_given_or_relative_never_absolute(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    (tmp_path / "out").mkdir()
    assert main(["compile", str(ROOT / "specs" / "xor.spec"), "-o", str(tmp_path / "out" / "xor.py")]) == 0
    source = (tmp_path / "out" / "xor.py").read_text(encoding="utf-8")
    relative = os.path.relpath(ROOT / "specs" / "xor.spec", tmp_path / "out")
    assert f"spec_file = {relative!r}" in source and f"from {relative}." in source
    assert f"'{ROOT}" not in source and f" {ROOT}" not in source
    assert main(["compile", "specs/xor.spec", "-o", str(tmp_path / "out" / "xor2.py")]) == 0
    assert "spec_file = 'specs/xor.spec'" in (tmp_path / "out" / "xor2.py").read_text(encoding="utf-8")
    assert main(["compile", str(ROOT / "specs" / "xor.spec")]) == 0
    assert "spec_file = 'specs/xor.spec'" in capsys.readouterr().out  # standard output: relative to the cwd


# ---------------------------------------------------------------- each command builds the IR once
@pytest.fixture
def builds(monkeypatch):
    """How many IRs are built: graph_of without its memo, so that every request is a build."""
    graph_module = importlib.import_module("specc.lower")
    count = {"ir": 0, "parse": 0}
    real_build, real_parse = graph_module.build_graph, parse_program

    def build(program, limits=DEFAULT):
        count["ir"] += 1
        return real_build(program, limits=limits)

    def parse(text, file="<spec>", limits=DEFAULT):
        count["parse"] += 1
        return real_parse(text, file, limits)

    monkeypatch.setattr(graph_module, "build_graph", build)
    monkeypatch.setattr(graph_module, "graph_of",
                        lambda text, file="<spec>", limits=DEFAULT: build(parse(text, file, limits), limits))
    return count


def _trained_sine(tmp_path):
    import specc
    weights = tmp_path / "w.safetensors"
    specc.save_weights(specc.load(ROOT / "specs" / "sine_nnet.spec"), weights)
    return weights


@pytest.mark.parametrize("command", ["train", "draw", "draw-module", "inspect", "inspect-json", "predict"])
def test_each_command_builds_the_ir_once(tmp_path, builds, command, capsys, monkeypatch):
    sine, data = str(ROOT / "specs" / "sine_nnet.spec"), str(ROOT / "examples" / "sine50.csv")
    weights = str(_trained_sine(tmp_path))
    builds.update(ir=0, parse=0)
    argv = {"train": ["train", sine, "--data", data, "--optimizer", "bfgs", "--loss", "sse", "--engine", "nnet",
                      "--init-from", str(ROOT / "examples" / "sine_nnet_wts.json"), "--max-iter", "5", "--quiet",
                      "--out", str(tmp_path / "fit.safetensors")],
            "draw": ["draw", sine, "--weights", weights, "-o", str(tmp_path / "n.dot")],
            "inspect": ["inspect", sine, "--weights", weights],
            "inspect-json": ["inspect", sine, "--weights", weights, "--json"],
            "predict": ["predict", sine, "--weights", weights, "--data", data, "-o", str(tmp_path / "p.csv")]}
    if command.startswith(("draw", "inspect")):  # weights are checked against the IR: no module is compiled
        import specc
        module = specc.load(sine) if command == "draw-module" else None
        monkeypatch.setattr(importlib.import_module("specc.compile"), "load_module",
                            lambda *a: pytest.fail("a module was compiled"))
        builds.update(ir=0, parse=0)
    if command == "draw-module":
        specc.draw(module, weights=weights)
    else:
        assert main(argv[command]) == 0, capsys.readouterr().err
    assert builds == ({"ir": 0, "parse": 0} if command == "draw-module" else {"ir": 1, "parse": 1})


def test_the_warning_hook_is_installed_once_however_often_main_runs(tmp_path, capsys):
    import io
    import warnings
    spec = tmp_path / "a.spec"
    spec.write_text("input x\ny = a*x\n")
    for _ in range(1500):  # once wrapped per call, the hook's chain overflowed Python's stack near 1,000
        main(["check", str(spec)])
    warnings.showwarning("plain", UserWarning, "f.py", 1, file=io.StringIO())  # no RecursionError down the chain
    assert getattr(warnings.showwarning, "specc_one_line", False)
