"""The public API behind ``import specc``: a spec in, its AST, IR, source or module out.

    import specc
    model = specc.load("specs/two_io.spec")      # an nn.Module named after the spec
    ir = specc.graph("specs/two_io.spec")        # the IR (specc.ir.Graph), every size inferred
    tree = specc.parse("input x\\ny = 2*x")       # the AST (specc.parser.Program)
    print(specc.to_source("specs/two_io.spec"))  # standalone PyTorch source

What a spec argument may be (:func:`read_spec`): a ``pathlib.Path`` (or any
``os.PathLike``), or a one-line string ending in ``.spec``, is a file, and a
missing one is ``SpecError("no such file: …")``; any other string is spec
text. A string is never read as a file just because a file of that name
exists. The command line treats its arguments as paths. Only a spec is read and
quoted in an error: a file whose name does not end in ``.spec``, that is no regular
file, is larger than 16 MiB, or is not UTF-8 text without NUL bytes, is refused
unread (or unquoted).

``max_size`` and ``max_elements`` bound what a spec may hold (specc/limits.py).

This module imports only the standard library and specc's light modules;
the parser, the compiler and torch are imported by the functions that need them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Union

from .errors import LimitError, SpecError, SpecSyntaxError
from .ir import Graph

if TYPE_CHECKING:
    import torch

    from .parser import Program

Source = Union[str, "os.PathLike[str]"]
SPEC_SUFFIX = ".spec"
MAX_SPEC_BYTES = 16 << 20  # a spec is a short text; this keeps /dev/zero named x.spec from filling memory


# ---------------------------------------------------------------- what a spec argument is
def is_spec_path(source: str) -> bool:
    """Whether a string names a spec file: one line that ends in ``.spec``."""
    return "\n" not in source and "\r" not in source and source.endswith(SPEC_SUFFIX)


def read_spec(source: Source) -> tuple[str, str]:
    """(text, file name) of a spec given as a path or as spec text (the rule in this module's doc)."""
    if isinstance(source, os.PathLike):
        return read_spec_file(source)
    if not isinstance(source, str):
        raise TypeError(f"a spec is a path or a string of spec text, not {type(source).__name__}")
    if is_spec_path(source):
        return read_spec_file(source)
    return source, "<spec>"


def read_spec_file(path: str | os.PathLike) -> tuple[str, str]:
    """(text, file name) of a spec file, read as UTF-8; an unreadable file is a :class:`SpecError`."""
    name = os.fspath(path)
    if os.path.isdir(name):
        raise SpecError(f"cannot read {name}: it is a directory")
    if not name.endswith(SPEC_SUFFIX):  # read nothing that is not a spec, so no error can quote it
        raise SpecError(f"cannot read {name}: a spec file's name ends in {SPEC_SUFFIX}")
    try:
        if os.path.exists(name) and not os.path.isfile(name):  # a FIFO or a device would block or never end
            raise SpecError(f"cannot read {name}: it is not a regular file")
        with open(name, "rb") as file:
            data = file.read(MAX_SPEC_BYTES + 1)
        if len(data) > MAX_SPEC_BYTES:
            raise LimitError(f"cannot read {name}: it is larger than {MAX_SPEC_BYTES >> 20} MiB, which no spec is")
        nul = data.find(b"\0")
        if nul >= 0:
            raise SpecError(f"{name} is not a text file (a NUL byte at byte {nul})")
        return data.decode("utf-8"), name
    except FileNotFoundError:
        raise SpecError(f"no such file: {name}") from None
    except IsADirectoryError:
        raise SpecError(f"cannot read {name}: it is a directory") from None
    except UnicodeDecodeError as err:
        raise SpecError(f"{name} is not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise SpecError(f"cannot read {name}: {err.strerror or err}") from None


def _text_hint(err: SpecError, source: Source) -> SpecError:
    """A syntax error in one line of spec text with no ``=`` (a file name, more likely) says how to
    pass a file."""
    if isinstance(source, str) and isinstance(err, SpecSyntaxError) and "\n" not in source.strip() \
            and "=" not in source:
        err.notes += (("this string was read as spec text; to read a file, pass a pathlib.Path or a name "
                       f"ending in {SPEC_SUFFIX}", None),)
    return err


# ---------------------------------------------------------------- the stages
def parse(source: Source, *, max_size: int | None = None, max_elements: int | None = None) -> "Program":
    """The syntax tree of a spec (:class:`specc.parser.Program`), before any meaning is checked but the
    sizes written (at most ``max_size`` units each, which is ``max_elements`` unless given; specc/limits.py)."""
    from .limits import limits_of
    from .parser import parse_program
    limits = limits_of(max_size, max_elements)
    text, file = read_spec(source)
    try:
        return parse_program(text, file, limits)
    except SpecError as err:
        raise _text_hint(err, source) from None


def graph(source: Source | Graph, *, max_size: int | None = None, max_elements: int | None = None) -> Graph:
    """The IR of a spec, every size inferred (docs/ir.md); an IR is returned as it is.

    The IR is built once per distinct text, file and limits, and shared: treat it as read-only.
    ``max_size`` (units per dimension) and ``max_elements`` (numbers the spec holds) bound what a spec
    may ask for (specc/limits.py; default 10⁸ each).
    """
    if isinstance(source, Graph):
        return source
    from .limits import limits_of
    from .lower import graph_of  # looked up on each call, so tests can count the builds
    limits = limits_of(max_size, max_elements)
    text, file = read_spec(source)
    try:
        return graph_of(text, file, limits)
    except SpecError as err:
        raise _text_hint(err, source) from None


def to_source(source: Source | Graph, *, max_size: int | None = None, max_elements: int | None = None) -> str:
    """Standalone PyTorch source of a spec: one ``nn.Module`` class, importing only torch and the stdlib."""
    from .compile import emit_source
    return emit_source(graph(source, max_size=max_size, max_elements=max_elements))


def load(source: Source | Graph, weights: str | os.PathLike | None = None, *, dtype: "torch.dtype | None" = None,
         max_size: int | None = None, max_elements: int | None = None) -> "torch.nn.Module":
    """Compile a spec into an ``nn.Module`` whose parameters carry the spec's names.

    The module carries its IR (``spec_ir``), so fitting, drawing and reading data never build it
    again. ``weights`` (a safetensors or JSON file of named tensors) sets the parameters; a file
    whose names or shapes do not match the spec is refused. The module computes in ``dtype``; by
    default torch's default dtype (float32), or float64 for float64 weights, so trained values are
    not rounded on the way in. A number of the spec that ``dtype`` cannot hold (``1e39`` in float32)
    is refused before anything is built. ``max_size``, ``max_elements``: as :func:`graph`.
    """
    import torch

    from .compile import load_module
    from .limits import check_dtype, fits_dtype
    from .weights import apply_weights, check_against, read_weights
    ir = graph(source, max_size=max_size, max_elements=max_elements)
    tensors = None
    if weights is not None:  # read and checked before anything is compiled
        tensors, _ = read_weights(weights)
        check_against(ir, tensors, origin=str(weights))
    if dtype is None:
        wide = tensors is not None and any(t.dtype == torch.float64 for t in tensors.values()) \
            and Path(weights).suffix.lower() != ".json"
        dtype = torch.float64 if wide else torch.get_default_dtype()
    check_dtype(ir, dtype)
    # Built in torch's default dtype, so that a seed draws the same start whatever dtype follows; in
    # ``dtype`` itself only when an init value would not survive the default (1e39 in float32).
    module = load_module(ir, dtype=None if fits_dtype(ir, torch.get_default_dtype()) else dtype)
    if dtype != torch.get_default_dtype():
        module.to(dtype)
    if tensors is not None:
        apply_weights(module, tensors, origin=str(weights))
    return module


# ---------------------------------------------------------------- the module's repr
def describe(ir: Graph) -> str:
    """What a compiled module's ``extra_repr`` says, from the IR alone: the spec file, inputs ->
    outputs, every parameter with its shape (``[]`` for a scalar), and the fixed values if any::

        specs/two_io.spec: in1[5], in2[5] -> out1[3], out2[3]
        parameters: W1[10, 5], V1[10, 5], b[10], W2[3, 10], b_w[3], V2[3, 10], b_v[3]

    ``repr(specc.load(spec))`` is ``ClassName(`` + these lines, indented + ``)``.
    """
    from .compile import signature  # the class docstring the runtime repr reads
    params = ", ".join(f"{p}{list(ir.nodes[p]['shape'])}" for p in ir.graph["params"])
    fixed = ", ".join(f"{f}{list(ir.nodes[f]['shape'])}" for f in ir.graph["fixed"])
    text = f"{ir.graph['file']}: {signature(ir)}\nparameters: {params or 'none'}"
    return text + (f"\nfixed: {fixed}" if fixed else "")


