"""Building a compiled criterion: C text → a shared library, cached by the hash of its text.

The library for a (spec, loss) is built once per machine: its file name carries the SHA-256 of
the C text, the compiler and its flags, so an unchanged spec is never compiled again and any
change gets a new file. The cache is ``$SPECC_CACHE``, else ``$XDG_CACHE_HOME/specc``, else
``~/.cache/specc``. A build writes a temporary file and renames it into place, so processes
building the same library at once never load a half-written one.

Where no library can be built (no C compiler, a read-only cache, a compiler error), :func:`build`
raises :class:`BuildError` with the reason; the engine then warns in one line and fits with the
NumPy tape (specc/train/engines.py).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shlex
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

# -O3 vectorises the per-row loops (2× on two_io); no -ffast-math: sums keep their order and NaN,
# inf and signed zeros behave as IEEE doubles do.
FLAGS = ["-O3", "-fPIC", "-shared", "-fno-fast-math", "-ffp-contract=off", "-std=c99"]
TIMEOUT = 120  # seconds a compilation may take


class BuildError(RuntimeError):
    """No library: why, in one line."""


def compiler() -> list[str]:
    """The C compiler: ``$CC``, else the one Python was built with, else ``cc``."""
    named = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    return shlex.split(named)


def cache_dir() -> Path:
    if os.environ.get("SPECC_CACHE"):
        return Path(os.environ["SPECC_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "specc"


_LOADED: dict[str, ctypes.CDLL] = {}  # by key: a library is loaded once per process


def build(source: str) -> ctypes.CDLL:
    """The loaded library of ``source``: from this process, from the cache, or compiled now."""
    cc = compiler()
    key = hashlib.sha256("\0".join([source, *cc, *FLAGS, sys.platform]).encode()).hexdigest()[:24]
    if key in _LOADED:
        return _LOADED[key]
    folder = cache_dir()
    library = folder / f"criterion-{key}{sysconfig.get_config_var('SHLIB_SUFFIX') or '.so'}"
    if not library.is_file():
        _compile(cc, source, folder, library)
    try:
        loaded = ctypes.CDLL(str(library))
    except OSError as err:
        raise BuildError(f"cannot load {library}: {err}") from None
    _declare(loaded)
    _LOADED[key] = loaded
    return loaded


def _compile(cc: list[str], source: str, folder: Path, library: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder, prefix=".build-") as work:
            c_file, out = Path(work) / "criterion.c", Path(work) / library.name
            c_file.write_text(source, encoding="utf-8")
            done = subprocess.run([*cc, *FLAGS, "-o", str(out), str(c_file), "-lm"], capture_output=True,
                                  text=True, timeout=TIMEOUT)
            if done.returncode != 0:
                first = next((line for line in done.stderr.splitlines() if "error" in line), done.stderr.strip())
                raise BuildError(f"{' '.join(cc)} failed (exit {done.returncode}): {first[:200]}")
            os.replace(out, library)
    except FileNotFoundError:
        raise BuildError(f"no C compiler: '{cc[0]}' was not found (set CC, or install gcc)") from None
    except subprocess.TimeoutExpired:
        raise BuildError(f"{' '.join(cc)} took more than {TIMEOUT} s") from None
    except OSError as err:
        raise BuildError(f"cannot write to the cache {folder}: {err.strerror} (set SPECC_CACHE)") from None


def _declare(lib: ctypes.CDLL) -> None:
    pointer, double, i64 = ctypes.c_void_p, ctypes.c_double, ctypes.c_int64
    lib.sp_parameters.restype = ctypes.c_int
    lib.sp_work_size.restype = ctypes.c_long
    lib.sp_evaluate.argtypes = [pointer, ctypes.c_int, pointer, pointer, pointer]
    lib.sp_evaluate.restype = None
    lib.sp_minimize.argtypes = [pointer, ctypes.c_int, pointer, pointer, pointer, pointer, pointer, pointer,
                                i64, i64, double, double, i64, pointer]
    lib.sp_minimize.restype = ctypes.c_int


class Problem(ctypes.Structure):
    """``sp_problem`` in criterion_runtime.c, field for field."""
    _fields_ = [("rows", ctypes.c_int), ("decay", ctypes.c_double), ("scale", ctypes.c_double),
                ("data", ctypes.c_void_p), ("work", ctypes.c_void_p)]
