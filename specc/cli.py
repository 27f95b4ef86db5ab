"""The ``specc`` command line: check, inspect, compile (draw, train, predict, demo).

User mistakes are :class:`SpecError`; they print as ``FILE:LINE:COL: error: …``
with the source line and a caret, and exit with status 1, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import networkx as nx

from . import __version__, parse
from .compile import emit_source
from .errors import SpecError


# ---------------------------------------------------------------- inspect
def summary(graph: nx.DiGraph) -> dict:
    """What ``specc inspect`` reports, as plain data."""
    def shape(node):
        return list(graph.nodes[node]["shape"])

    params = {name: {"shape": shape(name), "role": graph.nodes[name]["role"], "init": graph.nodes[name]["init"]}
              for name in graph.graph["params"]}
    nodes = {n: shape(n) for n in nx.lexicographical_topological_sort(graph, key=lambda n: graph.nodes[n]["order"])
             if graph.nodes[n]["kind"] == "op" and graph.nodes[n]["name"]}
    count = sum(_numel(p["shape"]) for p in params.values())
    return {"file": graph.graph["file"], "inputs": {n: shape(n) for n in graph.graph["inputs"]},
            "outputs": {n: shape(n) for n in graph.graph["outputs"]}, "parameters": params,
            "parameter_count": count, "nodes": nodes}


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
    lines.append("  nodes:")
    width = max((len(n) for n in info["nodes"]), default=0)
    lines += [f"    {name:<{width}}  {_dims(shape)}" for name, shape in info["nodes"].items()]
    return "\n".join(lines)


# ---------------------------------------------------------------- commands
def cmd_check(args) -> int:
    failed = 0
    for file in args.files:
        try:
            graph = parse(Path(file))
        except SpecError as err:
            print(err.format(), file=sys.stderr)
            failed += 1
            continue
        count = sum(_numel(list(graph.nodes[p]["shape"])) for p in graph.graph["params"])
        print(f"{file}: ok ({len(graph.graph['params'])} parameters, {count} numbers)")
    return 1 if failed else 0


def cmd_inspect(args) -> int:
    info = summary(parse(Path(args.file)))
    print(json.dumps(info, indent=2) if args.json else format_summary(info))
    return 0


def cmd_compile(args) -> int:
    source = emit_source(parse(Path(args.file)))
    if args.output in (None, "-"):
        sys.stdout.write(source)
    else:
        _write_atomic(Path(args.output), source)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def cmd_demo(args) -> int:
    """The main job: every bundled spec checked, summarised and compiled into ``--out``."""
    specs = sorted(Path(args.specs).glob("*.spec"))
    if not specs:
        raise SpecError(f"no .spec files in {args.specs}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for spec in specs:
        graph = parse(spec)
        print(format_summary(summary(graph)))
        target = out / (spec.stem + ".py")
        _write_atomic(target, emit_source(graph))
        print(f"  compiled → {target}\n")
    return 0


# ---------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="specc", description="Compile network specs into PyTorch modules.")
    parser.add_argument("--version", action="version", version=f"specc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("check", help="parse and infer every size; report mistakes")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(run=cmd_check)

    p = sub.add_parser("inspect", help="inputs, outputs, parameters and node sizes")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=cmd_inspect)

    p = sub.add_parser("compile", help="write standalone PyTorch source")
    p.add_argument("file", metavar="FILE")
    p.add_argument("-o", "--output", metavar="OUT.py", help="file to write (default: standard output)")
    p.set_defaults(run=cmd_compile)

    p = sub.add_parser("demo", help="run the bundled specs through the whole pipeline")
    p.add_argument("--specs", default="specs", help="folder of .spec files (default: specs)")
    p.add_argument("--out", default="out", help="folder for what the demo writes (default: out)")
    p.set_defaults(run=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except SpecError as err:
        print(err.format(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
