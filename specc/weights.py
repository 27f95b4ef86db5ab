"""Named parameter values on disk: safetensors (no pickle) or JSON, written atomically.

A weights file holds one tensor per spec parameter, under the spec's own
names, plus string metadata (the spec text, training settings). Loading
checks names and shapes against the module and names the first mismatch.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import DataError
from .files import atomic_path

SPEC_KEY = "specc.spec"


def save_weights(module: torch.nn.Module, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> Path:
    """Write ``module``'s parameters to ``path`` (safetensors) via a temporary file and a rename,
    so an interrupted run leaves the old file intact."""
    path = Path(path)
    tensors = {name: p.detach().cpu().contiguous() for name, p in module.named_parameters()}
    meta = {key: str(value) for key, value in (metadata or {}).items()}
    if getattr(module, "spec_source", None) is not None:
        meta.setdefault(SPEC_KEY, module.spec_source)
    with atomic_path(path) as temporary:
        save_file(tensors, str(temporary), metadata=meta)
    return path


def read_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) from a ``.safetensors`` file, or from a ``.json`` object of named numbers/lists."""
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
        from safetensors import safe_open
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise DataError(f"{path}: not a safetensors file ({err})") from None
    return tensors, metadata


def apply_weights(module: torch.nn.Module, tensors: dict[str, torch.Tensor], origin: str = "weights") -> None:
    """Copy named tensors into ``module``; every parameter must be present with its shape, nothing extra."""
    params = dict(module.named_parameters())
    for name, param in params.items():
        if name not in tensors:
            raise DataError(f"{origin}: no value for parameter '{name}' (the file has: "
                            f"{', '.join(tensors) or 'nothing'})")
        if tuple(tensors[name].shape) != tuple(param.shape):
            raise DataError(f"{origin}: parameter '{name}' has shape {list(tensors[name].shape)} in the file "
                            f"but {list(param.shape)} in the spec")
    extra = [name for name in tensors if name not in params]
    if extra:
        raise DataError(f"{origin}: '{extra[0]}' is not a parameter of this spec "
                        f"(parameters: {', '.join(params)})")
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(tensors[name].to(param.dtype))


def load_weights(module: torch.nn.Module, path: str | os.PathLike) -> dict[str, str]:
    """Read ``path`` into ``module`` (checked as :func:`apply_weights`); return the file's metadata."""
    tensors, metadata = read_weights(path)
    apply_weights(module, tensors, origin=str(path))
    return metadata
