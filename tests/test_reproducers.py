"""Every reproducer of issue 11's *Why*, one row each: sizes, specs that checked fine and then crashed, data
files, weights files, arguments, output paths, line ends, file contents, and a kill during a write.

Each row runs ``specc`` (in this process, through ``specc.cli.main``; the kill and the long fit in a
child process) in a folder of its own and asserts the contract: exit status 1, no traceback, exactly
one ``error:`` line on standard error (a spec's error also quotes its line with a caret; notes and
warnings may follow), the error line naming what is wrong (the file, the option, the place), the
files the row names untouched (a previous ``--out``, the data, the spec) and nothing written that the
row says must not be. The exact words of each message are tested beside the code that prints them
(tests/test_outputs_and_args.py, tests/test_readers.py, tests/test_limits* …); this table holds the
*Why* list to the contract as a whole.
"""
from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save as safetensors_bytes

import specc
from specc.cli import main
from specc.errors import SpecError

ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------- the files every row starts with
SPEC = "input x\ny = a*x + b\n"  # two parameters: what every data, weights and argument row trains
DATA = "x,y\n" + "".join(f"{x / 10},{2 * x / 10 + 1}\n" for x in range(20))
PREVIOUS = b"previous weights: must survive\n"  # prev.safetensors: a previous --out (never read)
TRAIN = ["train", "s.spec", "--data", "d.csv", "--optimizer", "adam", "--epochs", "2", "--quiet"]
TRAIN_OUT = TRAIN + ["--out", "prev.safetensors"]


def weights(**tensors) -> bytes:
    return safetensors_bytes({name: torch.as_tensor(value) for name, value in tensors.items()})


def npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def npz_members(**members: bytes) -> bytes:
    """An NPZ archive of the given .npy members' bytes, written as they are (damaged or not)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(f"{name}.npy", data)
    return buffer.getvalue()


def npy_header(header: str, payload: bytes = b"\0" * 16) -> bytes:
    """A version 1.0 .npy file with this header text, padded as NumPy pads it."""
    text = header.encode("latin1")
    pad = 64 - (10 + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + payload


GOOD_WEIGHTS = weights(a=torch.tensor(2.0), b=torch.tensor(1.0))
X = npy(np.linspace(0, 1, 5))


@dataclass
class Row:
    """One reproducer: ``argv`` run in a folder holding the standard files plus ``files`` (bytes, text,
    or None for a folder); the error line must contain each of ``names``; ``spec`` errors quote a line
    (``excerpt``: which text) with a caret; ``keep`` files stay as they were, ``absent`` ones never
    appear. ``{ro}`` in ``argv`` is a folder that takes no new files."""

    id: str
    argv: list[str]
    files: dict | None = None
    names: tuple[str, ...] = ()
    spec: bool = False
    excerpt: str | None = None
    keep: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    child: float | None = None  # run as a child process with this timeout (a fit that must not start)
    hidden: tuple[str, ...] = ()  # text that must not appear on standard error (a file's contents)
    xfail: str | None = None


def spec_row(id, text, command=("check",), extra=(), names=(), **kw) -> Row:
    return Row(id, [*command, "s.spec", *extra], {"s.spec": text}, names=("s.spec:", *names), spec=True, **kw)


# ---------------------------------------------------------------- the table
SIZES = [
    spec_row("size-1e6-squared-check", "input x[1000000]\ny[1000000] = W·x\n"),
    spec_row("size-1e6-squared-train", "input x[1000000]\ny[1000000] = W·x\n", ("train",),
             ("--data", "d.csv", "--optimizer", "adam", "--quiet", "--out", "prev.safetensors"),
             keep=("prev.safetensors",)),
    spec_row("size-20-digits-check", "input x[99999999999999999999]\ny = sum(x)\n", names=("s.spec:1:9",)),
    spec_row("size-20-digits-compile", "input x[99999999999999999999]\ny = sum(x)\n", ("compile",), ("-o", "out.py"),
             names=("s.spec:1:9",), absent=("out.py",)),
    spec_row("size-5000-digits-check", "input x[" + "9" * 5000 + "]\ny = sum(x)\n", names=("s.spec:1:9",)),
    spec_row("size-1e9-layer-check", "input x\nh[1000000000] = tanh(W·x + b)\ny = sum(h)\n"),
    spec_row("size-1e9-layer-train", "input x\nh[1000000000] = tanh(W·x + b)\ny = sum(h)\n", ("train",),
             ("--data", "d.csv", "--quiet")),
]

CHECKED_THEN_CRASHED = [
    spec_row("log-of-minus-one-bfgs", "input x\ny = a*x + log(-1)\n", ("train",),
             ("--data", "d.csv", "--optimizer", "bfgs", "--quiet", "--out", "prev.safetensors"), names=("s.spec:2:",),
             keep=("prev.safetensors",)),
    Row("no-parameter-output-train", TRAIN_OUT, {"s.spec": "input x\ny = 2*x\n"}, names=("nothing to fit", " y "),
        keep=("prev.safetensors",)),
    spec_row("one-over-zero-draw", "input x\ny = x + 1/0\n", ("draw",), ("-o", "d.dot"), names=("s.spec:2:",),
             absent=("d.dot",)),
    spec_row("1e308-in-float32-train", "input x\ny = concat(a*x, 1e308)\n", ("train",),
             ("--data", "d2.csv", "--optimizer", "adam", "--epochs", "2", "--quiet", "--out", "prev.safetensors"),
             names=("s.spec:2:",), keep=("prev.safetensors",)),
]

DATA_FILES = [
    Row("npy-renamed-npz", TRAIN_OUT[:3] + ["d.npz"] + TRAIN_OUT[4:], {"d.npz": X}, ("d.npz",),
        keep=("prev.safetensors",)),
    Row("empty-npz-zero-bytes", TRAIN_OUT[:3] + ["d.npz"] + TRAIN_OUT[4:], {"d.npz": b""}, ("d.npz",),
        keep=("prev.safetensors",)),
    Row("empty-npz-no-arrays", TRAIN_OUT[:3] + ["d.npz"] + TRAIN_OUT[4:], {"d.npz": npz()}, ("d.npz",),
        keep=("prev.safetensors",)),
    Row("npz-corrupt-header", TRAIN_OUT[:3] + ["d.npz"] + TRAIN_OUT[4:],
        {"d.npz": npz_members(x=npy_header("{'descr': '<f8', 'fortran_order': Fa"), y=X)}, ("d.npz",),
        keep=("prev.safetensors",)),
    Row("npz-header-3.6-TiB", TRAIN_OUT[:3] + ["d.npz"] + TRAIN_OUT[4:],
        {"d.npz": npz_members(x=npy_header("{'descr': '<f8', 'fortran_order': False, 'shape': (500000000000,), }"),
                              y=X)}, ("d.npz",), keep=("prev.safetensors",)),
    Row("csv-cell-over-131072-characters", TRAIN_OUT, {"d.csv": "x,y\n" + "1" * 140_000 + ",1\n2,3\n"}, ("d.csv",),
        keep=("prev.safetensors",)),
    Row("data-beyond-float32", TRAIN_OUT, {"d.csv": "x,y\n1e39,1\n2,3\n3,4\n"}, ("d.csv",),
        keep=("prev.safetensors",)),
    Row("complex-npz", TRAIN_OUT[:3] + ["d.npz"] + TRAIN_OUT[4:],
        {"d.npz": npz(x=np.array([1 + 2j, 2 + 0j, 3 - 1j]), y=np.array([1.0, 2.0, 3.0]))}, ("d.npz",),
        keep=("prev.safetensors",)),
    Row("csv-underscore-number", TRAIN_OUT, {"d.csv": "x,y\n1_000,2\n2,3\n"}, ("d.csv",),
        keep=("prev.safetensors",)),
]

PREDICT = ["predict", "s.spec", "--weights", "w.safetensors", "--data", "d.csv"]
INIT_FROM = TRAIN_OUT + ["--init-from", "w.json"]
WEIGHTS = [
    Row("weights-nan", PREDICT, {"w.safetensors": weights(a=torch.tensor(float("nan")), b=torch.tensor(1.0))},
        ("w.safetensors",)),
    Row("weights-inf", PREDICT, {"w.safetensors": weights(a=torch.tensor(float("inf")), b=torch.tensor(1.0))},
        ("w.safetensors",)),
    Row("weights-int", PREDICT, {"w.safetensors": weights(a=torch.tensor(2), b=torch.tensor(1))}, ("w.safetensors",)),
    Row("weights-bool", PREDICT, {"w.safetensors": weights(a=torch.tensor(True), b=torch.tensor(False))},
        ("w.safetensors",)),
    Row("weights-fp8", PREDICT, {"w.safetensors": weights(a=torch.tensor(2.0).to(torch.float8_e4m3fn),
                                                           b=torch.tensor(1.0).to(torch.float8_e4m3fn))},
        ("w.safetensors",)),
    Row("init-from-nan", TRAIN_OUT + ["--init-from", "w.safetensors"],
        {"w.safetensors": weights(a=torch.tensor(float("nan")), b=torch.tensor(1.0))}, ("w.safetensors",),
        keep=("prev.safetensors",)),
    Row("json-nested-100000-deep", INIT_FROM, {"w.json": '{"a": ' + "[" * 100_000 + "1" + "]" * 100_000 + ', "b": 0}'},
        ("w.json",), keep=("prev.safetensors",)),
    Row("json-10-to-the-400", INIT_FROM, {"w.json": '{"a": 1' + "0" * 400 + ', "b": 0}'}, ("w.json",),
        keep=("prev.safetensors",)),
    Row("json-nan", INIT_FROM, {"w.json": '{"a": NaN, "b": 0}'}, ("w.json",), keep=("prev.safetensors",)),
    Row("wts-list-with-a-string", INIT_FROM, {"w.json": '[0.5, "a"]'}, ("w.json",), keep=("prev.safetensors",)),
    Row("wts-list-with-a-null", INIT_FROM, {"w.json": "[0.5, null]"}, ("w.json",), keep=("prev.safetensors",)),
]

SGD = ["train", "s.spec", "--data", "d.csv", "--optimizer", "sgd", "--epochs", "2", "--quiet",
       "--out", "prev.safetensors"]
ARGUMENTS = [
    Row(f"argument{flag}-{value}", SGD + [flag, value], names=(flag,), keep=("prev.safetensors",))
    for flag, value in [("--lr", "-1"), ("--momentum", "-1"), ("--lr", "inf"), ("--decay", "nan"),
                        ("--seed", str(2 ** 64)), ("--rang", "nan")]
] + [Row("loss-bce-unbounded-output", TRAIN_OUT + ["--loss", "bce"], names=("bce",), keep=("prev.safetensors",))]

# Each writing command with its output option, the target given as {} (a folder for demo).
WRITERS = {
    "draw": ["draw", "s.spec", "-o", "{}"],
    "train": TRAIN + ["--out", "{}"],
    "predict": ["predict", "s.spec", "--weights", "w.safetensors", "--data", "d.csv", "-o", "{}"],
    "demo": ["demo", "--specs", "specs", "--out", "{}"],
    "compile": ["compile", "s.spec", "-o", "{}"],
}
SUFFIX = {"draw": ".dot", "train": ".safetensors", "predict": ".csv", "demo": "", "compile": ".py"}


def _writer(command: str, target: str) -> list[str]:
    return [a.replace("{}", target) for a in WRITERS[command]]


OUTPUT_PATHS = [
    Row(f"{command}-read-only-folder", _writer(command, "{ro}/x" + SUFFIX[command]), names=("{ro}",))
    for command in WRITERS
] + [
    Row(f"{command}-folder-as-target", _writer(command, "folder"), {"folder": None}, names=("folder",))
    for command in WRITERS if command != "demo"
] + [
    Row("demo-file-as-folder", _writer("demo", "notes.txt"), {"notes.txt": "notes"}, names=("notes.txt",),
        keep=("notes.txt",)),
] + [
    Row(f"{command}-path-under-a-file", _writer(command, "notes.txt/x" + SUFFIX[command]), {"notes.txt": "notes"},
        names=("notes.txt",), keep=("notes.txt",))
    for command in WRITERS
] + [
    Row(f"{command}-missing-parent-folder", _writer(command, "missing/x" + SUFFIX[command]), names=("missing",),
        absent=("missing",))
    for command in WRITERS
] + [
    Row("train-bad-out-fails-before-the-fit", ["train", "s.spec", "--data", "d.csv", "--optimizer", "sgd",
                                               "--epochs", "100000000", "--quiet", "--out", "missing/w.safetensors"],
        names=("missing",), absent=("missing",), child=60),
    Row("train-plot-xyz-fails-before-writing", TRAIN + ["--out", "new.safetensors", "--plot", "loss.xyz"],
        names=("loss.xyz",), absent=("new.safetensors", "loss.xyz")),
    Row("train-out-is-the-data", TRAIN + ["--out", "d.csv"], names=("d.csv",), keep=("d.csv",)),
    Row("train-out-is-the-spec", TRAIN + ["--out", "s.spec"], names=("s.spec",), keep=("s.spec",)),
    Row("compile-o-is-the-spec", ["compile", "s.spec", "-o", "s.spec"], names=("s.spec",), keep=("s.spec",)),
    Row("predict-o-is-the-data", WRITERS["predict"][:-1] + ["d.csv"], names=("d.csv",), keep=("d.csv",)),
]

LINE_ENDS = [
    spec_row("cr-only-line-ends", "input x\rh = tanh(x)\ry = h +\r", names=("s.spec:3:",), excerpt="y = h +"),
    spec_row("crlf-line-ends", "input x\r\nh = tanh(x)\r\ny = h +\r\n", names=("s.spec:3:",), excerpt="y = h +"),
] + [
    spec_row(f"{name}-in-a-comment", f"# one{char}two\ninput x\ny = x +\n", names=("s.spec:3:",), excerpt="y = x +")
    for name, char in [("formfeed", "\f"), ("vt", "\v"), ("nel", "\x85"), ("u2028", "\u2028"), ("u2029", "\u2029")]
] + [spec_row("unicode-digit-size", "input x[৪]\ny = sum(x)\n", names=("s.spec:1:9",))]

FILE_CONTENTS = [
    Row("check-a-file-that-is-no-spec", ["check", "/proc/self/environ"], names=("/proc/self/environ",)),
    Row("check-a-secret-named-txt", ["check", "secret.txt"], {"secret.txt": "password = hunter2\n"},
        names=("secret.txt",), hidden=("hunter2",)),
]

ROWS = SIZES + CHECKED_THEN_CRASHED + DATA_FILES + WEIGHTS + ARGUMENTS + OUTPUT_PATHS + LINE_ENDS + FILE_CONTENTS


# ---------------------------------------------------------------- running a row
def read_only_folder(tmp_path: Path) -> Path:
    """A folder that takes no new files: a folder without write permission, or for root (whom
    permission bits do not stop) /sys/kernel, where no one makes files."""
    if os.geteuid() != 0:
        folder = tmp_path / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    folder = Path("/sys/kernel")
    try:
        os.close(os.open(folder / ".probe", os.O_WRONLY | os.O_CREAT | os.O_EXCL))
    except OSError:
        return folder
    os.unlink(folder / ".probe")
    pytest.skip("no folder refuses new files here")


def set_up(folder: Path, row: Row) -> None:
    (folder / "s.spec").write_text(SPEC, encoding="utf-8")
    (folder / "d.csv").write_text(DATA, encoding="utf-8")
    (folder / "d2.csv").write_text("x,y[1],y[2]\n" + "".join(f"{x},{x},1\n" for x in range(5)), encoding="utf-8")
    (folder / "prev.safetensors").write_bytes(PREVIOUS)
    (folder / "w.safetensors").write_bytes(GOOD_WEIGHTS)
    (folder / "specs").mkdir()
    for name, content in (row.files or {}).items():
        path = folder / name
        if content is None:
            path.mkdir()
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            with open(path, "w", encoding="utf-8", newline="") as file:  # line ends as written
                file.write(content)
    (folder / "specs" / "s.spec").write_bytes((folder / "s.spec").read_bytes())


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    shown = warnings.showwarning
    try:
        status = main(argv)
    except SystemExit as err:  # argparse: a usage error
        status = err.code
    finally:
        warnings.showwarning = shown
    return status, capsys.readouterr().err


def run_child(argv: list[str], folder: Path, timeout: float) -> tuple[int, str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, "-m", "specc", *argv], cwd=folder, env=env, capture_output=True,
                            text=True, timeout=timeout)
    return result.returncode, result.stderr


def assert_one_error(stderr: str, row: Row) -> str:
    """The contract on standard error; returns the error line."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [i for i, line in enumerate(lines) if re.search(r"(^|: )error: ", line)]
    assert len(errors) == 1, f"{len(errors)} error lines:\n{stderr}"
    at = errors[0]
    for i, line in enumerate(lines):
        if i != at and not (line.startswith("    ") or "note:" in line or "warning:" in line):
            raise AssertionError(f"a line that is no error, excerpt, note or warning: {line!r}\n{stderr}")
    line = lines[at]
    if row.spec:
        assert re.match(r"\S.*:\d+:\d+: error: ", line), stderr
        assert at + 2 < len(lines) and lines[at + 1].startswith("    ") and \
            re.fullmatch(r" {4,}\^~*", lines[at + 2]), f"no excerpt and caret:\n{stderr}"
        if row.excerpt is not None:
            assert lines[at + 1] == "    " + row.excerpt, stderr
    for name in row.names:
        assert name in line, f"{name!r} not in the error line:\n{stderr}"
    return line


@pytest.mark.parametrize("row", [pytest.param(r, id=r.id, marks=[pytest.mark.xfail(strict=True, reason=r.xfail)]
                                              if r.xfail else []) for r in ROWS])
def test_reproducer_ends_in_one_error_line(row, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "case"
    folder.mkdir()
    set_up(folder, row)
    ro = str(read_only_folder(tmp_path)) if any("{ro}" in a for a in row.argv) else None
    argv = [a.replace("{ro}", ro) if ro else a for a in row.argv]
    row = Row(**{**row.__dict__, "names": tuple(n.replace("{ro}", ro) if ro else n for n in row.names)})
    before = {name: (folder / name).read_bytes() for name in row.keep}
    monkeypatch.chdir(folder)
    torch.manual_seed(0)
    if row.child:
        started = time.monotonic()
        status, stderr = run_child(argv, folder, row.child)
        assert time.monotonic() - started < row.child
    else:
        status, stderr = run_cli(argv, capsys)
    assert status == 1, f"exit status {status}\n{stderr}"
    assert_one_error(stderr, row)
    for text in row.hidden + (_environment() if "/proc/self/environ" in argv else ()):
        assert text not in stderr, f"{text!r} is quoted:\n{stderr}"
    for name, data in before.items():
        assert (folder / name).read_bytes() == data, f"{name} changed"
    for name in row.absent:
        assert not (folder / name).exists(), f"{name} was written"
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")], "a temporary file is left"


def test_the_table_covers_every_line_of_why():
    """The issue's *Why*, line by line, and the rows that reproduce it (ids are the table's)."""
    ids = {r.id for r in ROWS}
    why = {
        "input x[1000000] then y[1000000] = W·x": ["size-1e6-squared-check", "size-1e6-squared-train"],
        "x[99999999999999999999]": ["size-20-digits-check", "size-20-digits-compile"],
        "a size with 5,000 digits": ["size-5000-digits-check"],
        "a 10⁹-unit layer": ["size-1e9-layer-check", "size-1e9-layer-train"],
        "y = a*x + log(-1) with bfgs": ["log-of-minus-one-bfgs"],
        "outputs that depend on no parameter": ["no-parameter-output-train"],
        "y = x + 1/0 in draw": ["one-over-zero-draw"],
        "concat(a*x, 1e308) at train time": ["1e308-in-float32-train"],
        "npy renamed npz, empty npz, corrupt header, 3.6 TiB header": [
            "npy-renamed-npz", "empty-npz-zero-bytes", "empty-npz-no-arrays", "npz-corrupt-header",
            "npz-header-3.6-TiB"],
        "a CSV cell over 131,072 characters": ["csv-cell-over-131072-characters"],
        "data beyond float32 replaces good weights": ["data-beyond-float32"],
        "complex NPZ, 1_000 in CSV": ["complex-npz", "csv-underscore-number"],
        "NaN/inf or int/bool/fp8 weights": ["weights-nan", "weights-inf", "weights-int", "weights-bool",
                                            "weights-fp8", "init-from-nan", "json-nan"],
        "JSON nested 100,000 deep, 10**400, Wts with strings or nulls": [
            "json-nested-100000-deep", "json-10-to-the-400", "wts-list-with-a-string", "wts-list-with-a-null"],
        "--lr -1, --momentum -1, --lr inf, --decay nan, --seed 2**64, --rang nan": [
            "argument--lr--1", "argument--momentum--1", "argument--lr-inf", "argument--decay-nan",
            f"argument--seed-{2 ** 64}", "argument--rang-nan"],
        "--loss bce on an unbounded output": ["loss-bce-unbounded-output"],
        "read-only folder, folder as target, path under a file": [
            f"{c}-{what}" for c in WRITERS for what in ("read-only-folder", "path-under-a-file")]
            + [f"{c}-folder-as-target" for c in WRITERS if c != "demo"] + ["demo-file-as-folder"],
        "train --out to a bad path fails only after the fit": ["train-bad-out-fails-before-the-fit"],
        "--plot loss.xyz fails after the weights are written": ["train-plot-xyz-fails-before-writing"],
        "--out pointed at the data or spec file": ["train-out-is-the-data", "train-out-is-the-spec",
                                                   "compile-o-is-the-spec", "predict-o-is-the-data"],
        "a missing parent folder": [f"{c}-missing-parent-folder" for c in WRITERS],
        "CR-only line ends, \\f/VT/NEL/U+2028 in a comment": [
            "cr-only-line-ends", "crlf-line-ends", "formfeed-in-a-comment", "vt-in-a-comment",
            "nel-in-a-comment", "u2028-in-a-comment", "u2029-in-a-comment"],
        "unicode digits as sizes": ["unicode-digit-size"],
        "file contents can leak": ["check-a-file-that-is-no-spec", "check-a-secret-named-txt"],
    }
    for line, rows in why.items():
        assert rows and set(rows) <= ids, (line, set(rows) - ids)
    assert set().union(*why.values()) == ids  # and no row outside the list


def _environment() -> tuple[str, ...]:
    """The longer values of this process's environment as /proc/self/environ holds them."""
    try:
        data = Path("/proc/self/environ").read_bytes()
    except OSError:
        return ()
    return tuple(v.decode("utf-8", "replace") for v in data.split(b"\0") if len(v) > 12)


# ---------------------------------------------------------------- line ends, through the API
# The command line reads files with Python's universal newlines; spec text given to the API is taken as is.
API_LINE_ENDS = [("cr-only", "input x\rh = tanh(x)\ry = h +\r", 3, "y = h +"),
                 ("cr-only-error-inside", "input x\r\rh[0] = tanh(x)\r", 3, "h[0] = tanh(x)"),
                 ("crlf", "input x\r\nh = tanh(x)\r\ny = h +\r\n", 3, "y = h +"),
                 ("mixed", "input x\rh = tanh(x)\r\n\ny = h +", 4, "y = h +")] + [
    (f"{name}-in-a-comment", f"# one{char}two\ninput x\ny = x +\n", 3, "y = x +")
    for name, char in [("formfeed", "\f"), ("vt", "\v"), ("nel", "\x85"), ("u2028", "\u2028"),
                       ("u2029", "\u2029"), ("fs", "\x1c")]]


@pytest.mark.parametrize("name,text,line,excerpt", API_LINE_ENDS, ids=[c[0] for c in API_LINE_ENDS])
def test_an_error_points_at_its_line_whatever_the_line_ends(name, text, line, excerpt):
    with pytest.raises(SpecError) as caught:
        specc.graph(text)
    err = caught.value
    report = err.format().split("\n")
    assert err.line == line, err.format()
    assert report[1] == "    " + excerpt, err.format()


# ---------------------------------------------------------------- file contents, through the API
def test_a_file_is_never_read_as_a_spec_because_a_string_names_it(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("password = hunter2\n", encoding="utf-8")
    environ = Path("/proc/self/environ")
    for source in [str(secret), str(environ)] if environ.exists() else [str(secret)]:
        with pytest.raises(SpecError) as caught:
            specc.load(source)
        report = caught.value.format()
        assert "hunter2" not in report and "Traceback" not in report
        if source == str(environ):
            values = [v for v in environ.read_bytes().split(b"\0") if len(v) > 12]
            assert not any(v.decode("utf-8", "replace") in report for v in values), report


# ---------------------------------------------------------------- a kill during a write
# 16 million numbers, 64 MB in float32: a fit of one epoch takes a moment, the write long enough to be cut.
BIG = "input x[2]\nparam P[4000, 4000]\nh = P·(W·x)\ny = sum(h)\n"


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:  # renamed or removed meanwhile
        return 0


def _write_and_kill(folder: Path, delay: float) -> bool:
    """Start a fit writing big.safetensors; SIGKILL it ``delay`` s after any new file with bytes in it
    appears beside the target (a temporary file, whoever made it: mid-write). Whether it was killed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1"}
    known = {p.name for p in folder.iterdir()}
    child = subprocess.Popen([sys.executable, "-m", "specc", "train", "big.spec", "--data", "big.csv", "--optimizer",
                              "adam", "--epochs", "1", "--quiet", "--out", "big.safetensors"],
                             cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while child.poll() is None and time.monotonic() < deadline:
            if any(p.name not in known and _size(p) > 0 for p in folder.iterdir()):
                time.sleep(delay)
                child.send_signal(signal.SIGKILL)
                child.wait()
                return True
        return False
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_a_kill_during_a_write_keeps_the_previous_file_and_the_next_write_removes_its_temporaries(
        tmp_path, monkeypatch, capsys):
    from safetensors.torch import load
    folder = tmp_path
    (folder / "big.spec").write_text(BIG, encoding="utf-8")
    (folder / "big.csv").write_text("x[1],x[2],y\n1,2,3\n2,1,0\n", encoding="utf-8")
    (folder / "big.safetensors").write_bytes(PREVIOUS)
    for delay in (0.0, 0.02):  # at once, and a little later: the file is whole or the previous one
        assert _write_and_kill(folder, delay), "the write ended before it could be killed"
        after = (folder / "big.safetensors").read_bytes()
        assert after == PREVIOUS or set(load(after)) == {"P", "W"}  # killed after the rename: the new file
    # The next write to the same target (here, from this process) removes what the killed runs left.
    (folder / "small.spec").write_text(SPEC, encoding="utf-8")
    (folder / "d.csv").write_text(DATA, encoding="utf-8")
    monkeypatch.chdir(folder)
    status, stderr = run_cli(["train", "small.spec", "--data", "d.csv", "--optimizer", "adam", "--epochs", "1",
                              "--quiet", "--out", "big.safetensors"], capsys)
    assert status == 0, stderr
    assert sorted(p.name for p in folder.iterdir()) == ["big.csv", "big.safetensors", "big.spec", "d.csv",
                                                        "small.spec"]
    assert set(load((folder / "big.safetensors").read_bytes())) == {"a", "b"}
