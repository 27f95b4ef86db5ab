"""specc in Jupyter: a compiled module's rich display, and the ``%%specc NAME`` cell magic.

    %load_ext specc

    %%specc model --dtype float64
    input x[3]
    y[2] = relu(W·x + b)

binds ``model`` (an ``nn.Module``, as from ``specc.load``) in the notebook; an error or a warning is
printed as ``specc check`` prints it (place, source line, caret, notes), with no traceback. Evaluating
``model`` shows its layers diagram (SVG, when Graphviz's ``dot`` is installed), its signature and its
parameter table; ``repr(model)`` is unchanged. The generated source is untouched: :func:`add_display`
attaches the display methods to the class :func:`specc.compile.load_module` has just built.

Standard library only at import: IPython, torch and graphviz are imported by what needs them.
"""
from __future__ import annotations

import argparse
import html
import shlex
import sys
import warnings

from .errors import SpecDiagnostic, SpecError

INSTALL_GRAPHVIZ = ("no diagram: Graphviz's <code>dot</code> program is not installed (apt install graphviz, "
                    "brew install graphviz or conda install graphviz)")
RANGE_LIMIT = 10 ** 7  # a parameter's min … max is shown up to this many numbers: beyond, it would not be cheap


# ---------------------------------------------------------------- the rich display
def add_display(cls: type) -> None:
    """Give a compiled module's class its Jupyter display (``_repr_html_``, ``_repr_mimebundle_``)."""
    cls._repr_html_ = module_html
    cls._repr_mimebundle_ = _mimebundle


def _mimebundle(module, include=None, exclude=None) -> dict:
    """HTML for Jupyter, the ordinary repr for a terminal: computed once, whichever is shown."""
    return {"text/html": module_html(module), "text/plain": repr(module)}


def module_html(module) -> str:
    """The HTML a notebook shows for a module from ``specc.load``: its name and signature, its layers
    diagram as inline SVG (or a one-line note saying why there is none) and its parameter table.
    Never raises: a display that fails would hide the module itself."""
    ir = getattr(module, "spec_ir", None)
    if ir is None:
        return f"<pre>{html.escape(repr(module))}</pre>"
    from .compile import signature
    try:
        head = (f"<p><b>{html.escape(type(module).__name__)}</b> ({html.escape(str(ir.graph['file']))}): "
                f"<code>{html.escape(signature(ir))}</code></p>")
        table = parameter_table(module)
    except Exception:  # noqa: BLE001 - an IR this display does not understand: the plain repr
        return f"<pre>{html.escape(repr(module))}</pre>"
    return f"<div class=\"specc-module\">{head}{diagram_svg(module)}{table}</div>"


def diagram_svg(module) -> str:
    """The module's layers diagram as inline SVG with its current weights, or a note saying why not."""
    try:
        from .diagram import draw
        dot = draw(module, view="layers")
    except Exception as err:  # noqa: BLE001 - a display never raises
        return f"<p><i>no diagram: {html.escape(str(err))}</i></p>"
    try:
        svg = dot.pipe(format="svg", encoding="utf-8")
    except Exception as err:  # noqa: BLE001 - graphviz.ExecutableNotFound when `dot` is not installed
        missing = type(err).__name__ == "ExecutableNotFound" or isinstance(err, FileNotFoundError)
        return f"<p><i>{INSTALL_GRAPHVIZ if missing else 'no diagram: ' + html.escape(str(err))}</i></p>"
    start = svg.find("<svg")  # the XML prolog and DOCTYPE do not belong inside HTML
    return f"<div>{svg[start:] if start >= 0 else svg}</div>"


def parameter_table(module) -> str:
    """One row per parameter and fixed value: name, shape, role, initialiser, and the range of its
    current values."""
    from .lsp_analysis import initialiser
    ir = module.spec_ir
    names = [*ir.graph.get("params", ()), *ir.graph.get("fixed", ())]
    if not names:
        return "<p>no parameters</p>"
    try:
        values = {**dict(module.named_parameters()), **dict(module.named_buffers())}
    except Exception:  # noqa: BLE001
        values = {}
    rows = []
    for name in names:
        attrs = ir.nodes[name]
        role = attrs.get("role", "other") if attrs["kind"] == "param" else "fixed"
        cells = (name, list(attrs.get("shape", ())), role, initialiser(attrs) or "", _value_range(values.get(name)))
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    header = "".join(f"<th>{h}</th>" for h in ("name", "shape", "role", "initialiser", "values"))
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _value_range(tensor) -> str:
    """``min … max`` of a tensor's values (one value alone), or '' when absent, empty or too large."""
    try:
        if tensor is None or tensor.numel() == 0 or tensor.numel() > RANGE_LIMIT:
            return ""
        low, high = (float(v) for v in tensor.detach().aminmax())
    except Exception:  # noqa: BLE001 - a meta tensor, an odd dtype: no range, no failure
        return ""
    return f"{low:.4g}" if low == high else f"{low:.4g} … {high:.4g}"


# ---------------------------------------------------------------- the cell magic
class _Options(argparse.ArgumentParser):
    """The magic's options; a mistake is IPython's UsageError (a one-line message), never SystemExit."""

    def error(self, message):
        from IPython.core.error import UsageError
        raise UsageError(f"%%specc: {message}\n{self.format_usage().strip()}")


def _options() -> argparse.ArgumentParser:
    p = _Options(prog="%%specc", add_help=False,
                 description="Compile the cell's spec into a module bound to NAME in the notebook.")
    p.add_argument("name", help="the variable the module is bound to")
    p.add_argument("--dtype", choices=("float32", "float64"), help="the module's dtype (default: torch's)")
    p.add_argument("--weights", help="a safetensors or JSON file of the parameters' values")
    p.add_argument("--strict", action="store_true", help="warnings are errors: NAME is not bound")
    p.add_argument("--max-size", type=int, help="at most this many units in one dimension")
    p.add_argument("--max-elements", type=int, help="at most this many numbers in the spec")
    return p


class CellError(Exception):
    """A spec cell's error: IPython shows exactly the CLI's report (place, line, caret, notes) in place
    of a traceback, and the cell counts as failed, so "Run all" stops there."""

    def __init__(self, report: str):
        super().__init__(report)
        self.report = report

    def _render_traceback_(self) -> list[str]:  # IPython's hook for an exception's own report
        return self.report.splitlines()


def compile_cell(line: str, cell: str, namespace: dict):
    """Run ``%%specc LINE`` on ``cell``: bind the module in ``namespace`` and return it. Warnings are
    printed to standard error as the CLI prints them; an error raises :class:`CellError` with the CLI's
    report, leaving ``namespace`` as it was."""
    args = _options().parse_args(shlex.split(line))
    if not args.name.isidentifier():
        _options().error(f"NAME must be a Python identifier, not {args.name!r}")
    from . import options
    from .limits import limits_of
    from .lower import graph_of
    file = f"<cell {args.name}>"  # errors read `<cell model>:2:5: error: …`; the class is CellModel
    try:
        options.check({"max_size": args.max_size, "max_elements": args.max_elements}, cli=True)
        with warnings.catch_warnings():  # printed below from the IR, with place and caret, as the CLI does
            warnings.simplefilter("ignore", SpecDiagnostic)
            ir = graph_of(cell, file, limits_of(args.max_size, args.max_elements))
        diagnostics = ir.graph.get("warnings", ())
        if args.strict and diagnostics:
            raise CellError("\n".join(d.format("error") for d in diagnostics))
        for diagnostic in diagnostics:
            print(diagnostic.format("warning"), file=sys.stderr)
        import torch

        from .api import load
        dtype = {"float32": torch.float32, "float64": torch.float64}.get(args.dtype)
        module = load(ir, args.weights, dtype=dtype)
    except SpecError as err:
        raise CellError(err.format()) from None
    namespace[args.name] = module
    return module


def load_ipython_extension(ipython) -> None:
    """``%load_ext specc``: register the ``%%specc`` cell magic."""
    def specc(line: str, cell: str) -> None:  # returns nothing: the module is shown when NAME is evaluated
        compile_cell(line, cell, ipython.user_ns)

    specc.__doc__ = _options().format_help()
    ipython.register_magic_function(specc, magic_kind="cell", magic_name="specc")
