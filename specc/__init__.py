"""specc: a declarative graph-spec compiler into PyTorch models.

    import specc
    model = specc.load("specs/two_io.spec")      # an nn.Module named after the spec
    ir = specc.graph("specs/two_io.spec")        # the IR (specc.ir.Graph), every size inferred
    tree = specc.parse("specs/two_io.spec")      # the AST (specc.parser.Program)
    print(specc.to_source("specs/two_io.spec"))  # standalone PyTorch source

``import specc`` imports nothing heavy: each name below is imported from its
module on first use (PEP 562), so ``specc check`` never loads torch. No public
name is also the name of a submodule (the IR is built by ``specc.lower``, the
diagrams drawn by ``specc.diagram``), so importing one never hides the other.
"""
from __future__ import annotations

import importlib

from .errors import SpecError  # noqa: F401  (re-exported: every other name is lazy)

__version__ = "0.1.0"

# Public name → the module that defines it, imported on first use.
_LAZY = {
    "load": "api", "graph": "api", "parse": "api", "to_source": "api", "read_spec": "api", "describe": "api",
    "fit": "train", "predict": "train", "FitResult": "train",
    "draw": "diagram", "write_drawing": "diagram_render",
    "save_weights": "weights", "read_weights": "weights", "load_weights": "weights",
    "export": "exporting",
}
__all__ = sorted([*_LAZY, "SpecError"])


def __getattr__(name: str):
    home = _LAZY.get(name)
    if home is None:
        raise AttributeError(f"module 'specc' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # the next lookup is an ordinary one
    return value


def load_ipython_extension(ipython) -> None:
    """``%load_ext specc``: the ``%%specc NAME`` cell magic (specc/notebook.py)."""
    from .notebook import load_ipython_extension as load
    load(ipython)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
