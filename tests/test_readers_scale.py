"""Data at scale (issue 13): the streaming CSV reader gives the original reader's arrays and errors
on every engine and chunk size, in bounded memory; NPY/NPZ are memory-mapped; Parquet via pyarrow."""
import importlib.util
import random
import sys
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import specc
from specc.errors import DataError, SpecError
from specc.train import csv_reader, readers
from specc.train import data as sd

# the C parsers (pyarrow's where installed, numpy's) and the careful path alone
ENGINES = (["pyarrow"] if importlib.util.find_spec("pyarrow") else []) + ["numpy", "python"]

SINE = "input x\nh[4] = logistic(W1·x + b1)\ny[1] = W2·h + b2\n"
VEC = "input x[3]\nh[4] = tanh(W·x + b)\ny = sum(h)\n"
SEQ = "input x[T]\nh[3] = tanh(W·x + U·prev(h) + b)\ny[1] = V·last(h)\noutput y\n"


def write(path: Path, text: str, newline: str = "\n") -> Path:
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


def numbers(rows: int, seed: int = 0) -> str:
    """Rows of 3 numbers as Python writes them: signs, exponents, integers."""
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((rows, 3)) * 10.0 ** rng.integers(-8, 8, (rows, 3))
    values[::7, 1] = np.round(values[::7, 1])
    return "".join(",".join(map(repr, row)) + "\n" for row in values.tolist())


def old(path: Path):
    return csv_reader.read_csv_text(path, sd.MAX_VALUES)


def same(a: sd.Table, b: sd.Table) -> bool:
    return list(a.arrays) == list(b.arrays) and all(
        np.array_equal(a.arrays[k], b.arrays[k], equal_nan=True) for k in a.arrays)


@pytest.fixture(params=ENGINES)
def engine(request, monkeypatch):
    """Each engine, with small chunks so that chunk boundaries fall everywhere."""
    monkeypatch.setattr(csv_reader, "ENGINE", request.param)
    monkeypatch.setattr(csv_reader, "CHUNK_BYTES", 50)
    return request.param


# (id, text, newline)
GOOD = [
    ("plain", "x,y,z\n" + numbers(40), "\n"),
    ("crlf", "x,y,z\n" + numbers(40), "\r\n"),
    ("bom", "\ufeffx,y,z\n" + numbers(20), "\n"),
    ("quoted-header", '"x", "h[1]","h[2]"\n' + numbers(20), "\n"),
    ("comma-in-name", '"a,b",c,d\n' + numbers(5), "\n"),
    ("brackets", "h[1],h[2],h[3]\n" + numbers(30), "\n"),
    ("scientific", "x,y\n" + "1e-3,2.5E+10\n-.5,+3.\n1.e5,-0\n" * 10, "\n"),
    ("trailing-blank-lines", "x,y,z\n" + numbers(10) + "\n\n , ,\n", "\n"),
    ("no-final-newline", "x,y,z\n" + numbers(10).rstrip("\n"), "\n"),
    ("spaces-and-quotes", 'x,y\n 1.5 ,"2"\n3,\t4\n' + "5,6\n" * 30, "\n"),
    ("nan-inf", "x,y\nnan,inf\n-Infinity,1\n" + "1,2\n" * 20, "\n"),
    ("header-only", "x,y\n", "\n"),
    ("cr-only", "x,y\n1,2\n3,4\n", "\r"),
    ("sequences", "sequence,x,y\n" + "".join(f"{s},{t / 10!r},{s * t}\n" for s in (1, 2, 3) for t in range(4)), "\n"),
]


@pytest.mark.parametrize("text, newline", [c[1:] for c in GOOD], ids=[c[0] for c in GOOD])
def test_the_streaming_reader_gives_the_original_arrays(tmp_path, engine, text, newline):
    path = write(tmp_path / "d.csv", text, newline)
    table = sd.read_table(path)
    assert same(table, old(path)) and table.is_csv


def test_a_big_file_mixes_fast_and_careful_chunks(tmp_path, monkeypatch):
    """Quoted cells in a few chunks: those chunks are read carefully, the others by the C parser."""
    lines = numbers(3000).splitlines()
    for i in (5, 1700, 2999):
        lines[i] = '"' + lines[i].replace(",", '","') + '"'
    path = write(tmp_path / "d.csv", "a,b,c\n" + "\n".join(lines) + "\n")
    monkeypatch.setattr(csv_reader, "CHUNK_BYTES", 4096)
    for name in ENGINES:
        monkeypatch.setattr(csv_reader, "ENGINE", name)
        assert same(sd.read_table(path), old(path))


def test_sequences_in_long_rows_read_as_before(tmp_path, engine):
    text = "sequence,x,y\n" + "".join(f"{s},{t / 10!r},{s / 7!r}\n" for s in range(1, 6) for t in range(4))
    path = write(tmp_path / "d.csv", text)
    tensors = sd.tensors_for(specc.load(SEQ), path, dtype=torch.float64)
    assert tensors["x"].shape == (5, 4) and tensors["y"].shape == (5, 1)
    assert torch.equal(tensors["x"][2], torch.tensor([t / 10 for t in range(4)], dtype=torch.float64))


# ---------------------------------------------------------------- errors: file:line:col and the caret as before
BIG = "x,y,z\n" + numbers(600)


def _lines_with(line: int, bad: str, text: str = BIG) -> str:
    lines = text.split("\n")
    lines[line - 1] = bad
    return "\n".join(lines)


BAD = [  # (id, text, the first line of the report, with {p} for the file)
    ("bad-cell-deep", _lines_with(450, "1,abc,3"),
     "{p}:450:3: error: column 'y': 'abc' is not a number (data row 449)"),
    ("empty-cell", _lines_with(300, "1,,3"), "{p}:300:3: error: column 'y': '' is not a number (data row 299)"),
    ("too-few-fields", _lines_with(200, "1,2"), "{p}:200:1: error: 2 fields but the header names 3 columns "
                                                "(data row 199)"),
    ("too-many-fields", _lines_with(2, "1,2,3,4"), "{p}:2:1: error: 4 fields but the header names 3 columns "
                                                   "(data row 1)"),
    ("blank-line-before-data", _lines_with(100, ""), "{p}:100:1: error: 0 fields but the header names 3 columns "
                                                     "(data row 99)"),
    ("underscore", _lines_with(500, "1,2,1_000"),
     "{p}:500:5: error: column 'z': '1_000' is not a plain decimal number (digits 0-9, a '.', an exponent such "
     "as e-3; no '_') (data row 499)"),
    ("bad-exponent", _lines_with(599, "1e,2,3"), "{p}:599:1: error: column 'x': '1e' is not a number (data row 598)"),
    ("two-dots", _lines_with(7, "1,2,1..2"), "{p}:7:5: error: column 'z': '1..2' is not a number (data row 6)"),
    ("long-field", _lines_with(50, "1,2," + "1" * 200_000), "{p}:50:1: error: a field longer than 131072 characters "
                                                            "(csv's limit; no number is that long)"),
    ("duplicate-column", "x,y,x\n1,2,3\n", "error: {p}: column 'x' appears twice in the header"),
    ("blank-header", "\n\nx\n", "error: {p}: the first line, the header naming the columns, is blank"),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_a_bad_cell_is_reported_exactly_as_before(tmp_path, monkeypatch, text, expected):
    path = write(tmp_path / "d.csv", text)
    with pytest.raises(DataError) as before:
        old(path)
    assert before.value.format().splitlines()[0] == expected.format(p=path)
    monkeypatch.setattr(csv_reader, "CHUNK_BYTES", 1000)
    for name in ENGINES:
        monkeypatch.setattr(csv_reader, "ENGINE", name)
        with pytest.raises(DataError) as now:
            sd.read_table(path)
        assert now.value.format() == before.value.format(), name  # the line, the excerpt and the caret


def test_an_error_found_after_reading_quotes_its_line(tmp_path):
    """A non-finite value is found once the arrays are built: the line is read again from the file."""
    path = write(tmp_path / "d.csv", _lines_with(321, "1,nan,3").replace("x,y,z", "x,y[1],z"))
    spec = "input x\ninput z\nh[2] = tanh(W·x + U·z + b)\ny[1] = V·h\n"
    with pytest.raises(DataError) as caught:
        sd.tensors_for(specc.load(spec), path)
    report = caught.value.format().splitlines()
    assert report == [f"{path}:321:3: error: column 'y[1]': NaN is not a finite number (data row 320)",
                      "    1,nan,3", "      ^~~"]


def test_a_non_utf8_byte_is_named_with_its_offset(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(b"x,y\n1,2\n3,\xff\n")
    with pytest.raises(DataError, match=r"d\.csv is not UTF-8 text \(invalid start byte at byte 10\)"):
        old(path)
    with pytest.raises(DataError, match=r"d\.csv is not UTF-8 text \(invalid start byte at byte 10\)"):
        sd.read_table(path)


def test_the_c_parsers_accept_only_what_float_accepts():
    """Cells of digits, signs, dots and exponents: a C parser takes a cell only as float() does,
    with the same value; anything else goes to the careful path (None)."""
    rng = random.Random(7)
    cells = ["", "-", "+", ".", "e", "1e", "e1", "1e+", "1.", ".5", "+.5", "1.e5", ".e5", "1e5.5", "--1", "1-",
             "+-1", "1E5", "-0", "1..2", "1e400", "4.9e-325", "0.1", "9007199254740993"]
    cells += ["".join(rng.choice("0123456789.eE+-") for _ in range(rng.randint(1, 7))) for _ in range(400)]
    for name in ENGINES[:-1]:
        csv_reader.ENGINE = name
        try:
            parse = csv_reader._engine(1)
        finally:
            csv_reader.ENGINE = "auto"
        for cell in cells:
            got = csv_reader._fast((cell + "\n").encode(), 1, parse)
            try:
                want = float(cell)
            except ValueError:
                assert got is None, (name, cell)
                continue
            value = None if got is None else np.asarray(got).flat[0]
            assert value is None or value == want or (np.isnan(want) and np.isnan(value)), (name, cell)


# ---------------------------------------------------------------- memory
def test_memory_stays_near_the_numbers(tmp_path, monkeypatch):
    """100,000 rows × 8 columns (6.4 MB of float64, ~14 MB of text): the reader's peak allocation
    is the numbers plus one chunk, far below the text; the original reader held the whole text."""
    rng = np.random.default_rng(1)
    values = np.round(rng.standard_normal((100_000, 8)), 6)
    path = tmp_path / "d.csv"
    with open(path, "w") as out:
        out.write(",".join(f"c{i}" for i in range(8)) + "\n")
        np.savetxt(out, values, delimiter=",", fmt="%.6f")
    monkeypatch.setattr(csv_reader, "ENGINE", "numpy")  # numpy's allocations are the ones tracemalloc sees
    monkeypatch.setattr(csv_reader, "CHUNK_BYTES", 1 << 20)
    tracemalloc.start()
    try:
        table = sd.read_table(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(np.column_stack(list(table.arrays.values())), values)
    numbers_bytes = values.nbytes
    assert peak < 1.5 * numbers_bytes + 4 * (1 << 20), (peak, numbers_bytes)


# ---------------------------------------------------------------- NPY and NPZ, memory-mapped
def test_npz_members_are_memory_mapped(tmp_path):
    x = np.linspace(0, 1, 50)
    h = np.asfortranarray(np.arange(150.0).reshape(50, 3))
    np.savez(tmp_path / "d.npz", x=h, y=x.astype(">f8"), n=np.arange(50))
    table = sd.read_table(tmp_path / "d.npz")
    assert not table.arrays["x"].flags.writeable  # mapped from the file, not read
    assert np.array_equal(table.arrays["x"], h) and np.array_equal(table.arrays["y"], x)
    assert table.arrays["n"].dtype == np.float64 and table.arrays["n"][-1] == 49.0
    np.savez_compressed(tmp_path / "c.npz", x=h)  # compressed members are read
    assert np.array_equal(sd.read_table(tmp_path / "c.npz").arrays["x"], h)


def test_mapped_data_train_without_warnings(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.ones((8, 3)), y=np.zeros(8))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tensors = sd.tensors_for(specc.load(VEC), tmp_path / "d.npz", dtype=torch.float64)
    tensors["x"] += 1  # a copy: the file is untouched
    assert np.array_equal(np.load(tmp_path / "d.npz")["x"], np.ones((8, 3)))


def test_a_damaged_mapped_member_is_still_found(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.array([1.5, 2.5]), y=np.zeros(2))
    raw = bytearray((tmp_path / "d.npz").read_bytes())
    raw[raw.index(np.array([2.5]).tobytes())] ^= 1
    (tmp_path / "d.npz").write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"array 'x' is damaged \(Bad CRC-32 for file 'x\.npy'\)"):
        sd.read_table(tmp_path / "d.npz")


def test_npy_records_are_memory_mapped_columns(tmp_path):
    records = np.zeros(20, dtype=[("x", "f8", (3,)), ("y", "f8"), ("n", "i4")])
    records["x"] = np.arange(60.0).reshape(20, 3)
    records["y"] = np.linspace(-1, 1, 20)
    records["n"] = np.arange(20)
    np.save(tmp_path / "d.npy", records)
    table = sd.read_table(tmp_path / "d.npy")
    assert not table.arrays["y"].flags.writeable
    assert np.array_equal(table.arrays["x"], records["x"]) and np.array_equal(table.arrays["n"], np.arange(20.0))
    tensors = sd.tensors_for(specc.load(VEC), {k: v for k, v in table.arrays.items() if k != "n"},
                             dtype=torch.float64)
    assert tensors["x"].shape == (20, 3)


@pytest.mark.parametrize("array, message", [
    (np.arange(3.0), "an NPY file of one unnamed array (float64): save records with named fields"),
    (np.zeros((2, 2), dtype=[("x", "f8")]), "records of shape [2, 2]: one record per row is shape [rows]"),
    (np.zeros(2, dtype=[("x", "U3")]), "array 'x' holds text (<U3), not numbers"),
])
def test_npy_files_that_are_not_records_are_refused(tmp_path, array, message):
    np.save(tmp_path / "d.npy", array)
    with pytest.raises(DataError) as caught:
        sd.read_table(tmp_path / "d.npy")
    assert str(caught.value).startswith(f"{tmp_path}/d.npy: {message}")


def test_npy_limits_and_damage(tmp_path, monkeypatch):
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    with pytest.raises(DataError, match="not an NPY file, or one with a corrupt header"):
        sd.read_table(tmp_path / "bad.npy")
    np.save(tmp_path / "d.npy", np.zeros(4, dtype=[("x", "f8", (2,)), ("y", "f8")]))
    monkeypatch.setattr(sd, "MAX_VALUES", 11)
    with pytest.raises(DataError, match="more than 11 values"):
        sd.read_table(tmp_path / "d.npy")


def test_unknown_suffixes_list_every_format(tmp_path):
    write(tmp_path / "d.tsv", "x\n1\n")
    with pytest.raises(DataError, match=r"unknown data format '\.tsv' \(use \.csv, \.npz, \.npy, \.parquet\)"):
        sd.read_table(tmp_path / "d.tsv")


# ---------------------------------------------------------------- Parquet
def test_parquet_columns(tmp_path):
    pa = pytest.importorskip("pyarrow")
    parquet = pytest.importorskip("pyarrow.parquet")
    x = pa.FixedSizeListArray.from_arrays(pa.array(np.arange(12.0)), 3)
    parquet.write_table(pa.table({"x": x, "y": pa.array([1, 2, 3, 4], pa.int32()), "b": [True, False, True, False]}),
                        tmp_path / "d.parquet")
    table = sd.read_table(tmp_path / "d.parquet")
    assert table.arrays["x"].shape == (4, 3) and table.arrays["x"][1].tolist() == [3.0, 4.0, 5.0]
    assert table.arrays["y"].tolist() == [1.0, 2.0, 3.0, 4.0] and table.arrays["b"].tolist() == [1.0, 0.0, 1.0, 0.0]
    parquet.write_table(pa.table({"x": x, "y": [0.5] * 4}), tmp_path / "xy.parquet")
    tensors = sd.tensors_for(specc.load(VEC), tmp_path / "xy.parquet", dtype=torch.float64)
    assert tensors["x"][3].tolist() == [9.0, 10.0, 11.0] and tensors["y"].tolist() == [0.5] * 4


@pytest.mark.parametrize("column, message", [
    (["a", "b"], "column 'x' holds string, not numbers"),
    ([1.0, None], "row 2: column 'x': a missing value (null), not a number"),
])
def test_bad_parquet_columns(tmp_path, column, message):
    pa = pytest.importorskip("pyarrow")
    parquet = pytest.importorskip("pyarrow.parquet")
    parquet.write_table(pa.table({"x": column}), tmp_path / "d.parquet")
    with pytest.raises(DataError) as caught:
        sd.read_table(tmp_path / "d.parquet")
    assert str(caught.value) == f"{tmp_path}/d.parquet: {message}"


def test_parquet_without_pyarrow_says_what_to_install(tmp_path, monkeypatch):
    (tmp_path / "d.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(SpecError) as caught:
        sd.read_table(tmp_path / "d.parquet")
    assert str(caught.value) == "reading Parquet data needs pyarrow, which is not installed: install specc[data] " \
                                "(pip install 'specc[data]')"


def test_csv_without_pyarrow_uses_numpy(tmp_path, monkeypatch):
    path = write(tmp_path / "d.csv", "x,y,z\n" + numbers(50))
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.csv", None)
    assert csv_reader._engine(3).__name__ == "with_numpy"
    assert same(sd.read_table(path), old(path))


def test_tables_of_arrays_are_not_csv():
    assert not readers.Table("data", {"x": np.ones(2)}).is_csv
