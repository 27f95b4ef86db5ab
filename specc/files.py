"""Files specc writes (generated source, weights, predictions, pictures) appear whole or not at all;
where the files specc ships (bundled specs, example data) are; and which optional parts are installed.

The rules for a file specc writes (docs/training.md, "Output files"):

- its folder must exist: specc makes no folders (``specc demo --out F`` makes ``F`` itself, in a
  folder that exists), so a mistyped folder is an error, not a new tree;
- the commands check each output before any work (:func:`check_output`): the folder exists, is a
  folder and takes a new file (tried, not guessed from permission bits); the target is no folder;
  its format is one the writer knows; it is none of the command's input files;
- each write goes to ONE temporary file beside the target, ``.NAME.PID.RANDOM.tmp``, fsynced and
  renamed over the target (then the folder is fsynced where the system allows), so a crash or a
  kill leaves the previous file whole; the next write to the same target removes the temporary
  files of runs that are no longer running (on POSIX systems, where that can be asked safely).
"""
from __future__ import annotations

import importlib
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from .errors import SpecError

CHUNK = 1 << 20  # bytes per os.write: a large file is written in pieces, never copied whole


def _refusal(path: Path, what: str | None, reason: str) -> SpecError:
    return SpecError(f"cannot write {path}{f' ({what})' if what else ''}: {reason}")


def _folder_problem(folder: Path) -> str | None:
    """Why files cannot be made in ``folder``, from what exists (no write is tried)."""
    if folder.is_dir():
        return None
    for above in (folder, *folder.parents):
        if above.exists():
            if not above.is_dir():
                return f"{above} is a file, not a folder"
            break
    return f"the folder {folder} does not exist (specc makes no folders)"


def _try_writing(target: Path) -> str | None:
    """Why no file can be made beside ``target``, by making one (permission bits lie: root, ACLs,
    read-only mounts). It is named as the target's temporary files, so a kill leaves nothing the next
    write to the target does not remove."""
    try:
        temporary = _new_temporary(target)
    except OSError as err:
        return f"cannot make files in {target.parent}: {err.strerror or err}"
    os.unlink(temporary)
    return None


def check_output(path: str | os.PathLike, what: str | None = None, *, formats: Iterable[str] | None = None,
                 writer: str = "specc writes", inputs: Iterable[tuple[str, str | os.PathLike | None]] = (),
                 folder: bool = False) -> Path:
    """Refuse an output ``path`` before any work is done, naming it (and the option ``what``).

    ``formats``: the suffixes the writer knows (lower case, with the dot; ``""`` for none), listed
    after ``writer`` (``"matplotlib writes"``) in the refusal. ``inputs``: (label, path) of the
    command's input files, none of which the output may be (links included). ``folder``: ``path`` is
    a folder to write into, which the caller makes when it is missing.
    """
    path = Path(path)
    if folder:
        if path.exists() and not path.is_dir():
            raise _refusal(path, what, "it is a file, not a folder")
        problem = _folder_problem(path if path.is_dir() else path.parent)
        problem = problem or _try_writing(path / "probe" if path.is_dir() else path)
        if problem:
            raise _refusal(path, what, problem)
        return path
    if path.is_dir():
        raise _refusal(path, what, "it is a folder")
    for label, source in inputs:
        if source is not None and _same_file(path, Path(source)):
            raise _refusal(path, what, f"it would overwrite {label}")
    if formats is not None and path.suffix.lower() not in formats:
        named = sorted(f for f in formats if f)
        given = f"unsupported format '{path.suffix}'" if path.suffix else "no format suffix"
        raise _refusal(path, what, f"{given} ({writer} {', '.join(named[:-1])} or {named[-1]})")
    problem = _folder_problem(path.parent) or _try_writing(path)
    if problem:
        raise _refusal(path, what, problem)
    return path


def _same_file(one: Path, other: Path) -> bool:
    """The same file by its identity (links included), or by its resolved name if either is missing."""
    try:
        return os.path.samefile(one, other)
    except OSError:
        return os.path.realpath(one) == os.path.realpath(other)


# ---------------------------------------------------------------- atomic writes
def _new_temporary(path: Path) -> Path:
    """A new empty file ``.NAME.PID.RANDOM.tmp`` beside ``path``, with the permissions any new file gets."""
    while True:
        temporary = path.parent / f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        try:
            os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return temporary
        except FileExistsError:  # 2⁻³² per try
            continue


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of this process may be writing the same target
    if os.name != "posix":
        return True  # no safe probe (os.kill would end the process): leave the file
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process: running
    return True


def remove_stale(path: Path) -> list[Path]:
    """Remove the temporary files that runs no longer running left beside ``path``; return them."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[0-9a-f]+\.tmp")
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match and not _running(int(match.group(1))):
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except OSError:
                pass  # gone already, or not ours to remove
    return removed


def _sync(path: Path, folder: bool = False) -> None:
    try:
        handle = os.open(path, os.O_RDONLY if folder else os.O_RDWR)
    except OSError:
        if folder:
            return  # Windows opens no folders: the rename is as durable as the system makes it
        raise
    try:
        os.fsync(handle)
    except OSError:
        if not folder:
            raise
    finally:
        os.close(handle)


@contextmanager
def atomic_path(path: str | os.PathLike, make_parents: bool = False) -> Iterator[Path]:
    """A temporary file beside ``path`` to write; fsynced and renamed over ``path`` when the block
    succeeds (the rules in this module's doc).

    An error or an interruption inside the block removes the temporary file and leaves whatever
    ``path`` held before. A missing folder is refused unless ``make_parents``; an ``OSError`` (no
    space, no permission) is a :class:`SpecError` naming ``path``.
    """
    path = Path(path)
    try:
        if make_parents:
            path.parent.mkdir(parents=True, exist_ok=True)
        problem = _folder_problem(path.parent) or ("it is a folder" if path.is_dir() else None)
        if problem:
            raise _refusal(path, None, problem)
        remove_stale(path)
        temporary = _new_temporary(path)
    except OSError as err:
        raise _refusal(path, None, err.strerror or str(err)) from None
    try:
        yield temporary
        _sync(temporary)
        os.replace(temporary, path)
        _sync(path.parent, folder=True)
    except BaseException as err:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise _refusal(path, None, err.strerror or str(err)) from None
        raise


def write_file(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through one temporary file (:func:`atomic_path`)."""
    path = Path(path)
    view = memoryview(data)
    with atomic_path(path) as temporary:
        handle = os.open(temporary, os.O_WRONLY)
        try:
            while view:
                view = view[os.write(handle, view[:CHUNK]):]
        finally:
            os.close(handle)
    return path


# The bundled specs (specs/*.spec) and example data (examples/*.csv, examples/*.json) live at the
# repository's root; setup.py copies them into the package (specc/specs, specc/examples) when it
# builds a wheel, so an installed specc has them wherever it runs.
BUNDLED = ("specs", "examples")


def bundled(folder: str) -> Path:
    """The folder of bundled files, ``'specs'`` or ``'examples'``: inside the installed package, else
    (a source checkout, an editable install) the repository's own folder."""
    if folder not in BUNDLED:
        raise ValueError(f"no bundled folder '{folder}' (there are: {', '.join(BUNDLED)})")
    package = Path(__file__).resolve().parent
    inside = package / folder
    return inside if inside.is_dir() else package.parent / folder


# ---------------------------------------------------------------- optional parts
EXTRAS = {"matplotlib": "plot", "onnx": "onnx", "onnxscript": "onnx", "onnxruntime": "onnx", "pygls": "lsp",
          "pyarrow": "data"}


def require(module: str, what: str):
    """Import an optional dependency, or say which extra of specc installs it."""
    top = module.partition(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError as err:
        if err.name not in (None, top, module) and not str(err.name).startswith(top + "."):
            raise  # the package is there but something it needs is broken: its own error says what
        extra = EXTRAS.get(top, top)
        raise SpecError(f"{what} needs {top}, which is not installed: install specc[{extra}] "
                        f"(pip install 'specc[{extra}]')") from None
