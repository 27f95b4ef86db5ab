"""Issue 11, items 3 (argument values) and 4 (outputs): bad values and bad output paths end in one
line before any work (the spec is not even read), and every write is one fsynced temporary file
renamed over the target, whose leftovers from a killed run the next write removes."""
import math
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import specc
import specc.api
import specc.files
import specc.train
import specc.train.multistart
from specc.cli import main
from specc.diagram import write_drawing
from specc.errors import SpecError
from specc.files import atomic_path, check_output, remove_stale, write_file
from specc.train import fit, plot_history, start_from
from specc.weights import save_weights

ROOT = Path(__file__).resolve().parent.parent
SINE = ROOT / "specs" / "sine_nnet.spec"
SINE_DATA = ROOT / "examples" / "sine50.csv"
MATPLOTLIB = ("matplotlib writes .avif, .eps, .gif, .jpeg, .jpg, .pdf, .pgf, .png, .ps, .raw, .rgba, .svg, "
              ".svgz, .tif, .tiff or .webp")


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def no_work(monkeypatch):
    """Any reading of a spec, fit or prediction fails the test: refusals come before all of them."""
    def started(*args, **kwargs):
        raise AssertionError("work started before the refusal")
    for module, name in ((specc.api, "graph"), (specc.api, "load"), (specc.train, "fit"),
                         (specc.train, "predict")):
        monkeypatch.setattr(module, name, started)


def snapshot(folder: Path) -> dict:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# ---------------------------------------------------------------- argument values
TRAIN = ["train", SINE, "--data", SINE_DATA]
DRAW = ["draw", SINE, "-o", "net.dot"]
# (command line, the one line it prints)
BAD_ARGUMENTS = [
    (TRAIN + ["--lr", "-1"], "--lr must be a positive finite number, not -1"),
    (TRAIN + ["--lr", "0"], "--lr must be a positive finite number, not 0"),
    (TRAIN + ["--lr", "inf"], "--lr must be a positive finite number, not inf"),
    (TRAIN + ["--lr", "nan"], "--lr must be a positive finite number, not nan"),
    (TRAIN + ["--momentum", "-1"], "--momentum must be a finite number of at least 0, not -1"),
    (TRAIN + ["--momentum", "inf"], "--momentum must be a finite number of at least 0, not inf"),
    (TRAIN + ["--decay", "nan"], "--decay must be a finite number of at least 0, not nan"),
    (TRAIN + ["--decay", "-0.5"], "--decay must be a finite number of at least 0, not -0.5"),
    (TRAIN + ["--seed", 2 ** 64], "--seed must be a whole number from 0 to 2**64 - 1, not 18446744073709551616"),
    (TRAIN + ["--seed", "-1"], "--seed must be a whole number from 0 to 2**64 - 1, not -1"),
    (TRAIN + ["--rang", "nan"], "--rang must be a positive finite number, not nan"),
    (TRAIN + ["--rang", "0"], "--rang must be a positive finite number, not 0"),
    (TRAIN + ["--epochs", "0"], "--epochs must be a whole number from 1 to 1000000000, not 0"),
    (TRAIN + ["--epochs", 10 ** 9 + 1], "--epochs must be a whole number from 1 to 1000000000, not 1000000001"),
    (TRAIN + ["--max-iter", "-1"], "--max-iter must be a whole number from 0 to 1000000000, not -1"),
    (TRAIN + ["--batch-size", "0"], "--batch-size must be a whole number from 1 to 1000000000, not 0"),
    (TRAIN + ["--restarts", "10001"], "--restarts must be a whole number from 1 to 10000, not 10001"),
    (TRAIN + ["--abstol", "nan"], "--abstol must be a finite number of at least 0, or -inf (no rule), not nan"),
    (TRAIN + ["--reltol", "-0.5"], "--reltol must be a finite number of at least 0, not -0.5"),
    (TRAIN + ["--reltol", "inf"], "--reltol must be a finite number of at least 0, not inf"),
    (DRAW + ["--dpi", "0"], "--dpi must be a positive finite number, not 0"),
    (DRAW + ["--dpi", "nan"], "--dpi must be a positive finite number, not nan"),
    (DRAW + ["--max-units", "0"], "--max-units must be a whole number from 1 to 1000000000, not 0"),
    (DRAW + ["--width-range", "5", "1"], "--width-range must be two finite numbers MIN MAX with 0 < MIN <= MAX, "
                                         "not 5 1"),
    (DRAW + ["--width-range", "0", "1"], "--width-range must be two finite numbers MIN MAX with 0 < MIN <= MAX, "
                                         "not 0 1"),
    (DRAW + ["--width-range", "1", "inf"], "--width-range must be two finite numbers MIN MAX with 0 < MIN <= MAX, "
                                           "not 1 inf"),
]


@pytest.mark.parametrize("argv, message", BAD_ARGUMENTS, ids=[" ".join(map(str, a[3:])) for a, _ in BAD_ARGUMENTS])
def test_a_bad_argument_is_one_line_before_any_work(argv, message, capsys, no_work, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(capsys, *argv) == (1, "", f"error: {message}\n")
    assert list(tmp_path.iterdir()) == []


def test_as_a_program_the_refusals_are_one_line_and_exit_1(tmp_path):
    for argv, message in [(["--lr", "-1"], "error: --lr must be a positive finite number, not -1\n"),
                          (["--out", tmp_path], f"error: cannot write {tmp_path} (--out): it is a folder\n")]:
        done = subprocess.run([sys.executable, "-m", "specc", "train", SINE, "--data", SINE_DATA, *argv],
                              capture_output=True, text=True)
        assert (done.returncode, done.stdout, done.stderr) == (1, "", message)


# (keyword arguments of specc.fit, the message)
BAD_FIT_ARGUMENTS = [
    (dict(lr=-1), "lr must be a positive finite number, not -1"),
    (dict(lr=math.inf), "lr must be a positive finite number, not inf"),
    (dict(lr="0.1"), "lr must be a positive finite number, not '0.1'"),
    (dict(momentum=-1), "momentum must be a finite number of at least 0, not -1"),
    (dict(decay=math.nan), "decay must be a finite number of at least 0, not nan"),
    (dict(seed=2 ** 64), "seed must be a whole number from 0 to 2**64 - 1, not 18446744073709551616"),
    (dict(seed=1.5), "seed must be a whole number from 0 to 2**64 - 1, not 1.5"),
    (dict(epochs=True), "epochs must be a whole number from 1 to 1000000000, not True"),
    (dict(max_iter=2.0), "max_iter must be a whole number from 0 to 1000000000, not 2"),
    (dict(batch_size=-3), "batch_size must be a whole number from 1 to 1000000000, not -3"),
    (dict(restarts=0), "restarts must be a whole number from 1 to 10000, not 0"),
    (dict(abstol=-1.0), "abstol must be a finite number of at least 0, or -inf (no rule), not -1"),
    (dict(reltol=math.nan), "reltol must be a finite number of at least 0, not nan"),
]


@pytest.mark.parametrize("settings, message", BAD_FIT_ARGUMENTS, ids=range(len(BAD_FIT_ARGUMENTS)))
def test_fit_refuses_bad_values_in_the_same_words(settings, message, monkeypatch):
    def read(*args, **kwargs):
        raise AssertionError("the data was read before the refusal")
    monkeypatch.setattr(specc.train.multistart, "resolve", read)
    with pytest.raises(SpecError) as caught:
        fit(specc.load(SINE), SINE_DATA, **settings)
    assert str(caught.value) == message


def test_the_other_apis_refuse_in_the_same_words(tmp_path):
    model = specc.load(SINE)
    for call, message in [
            (lambda: start_from(model, rang=math.nan), "rang must be a positive finite number, not nan"),
            (lambda: start_from(model, rang=-1), "rang must be a positive finite number, not -1"),
            (lambda: specc.draw(SINE, max_units=0), "max_units must be a whole number from 1 to 1000000000, not 0"),
            (lambda: specc.draw(SINE, width_range=(3, 1)),
             "width_range must be two finite numbers MIN MAX with 0 < MIN <= MAX, not 3 1"),
            (lambda: write_drawing(specc.draw(SINE), tmp_path / "x.png", dpi=-1),
             "dpi must be a positive finite number, not -1")]:
        with pytest.raises(SpecError) as caught:
            call()
        assert str(caught.value) == message
    assert list(tmp_path.iterdir()) == []


def test_abstol_minus_infinity_is_no_rule_as_in_r():
    result = fit(specc.load("input x\ny = a*x + b\n"), {"x": [0.0, 1.0, 2.0], "y": [1.0, 3.0, 5.0]},
                 optimizer="bfgs", max_iter=50, abstol=-math.inf, reltol=0.0)
    assert result.settings["abstol"] == -math.inf


# ---------------------------------------------------------------- output paths, before any work
def _outputs(tmp_path: Path) -> dict:
    """A file, a folder, a spec and data the commands may be pointed at, in ``tmp_path``."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("a file")
    spec, data = tmp_path / "sine.spec", tmp_path / "sine.csv"
    spec.write_text(SINE.read_text())
    data.write_text(SINE_DATA.read_text())
    (tmp_path / "old.safetensors").write_bytes(b"previous weights")
    return {"spec": spec, "data": data}


# (command, the option, the bad output (relative to tmp_path), the reason printed)
COMMANDS = {
    "train --out": ["train", "{spec}", "--data", "{data}", "--out", "{target}"],
    "train --plot": ["train", "{spec}", "--data", "{data}", "--out", "old.safetensors", "--plot", "{target}"],
    "compile -o": ["compile", "{spec}", "-o", "{target}"],
    "draw -o": ["draw", "{spec}", "-o", "{target}"],
    "predict -o": ["predict", "{spec}", "--weights", "old.safetensors", "--data", "{data}", "-o", "{target}"],
}
SUFFIX = {"train --out": ".safetensors", "train --plot": ".png", "compile -o": ".py", "draw -o": ".dot",
          "predict -o": ".csv"}
BAD_OUTPUTS = [(command, *case) for command in COMMANDS for case in [
    ("folder", "it is a folder"),
    ("file/x" + SUFFIX[command], "file is a file, not a folder"),
    ("no/x" + SUFFIX[command], "the folder no does not exist (specc makes no folders)"),
]] + [
    ("train --out", "sine.spec", "it would overwrite the spec"),
    ("train --out", "sine.csv", "it would overwrite the data (--data)"),
    ("train --plot", "sine.csv", "it would overwrite the data (--data)"),
    ("train --plot", "old.safetensors", "it would overwrite the weights (--out)"),
    ("train --plot", "loss.xyz", f"unsupported format '.xyz' ({MATPLOTLIB})"),
    ("compile -o", "sine.spec", "it would overwrite the spec"),
    ("draw -o", "sine.spec", "it would overwrite the spec"),
    ("draw -o", "net.xyz", "unsupported format '.xyz' (specc draws .dot, .gv, .pdf, .png or .svg)"),
    ("draw -o", "net", "no format suffix (specc draws .dot, .gv, .pdf, .png or .svg)"),
    ("predict -o", "sine.csv", "it would overwrite the data (--data)"),
    ("predict -o", "old.safetensors", "it would overwrite the weights (--weights)"),
    ("predict -o", "sine.spec", "it would overwrite the spec"),
]


@pytest.mark.parametrize("command, target, reason", BAD_OUTPUTS, ids=[f"{c} {t}" for c, t, _ in BAD_OUTPUTS])
def test_a_bad_output_is_one_line_before_any_work(command, target, reason, tmp_path, monkeypatch, capsys,
                                                  no_work):
    monkeypatch.chdir(tmp_path)
    names = _outputs(tmp_path)
    before = snapshot(tmp_path)
    argv = [a.format(target=target, **names) for a in COMMANDS[command]]
    option = command.split()[1]
    assert run(capsys, *argv) == (1, "", f"error: cannot write {target} ({option}): {reason}\n")
    assert snapshot(tmp_path) == before  # nothing written, nothing replaced, no temporary file


def test_the_same_file_through_another_name_is_refused(tmp_path, capsys, no_work):
    names = _outputs(tmp_path)
    link = tmp_path / "link.csv"
    os.link(names["data"], link)  # a hard link: another name, the same file
    code, _, err = run(capsys, "train", names["spec"], "--data", names["data"], "--out", link)
    assert (code, err) == (1, f"error: cannot write {link} (--out): it would overwrite the data (--data)\n")


def test_demo_out_is_a_folder_made_in_a_folder_that_exists(tmp_path, capsys, no_work):
    (tmp_path / "file").write_text("a file")
    for target, reason in [(tmp_path / "file", "it is a file, not a folder"),
                           (tmp_path / "no" / "out", f"the folder {tmp_path / 'no'} does not exist "
                                                     f"(specc makes no folders)")]:
        assert run(capsys, "demo", "--out", target) == (1, "", f"error: cannot write {target} (--out): {reason}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def _read_only_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:  # root writes anyway: try, as specc does
        (folder / "probe").write_text("")
    except PermissionError:
        return folder
    pytest.skip("this user writes into a folder with mode 555 (root): see the /sys case")


def _sys_folder(tmp_path: Path) -> Path:
    folder = Path("/sys")
    try:
        (folder / "specc-probe").write_text("")
    except OSError:
        return folder
    pytest.skip("/sys takes new files here")


@pytest.mark.parametrize("make", [_read_only_folder, _sys_folder], ids=["mode 555", "/sys"])
@pytest.mark.parametrize("command", COMMANDS)
def test_a_folder_that_takes_no_files_is_refused_by_trying(command, make, tmp_path, monkeypatch, capsys, no_work):
    folder = make(tmp_path)
    monkeypatch.chdir(tmp_path)
    names = _outputs(tmp_path)
    target = folder / ("x" + SUFFIX[command])
    argv = [a.format(target=target, **names) for a in COMMANDS[command]]
    code, out, err = run(capsys, *argv)
    assert (code, out) == (1, "")
    assert err == f"error: cannot write {target} ({command.split()[1]}): cannot make files in {folder}: " \
                  f"Permission denied\n"
    assert not target.exists()


def test_train_refuses_its_outputs_before_the_fit_not_after(tmp_path, capsys, monkeypatch):
    """Not mocked: a slow fit (100,000 epochs) is never started when --plot cannot be written."""
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"previous weights")
    code, out, err = run(capsys, "train", SINE, "--data", SINE_DATA, "--optimizer", "adam", "--epochs", 100_000,
                         "--out", weights, "--plot", tmp_path / "loss.xyz")
    assert (code, out) == (1, "") and err.startswith(f"error: cannot write {tmp_path / 'loss.xyz'} (--plot): ")
    assert weights.read_bytes() == b"previous weights"


# ---------------------------------------------------------------- the API's writers, the same rules
def test_the_writers_refuse_in_one_line(tmp_path):
    model = specc.load(SINE)
    (tmp_path / "folder").mkdir()
    cases = [(lambda: save_weights(model, tmp_path / "no" / "w.safetensors"),
              f"cannot write {tmp_path / 'no' / 'w.safetensors'}: the folder {tmp_path / 'no'} does not exist "
              f"(specc makes no folders)"),
             (lambda: save_weights(model, tmp_path / "folder"), f"cannot write {tmp_path / 'folder'}: it is a folder"),
             (lambda: plot_history([1.0, 0.5], tmp_path / "loss.xyz"),
              f"cannot write {tmp_path / 'loss.xyz'}: unsupported format '.xyz' ({MATPLOTLIB})"),
             (lambda: write_drawing(specc.draw(SINE), tmp_path / "folder" / "x.svg" / "y.dot"),
              f"cannot write {tmp_path / 'folder' / 'x.svg' / 'y.dot'}: the folder "
              f"{tmp_path / 'folder' / 'x.svg'} does not exist (specc makes no folders)")]
    for call, message in cases:
        with pytest.raises(SpecError) as caught:
            call()
        assert str(caught.value) == message
    assert [p.name for p in tmp_path.iterdir()] == ["folder"] and not list((tmp_path / "folder").iterdir())


def test_check_output_names_the_option_and_takes_a_missing_target(tmp_path):
    assert check_output(tmp_path / "new.png", "--plot", formats={".png"}) == tmp_path / "new.png"
    assert list(tmp_path.iterdir()) == []  # the trial file is gone


# ---------------------------------------------------------------- atomic writes
def test_one_temporary_file_fsynced_then_renamed_then_the_folder_fsynced(tmp_path, monkeypatch):
    seen, synced = [], []
    real_fsync = os.fsync

    def fsync(handle):
        synced.append(os.path.realpath(f"/proc/self/fd/{handle}") if os.path.exists("/proc/self/fd") else handle)
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        real_fsync(handle)
    monkeypatch.setattr(os, "fsync", fsync)
    target = tmp_path / "w.safetensors"
    save_weights(specc.load(SINE), target)
    assert len(seen) == 2 and len(seen[0]) == 1  # one temporary file, no second one from safetensors
    temporary = seen[0][0]
    assert temporary.startswith(f".w.safetensors.{os.getpid()}.") and temporary.endswith(".tmp")
    if os.path.exists("/proc/self/fd"):
        assert synced == [str(tmp_path / temporary), str(tmp_path)]  # the file before the rename, then the folder
    assert seen[1] == ["w.safetensors"]
    assert specc.read_weights(target)[0].keys() == dict(specc.load(SINE).state_dict()).keys()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_next_write_removes_the_temporary_files_of_dead_runs_only(tmp_path):
    target = tmp_path / "out.py"
    dead, alive = _dead_pid(), os.getppid()
    stale = tmp_path / f".out.py.{dead}.0123abcd.tmp"
    running = tmp_path / f".out.py.{alive}.0123abcd.tmp"
    other = tmp_path / f".out.py.1.{dead}.0123abcd.tmp"  # another target's ("out.py.1") temporary file
    for path in (stale, running, other):
        path.write_text("left over")
    write_file(target, b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.py", running.name, other.name])
    assert remove_stale(tmp_path / "out.py.1") == [other]


KILLED_WRITER = textwrap.dedent("""
    import os, sys, time
    import torch, specc
    from specc.weights import save_weights
    real_write = os.write
    def slow_write(handle, data):  # the first MiB, then a pause the test ends with SIGKILL
        written = real_write(handle, data)
        print("writing", flush=True)
        time.sleep(60)
        return written
    model = specc.load("input x[1000]\\ny[1000] = W·x\\n")  # 4 MB of weights
    os.write = slow_write
    save_weights(model, sys.argv[1])
""")


def test_a_kill_during_a_write_keeps_the_previous_file_and_the_next_write_cleans_up(tmp_path):
    target = tmp_path / "w.safetensors"
    model = specc.load("input x[1000]\ny[1000] = W·x\n")
    save_weights(model, target)
    previous = target.read_bytes()
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "writing\n"
        leftovers = [p for p in tmp_path.iterdir() if p != target]
        assert len(leftovers) == 1 and re.fullmatch(rf"\.w\.safetensors\.{child.pid}\.[0-9a-f]{{8}}\.tmp",
                                                    leftovers[0].name)
        assert 0 < leftovers[0].stat().st_size < len(previous)  # killed in the middle of the write
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert target.read_bytes() == previous
    with torch.no_grad():
        model.W.fill_(0.5)
    save_weights(model, target)  # the next write to the same target
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]
    assert torch.equal(specc.read_weights(target)[0]["W"], torch.full((1000, 1000), 0.5))


def test_an_interrupted_block_leaves_no_temporary_file_and_an_os_error_is_one_line(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")
    with pytest.raises(SpecError, match=f"^cannot write {target}: No space left on device$"):
        with atomic_path(target):
            raise OSError(28, "No space left on device")
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"] and target.read_text() == "old"
