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
import math
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

from .errors import DataError
from .files import write_file

if TYPE_CHECKING:
    import torch

    from .ir import Graph

SPEC_KEY = "specc.spec"


def save_weights(module: "torch.nn.Module", path: str | os.PathLike, metadata: dict[str, str] | None = None) -> Path:
    """Write ``module``'s parameters and fixed values (its ``state_dict``: parameters, then persistent
    buffers) to ``path`` (safetensors; for a ``.json`` name, a JSON object of named values, without the
    metadata) via a temporary file and a rename, so an interrupted run leaves
    the old file intact. The file is serialised in memory first, so the one temporary file is specc's
    (safetensors' ``save_file`` would make its own)."""
    from safetensors.torch import save
    path = Path(path)
    tensors = {name: p.detach().cpu().contiguous() for name, p in module.state_dict().items()}
    if path.suffix.lower() == ".json":  # what read_weights reads back: named numbers and nested lists, exact
        lines = [f" {json.dumps(name)}: {json.dumps(tensor.double().tolist())}" for name, tensor in tensors.items()]
        return write_file(path, ("{\n" + ",\n".join(lines) + "\n}\n").encode("utf-8"))
    meta = {key: str(value) for key, value in (metadata or {}).items()}
    if getattr(module, "spec_source", None) is not None:
        meta.setdefault(SPEC_KEY, module.spec_source)
    return write_file(path, save(tensors, metadata=meta))


def read_weights(path: str | os.PathLike) -> tuple[dict[str, "torch.Tensor"], dict[str, str]]:
    """(tensors, metadata) from a ``.safetensors`` file, or from a ``.json`` object of named numbers/lists."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file
    path = Path(path)
    if not path.is_file():
        raise DataError(f"weights file {path} does not exist")
    if path.suffix.lower() == ".json":
        raw = read_json(path)
        if not isinstance(raw, dict):
            raise DataError(f"{path}: expected a JSON object mapping parameter names to numbers or lists")
        return {name: json_tensor(value, path, name) for name, value in raw.items()}, {}
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except (SafetensorError, OSError, ValueError) as err:
        raise DataError(f"{path}: not a safetensors file ({err})") from None
    for name, tensor in tensors.items():
        if str(tensor.dtype).removeprefix("torch.") not in FLOATS:  # int8, fp8: quantised, they need a scale
            raise DataError(f"{path}: '{name}' holds {str(tensor.dtype).removeprefix('torch.')} values; weights "
                            f"are floating point ({', '.join(str(f).removeprefix('torch.') for f in FLOATS)})")
        refuse_non_finite(tensor, path, name)
    return tensors, metadata


# ---------------------------------------------------------------- reading, checked
FLOATS = ("float16", "bfloat16", "float32", "float64")  # the dtypes a safetensors weights file may hold
JSON_MAX_BYTES = 100_000_000  # a JSON weights file larger than this belongs in safetensors
JSON_MAX_DEPTH = 32  # the object, then one list a dimension: far more than any parameter has


class _Number(str):
    """A JSON number as written: converted by :func:`json_tensor`, which knows where it is, so
    ``1e400`` and ``10**400`` written out are refused by name instead of becoming inf or overflowing."""


def read_json(path: Path):
    """The parsed JSON of a weights file, with its size and nesting depth checked before it is parsed
    (Python's parser recurses: 100,000 nested lists would overflow its stack)."""
    size = path.stat().st_size
    if size > JSON_MAX_BYTES:
        raise DataError(f"{path}: {size:,} bytes of JSON, over the limit of {JSON_MAX_BYTES:,} for JSON weights "
                        "(specc.weights.JSON_MAX_BYTES): save them as safetensors")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not a JSON file of named tensors ({err})") from None
    depth = _json_depth(text)
    if depth > JSON_MAX_DEPTH:
        raise DataError(f"{path}: JSON nested {depth:,} levels deep, over the limit of {JSON_MAX_DEPTH} "
                        "(specc.weights.JSON_MAX_DEPTH)")
    try:
        return json.loads(text, parse_int=_Number, parse_float=_Number, parse_constant=_Number)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not a JSON file of named tensors ({err})") from None


def _json_depth(text: str) -> int:
    """The deepest nesting of [ and { outside strings, counted without parsing."""
    import numpy as np
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)
    codes = np.frombuffer(bare.encode("utf-8"), dtype=np.uint8)
    opens = (codes == ord("[")) | (codes == ord("{"))
    brackets = opens | (codes == ord("]")) | (codes == ord("}"))
    return int(np.cumsum(np.where(opens[brackets], 1, -1)).max(initial=0))


def json_tensor(value, path: Path | str, name: str) -> "torch.Tensor":
    """A float64 tensor from a JSON number or nested list (as :func:`read_json` parses them): every
    element a finite number within float64's range, else an error naming the file, the tensor and
    the element (1-based, as the spec indexes)."""
    import torch

    def number(item, where: tuple[int, ...]) -> float:
        if isinstance(item, list):
            return [number(x, where + (i,)) for i, x in enumerate(item)]
        if not isinstance(item, _Number):
            text = "null" if item is None else str(item).lower() if isinstance(item, bool) else \
                "an object" if isinstance(item, dict) else json.dumps(item if len(item) <= 20 else item[:20] + "…")
            raise DataError(f"{path}: '{_element(name, where)}' is {text}, not a number")
        result = float(item)
        if not math.isfinite(result):
            written = item in ("NaN", "Infinity", "-Infinity")
            raise DataError(f"{path}: '{_element(name, where)}' is {item if written else _short(item)}"
                            + ("; weights must be finite numbers" if written else ", beyond float64's range"))
        return result

    converted = number(value, ())
    try:
        return torch.tensor(converted, dtype=torch.float64)
    except (TypeError, ValueError) as err:
        raise DataError(f"{path}: '{name}' is not a number or a regular nested list ({err})") from None


def _element(name: str, where: tuple[int, ...]) -> str:
    """``W1[2,1]`` (1-based, as docs/training.md numbers nnet's weights), or ``b`` for a scalar."""
    return f"{name}[{','.join(str(i + 1) for i in where)}]" if where else name


def _short(text: str) -> str:
    return text if len(text) <= 20 else f"{text[:8]}…{text[-8:]} ({len(text)} characters)"


def refuse_non_finite(tensor: "torch.Tensor", path, name: str) -> None:
    """Refuse NaN or inf in a tensor of weights, naming its first such element."""
    import torch
    bad = ~torch.isfinite(tensor)
    if bool(bad.any()):
        where = tuple(int(i) for i in bad.nonzero()[0])
        value = float(tensor[where])
        text = "NaN" if math.isnan(value) else str(value)
        raise DataError(f"{path}: '{_element(name, where)}' is {text}; weights must be finite numbers")


def _refuse_beyond(tensor: "torch.Tensor", dtype: "torch.dtype", origin: str, name: str) -> None:
    """Refuse a finite value that ``dtype`` (the module's) cannot hold: it would become inf."""
    import torch
    if not (tensor.is_floating_point() and dtype.is_floating_point):
        return
    big = torch.finfo(dtype).max
    if torch.finfo(tensor.dtype).max <= big:
        return
    bad = torch.isfinite(tensor) & (tensor.abs() > big)
    if bool(bad.any()):
        where = tuple(int(i) for i in bad.nonzero()[0])
        raise DataError(f"{origin}: '{_element(name, where)}' is {float(tensor[where]):g}, beyond the "
                        f"{str(dtype).removeprefix('torch.')} model's range (±{big:.3g}): load it in float64")


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
    for name, value in (params | fixed).items():
        if name in tensors:
            _refuse_beyond(tensors[name], value.dtype, origin, name)
    with torch.no_grad():
        for name, value in (params | fixed).items():
            if name in tensors:
                value.copy_(tensors[name].to(value.dtype))


def load_weights(module: "torch.nn.Module", path: str | os.PathLike) -> dict[str, str]:
    """Read ``path`` into ``module`` (checked as :func:`apply_weights`); return the file's metadata."""
    tensors, metadata = read_weights(path)
    apply_weights(module, tensors, origin=str(path))
    return metadata
