"""specc: a declarative graph-spec compiler into PyTorch models.

    import specc
    model = specc.load("specs/two_io.spec")      # an nn.Module named after the spec
    graph = specc.parse("specs/two_io.spec")     # the IR, a networkx.DiGraph
    print(specc.to_source("specs/two_io.spec"))  # standalone PyTorch source
"""
from __future__ import annotations

from os import PathLike
from pathlib import Path

import networkx as nx
import torch.nn

from .compile import emit_source, load_module
from .draw import draw
from .errors import SpecError
from .graph import build_graph
from .parse import parse_program
from .train import FitResult, fit
from .weights import apply_weights, read_weights, save_weights

__all__ = ["FitResult", "SpecError", "draw", "fit", "load", "parse", "read_spec", "save_weights", "to_source"]
__version__ = "0.1.0"

Source = str | PathLike


def read_spec(source: Source) -> tuple[str, str]:
    """(text, file name) of a spec given as a path or as spec text.

    A ``Path``, or a string that names an existing file, is read as UTF-8;
    any other string is the spec text itself.
    """
    if isinstance(source, PathLike):
        path = Path(source)
    else:
        path = Path(source) if "\n" not in source and len(source) < 4096 and _is_file(source) else None
    if path is None:
        return source, "<spec>"
    try:
        return path.read_text(encoding="utf-8"), str(source)
    except UnicodeDecodeError as err:
        raise SpecError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise SpecError(f"cannot read {path}: {err.strerror}") from None


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except (OSError, ValueError):
        return False


def parse(source: Source) -> nx.DiGraph:
    """The IR of a spec: a ``networkx.DiGraph`` with every shape inferred (see docs/ir.md)."""
    text, file = read_spec(source)
    return build_graph(parse_program(text, file))


def to_source(source: Source) -> str:
    """Standalone PyTorch source of a spec: one ``nn.Module`` class, importing only torch and the stdlib."""
    return emit_source(parse(source))


def load(source: Source, weights: str | PathLike | None = None) -> torch.nn.Module:
    """Compile a spec into an ``nn.Module`` whose parameters carry the spec's names.

    ``weights`` (a safetensors or JSON file of named tensors) sets the parameters;
    a file whose names or shapes do not match the spec is refused. Float64 weights
    give a float64 module, so trained values are not rounded on the way in.
    """
    module = load_module(parse(source))
    if weights is not None:
        tensors, _ = read_weights(weights)
        if any(t.dtype == torch.float64 for t in tensors.values()) and Path(weights).suffix != ".json":
            module.double()
        apply_weights(module, tensors, origin=str(weights))
    return module
