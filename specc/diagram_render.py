"""Writing a drawing: DOT text, or a picture rendered by Graphviz's ``dot`` program.

The DOT text is built apart (specc/diagram.py), as python-graphviz has it; this module runs the program,
and draws again with straight edges when its edge router crashes.
"""
from __future__ import annotations

import os
from pathlib import Path

import graphviz

from .errors import SpecError
from .files import check_output, write_file
from .options import check as check_values

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": None, ".gv": None}  # None: DOT text
DRAWN = "specc draws"  # the refusal of another suffix: "unsupported format '.xyz' (specc draws .dot, … or .svg)"
INSTALL_HINT = ("Graphviz's `dot` program is not installed; install it with `apt-get install graphviz` "
                "(Debian/Ubuntu), `brew install graphviz` (macOS) or `conda install graphviz`, "
                "or write a .dot file, which needs no Graphviz")


def write_drawing(dot: graphviz.Digraph, path: str | os.PathLike, dpi: float | None = None) -> Path:
    """Write ``dot`` to ``path``: DOT text for .dot/.gv (no Graphviz needed), else rendered by ``dot``."""
    check_values({"dpi": dpi})
    path = check_output(path, formats=FORMATS, writer=DRAWN)  # before Graphviz runs
    suffix = path.suffix.lower()
    if FORMATS[suffix] is None:
        data = dot.source.encode("utf-8")
    else:
        if dpi is not None:
            dot = dot.copy()
            dot.graph_attr["dpi"] = str(dpi)
        try:
            data = _pipe(dot, FORMATS[suffix])
        except graphviz.ExecutableNotFound:
            raise SpecError(f"cannot write {path}: {INSTALL_HINT}") from None
        except graphviz.CalledProcessError as err:
            message = err.stderr.decode(errors="replace").strip() if err.stderr else str(err)
            raise SpecError(f"Graphviz failed to draw {path}: {message}") from None
    return write_file(path, data)


def _pipe(dot: graphviz.Digraph, format: str) -> bytes:
    """``dot`` rendered; a neuron view that Graphviz's edge router crashes on (2.43 does on the dense
    GRU and LSTM pictures) is drawn again with straight edges rather than not at all."""
    try:
        return dot.pipe(format=format)
    except graphviz.CalledProcessError as err:
        if err.returncode >= 0 or dot.graph_attr.get("splines") != "true":
            raise
        straight = dot.copy()
        straight.graph_attr["splines"] = "false"
        return straight.pipe(format=format)
