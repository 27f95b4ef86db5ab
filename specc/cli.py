"""The ``specc`` command line: check, inspect, explain, compile (draw, demo; train, predict and
export are in specc/cli_train.py).

User mistakes are :class:`SpecError`; they print as ``FILE:LINE:COL: error: …``
with the source line and a caret, and exit with status 1, never a traceback.
Likely typos that still compile (the IR's warnings) print the same way as
``warning:``, once per command; ``check --strict`` makes them errors.
A usage mistake prints the usage of the command it was made in, and exits with 2.

Every argument naming a spec is a path. Each command builds the spec's IR once and
hands it on. Only the commands that need torch import it (train, predict, and
reading weights): check, inspect, compile and ``draw -o x.dot`` start fast.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from . import api, options
from .errors import SpecDiagnostic, SpecError, SpecWarning
from .files import bundled, check_output, write_file
from .ir import Graph


# ---------------------------------------------------------------- inspect
def summary(graph: Graph) -> dict:
    """What ``specc inspect`` reports, as plain data."""
    def shape(node):
        return list(graph.nodes[node]["shape"])

    params = {name: {"shape": shape(name), "role": graph.nodes[name]["role"], "init": graph.nodes[name]["init"]}
              for name in graph.graph["params"]}
    nodes = {n: shape(n) for n in graph.topological() if graph.nodes[n]["kind"] == "op" and graph.nodes[n]["name"]}
    count = sum(_numel(p["shape"]) for p in params.values())
    # Fixed values are held by the module but not trained: listed apart, not counted as parameters.
    fixed = {name: {"shape": shape(name), "init": graph.nodes[name]["init"]} for name in graph.graph["fixed"]}
    return {"file": graph.graph["file"], "inputs": {n: shape(n) for n in graph.graph["inputs"]},
            "outputs": {n: shape(n) for n in graph.graph["outputs"]}, "parameters": params,
            "parameter_count": count, "fixed": fixed, "nodes": nodes}


def _numel(shape: list[int]) -> int:
    total = 1
    for size in shape:
        total *= size
    return total


def _dims(shape: list[int]) -> str:
    return f"[{', '.join(map(str, shape))}]" if shape else "scalar"


def format_summary(info: dict) -> str:
    lines = [info["file"],
             "  inputs:     " + ", ".join(f"{n} {_dims(s)}" for n, s in info["inputs"].items()),
             "  outputs:    " + ", ".join(f"{n} {_dims(s)}" for n, s in info["outputs"].items()),
             f"  parameters: {info['parameter_count']} numbers in {len(info['parameters'])} tensors"]
    width = max((len(n) for n in info["parameters"]), default=0)
    for name, p in info["parameters"].items():
        lines.append(f"    {name:<{width}}  {_dims(p['shape']):<10} {p['role']:<6} init {p['init']}")
    if info["fixed"]:
        numbers = sum(_numel(f["shape"]) for f in info["fixed"].values())
        lines.append(f"  fixed:      {numbers} numbers in {len(info['fixed'])} tensors, not trained")
        width = max(len(n) for n in info["fixed"])
        lines += [f"    {name:<{width}}  {_dims(f['shape']):<10} init {f['init']}" for name, f in info["fixed"].items()]
    lines.append("  nodes:")
    width = max((len(n) for n in info["nodes"]), default=0)
    lines += [f"    {name:<{width}}  {_dims(shape)}" for name, shape in info["nodes"].items()]
    return "\n".join(lines)


# ---------------------------------------------------------------- commands
def graph_warned(path, strict: bool = False, **limits) -> Graph:
    """The IR of a spec file, its warnings printed (as errors under ``strict``); ``limits``: max_size,
    max_elements (:func:`limits_given`)."""
    return print_warnings(api.graph(Path(path), **limits), strict)


def limits_given(args) -> dict:
    """--max-size and --max-elements (specc/limits.py), refused by their flags' names when bad."""
    given = {"max_size": args.max_size, "max_elements": args.max_elements}
    options.check(given, cli=True)
    return given


def print_warnings(ir: Graph, strict: bool = False) -> Graph:
    """Print an IR's warnings (docs/language.md, "Warnings") to standard error, each with its place,
    line and caret; the CLI prints them from the IR, so a memoised IR still shows them once per command."""
    for warning in ir.graph.get("warnings", ()):
        print(warning.format("error" if strict else "warning"), file=sys.stderr)
    return ir


def cmd_check(args) -> int:
    failed, limits = 0, limits_given(args)
    for file in args.files:
        try:
            if args.dump == "ast":
                from .dump import dump_ast
                sys.stdout.write(dump_ast(api.parse(Path(file), **limits)))
                continue
            ir = graph_warned(file, args.strict, **limits)
        except SpecError as err:
            print(err.format(), file=sys.stderr)
            failed += 1
            continue
        warned = len(ir.graph.get("warnings", ()))
        if warned and args.strict:
            failed += 1
            continue
        if args.dump == "ir":
            from .dump import dump_ir
            sys.stdout.write(dump_ir(ir))
            continue
        count = sum(_numel(list(ir.nodes[p]["shape"])) for p in ir.graph["params"])
        counted = f", {warned} warning{'s' * (warned != 1)}" if warned else ""
        print(f"{file}: ok ({len(ir.graph['params'])} parameters, {count} numbers{counted})")
    return 1 if failed else 0


def cmd_explain(args) -> int:
    import json

    from .explain import explain, format_explanation
    text, file = api.read_spec_file(args.file)
    ir, found = explain(text, file, args.name, **limits_given(args))
    print_warnings(ir)
    print(json.dumps(found, indent=2, ensure_ascii=False) if args.json else format_explanation(found))
    return 0


def cmd_inspect(args) -> int:
    import json
    ir = graph_warned(args.file, **limits_given(args))
    info = summary(ir)
    if args.weights and args.json:
        from .diagram import connections_list
        info["connections"] = connections_list(ir, weights=args.weights)
    print(json.dumps(info, indent=2) if args.json else format_summary(info))
    if args.weights and not args.json:
        from .diagram import connections_text
        print(connections_text(ir, weights=args.weights))
    return 0


def cmd_compile(args) -> int:
    from .compile import emit_source
    to_stdout = args.output in (None, "-")
    if not to_stdout:
        check_output(args.output, "-o", inputs=[("the spec", args.file)])
    spec_file = recorded_name(args.file, None if to_stdout else args.output)
    source = emit_source(graph_warned(args.file, **limits_given(args)), spec_file=spec_file)
    if to_stdout:
        sys.stdout.write(source)
    else:
        _write_text(args.output, source)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def recorded_name(spec: str, output: str | None) -> str:
    """The spec's name as a generated file records it: as given when relative, else relative to the
    output file's folder (to the working directory for standard output); never an absolute path."""
    if not os.path.isabs(spec):
        return Path(spec).as_posix()
    start = os.path.dirname(os.path.abspath(output)) if output else os.getcwd()
    try:
        return Path(os.path.relpath(spec, start)).as_posix()
    except ValueError:  # another drive (Windows): no relative path exists
        return Path(spec).name


def _write_text(path: str | os.PathLike, text: str) -> None:
    write_file(path, text.encode("utf-8"))  # a missing folder or no permission: one line (specc.files)


def cmd_draw(args) -> int:
    from .diagram import draw
    from .diagram_render import DRAWN, FORMATS, write_drawing
    options.check(dict(dpi=args.dpi, max_units=args.max_units, width_range=tuple(args.width_range)), cli=True)
    check_output(args.output, "-o", formats=FORMATS, writer=DRAWN,
                 inputs=[("the spec", args.file), ("the weights (--weights)", args.weights)])
    style = dict(rankdir=args.rankdir, title=args.title, show_shapes=args.show_shapes,
                 show_bias=not args.hide_bias, pos_color=args.pos_color, neg_color=args.neg_color,
                 width_range=tuple(args.width_range), weight_labels=args.weight_labels, max_units=args.max_units)
    diagram = draw(graph_warned(args.file, **limits_given(args)), weights=args.weights, view=args.view,
                   collapse=args.collapse, **style)
    write_drawing(diagram, args.output, dpi=args.dpi)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


def cmd_demo(args) -> int:
    """The main job: every bundled spec checked, summarised and compiled into ``--out``."""
    folder = Path(args.specs) if args.specs is not None else bundled("specs")
    specs = sorted(folder.glob("*.spec"))
    if not specs:
        raise SpecError(f"no .spec files in {folder}")
    from .compile import emit_source
    from .diagram import draw_for_demo
    out = check_output(args.out, "--out", folder=True)
    out.mkdir(exist_ok=True)  # the folder itself, in a folder that exists (specc.files)
    for spec in specs:
        ir = print_warnings(api.graph(spec))
        print(format_summary(summary(ir)))
        target = out / (spec.stem + ".py")
        _write_text(target, emit_source(ir))
        print(f"  compiled → {target}")
        print(f"  drawn    → {draw_for_demo(ir, out / spec.stem)}\n")
    # Training: the R nnet sine story (seed 000), with no options, as `specc train` runs it.
    sine = folder / "sine_nnet.spec"
    data = next((d for d in (folder.parent / "examples" / "sine50.csv", bundled("examples") / "sine50.csv")
                 if d.is_file()), None)
    if sine.is_file() and data is not None:
        import torch

        from .train import fit, format_result
        torch.manual_seed(0)
        result = fit(api.load(sine), data, progress=False)
        print(f"specc train {sine.name} --data {data.name}: {format_result(result)}\n"
              f"  (R's nnet, tuned: MSE 3.1e-7; examples/sine_nnet.py retraces R's own fit)")
    else:
        print(f"training step skipped: {sine} or examples/sine50.csv is missing")
    return 0


# ---------------------------------------------------------------- parser
class _TrainTable:
    """``choices`` from one of specc.train's tables, read only when a value is checked or help is shown:
    building the parser must not import torch (``specc check`` never does)."""

    def __init__(self, table: str):
        self.table = table

    def names(self) -> list[str]:
        from . import train
        return list(getattr(train, self.table))

    def __contains__(self, value) -> bool:
        return value in self.names()

    def __iter__(self):
        return iter(self.names())


class _Version(argparse.Action):
    """``--version``: specc's version, and whether the optional C kernel was built."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        import importlib.util

        from . import __version__
        kernel = "built" if importlib.util.find_spec("specc.train._nnet_kernel") else "not built (its NumPy implementation runs)"
        print(f"specc {__version__}\nnnet C kernel: {kernel}")
        parser.exit()


def _choices(table: str) -> dict:
    """An option whose values are the names in a table of specc.train (listed by ``--help``)."""
    return dict(choices=_TrainTable(table), metavar="NAME")


def _limit_options(p: argparse.ArgumentParser) -> None:
    """What a spec may hold (specc/limits.py), on every command that builds its IR."""
    p.add_argument("--max-elements", type=int, metavar="N",
                   help="most numbers a spec may hold: parameters, fixed values and one sample's values "
                        "(default 100000000)")
    p.add_argument("--max-size", type=int, metavar="N",
                   help="most units along any one dimension (default: --max-elements)")


def _device_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help=f"where {what} runs: auto (default) is cuda when torch sees a GPU, else cpu; "
                        "bfgs always runs on the cpu (docs/training.md)")


def build_parser() -> argparse.ArgumentParser:
    from .cli_train import cmd_export, cmd_predict, cmd_train  # they use this module's helpers
    parser = argparse.ArgumentParser(prog="specc", description="Compile network specs into PyTorch modules.")
    parser.add_argument("--version", action=_Version, help="print the version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check", help="parse and infer every size; report mistakes")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--dump", choices=["ast", "ir"],
                   help="print the AST (after parsing) or the IR (after inference) instead of 'ok' "
                        "(formats: docs/ir.md)")
    p.add_argument("--strict", action="store_true",
                   help="treat warnings (likely typos: docs/language.md, \"Warnings\") as errors")
    _limit_options(p)
    p.set_defaults(run=cmd_check, parser=p)

    p = sub.add_parser("explain", help="each size, and the statements that fixed it")
    p.add_argument("file", metavar="SPEC")
    p.add_argument("name", nargs="?", metavar="NAME", help="one node, input or parameter (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON")
    _limit_options(p)
    p.set_defaults(run=cmd_explain, parser=p)

    p = sub.add_parser("inspect", help="inputs, outputs, parameters and node sizes")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--weights", metavar="W", help="also print these weights connection by connection (b->h1 …)")
    _limit_options(p)
    p.set_defaults(run=cmd_inspect, parser=p)

    p = sub.add_parser("draw", help="draw the network with Graphviz (neurons, layers or graph view)")
    p.add_argument("file", metavar="SPEC")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="file to write; .svg .png .pdf (need Graphviz's dot) or .dot (DOT text)")
    p.add_argument("--weights", metavar="W", help="safetensors/JSON weights: colour = sign, width = |w|")
    p.add_argument("--view", choices=["neurons", "layers", "graph"],
                   help="default: neurons while every layer has at most --max-units units, else layers")
    p.add_argument("--rankdir", choices=["LR", "TB", "RL", "BT"], help="direction (default LR; TB for graph)")
    p.add_argument("--title", help="title above the picture (default: the spec's file name; '' for none)")
    p.add_argument("--show-shapes", action=argparse.BooleanOptionalAction, default=True,
                   help="write sizes on layers and nodes (default: yes)")
    p.add_argument("--hide-bias", action="store_true", help="leave out bias nodes and their edges")
    p.add_argument("--pos-color", default="#007700", metavar="COLOR", help="positive weights (default #007700)")
    p.add_argument("--neg-color", default="#ff7777", metavar="COLOR", help="negative weights (default #ff7777)")
    p.add_argument("--width-range", nargs=2, type=float, default=[0.6, 5.0], metavar=("MIN", "MAX"),
                   help="edge widths for the smallest and largest |w|, in points (default 0.6 5)")
    p.add_argument("--weight-labels", action="store_true", help="write each weight's value on its edge")
    p.add_argument("--max-units", type=int, default=32, metavar="N",
                   help="widest layer the default neuron view takes (default 32)")
    p.add_argument("--dpi", type=float, help="resolution of a .png (Graphviz's default: 96)")
    p.add_argument("--collapse", action="store_true",
                   help="draw each block call as one box, a chain of identical blocks as one box × N "
                        "(default view: layers)")
    _limit_options(p)
    p.set_defaults(run=cmd_draw, parser=p)

    p = sub.add_parser("compile", help="write standalone PyTorch source")
    p.add_argument("file", metavar="FILE")
    p.add_argument("-o", "--output", metavar="OUT.py", help="file to write (default: standard output)")
    _limit_options(p)
    p.set_defaults(run=cmd_compile, parser=p)

    p = sub.add_parser("train", help="fit a spec's parameters to data (CSV or NPZ)")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--data", required=True, metavar="FILE",
                   help="CSV (header row) or NPZ named after the spec's inputs and outputs; vectors as h[1] … h[n]")
    p.add_argument("--optimizer", help="%(choices)s (default: chosen from the data's size: bfgs with restarts "
                                       "on small data, mini-batch adam on large; docs/training.md)",
                   **_choices("OPTIMIZERS"))
    p.add_argument("--loss", default="mse", help="%(choices)s (default: mse, summed over outputs)",
                   **_choices("LOSSES"))
    p.add_argument("--lr", type=float, help="learning rate (default: the optimizer's own)")
    p.add_argument("--epochs", type=int, help="passes over the data, first-order optimizers (default 1000)")
    p.add_argument("--max-iter", type=int, help="iterations of lbfgs/bfgs (default 100, as nnet; "
                                                 "5000 on the default small-data path)")
    p.add_argument("--restarts", type=int, metavar="N",
                   help="bfgs from N starting points at once, batched, keeping the best: the model's start "
                        "(--init-from, --rang, --seed) and N-1 draws of the spec's initialisers "
                        "(default 10 on the small-data path)")
    p.add_argument("--batch-size", type=int, help="mini-batch rows for first-order optimizers (default: all)")
    p.add_argument("--momentum", type=float, default=0.0, help="for sgd and rmsprop (default 0)")
    p.add_argument("--abstol", type=float, help="stop when the criterion is at most this (bfgs default 1e-4; "
                                                 "off on the default small-data path)")
    p.add_argument("--reltol", type=float, help="stop when the relative improvement is at most this "
                                                 "(bfgs default 1e-8; 1e-10 on the default small-data path)")
    p.add_argument("--decay", type=float, default=0.0, help="weight decay: adds decay·Σw² (nnet's)")
    p.add_argument("--seed", type=int, help="seed for the initial values and the mini-batch order")
    p.add_argument("--dtype", help="%(choices)s (default: float64 for bfgs, else float32)", **_choices("DTYPES"))
    p.add_argument("--engine", **_choices("ENGINES"),
                   help="bfgs only, how f and its gradient are computed: compiled (the spec in C, "
                        "built once and cached; default), numpy (a NumPy tape of the spec), autograd (the "
                        "module; the one engine for specs with sequence inputs), nnet (R nnet's own arithmetic; one-hidden-layer specs)")
    p.add_argument("--init-from", metavar="FILE",
                   help="initial values: safetensors/JSON named tensors, or a JSON list (nnet's Wts)")
    p.add_argument("--rang", type=float, help="initial values uniform in [-rang, rang] (nnet's scheme)")
    p.add_argument("--out", metavar="W.safetensors", help="write the fitted weights (atomically)")
    p.add_argument("--plot", metavar="LOSS.png", help="draw the loss curve")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no 'wrote' lines")
    _device_option(p, "the fit")
    p.add_argument("--val-split", type=float, metavar="F",
                   help="hold out this fraction of the rows (drawn with --seed) as validation data")
    p.add_argument("--val-data", metavar="FILE", help="validation data, in the form of --data")
    p.add_argument("--early-stopping", type=int, metavar="PATIENCE",
                   help="stop when the validation loss has not improved for PATIENCE epochs (lbfgs: "
                        "iterations), keeping the best weights; needs --val-split or --val-data")
    p.add_argument("--nproc", type=int, metavar="N", help="train data-parallel (PyTorch DDP) in N processes per "
                   "machine, adam or sgd; --batch-size is per process (docs/training.md)")
    p.add_argument("--nnodes", type=int, metavar="M", help="with --nproc: the number of machines (default 1)")
    p.add_argument("--node-rank", type=int, metavar="K", help="with --nproc: this machine's number, 0 to M-1")
    p.add_argument("--rdzv-endpoint", metavar="HOST:PORT", help="with --nproc: machine 0's address and a free port")
    _limit_options(p)
    p.set_defaults(run=cmd_train, parser=p)

    p = sub.add_parser("predict", help="the outputs of a trained spec on new inputs, as CSV")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--weights", required=True, metavar="W", help="safetensors or JSON weights")
    p.add_argument("--data", required=True, metavar="FILE", help="CSV or NPZ with the spec's inputs")
    p.add_argument("-o", "--output", metavar="PREDS.csv",
                   help="file to write: CSV, or NPZ arrays when it ends in .npz (default: CSV on standard output)")
    _device_option(p, "the prediction")
    _limit_options(p)
    p.set_defaults(run=cmd_predict, parser=p)

    p = sub.add_parser("export", help="write the module as ONNX (.onnx) or a torch.export program (.pt2)")
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--weights", metavar="W",
                   help="safetensors or JSON weights (default: the spec's initial values)")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="model.onnx or model.pt2 (the suffix picks the format; docs/export.md)")
    p.add_argument("--opset", type=int, metavar="N", help="ONNX opset (default: the installed torch's)")
    p.add_argument("--steps", type=int, metavar="T", help="length of sequence inputs, fixed in the file (required "
                                                          "for specs with x[T, …] inputs)")
    _limit_options(p)
    p.set_defaults(run=cmd_export, parser=p)

    p = sub.add_parser("lsp", help="run the language server for editors (docs/editors.md)")
    p.add_argument("--stdio", action="store_true", help="speak LSP over standard input and output (the default)")
    p.set_defaults(run=lambda args: importlib.import_module(".lsp", __package__).serve(), parser=p)

    p = sub.add_parser("demo", help="run the bundled specs through the whole pipeline")
    p.add_argument("--specs", metavar="FOLDER", help="folder of .spec files (default: the specs specc ships)")
    p.add_argument("--out", default="out", help="folder for what the demo writes (default: out)")
    p.set_defaults(run=cmd_demo, parser=p)
    return parser


def _import_lark_without_regex() -> None:
    """Lark imports the third-party ``regex`` module when it is installed, for an option specc never
    uses; that import is ~15 ms of a ~0.15 s ``specc check``. This process is specc's own, so lark is
    imported here with ``regex`` hidden, which is then unhidden for anything that wants it later."""
    if "lark" in sys.modules or "regex" in sys.modules:
        return
    sys.modules["regex"] = None  # `import regex` now raises ImportError
    try:
        importlib.import_module("lark")
    finally:
        del sys.modules["regex"]


def _one_line_warnings() -> None:
    """specc's own warnings as ``specc: warning: message``, one line, no source location."""
    import warnings
    default = warnings.showwarning
    if getattr(default, "specc_one_line", False):  # installed by an earlier main() in this process
        return

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, SpecDiagnostic):
            return  # printed from the IR, with its place (print_warnings)
        if issubclass(category, SpecWarning):
            print(f"specc: warning: {message}", file=sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)
    show.specc_one_line = True
    warnings.showwarning = show


def main(argv: list[str] | None = None) -> int:
    _import_lark_without_regex()
    _one_line_warnings()
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what `train --nproc` hands its workers
    if unknown:  # argparse hands a subcommand's unknown options up to the top: report them in its usage
        _unrecognized(args.parser, unknown)
    try:
        return args.run(args)
    except SpecError as err:
        print(err.format(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `specc inspect … | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0


def _unrecognized(parser: argparse.ArgumentParser, unknown: list[str]) -> None:
    import difflib
    message = f"unrecognized arguments: {' '.join(unknown)}"
    options = [o for action in parser._actions for o in action.option_strings]
    for word in unknown:
        close = difflib.get_close_matches(word.partition("=")[0], options, n=1) if word.startswith("-") else []
        if close:
            message += f" (did you mean {close[0]}?)"
            break
    parser.error(message)
