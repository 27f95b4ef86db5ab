"""Data files as named float64 arrays: the :class:`Table` every reader returns, and the array formats.

NPY and NPZ members that are stored uncompressed are memory-mapped rather than read: a float64
array costs no copy until a tensor is built from it (pages come from the file as they are
touched). Every header is read and checked first (kind of number, declared size against the bytes
there): a header may declare terabytes. Parquet goes through pyarrow (the ``data`` extra).
CSV is specc/train/csv_reader.py. ``limit`` is the most numbers one file may hold
(specc.train.data.MAX_VALUES, passed in so that it is read when the file is).
"""
from __future__ import annotations

import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, Span
from ..files import require


@dataclass
class Table:
    """Named arrays from one source (a file or a dict), and how to quote a CSV line in an error:
    the CSV ``text`` itself (small files, read whole) or the ``csv_path`` to read the line from again."""

    origin: str
    arrays: dict[str, np.ndarray]
    text: str | None = None  # the CSV text, so errors can quote the line
    csv_path: Path | None = None  # a streamed CSV: its line is read again only when an error quotes it

    @property
    def is_csv(self) -> bool:
        """Whether the rows came from a CSV file (one row a line: errors point at lines)."""
        return self.text is not None or self.csv_path is not None

    def error(self, message: str, row: int | None = None, column: str | None = None) -> DataError:
        """A DataError at ``row`` (0-based data row): ``FILE:LINE:COL`` for CSV, ``FILE: row N`` otherwise."""
        if row is None:
            return DataError(f"{self.origin}: {message}")
        if not self.is_csv:
            return DataError(f"{self.origin}: row {row + 1}: {message}")
        line = row + 2  # the header is line 1
        if self.text is not None:
            lines = self.text.splitlines()
            text, source = lines[line - 1] if line <= len(lines) else "", self.text
        else:
            # Only the quoted line is kept: the excerpt finds it at its line number after empty lines.
            text = csv_line(self.csv_path, line)
            source = "\n" * (line - 1) + text
        start, end = self._field(text, column)
        return DataError(f"{message} (data row {row + 1})", Span(self.origin, line, start, line, end), source=source)

    def _field(self, text: str, column: str | None) -> tuple[int, int]:
        """1-based columns of a field in a CSV line without quotes (else the whole line), for the caret."""
        names = list(self.arrays)
        if column in names and '"' not in text and len(text.split(",")) == len(names):
            fields = text.split(",")
            start = sum(len(f) + 1 for f in fields[:names.index(column)]) + 1
            return start, start + max(1, len(fields[names.index(column)]))
        return 1, max(2, len(text) + 1)


def csv_line(path: Path, line: int) -> str:
    """Line ``line`` (from 1) of a text file, without its end, read up to there and no further."""
    with open(path, encoding="utf-8-sig", errors="replace") as handle:
        for number, text in enumerate(handle, 1):
            if number == line:
                return text.rstrip("\n")
    return ""


def too_many(path, limit: int) -> DataError:
    return DataError(f"{path}: more than {limit:,} values, the limit for one data file "
                     "(specc.train.data.MAX_VALUES)")


# ---------------------------------------------------------------- kinds of number
def numeric(origin: str, name: str, dtype: np.dtype) -> None:
    """Refuse a dtype that is not real numbers: complex, text, dates, records, Python objects."""
    if dtype.kind in "biuf":
        return
    what = {"c": f"complex values ({dtype}); the data must be real numbers", "U": f"text ({dtype})",
            "S": f"bytes ({dtype})", "O": "Python objects", "M": f"dates ({dtype})", "m": f"durations ({dtype})",
            "V": f"records ({dtype})"}.get(dtype.kind, str(dtype))
    raise DataError(f"{origin}: array '{name}' holds {what}" + ("" if dtype.kind == "c" else ", not numbers"))


def as_float64(origin: str, name: str, array: np.ndarray) -> np.ndarray:
    """Real numbers as float64: booleans become 0 and 1, integers the nearest double (exact to 2⁵³).
    A memory-mapped float64 array stays mapped (no copy); anything else is a new array."""
    numeric(origin, name, array.dtype)
    if isinstance(array, np.memmap) and array.dtype == np.float64:
        return array.view(np.ndarray)
    with np.errstate(over="ignore"):  # a long double beyond float64 becomes inf: refused as not finite
        return array.astype(np.float64)


def _bytes(n: int) -> str:
    """A byte count in words: 80 bytes, 3.6 TiB."""
    power = min(4, (n.bit_length() - 1) // 10) if n >= 1024 else 0
    return f"{n} bytes" if power == 0 else f"{n / 1024 ** power:.1f} {('KiB', 'MiB', 'GiB', 'TiB')[power - 1]}"


def _npy_header(member, size: int) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """(shape, fortran order, dtype, bytes after the header) of an .npy stream, reading only its header."""
    version = np.lib.format.read_magic(member)
    if version not in ((1, 0), (2, 0)):  # 3.0 is for structured arrays with non-Latin-1 field names
        raise ValueError(f"npy format version {version[0]}.{version[1]}, not an array of numbers")
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read(member)
    if any(n < 0 for n in shape):
        raise ValueError(f"negative size in shape {shape}")
    return shape, fortran, dtype, size - member.tell()


def _checked_size(path, name: str, shape, dtype: np.dtype, data_bytes: int) -> int:
    declared = math.prod(shape) * dtype.itemsize
    if declared > data_bytes:
        raise DataError(f"{path}: array '{name}' declares shape {list(shape)} ({_bytes(declared)}) "
                        f"but holds {_bytes(data_bytes)}")
    return math.prod(shape) * max(1, _values_per_item(dtype))


def _values_per_item(dtype: np.dtype) -> int:
    """Numbers in one element: 1, or the sum over a record's fields (a field may be a sub-array)."""
    if dtype.names is None:
        return math.prod(dtype.shape) if dtype.subdtype else 1
    return sum(_values_per_item(dtype.fields[f][0]) for f in dtype.names)


def _mapped(path: Path, offset: int, shape, fortran: bool, dtype: np.dtype) -> np.ndarray:
    if math.prod(shape) == 0:  # mmap cannot map zero bytes
        return np.empty(shape, dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")


# ---------------------------------------------------------------- NPZ
def read_npz(path: Path, limit: int) -> Table:
    """The arrays of an NPZ archive: stored members memory-mapped (their CRC still checked),
    compressed ones (numpy.savez_compressed) read."""
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if not magic:
        raise DataError(f"{path}: empty file (expected an NPZ archive of named arrays, from numpy.savez)")
    if magic == b"\x93NUMPY":
        raise DataError(f"{path}: an NPY file (one unnamed array), not an NPZ archive of named arrays: "
                        "save the arrays by name with numpy.savez(path, x=…, y=…)")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise DataError(f"{path}: not an NPZ file (not a zip archive: {err})") from None
    arrays, total = {}, 0
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if not members:
            raise DataError(f"{path}: an NPZ archive with no arrays in it")
        for info in members:
            name = info.filename.removesuffix(".npy")
            if not info.filename.endswith(".npy"):
                raise DataError(f"{path}: '{info.filename}' in the archive is not an array (.npy)")
            # A damaged archive fails in zipfile (a bad CRC, found once a member is read to its end), numpy
            # or tokenize (a garbled header), with any of their exceptions.
            shape = None
            try:
                with archive.open(info) as member:
                    shape, fortran, dtype, data_bytes = _npy_header(member, info.file_size)
                    header_bytes = member.tell()
                numeric(str(path), name, dtype)
                total += _checked_size(path, name, shape, dtype, data_bytes)
                if total > limit:
                    raise too_many(path, limit)
                arrays[name] = _npz_member(path, archive, info, header_bytes, (shape, fortran, dtype))
            except DataError:
                raise
            except Exception as err:  # noqa: BLE001
                if shape is None and not isinstance(err, zipfile.BadZipFile):
                    raise DataError(f"{path}: array '{name}' has a corrupt .npy header") from None
                reason = str(err).splitlines()[0] if str(err) else type(err).__name__
                raise DataError(f"{path}: array '{name}' is damaged ({reason})") from None
    return Table(str(path), {name: as_float64(str(path), name, array) for name, array in arrays.items()})


def _npz_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, header_bytes: int,
                layout) -> np.ndarray:
    """One member's array: mapped from the archive file where it is stored as is, else read."""
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:  # compressed or encrypted
        with archive.open(info) as member:
            return np.lib.format.read_array(member, allow_pickle=False)
    with open(path, "rb") as handle:  # the local header's own name and extra lengths say where data start
        handle.seek(info.header_offset)
        local = handle.read(30)
    if len(local) < 30 or local[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"bad local header for file '{info.filename}'")
    start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
    _check_crc(path, info, start)
    return _mapped(path, start + header_bytes, *layout)


def _check_crc(path: Path, info: zipfile.ZipInfo, start: int, block: int = 1 << 24) -> None:
    """The member's CRC-32, as zipfile checks it on reading, in blocks: mapping skips zipfile's check."""
    crc, left = 0, info.file_size
    with open(path, "rb") as handle:
        handle.seek(start)
        while left:
            data = handle.read(min(block, left))
            if not data:
                break
            crc, left = zlib.crc32(data, crc), left - len(data)
    if left or crc != info.CRC:
        raise zipfile.BadZipFile(f"Bad CRC-32 for file '{info.filename}'")


# ---------------------------------------------------------------- NPY
def read_npy(path: Path, limit: int) -> Table:
    """A structured .npy array (one record per row): its fields are the columns, memory-mapped."""
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"{path}: empty file (expected an NPY array of records with named fields)")
    try:
        with open(path, "rb") as handle:
            shape, fortran, dtype, data_bytes = _npy_header(handle, size)
            offset = handle.tell()
    except Exception:  # noqa: BLE001 - numpy and tokenize fail on a garbled header in many ways
        raise DataError(f"{path}: not an NPY file, or one with a corrupt header") from None
    if dtype.names is None:
        raise DataError(f"{path}: an NPY file of one unnamed array ({dtype}): save records with named fields "
                        "(numpy.save(path, records) with a dtype such as [('x', 'f8'), ('h', 'f8', (3,))]), or "
                        "the arrays by name with numpy.savez(path, x=…, y=…)")
    for name in dtype.names:
        numeric(str(path), name, dtype.fields[name][0].base)
    if _checked_size(path, "records", shape, dtype, data_bytes) > limit:
        raise too_many(path, limit)
    if len(shape) != 1:
        raise DataError(f"{path}: records of shape {list(shape)}: one record per row is shape [rows]")
    records = _mapped(path, offset, shape, fortran, dtype)
    return Table(str(path), {name: _field_array(str(path), name, records[name]) for name in dtype.names})


def _field_array(origin: str, name: str, field: np.ndarray) -> np.ndarray:
    """A record field as float64: a float64 field of a record stays a strided view of the mapping."""
    if field.dtype == np.float64 and field.dtype.isnative:
        return field.view(np.ndarray)
    return as_float64(origin, name, np.asarray(field))


# ---------------------------------------------------------------- Parquet
def read_parquet(path: Path, limit: int) -> Table:
    """A Parquet file's columns: numbers, booleans, or fixed-size lists of numbers ([rows, n] arrays)."""
    parquet = require("pyarrow.parquet", "reading Parquet data")
    import pyarrow as pa
    try:
        meta = parquet.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"{path}: not a Parquet file ({str(err).splitlines()[0]})") from None
    widths = [f.type.list_size if pa.types.is_fixed_size_list(f.type) else 1 for f in meta.schema_arrow]
    if meta.metadata.num_rows * sum(widths) > limit:
        raise too_many(path, limit)
    table = meta.read()
    arrays = {}
    for name, column in zip(table.column_names, table.columns):
        kind, values, width = column.type, column.combine_chunks(), 1
        if pa.types.is_fixed_size_list(kind):  # a vector per row: its elements, [rows, n] once checked
            _no_nulls(path, name, values, 1)
            kind, values, width = kind.value_type, values.flatten(), kind.list_size
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
            raise DataError(f"{path}: column '{name}' holds {column.type}, not numbers")
        _no_nulls(path, name, values, width)
        array = values.to_numpy(zero_copy_only=False)
        arrays[name] = as_float64(str(path), name, array if width == 1 and column.type == kind
                                  else array.reshape(-1, width))
    return Table(str(path), arrays)


def _no_nulls(path: Path, name: str, values, width: int) -> None:
    """Refuse a missing value (null): the first one's row, counting ``width`` values a row."""
    if values.null_count:
        row = int(np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))[0]) // width
        raise DataError(f"{path}: row {row + 1}: column '{name}': a missing value (null), not a number")
