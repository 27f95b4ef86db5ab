"""CSV data streamed into one float64 array, at C speed, with errors that name the line and column.

The file is read in chunks of whole lines (CHUNK_BYTES). A chunk of plain numbers (only digits,
signs, '.', 'e', commas and line ends; no blank line, no over-long line) goes to a C parser:
``pyarrow.csv`` when pyarrow is installed (specc's ``data`` extra), else ``numpy.loadtxt``. Any
other chunk (quotes, spaces, nan, a bad cell, a blank line), or one the C parser refuses, is read
again by the careful path: Python's csv module and ``float()`` cell by cell, exactly the rules and
messages of the original reader, which then says which line and column is wrong. Both paths
accept the same cells with the same values (``float()`` and both C parsers round correctly), so
the engine changes the speed, never the result.

The numbers go into one array that grows in place (``ndarray.resize``: realloc, which moves no
pages for a large block), so the peak is about the numbers themselves (8 bytes each) plus one
chunk; no list of rows or of Python floats is ever held. A file whose header line ends in a lone
CR (old Mac line ends) or is blank is read whole by the careful path, as before.
"""
from __future__ import annotations

import csv
import io
import re
import warnings
from array import array as typed_array
from pathlib import Path

import numpy as np

from ..errors import DataError, Span
from .readers import Table, too_many

CHUNK_BYTES = 1 << 23  # 8 MiB of text a chunk: big enough for C speed, small next to the numbers
ENGINE = "auto"  # 'auto' (pyarrow where installed, else numpy), 'pyarrow', 'numpy' or 'python' (careful only)
# what a chunk for the C parsers may hold (and CR before LF); anything else is read carefully
_NUMBER_BYTES = b"0123456789.eE+-,\n"
# What a CSV cell may hold: Python's float() also takes '1_000' and non-ASCII digits ('١٢').
_PLAIN = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(nan|inf|infinity)", re.ASCII | re.IGNORECASE)
_BOM = b"\xef\xbb\xbf"


def read_csv(path: Path, limit: int) -> Table:
    """The named columns of a CSV file with a header row, as float64 (views of one [rows, columns] array)."""
    with open(path, "rb") as handle:
        first = handle.readline()
        header = _header(first)
        if header is None:  # a blank or unusual header line: the whole-text reader says what is wrong
            return read_csv_text(path, limit)
        table = Table(str(path), dict.fromkeys(header), csv_path=path)  # the names first: errors point at columns
        _check_header(table, header)
        size = path.stat().st_size
        reader = _Chunks(table, header, limit, size - len(first))
        while chunk := handle.read(CHUNK_BYTES):
            if not chunk.endswith(b"\n"):
                chunk += handle.readline()  # whole lines only
            reader.read(chunk, handle.tell() - len(chunk))
    columns = reader.rows.result()
    table.arrays = {name: columns[:, c] for c, name in enumerate(header)}
    return table


def _header(first: bytes) -> list[str] | None:
    """The column names of a first line, or None where the whole-text reader must look at the file."""
    line = first.removeprefix(_BOM).rstrip(b"\n").removesuffix(b"\r")
    if b"\r" in line or line.count(b'"') % 2:  # CR line ends, or a quoted name running over lines
        return None
    try:
        header = next(csv.reader([line.decode("utf-8")]), [])
    except (UnicodeDecodeError, csv.Error):
        return None
    return None if _blank(header) else [name.strip() for name in header]


def _check_header(table: Table, header: list[str]) -> None:
    if "" in header:
        raise table.error("the header has an empty column name")
    for name in header:
        if header.count(name) > 1:
            raise table.error(f"column '{name}' appears twice in the header")


class _Rows:
    """The numbers read so far in one [rows, columns] array, grown in place as rows come."""

    def __init__(self, width: int):
        self.array = np.empty((0, width))
        self.count = 0

    def add(self, block, expected_rows: int = 0) -> None:
        """Append rows: a [rows, columns] array, or a list of columns (1-D arrays of one length).
        ``expected_rows`` sizes the array at the first block."""
        need = self.count + _rows_in(block)
        if not self.count and need > len(self.array):  # np.empty: untouched pages cost no memory
            self.array = np.empty((max(need, expected_rows), self.array.shape[1]))
        elif need > len(self.array):
            # realloc: a large block grows by remapping its pages, with no copy and no second array
            self.array.resize((max(need, len(self.array) * 3 // 2), self.array.shape[1]), refcheck=False)
        if isinstance(block, np.ndarray):
            self.array[self.count:need] = block
        else:
            for c, column in enumerate(block):
                self.array[self.count:need, c] = column
        self.count = need

    def result(self) -> np.ndarray:
        self.array.resize((self.count, self.array.shape[1]), refcheck=False)
        return self.array


def _rows_in(block) -> int:
    return len(block) if isinstance(block, np.ndarray) else len(block[0])


class _Chunks:
    """Reads a CSV body chunk by chunk: the C parser where it can, the careful path where it cannot."""

    def __init__(self, table: Table, header: list[str], limit: int, body_bytes: int):
        self.table, self.header, self.limit = table, header, limit
        self.width = len(header)
        self.rows, self.body_bytes = _Rows(self.width), body_bytes
        self.row = 0  # the data row (from 0) of the chunk's first line
        self.blanks: list[tuple[int, list[str]]] = []  # blank rows not yet followed by data (dropped at the end)
        self.parse = _engine(self.width)

    def read(self, chunk: bytes, offset: int) -> None:
        block = None if self.blanks or self.parse is None else _fast(chunk, self.width, self.parse)
        if block is None:
            self.row += self._careful(chunk, offset)
        else:
            self.rows.add(block, self._expected_rows(_rows_in(block), len(chunk)))
            self.row += _rows_in(block)
        if self.rows.count * self.width > self.limit:
            raise too_many(self.table.origin, self.limit)

    def _careful(self, chunk: bytes, offset: int) -> int:
        """Python's csv and float() over one chunk: the exact rules and messages; the records read."""
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataError(f"{self.table.origin} is not UTF-8 text ({err.reason} at byte {offset + err.start})") \
                from None
        if "\r" in text:  # as a file read as text sees its line ends
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        reader, values = csv.reader(io.StringIO(text)), typed_array("d")
        try:
            records = _take_rows(self.table, self.header, reader, self.row, values, self.blanks, self.limit,
                                 self.rows.count * self.width)
        except csv.Error as err:
            raise _csv_error(self.table.origin, self.row + 1 + reader.line_num, err) from None
        if values:
            block = np.frombuffer(values, dtype=np.float64).reshape(-1, self.width)
            self.rows.add(block, self._expected_rows(len(block), len(chunk)))
        return records

    def _expected_rows(self, rows: int, chunk_bytes: int) -> int:
        """The file's rows guessed from a first chunk's bytes per row (5% over; growing or trimming
        the array later moves no data), never beyond the limit."""
        guess = int(rows * self.body_bytes / max(1, chunk_bytes) * 1.05) + 16
        return min(guess, self.limit // self.width + 1)


def _fast(chunk: bytes, width: int, parse):
    """The numbers of a chunk of plain numbers from the C parser ([rows, columns] or a list of
    columns), or None: read it carefully."""
    others = chunk.translate(None, _NUMBER_BYTES)  # one pass: what is left is not a plain number's
    if others:
        if others.strip(b"\r"):
            return None
        chunk = chunk.replace(b"\r\n", b"\n")
        if b"\r" in chunk:
            return None
    # A blank line makes the rows fewer than the lines (numpy skips it) or fails (pyarrow): the
    # careful path then reads the chunk, with the rules for blank lines.
    lines = chunk.count(b"\n") + (not chunk.endswith(b"\n"))
    if _long_line(chunk, csv.field_size_limit()):  # a field beyond csv's limit is its error, not a number
        return None
    try:
        columns = parse(chunk)
    except ValueError:  # loadtxt's errors, and pyarrow's ArrowInvalid: the careful path says where
        return None
    shape = columns.shape if isinstance(columns, np.ndarray) else (len(columns[0]), len(columns))
    return columns if shape == (lines, width) else None


def _long_line(chunk: bytes, limit: int) -> bool:
    """Whether a line of ``chunk`` may be longer than ``limit``: such a line holds a whole aligned run
    of limit // 2 bytes with no line end, and a few hundred find() calls look for one."""
    step = max(1, limit // 2)
    return any(chunk.find(b"\n", i, i + step) < 0 for i in range(0, len(chunk) - step + 1, step))


def _engine(width: int):
    """The C parser of a chunk (bytes → [rows, columns] or a list of columns), or None for the careful
    path only."""
    if ENGINE in ("auto", "pyarrow"):
        try:
            import pyarrow as pa
            import pyarrow.csv as pacsv
        except ImportError:
            if ENGINE == "pyarrow":
                raise
        else:
            names = [str(c) for c in range(width)]
            read = pacsv.ReadOptions(column_names=names)
            parse = pacsv.ParseOptions(quote_char=False, ignore_empty_lines=False)
            convert = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.float64()), null_values=[],
                                           strings_can_be_null=False)

            def with_pyarrow(chunk: bytes) -> list:
                table = pacsv.read_csv(pa.py_buffer(chunk), read_options=read, parse_options=parse,
                                       convert_options=convert)
                return [column.to_numpy() for column in table.columns]
            return with_pyarrow
    if ENGINE == "python":
        return None

    def with_numpy(chunk: bytes) -> np.ndarray:
        with warnings.catch_warnings():  # blank lines only: no rows, which the careful path explains
            warnings.simplefilter("ignore", UserWarning)
            return np.loadtxt(io.BytesIO(chunk), delimiter=",", dtype=np.float64, ndmin=2, comments=None)
    return with_numpy


def _csv_error(origin: str, line: int, err: csv.Error) -> DataError:
    # no excerpt: the line may be the over-long field itself
    problem = f"a field longer than {csv.field_size_limit()} characters (csv's limit; no number is " \
        "that long)" if "field limit" in str(err) else f"not readable as CSV ({err})"
    return DataError(problem, Span(origin, line, 1, line, 1))


# ---------------------------------------------------------------- the whole-text reader
def read_csv_text(path: Path, limit: int) -> Table:
    """The original reader: the whole text in memory, for a file the streaming reader leaves to it."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    reader = csv.reader(io.StringIO(text))
    try:
        return _parse_csv(path, text, reader, limit)
    except csv.Error as err:
        raise _csv_error(str(path), reader.line_num, err) from None


def _blank(row: list[str]) -> bool:
    return not any(cell.strip() for cell in row)


def _parse_csv(path: Path, text: str, reader, limit: int) -> Table:
    """Rows converted to numbers as they are read (8 bytes a value, not a Python string each)."""
    header = next(reader, None)
    if header is None or (_blank(header) and all(_blank(row) for row in reader)):
        raise DataError(f"{path}: empty file (expected a header row naming the columns)")
    if _blank(header):
        raise DataError(f"{path}: the first line, the header naming the columns, is blank")
    header = [name.strip() for name in header]
    table = Table(str(path), dict.fromkeys(header), text)  # the names first: errors point at columns
    _check_header(table, header)
    values = typed_array("d")
    _take_rows(table, header, reader, 0, values, [], limit)
    columns = np.frombuffer(values, dtype=np.float64).reshape(-1, len(header))
    table.arrays = {name: columns[:, c] for c, name in enumerate(header)}
    return table


def _take_rows(table: Table, header: list[str], rows, first: int, values: typed_array, blanks: list,
               limit: int, held: int = 0) -> int:
    """The rows of a csv reader, numbered from ``first``, converted into ``values``; the records read.
    Trailing blank lines are dropped, but a blank line before data is a row: ``blanks`` holds the
    blank ones not yet followed by data (a chunk's last ones wait for the next chunk). ``held``: the
    values read before these, counted against ``limit``."""
    records = 0
    for records, row in enumerate(rows, 1):
        r = first + records - 1
        if _blank(row):
            blanks.append((r, row))
            continue
        for r_, row_ in blanks + [(r, row)]:
            _csv_row(table, header, r_, row_, values)
        blanks.clear()
        if held + len(values) > limit:
            raise too_many(table.origin, limit)
    return records


def _csv_row(table: Table, header: list[str], r: int, row: list[str], values: typed_array) -> None:
    if len(row) != len(header):
        raise table.error(f"{len(row)} field{'s' * (len(row) != 1)} but the header names {len(header)} "
                          "columns", r)
    for c, cell in enumerate(row):
        try:
            value = float(cell)
        except ValueError:
            raise table.error(f"column '{header[c]}': {cell.strip()!r} is not a number", r, header[c]) from None
        if ("_" in cell or not cell.isascii()) and not _PLAIN.fullmatch(cell.strip()):  # float() takes both
            raise table.error(f"column '{header[c]}': {cell.strip()!r} is not a plain decimal number (digits "
                              "0-9, a '.', an exponent such as e-3; no '_')", r, header[c])
        values.append(value)
