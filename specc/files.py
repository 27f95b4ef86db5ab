"""Files specc writes (generated source, weights, predictions, pictures) appear whole or not at all;
where the files specc ships (bundled specs, example data) are; and which optional parts are installed."""
from __future__ import annotations

import importlib
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import SpecError


@contextmanager
def atomic_path(path: str | os.PathLike, make_parents: bool = True) -> Iterator[Path]:
    """A temporary file beside ``path`` to write; renamed over ``path`` when the block succeeds.

    An error or an interruption inside the block removes the temporary file and
    leaves whatever ``path`` held before. The file ends with the permissions any
    new file gets (mkstemp's own are owner-only).
    """
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    import tempfile  # here: importing it costs more than `specc check` spends on a small spec

    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        yield Path(temporary)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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
EXTRAS = {"matplotlib": "plot", "onnx": "onnx"}


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
