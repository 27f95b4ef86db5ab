"""Named parameter values on disk: safetensors (no pickle) or JSON, written atomically.

A weights file holds one tensor per spec parameter and per fixed value (``fixed mu[3]``), under the
spec's own names, plus string metadata (the spec text, training settings). Loading checks names and
shapes against the spec's IR (:func:`check_against`, no module needed) or a module
(:func:`apply_weights`) and names the first mismatch. Every parameter must be in the file; a fixed
value may be missing (a file written before the spec had it, or nnet's ``Wts``), and then keeps the
value its init line gives.
torch and safetensors are imported by the functions that read or write tensors.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from .errors import DataError
from .files import atomic_path

if TYPE_CHECKING:
    import torch

    from .ir import Graph

SPEC_KEY = "specc.spec"


def save_weights(module: "torch.nn.Module", path: str | os.PathLike, metadata: dict[str, str] | None = None) -> Path:
    """Write ``module``'s parameters and fixed values (its ``state_dict``: parameters, then persistent
    buffers) to ``path`` (safetensors) via a temporary file and a rename, so an interrupted run leaves
    the old file intact."""
    from safetensors.torch import save_file
    path = Path(path)
    tensors = {name: p.detach().cpu().contiguous() for name, p in module.state_dict().items()}
    meta = {key: str(value) for key, value in (metadata or {}).items()}
    if getattr(module, "spec_source", None) is not None:
        meta.setdefault(SPEC_KEY, module.spec_source)
    with atomic_path(path) as temporary:
        save_file(tensors, str(temporary), metadata=meta)
    return path


def read_weights(path: str | os.PathLike) -> tuple[dict[str, "torch.Tensor"], dict[str, str]]:
    """(tensors, metadata) from a ``.safetensors`` file, or from a ``.json`` object of named numbers/lists."""
    import torch
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file
    path = Path(path)
    if not path.is_file():
        raise DataError(f"weights file {path} does not exist")
    if path.suffix.lower() == ".json":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataError(f"{path}: not a JSON file of named tensors ({err})") from None
        if not isinstance(raw, dict):
            raise DataError(f"{path}: expected a JSON object mapping parameter names to numbers or lists")
        tensors = {}
        for name, value in raw.items():
            try:
                tensors[name] = torch.tensor(value, dtype=torch.float64)
            except (TypeError, ValueError) as err:
                raise DataError(f"{path}: parameter '{name}' is not a number or a regular nested list ({err})") \
                    from None
        return tensors, {}
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise DataError(f"{path}: not a safetensors file ({err})") from None
    return tensors, metadata


def check_against(ir: "Graph", tensors: Mapping[str, object], origin: str = "weights") -> None:
    """Refuse named tensors that do not fit the spec's parameter table (``ir.graph["params"]`` and each
    parameter's ``shape``): every parameter present with its shape, nothing extra; a fixed value
    (``ir.graph["fixed"]``) with its shape, if present. No module is built."""
    _check({name: tuple(ir.nodes[name]["shape"]) for name in ir.graph["params"]}, tensors, origin,
           {name: tuple(ir.nodes[name]["shape"]) for name in ir.graph["fixed"]})


def _check(expected: dict[str, tuple[int, ...]], tensors: Mapping[str, object], origin: str,
           fixed: dict[str, tuple[int, ...]] | None = None) -> None:
    fixed = fixed or {}
    for name, shape in expected.items():
        if name not in tensors:
            raise DataError(f"{origin}: no value for parameter '{name}' (the file has: "
                            f"{', '.join(tensors) or 'nothing'})")
        found = tuple(getattr(tensors[name], "shape", ()))
        if found != shape:
            raise DataError(f"{origin}: parameter '{name}' has shape {list(found)} in the file "
                            f"but {list(shape)} in the spec")
    for name, shape in fixed.items():  # optional: one the file does not have keeps its value
        found = tuple(getattr(tensors[name], "shape", ())) if name in tensors else shape
        if found != shape:
            raise DataError(f"{origin}: fixed value '{name}' has shape {list(found)} in the file "
                            f"but {list(shape)} in the spec")
    extra = [name for name in tensors if name not in expected and name not in fixed]
    if extra:
        known = f"parameters: {', '.join(expected)}" + (f"; fixed: {', '.join(fixed)}" if fixed else "")
        raise DataError(f"{origin}: '{extra[0]}' is not a {'parameter or fixed value' if fixed else 'parameter'} "
                        f"of this spec ({known})")


def apply_weights(module: "torch.nn.Module", tensors: dict[str, "torch.Tensor"], origin: str = "weights") -> None:
    """Copy named tensors into ``module``; every parameter must be present with its shape, nothing extra;
    a fixed value (a persistent buffer) missing from ``tensors`` keeps its value."""
    import torch
    params = dict(module.named_parameters())
    fixed = {name: b for name, b in module.named_buffers() if name not in module._non_persistent_buffers_set}
    _check({name: tuple(param.shape) for name, param in params.items()}, tensors, origin,
           {name: tuple(b.shape) for name, b in fixed.items()})
    with torch.no_grad():
        for name, value in (params | fixed).items():
            if name in tensors:
                value.copy_(tensors[name].to(value.dtype))


def load_weights(module: "torch.nn.Module", path: str | os.PathLike) -> dict[str, str]:
    """Read ``path`` into ``module`` (checked as :func:`apply_weights`); return the file's metadata."""
    tensors, metadata = read_weights(path)
    apply_weights(module, tensors, origin=str(path))
    return metadata
