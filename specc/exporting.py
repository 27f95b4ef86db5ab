"""A compiled spec as a file other programs run: ONNX (``.onnx``) or a ``torch.export`` program (``.pt2``).

    specc.export("specs/two_io.spec", "model.onnx", weights="w.safetensors")   # or "model.pt2"
    specc export specs/two_io.spec --weights w.safetensors -o model.onnx [--opset 20]

The format follows the suffix. Both are built from one ``torch.export`` trace of ``specc.load``'s
module (weights applied, eval mode, in the module's dtype):

- inputs and outputs carry the spec's names; the batch axis (0) is dynamic (``batch`` in ONNX);
- a sequence input ``x[T, n]`` has a FIXED length ``steps``: the loop over time is unrolled,
  because ``torch.export`` cannot keep a Python loop over a symbolic length;
- a ``.pt2`` program returns what the module returns, except that several outputs come back as a
  dict keyed by the spec's output names: the module's NamedTuple class exists only in the process
  that compiled the spec, so ``torch.export.load`` could not rebuild it;
- before anything is written the file's program is run on a batch of another size and compared
  with the module (onnxruntime for ONNX), so a file specc writes computes what the spec does.

torch, onnx, onnxscript and onnxruntime are imported by the functions that need them. Files are
written atomically (specc/files.py).
"""
from __future__ import annotations

import contextlib
import inspect
import io
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import SpecError
from .files import atomic_path, check_output, require, write_file
from .options import flag, shown

if TYPE_CHECKING:
    from .api import Source
    from .ir import Graph

FORMATS = {".onnx": "ONNX", ".pt2": "torch.export"}
WRITER = "specc export writes"
MIN_OPSET = 18  # torch's ONNX exporter implements opsets from 18; lower ones are converted, not always
FALLBACK_MAX_OPSET = 23  # when torch does not say (torch.onnx._constants is private)
MAX_STEPS = 10_000  # each step is unrolled into the exported graph
EXPORT_BATCH, CHECK_BATCH = 3, 5  # traced at one batch size, checked at another (0 and 1 get specialised)
BATCH_AXIS = "batch"
TOLERANCE = {"float64": (1e-9, 1e-7), "float32": (1e-5, 1e-4)}  # (atol, rtol) for the check


def opset_range() -> tuple[int, int, int]:
    """(lowest, highest, default) ONNX opset the installed torch exports."""
    try:
        from torch.onnx import _constants
        high = int(_constants.ONNX_MAX_OPSET)
        default = int(getattr(_constants, "ONNX_DEFAULT_OPSET", MIN_OPSET))
    except (ImportError, AttributeError, TypeError, ValueError):
        high, default = FALLBACK_MAX_OPSET, MIN_OPSET
    return MIN_OPSET, max(high, MIN_OPSET), min(max(default, MIN_OPSET), max(high, MIN_OPSET))


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _name(option: str, cli: bool) -> str:
    return flag(option) if cli else option


def check_arguments(path: str | os.PathLike, *, spec=None, weights=None, opset: int | None = None,
                    steps: int | None = None, cli: bool = False) -> str:
    """Refuse a bad output path, format, opset or step count before the spec is read; return the
    format's suffix. ``cli``: name the options as the command line spells them."""
    inputs = [("the spec", spec if isinstance(spec, (str, os.PathLike)) else None),
              ("the weights (--weights)" if cli else "the weights", weights)]
    target = check_output(path, "-o" if cli else None, formats=FORMATS, writer=WRITER,
                          inputs=[(label, p) for label, p in inputs if p is not None])
    suffix = target.suffix.lower()
    if opset is not None:
        if suffix != ".onnx":
            raise SpecError(f"{_name('opset', cli)} applies to .onnx files only, not to {target.name}")
        low, high, _ = opset_range()
        if not _whole(opset) or not low <= opset <= high:
            raise SpecError(f"{_name('opset', cli)} must be a whole number from {low} to {high} "
                            f"(the ONNX opsets this torch exports), not {shown(opset)}")
    if steps is not None and (not _whole(steps) or not 1 <= steps <= MAX_STEPS):
        raise SpecError(f"{_name('steps', cli)} must be a whole number from 1 to {MAX_STEPS}, not {shown(steps)}")
    if weights is not None and not Path(weights).is_file():
        raise SpecError(f"weights file {weights} does not exist")
    if suffix == ".onnx":  # what the ONNX path needs, said before any work
        for module in ("onnx", "onnxscript", "onnxruntime"):
            require(module, "exporting to ONNX")
    return suffix


def export(spec: "Source | Graph", path: str | os.PathLike, weights: str | os.PathLike | None = None,
           opset: int | None = None, *, steps: int | None = None, max_size: int | None = None,
           max_elements: int | None = None) -> Path:
    """Write ``spec``'s module (``weights`` applied) to ``path``: ONNX for ``.onnx`` (``opset``:
    default the installed torch's), a ``torch.export`` program for ``.pt2``. ``steps``: the fixed
    length of sequence inputs (required when the spec has any). Returns the path written."""
    check_arguments(path, spec=spec, weights=weights, opset=opset, steps=steps)
    from .api import graph
    return export_checked(graph(spec, max_size=max_size, max_elements=max_elements), path, weights, opset, steps)


def export_checked(ir: "Graph", path: str | os.PathLike, weights, opset: int | None, steps: int | None,
                   cli: bool = False) -> Path:
    """:func:`export` of an IR, once :func:`check_arguments` has passed."""
    from .api import load
    sequences = [n for n in ir.graph["inputs"] if ir.nodes[n].get("sequence")]
    if sequences and steps is None:
        raise SpecError(f"{_name('steps', cli)} is needed: the spec has sequence inputs ({', '.join(sequences)}), "
                        f"and an exported model unrolls its loop over time for one fixed length")
    if steps is not None and not sequences:
        raise SpecError(f"{_name('steps', cli)} applies to specs with sequence inputs (x[T, …]); "
                        "this one has none")
    import torch
    with torch.random.fork_rng(devices=[]):  # the module's initial draw, overwritten by weights anyway
        return _write(load(ir, weights=weights).eval(), path, opset, steps)


def _write(module, path: str | os.PathLike, opset: int | None, steps: int | None) -> Path:
    import torch
    suffix = Path(path).suffix.lower()
    program = trace(module, steps)
    if suffix == ".pt2":
        _check(module, steps, _pt2_runner(program))
        with atomic_path(path) as temporary, open(temporary, "wb") as file:
            _quiet(lambda: torch.export.save(program, file))
    else:
        proto = onnx_model(program, module, opset if opset is not None else opset_range()[2], steps)
        _check(module, steps, _onnx_runner(proto))
        write_file(path, proto.SerializeToString())
    return Path(path)


# ---------------------------------------------------------------- tracing
def example_inputs(module, steps: int | None, batch: int, seed: int = 0) -> tuple:
    """One tensor per spec input, in the module's dtype: [batch, *shape], [batch, steps, *shape] for a
    sequence. Values in [0.1, 1), so that log and sqrt of an input are defined; drawn from their own
    generator, so exporting leaves torch's global random state alone."""
    import torch
    ir = module.spec_ir
    dtype = next((t.dtype for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()),
                 torch.get_default_dtype())
    generator = torch.Generator().manual_seed(seed)
    tensors = []
    for name in ir.graph["inputs"]:
        node = ir.nodes[name]
        shape = [batch, *([steps] if node.get("sequence") else []), *node["shape"]]
        tensors.append(torch.rand(shape, generator=generator, dtype=dtype) * 0.9 + 0.1)
    return tuple(tensors)


@contextlib.contextmanager
def exportable(module):
    """``module`` as ``torch.export`` can trace it with a dynamic batch axis, while the block runs:
    the per-call input checks off in it and its blocks (the program checks shapes itself), the
    generated ``linear_sum`` without its batch-size branch (:func:`_single_product`), and several
    outputs returned as a dict keyed by the spec's names (:func:`_named_class`). Restored after."""
    instances = [m for m in module.modules() if hasattr(m, "check_inputs")]
    own = [(m, vars(m).get("check_inputs", _UNSET)) for m in instances]
    spaces = {id(g): g for m in module.modules()
              if "linear_sum" in (g := getattr(type(m).forward, "__globals__", {}))}
    saved = {key: space["linear_sum"] for key, space in spaces.items()}
    base = type(module)
    try:
        for m in instances:
            m.check_inputs = False
        for space in spaces.values():
            space["linear_sum"] = _single_product
        module.__class__ = _named_class(base, tuple(module.spec_ir.graph["outputs"]))
        yield module
    finally:
        module.__class__ = base
        for m, value in own:
            if value is _UNSET:
                del m.check_inputs  # back to the class's value
            else:
                m.check_inputs = value
        for key, space in spaces.items():
            space["linear_sum"] = saved[key]


_UNSET = object()


def _single_product(inputs: list, weights: list, bias):
    """The generated helper ``linear_sum`` without its branch on the batch size (one GEMM on large
    batches, one per input on small ones), which would pin the exported batch axis to one side of
    it: the same sum, in one GEMM."""
    import torch
    from torch.nn import functional as F
    return F.linear(torch.cat(inputs, dim=-1), torch.cat(weights, dim=1), bias)


def _named_class(base: type, names: tuple[str, ...]) -> type:
    """``base`` with several outputs returned as a dict keyed by the spec's names: a NamedTuple's class
    must be importable where a .pt2 file is loaded, a dict's is. The forward keeps its signature, so
    the program's inputs keep the spec's names. One output: ``base`` itself."""
    if len(names) == 1:
        return base

    def forward(self, *inputs):
        return dict(zip(names, base.forward(self, *inputs)))
    forward.__signature__ = inspect.signature(base.forward)
    return type(base.__name__, (base,), {"forward": forward, "__module__": base.__module__,
                                         "__qualname__": base.__qualname__})


def trace(module, steps: int | None):
    """The ``torch.export`` program of ``module`` with a dynamic batch axis."""
    import torch
    args = example_inputs(module, steps, EXPORT_BATCH)
    batch = torch.export.Dim(BATCH_AXIS)
    with exportable(module):
        return _quiet(lambda: torch.export.export(module, args, dynamic_shapes=tuple({0: batch} for _ in args)),
                      "torch.export cannot trace the module")


def _quiet(work, failure: str = "torch cannot save the program"):
    """Run ``work`` without the progress lines, log records and deprecation warnings that torch's
    exporters print about their own internals (specc prints one ``wrote`` line). An exporter's own
    error (an operation it has no translation for, say) is a one-line :class:`SpecError` starting
    with ``failure``; the original is chained for a debugger."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return work()
    except (SpecError, OSError, KeyboardInterrupt):
        raise
    except Exception as err:  # the exporters' errors have no common class
        first = next((line for line in str(err).splitlines() if line.strip()), "")
        raise SpecError(f"{failure}: {type(err).__name__}: {first}".rstrip(": ")) from err
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


# ---------------------------------------------------------------- ONNX
def onnx_model(program, module, opset: int, steps: int | None):
    """The ONNX model of a traced program: the spec's input and output names, opset ``opset``, the
    batch axis named ``batch``."""
    import onnx
    import torch
    ir = module.spec_ir
    args = example_inputs(module, steps, EXPORT_BATCH)
    exported = _quiet(lambda: torch.onnx.export(
        program, args, input_names=list(ir.graph["inputs"]), output_names=list(ir.graph["outputs"]),
        opset_version=opset, dynamo=True, external_data=False, verbose=False),
        f"torch.onnx cannot export the module at opset {opset}")
    proto = exported.model_proto
    _name_batch_axis(proto)
    onnx.checker.check_model(proto)
    return proto


def _name_batch_axis(proto) -> None:
    """The exporter names the batch axis after its symbol (``s42``): call it ``batch`` everywhere."""
    symbols = {input.type.tensor_type.shape.dim[0].dim_param for input in proto.graph.input
               if input.type.tensor_type.shape.dim and input.type.tensor_type.shape.dim[0].dim_param}
    for value in (*proto.graph.input, *proto.graph.output, *proto.graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param in symbols:
                dim.dim_param = BATCH_AXIS


def _onnx_runner(proto):
    import onnxruntime
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(module, inputs) -> list:
        given = dict(zip(module.spec_ir.graph["inputs"], (x.numpy() for x in inputs)))
        return session.run(None, {name: given[name] for name in names})
    return run


def _pt2_runner(program):
    def run(module, inputs) -> list:
        outputs = program.module()(*inputs)
        values = list(outputs.values()) if isinstance(outputs, dict) else [outputs]
        return [value.detach().numpy() for value in values]
    return run


def _check(module, steps: int | None, run) -> None:
    """Refuse to write a file whose program disagrees with the module on a batch of another size."""
    import numpy as np
    import torch
    inputs = example_inputs(module, steps, CHECK_BATCH, seed=1)
    with torch.no_grad():
        expected = module(*inputs)
    expected = [expected] if isinstance(expected, torch.Tensor) else list(expected)
    got = run(module, inputs)
    atol, rtol = TOLERANCE.get(str(inputs[0].dtype).removeprefix("torch."), TOLERANCE["float32"]) \
        if inputs else TOLERANCE["float32"]
    for name, ours, theirs in zip(module.spec_ir.graph["outputs"], expected, got, strict=True):
        ours = ours.detach().cpu().numpy()
        if ours.shape != theirs.shape or not np.allclose(theirs, ours, atol=atol, rtol=rtol, equal_nan=True):
            raise SpecError(f"the exported program's output '{name}' differs from the module's "
                            f"(shape {list(theirs.shape)} vs {list(ours.shape)}); nothing was written. "
                            "This is a bug of specc or of torch's exporter: please report it with the spec")
