"""Malformed data and weights files (issue 11): each is refused with one line naming the file and what
is wrong, through the Python API and the command line (exit 1, no traceback, a previous output intact)."""
import io
import zipfile

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import specc
import specc.weights
from specc.cli import main
from specc.errors import DataError, SpecError
from specc.train import data as sd
from specc.train import fit, predict, start_from

SINE = "input x\nh[4] = logistic(W1·x + b1)\ny[1] = W2·h + b2\n"  # an unbounded output
SIG = "input x\nh[4] = logistic(W1·x + b1)\ny[1] = sigmoid(W2·h + b2)\n"  # a probability
GOOD = "x,y\n0,0\n1,1\n2,0\n3,1\n"
PREVIOUS = b"the previous output, which a failed run must leave as it was"


# ---------------------------------------------------------------- writing malformed files
def npy_bytes(array, header=None):
    """An .npy file's bytes; ``header`` replaces the header's dict text."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    data = buffer.getvalue()
    if header is None:
        return data
    text = (header.ljust(118) + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + data[128:]


def npz(path, **members):
    """A zip of members (bytes), as np.savez writes them, each one stored (not compressed)."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def savez(path, **arrays):
    np.savez(path, **arrays)
    return path


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def npy_renamed(d):
    np.save(d / "a.npy", np.arange(3.0))
    return (d / "a.npy").rename(d / "d.npz")


def damaged_data(d):
    """A valid archive with one byte of an array's data changed: its CRC no longer matches."""
    path = savez(d / "d.npz", x=np.array([1.5, 2.5]), y=np.array([0.0, 1.0]))
    raw = bytearray(path.read_bytes())
    at = raw.index(np.array([1.5]).tobytes())
    raw[at] ^= 1
    path.write_bytes(bytes(raw))
    return path


# (id, spec, loss, writer(dir) -> data file, the report's first line with {d} for the folder)
DATA = [
    ("npy-renamed", SINE, "mse", npy_renamed,
     "error: {d}/d.npz: an NPY file (one unnamed array), not an NPZ archive of named arrays: save the arrays "
     "by name with numpy.savez(path, x=…, y=…)"),
    ("empty-npz", SINE, "mse", lambda d: npz(d / "d.npz"), "error: {d}/d.npz: an NPZ archive with no arrays in it"),
    ("zero-bytes", SINE, "mse", lambda d: write(d / "d.npz", ""),
     "error: {d}/d.npz: empty file (expected an NPZ archive of named arrays, from numpy.savez)"),
    ("not-zip", SINE, "mse", lambda d: write(d / "d.npz", "x,y\n1,2\n"),
     "error: {d}/d.npz: not an NPZ file (not a zip archive: File is not a zip file)"),
    ("corrupt-header", SINE, "mse",
     lambda d: npz(d / "d.npz", **{"x.npy": npy_bytes(np.arange(3.0))[:10] + b"{'descr': '<f8', (" + b" " * 100}),
     "error: {d}/d.npz: array 'x' has a corrupt .npy header"),
    ("terabytes", SINE, "mse",
     lambda d: npz(d / "d.npz", **{"x.npy": npy_bytes(np.zeros(10), "{'descr': '<f8', 'fortran_order': False, "
                                                       "'shape': (500000000000,), }")}),
     "error: {d}/d.npz: array 'x' declares shape [500000000000] (3.6 TiB) but holds 80 bytes"),
    ("truncated", SINE, "mse", lambda d: npz(d / "d.npz", **{"x.npy": npy_bytes(np.arange(3.0))[:-8]}),
     "error: {d}/d.npz: array 'x' declares shape [3] (24 bytes) but holds 16 bytes"),
    ("bad-crc", SINE, "mse", damaged_data, "error: {d}/d.npz: array 'x' is damaged (Bad CRC-32 for file 'x.npy')"),
    ("not-npy", SINE, "mse", lambda d: npz(d / "d.npz", **{"notes.txt": b"hello"}),
     "error: {d}/d.npz: 'notes.txt' in the archive is not an array (.npy)"),
    ("complex", SINE, "mse", lambda d: savez(d / "d.npz", x=np.array([1 + 2j, 3]), y=np.ones(2)),
     "error: {d}/d.npz: array 'x' holds complex values (complex128); the data must be real numbers"),
    ("text", SINE, "mse", lambda d: savez(d / "d.npz", x=np.array(["a", "b"]), y=np.ones(2)),
     "error: {d}/d.npz: array 'x' holds text (<U1), not numbers"),
    ("objects", SINE, "mse", lambda d: savez(d / "d.npz", x=np.array([None, 1], dtype=object), y=np.ones(2)),
     "error: {d}/d.npz: array 'x' holds Python objects, not numbers"),
    ("dates", SINE, "mse", lambda d: savez(d / "d.npz", x=np.array(["2024-01-01"], dtype="datetime64[D]"),
                                           y=np.ones(1)),
     "error: {d}/d.npz: array 'x' holds dates (datetime64[D]), not numbers"),
    ("npz-inf", SINE, "mse", lambda d: savez(d / "d.npz", x=np.array([1.0, np.inf]), y=np.ones(2)),
     "error: {d}/d.npz: row 2: column 'x': inf is not a finite number"),
    ("long-cell", SINE, "mse", lambda d: write(d / "d.csv", "x,y\n" + "1" * 200_000 + ",2\n"),
     "{d}/d.csv:2:1: error: a field longer than 131072 characters (csv's limit; no number is that long)"),
    ("underscore", SINE, "mse", lambda d: write(d / "d.csv", "x,y\n1_000,2\n"),
     "{d}/d.csv:2:1: error: column 'x': '1_000' is not a plain decimal number (digits 0-9, a '.', an exponent "
     "such as e-3; no '_') (data row 1)"),
    ("arabic-digits", SINE, "mse", lambda d: write(d / "d.csv", "x,y\n1,2\n3,\u0661\u0662\n"),
     "{d}/d.csv:3:3: error: column 'y': '\u0661\u0662' is not a plain decimal number (digits 0-9, a '.', an "
     "exponent such as e-3; no '_') (data row 2)"),
    ("csv-nan", SINE, "mse", lambda d: write(d / "d.csv", "x,y\n1,2\n3,nan\n"),
     "{d}/d.csv:3:3: error: column 'y': NaN is not a finite number (data row 2)"),
    ("blank-header", SINE, "mse", lambda d: write(d / "d.csv", "\nx,y\n1,2\n"),
     "error: {d}/d.csv: the first line, the header naming the columns, is blank"),
    ("beyond-float32-csv", SINE, "mse", lambda d: write(d / "d.csv", "x,y\n1,2\n1e39,3\n"),
     "{d}/d.csv:3:1: error: column 'x': 1e+39 is beyond float32's range (±3.4e+38): train in float64 "
     "(--dtype float64) or scale the column (data row 2)"),
    ("beyond-float32-npz", SINE, "mse", lambda d: savez(d / "d.npz", x=np.ones(3), y=np.array([[1], [-4e38], [2]])),
     "error: {d}/d.npz: row 2: column 'y[1]': -4e+38 is beyond float32's range (±3.4e+38): train in float64 "
     "(--dtype float64) or scale the column"),
    ("bce-targets", SIG, "bce", lambda d: write(d / "d.csv", "x,y\n1,1\n2,2\n"),
     "{d}/d.csv:3:3: error: column 'y': 2 is not in [0, 1]: the targets of loss 'bce' are probabilities "
     "(data row 2)"),
    ("bce-output", SINE, "bce", lambda d: write(d / "d.csv", GOOD),
     "{d}/s.spec:3:8: error: loss 'bce' needs probabilities in [0, 1], and output 'y' (W2·h + b2) can leave "
     "them: end it with sigmoid(…), softmax(…) or clamp(…, 0, 1), or choose another loss"),
]


def _first_line(err: SpecError) -> str:
    return err.format().splitlines()[0]


@pytest.mark.parametrize("spec, loss, writer, expected", [c[1:] for c in DATA], ids=[c[0] for c in DATA])
def test_bad_data_through_the_api(tmp_path, spec, loss, writer, expected):
    bad = writer(tmp_path)
    write(tmp_path / "s.spec", spec)
    with pytest.raises(SpecError) as caught:
        fit(specc.load(tmp_path / "s.spec"), bad, loss=loss, optimizer="adam", epochs=1, progress=False)
    assert _first_line(caught.value) == expected.format(d=tmp_path)


@pytest.mark.parametrize("spec, loss, writer, expected", [c[1:] for c in DATA], ids=[c[0] for c in DATA])
def test_bad_data_through_the_command_line(tmp_path, capsys, spec, loss, writer, expected):
    bad = writer(tmp_path)
    out = tmp_path / "out.safetensors"
    out.write_bytes(PREVIOUS)
    write(tmp_path / "s.spec", spec)
    status = main(["train", str(tmp_path / "s.spec"), "--data", str(bad), "--loss", loss, "--optimizer", "adam",
                   "--epochs", "1", "--quiet", "--out", str(out)])
    captured = capsys.readouterr()
    assert (status, captured.out) == (1, "") and "Traceback" not in captured.err
    assert captured.err.splitlines()[0] == expected.format(d=tmp_path)
    if expected.startswith("error: "):  # no place: the message is the one line
        assert len(captured.err.splitlines()) == 1
    assert out.read_bytes() == PREVIOUS


def test_data_values_are_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(sd, "MAX_VALUES", 5)
    write(tmp_path / "d.csv", "x,y\n1,2\n3,4\n5,6\n")
    with pytest.raises(DataError) as caught:
        sd.read_table(tmp_path / "d.csv")
    assert str(caught.value) == f"{tmp_path}/d.csv: more than 5 values, the limit for one data file " \
                                "(specc.train.data.MAX_VALUES)"
    savez(tmp_path / "d.npz", x=np.ones(3), y=np.ones(3))
    with pytest.raises(DataError, match=r"d\.npz: more than 5 values, the limit for one data file"):
        sd.read_table(tmp_path / "d.npz")


def test_integers_and_booleans_are_converted_to_float(tmp_path):
    savez(tmp_path / "d.npz", x=np.array([True, False, True]), y=np.array([1, -2, 2 ** 40], dtype=np.int64))
    tensors = sd.tensors_for(specc.load(SINE), tmp_path / "d.npz", dtype=torch.float64)
    assert tensors["x"].tolist() == [1.0, 0.0, 1.0] and tensors["y"].flatten().tolist() == [1.0, -2.0, 2.0 ** 40]


def test_a_dict_is_checked_as_a_file_is():
    model = specc.load(SINE)
    for value, message in [(torch.tensor([1 + 1j]), "data: array 'x' holds complex values (complex128); the data "
                                                    "must be real numbers"),
                           ([None, 1.0], "data: array 'x' holds Python objects, not numbers"),
                           (["1", "2"], "data: array 'x' holds text (<U1), not numbers")]:
        with pytest.raises(DataError) as caught:
            sd.tensors_for(model, {"x": value, "y": [1.0] * len(value)})
        assert str(caught.value) == message
    bf16 = sd.tensors_for(model, {"x": torch.ones(2, dtype=torch.bfloat16), "y": [1, 2]}, dtype=torch.float64)
    assert bf16["x"].tolist() == [1.0, 1.0]


def test_predict_refuses_inputs_beyond_the_models_dtype(tmp_path):
    write(tmp_path / "d.csv", "x\n1\n-1e39\n")
    with pytest.raises(DataError) as caught:
        predict(specc.load(SINE), tmp_path / "d.csv")
    assert _first_line(caught.value) == f"{tmp_path}/d.csv:3:1: error: column 'x': -1e+39 is beyond float32's " \
                                        "range (±3.4e+38): train in float64 (--dtype float64) or scale the column " \
                                        "(data row 2)"
    assert predict(specc.load(SINE).double(), tmp_path / "d.csv")["y"].shape == (2, 1)  # float64 holds it


def test_bce_accepts_a_clamped_or_softmax_output(tmp_path):
    write(tmp_path / "d.csv", GOOD)
    for spec in ("input x\ny = clamp(a*x + b, 0, 1)\n", "input x\nz = sigmoid(a*x + b)\ny = z\n",
                 "input x\nlo = 0\ny = clamp(a*x + b, lo, 2/2)\n"):
        fit(specc.load(spec), tmp_path / "d.csv", loss="bce", optimizer="adam", epochs=1, progress=False)


# ---------------------------------------------------------------- weights files
def weights_json(d, **values):
    """A JSON weights file for SINE whose entries are ``values`` (JSON text) or zeros of the right shape."""
    default = {"W1": "[[0], [0], [0], [0]]", "b1": "[0, 0, 0, 0]", "W2": "[[0, 0, 0, 0]]", "b2": "[0]"}
    text = "{" + ", ".join(f'"{k}": {v}' for k, v in (default | values).items()) + "}"
    return write(d / "w.json", text)


def weights_safetensors(d, name="W1", value=None, dtype=torch.float32):
    tensors = {"W1": torch.zeros(4, 1), "b1": torch.zeros(4), "W2": torch.zeros(1, 4), "b2": torch.zeros(1)}
    tensors = {k: v.to(dtype) for k, v in tensors.items()}
    if value is not None:
        tensors[name] = value
    save_file(tensors, str(d / "w.safetensors"))
    return d / "w.safetensors"


DEEP = 100_000
# (id, writer(dir) -> weights file, the one line for {d} the folder)
WEIGHTS = [
    ("deep", lambda d: weights_json(d, W1="[" * DEEP + "]" * DEEP),
     "error: {d}/w.json: JSON nested 100,001 levels deep, over the limit of 32 (specc.weights.JSON_MAX_DEPTH)"),
    ("huge-int", lambda d: weights_json(d, b2="[1" + "0" * 400 + "]"),
     "error: {d}/w.json: 'b2[1]' is 10000000…00000000 (401 characters), beyond float64's range"),
    ("huge-float", lambda d: weights_json(d, b2="1e400"), "error: {d}/w.json: 'b2' is 1e400, beyond float64's range"),
    ("nan", lambda d: weights_json(d, W1="[[0], [NaN], [0], [0]]"),
     "error: {d}/w.json: 'W1[2,1]' is NaN; weights must be finite numbers"),
    ("minus-infinity", lambda d: weights_json(d, b1="[0, 0, 0, -Infinity]"),
     "error: {d}/w.json: 'b1[4]' is -Infinity; weights must be finite numbers"),
    ("string", lambda d: weights_json(d, b1='[0, "a", 0, 0]'), "error: {d}/w.json: 'b1[2]' is \"a\", not a number"),
    ("null", lambda d: weights_json(d, b1="[0, null, 0, 0]"), "error: {d}/w.json: 'b1[2]' is null, not a number"),
    ("true", lambda d: weights_json(d, b2="true"), "error: {d}/w.json: 'b2' is true, not a number"),
    ("object", lambda d: weights_json(d, b2="[{}]"), "error: {d}/w.json: 'b2[1]' is an object, not a number"),
    ("ragged", lambda d: weights_json(d, W1="[[0], [0, 1], [0], [0]]"),
     "error: {d}/w.json: 'W1' is not a number or a regular nested list (expected sequence of length 1 at dim 1 "
     "(got 2))"),
    ("not-json", lambda d: write(d / "w.json", "{'W1': 1}"),
     "error: {d}/w.json: not a JSON file of named tensors (Expecting property name enclosed in double quotes: "
     "line 1 column 2 (char 1))"),
    ("json-beyond-float32", lambda d: weights_json(d, b2="[1e39]"),
     "error: {d}/w.json: 'b2[1]' is 1e+39, beyond the float32 model's range (±3.4e+38): load it in float64"),
    ("st-nan", lambda d: weights_safetensors(d, "W1", torch.tensor([[0.0], [0.0], [float("nan")], [0.0]])),
     "error: {d}/w.safetensors: 'W1[3,1]' is NaN; weights must be finite numbers"),
    ("st-inf", lambda d: weights_safetensors(d, "b2", torch.tensor([float("inf")])),
     "error: {d}/w.safetensors: 'b2[1]' is inf; weights must be finite numbers"),
    ("st-int", lambda d: weights_safetensors(d, dtype=torch.int32),
     "error: {d}/w.safetensors: 'W1' holds int32 values; weights are floating point (float16, bfloat16, "
     "float32, float64)"),
    ("st-bool", lambda d: weights_safetensors(d, "b1", torch.ones(4, dtype=torch.bool)),
     "error: {d}/w.safetensors: 'b1' holds bool values; weights are floating point (float16, bfloat16, "
     "float32, float64)"),
    ("st-fp8", lambda d: weights_safetensors(d, "W2", torch.zeros(1, 4).to(torch.float8_e4m3fn)),
     "error: {d}/w.safetensors: 'W2' holds float8_e4m3fn values; weights are floating point (float16, "
     "bfloat16, float32, float64)"),
    ("st-complex", lambda d: weights_safetensors(d, "b2", torch.zeros(1, dtype=torch.complex64)),
     "error: {d}/w.safetensors: 'b2' holds complex64 values; weights are floating point (float16, bfloat16, "
     "float32, float64)"),
    ("st-garbage", lambda d: write(d / "w.safetensors", "not safetensors at all"),
     "error: {d}/w.safetensors: not a safetensors file (Error while deserializing header: header too large)"),
]
# nnet's flat Wts (a JSON list), read by --init-from only
WTS = [
    ("wts-string", lambda d: write(d / "w.json", '[0, "a", 0]'), "error: {d}/w.json: 'Wts[2]' is \"a\", not a number"),
    ("wts-null", lambda d: write(d / "w.json", "[0, 0, null]"), "error: {d}/w.json: 'Wts[3]' is null, not a number"),
    ("wts-nan", lambda d: write(d / "w.json", "[0, NaN]"), "error: {d}/w.json: 'Wts[2]' is NaN; weights must be "
                                                          "finite numbers"),
    ("wts-deep", lambda d: write(d / "w.json", "[" * DEEP + "]" * DEEP),
     "error: {d}/w.json: JSON nested 100,000 levels deep, over the limit of 32 (specc.weights.JSON_MAX_DEPTH)"),
    ("wts-huge-int", lambda d: write(d / "w.json", "[1" + "0" * 400 + "]"),
     "error: {d}/w.json: 'Wts[1]' is 10000000…00000000 (401 characters), beyond float64's range"),
]


@pytest.mark.parametrize("writer, expected", [c[1:] for c in WEIGHTS], ids=[c[0] for c in WEIGHTS])
def test_bad_weights_through_the_api(tmp_path, writer, expected):
    bad = writer(tmp_path)
    with pytest.raises(DataError) as caught:
        specc.load(SINE, weights=bad)
    assert caught.value.format() == expected.format(d=tmp_path)
    with pytest.raises(DataError) as caught:
        start_from(specc.load(SINE), bad)
    assert caught.value.format() == expected.format(d=tmp_path)


@pytest.mark.parametrize("writer, expected", [c[1:] for c in WEIGHTS], ids=[c[0] for c in WEIGHTS])
def test_bad_weights_through_predict(tmp_path, capsys, writer, expected):
    bad = writer(tmp_path)
    write(tmp_path / "s.spec", SINE)
    write(tmp_path / "d.csv", GOOD)
    out = tmp_path / "preds.csv"
    out.write_bytes(PREVIOUS)
    status = main(["predict", str(tmp_path / "s.spec"), "--weights", str(bad), "--data", str(tmp_path / "d.csv"),
                   "-o", str(out)])
    captured = capsys.readouterr()
    assert (status, captured.out, captured.err) == (1, "", expected.format(d=tmp_path) + "\n")
    assert out.read_bytes() == PREVIOUS


@pytest.mark.parametrize("writer, expected", [c[1:] for c in WEIGHTS + WTS], ids=[c[0] for c in WEIGHTS + WTS])
def test_bad_weights_through_init_from(tmp_path, capsys, writer, expected):
    bad = writer(tmp_path)
    write(tmp_path / "s.spec", SINE)
    write(tmp_path / "d.csv", GOOD)
    out = tmp_path / "out.safetensors"
    out.write_bytes(PREVIOUS)
    status = main(["train", str(tmp_path / "s.spec"), "--data", str(tmp_path / "d.csv"), "--init-from", str(bad),
                   "--optimizer", "adam", "--epochs", "1", "--dtype", "float32", "--quiet", "--out", str(out)])
    captured = capsys.readouterr()
    assert (status, captured.out, captured.err) == (1, "", expected.format(d=tmp_path) + "\n")
    assert out.read_bytes() == PREVIOUS


def test_json_weights_are_bounded_in_size(tmp_path, monkeypatch):
    monkeypatch.setattr(specc.weights, "JSON_MAX_BYTES", 100)
    bad = weights_json(tmp_path, b1="[" + ", ".join(["0.0000000000"] * 4) + "]")
    size = bad.stat().st_size
    with pytest.raises(DataError) as caught:
        specc.load(SINE, weights=bad)
    assert str(caught.value) == f"{bad}: {size} bytes of JSON, over the limit of 100 for JSON weights " \
                                "(specc.weights.JSON_MAX_BYTES): save them as safetensors"


def test_float64_weights_beyond_float32_load_in_float64(tmp_path):
    big = weights_safetensors(tmp_path, "b2", torch.tensor([1e39], dtype=torch.float64), dtype=torch.float64)
    assert specc.load(SINE, weights=big).b2.item() == 1e39  # the file's precision: nothing is lost
    with pytest.raises(DataError) as caught:
        start_from(specc.load(SINE), big)  # a float32 model cannot hold it
    assert str(caught.value) == f"{big}: 'b2[1]' is 1e+39, beyond the float32 model's range (±3.4e+38): load it " \
                                "in float64"


def test_nnet_wts_from_python_are_checked():
    from specc.train.nnet import load_wts
    model = specc.load(SINE)
    with pytest.raises(SpecError) as caught:
        load_wts(model, [0.0] * 12 + ["a"])
    assert str(caught.value).startswith("nnet's Wts must be a list of numbers (")
    with pytest.raises(DataError) as caught:
        load_wts(model, [0.0] * 12 + [float("nan")])
    assert str(caught.value) == "nnet Wts: 'Wts[13]' is NaN; weights must be finite numbers"
