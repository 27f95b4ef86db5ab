"""``specc compile`` of a spec that uses blocks: one standalone file, one class per block.

The flat IR (specc/blocks.py) is cut back into levels: the top level, and for each class one call
of one of its instances. Each level becomes a small IR of its own — the block's inputs as inputs,
its parameters under the block author's names, each nested call as one node that calls the
submodule (``self.enc(x)``) — and :func:`specc.compile.emit_source` writes its class. The classes
are then joined into one file: the imports and helpers once, the innermost classes first, the
spec's own class last (the one ``specc.load`` instantiates).
"""
from __future__ import annotations

import re

from .compile import _attribute, class_name, emit_source
from .ir import Graph

# The import lines a generated file may have, in the order it writes them.
_IMPORT_ORDER = ["import math", "from typing import NamedTuple", "", "import torch", "from torch import nn",
                 "from torch.nn import functional as F"]


def level_graph(graph: Graph, call: str | None) -> Graph:
    """The IR of one level: the top (``call`` None) or the block body of one call."""
    blocks = graph.graph["blocks"]
    instances, calls = blocks["instances"], blocks["calls"]
    if call is None:
        members = [n for n in graph.topological() if "call" not in graph.nodes[n]
                   and "block" not in graph.nodes[n] and graph.nodes[n]["kind"] != "output"]
        inst = None
    else:
        members = [n for n in graph.topological() if graph.nodes[n].get("call") == call]
        inst = instances[calls[call]["instance"]]
        members = inst["params"] + inst["fixed"] + members
    nested = {k: rec for k, rec in calls.items() if rec["parent"] == call}
    made = {}  # flat id → this level's id
    for n in members:
        attrs = graph.nodes[n]
        made[n] = attrs["local"] if call is not None and ("local" in attrs) else n
    called = {}  # a nested call's output node → (call id, output name)
    for k, rec in nested.items():
        for name, node in rec["outputs"].items():
            called[node] = (k, name)
    level = Graph()

    def ref(arg: str) -> str:
        """This level's id for an operand: a member's, or a nested call's submodule call, made once."""
        if arg not in made:
            k, name = called[arg]
            rec = nested[k]
            child = instances[rec["instance"]]
            args = tuple(ref(a) for a in rec["args"])
            made[arg] = f"{k}:{name}"
            attrs = {key: value for key, value in graph.nodes[arg].items()
                     if key not in ("block", "call", "local", "port", "stmt_span", "expr_span", "dims")}
            several = len(child["outputs"]) > 1
            attrs.update(kind="op", op="identity", args=args, name=None, hint=name,
                         module_call=(_attribute(child["name"]), args, name if several else None))
            level.add_node(made[arg], **attrs)
        return made[arg]

    for n in members:
        attrs = dict(graph.nodes[n])
        for key in ("block", "call", "local", "port"):
            attrs.pop(key, None)
        if "local" in graph.nodes[n] and call is not None:
            local = graph.nodes[n]["local"]
            if graph.nodes[n].get("port") == "input":
                attrs = dict(kind="input", name=local, stmt=None, span=attrs["span"], order=attrs["order"],
                             dims=attrs["shape"], shape=attrs["shape"], batched=True,
                             **{k: v for k, v in attrs.items() if k in ("stepped", "sequence")})
            elif attrs["kind"] in ("param", "fixed"):
                attrs["name"] = local
            else:
                attrs.update(name=local, stmt=local)
        if "args" in attrs:
            attrs["args"] = tuple(ref(a) for a in attrs["args"])
        level.add_node(made[n], **attrs)
    for node, attrs in list(level.nodes.items()):
        for position, arg in enumerate(attrs.get("args", ())):
            if level.has_edge(arg, node):
                level.edges[arg, node]["positions"].append(position)
            else:
                level.add_edge(arg, node, positions=[position])
    children = [p for p, i in instances.items() if i["parent"] == (None if inst is None else _path(blocks, call))]
    if call is None:
        level.graph.update({k: v for k, v in graph.graph.items() if k != "blocks"})
        level.graph.update(params=[p for p in graph.graph["params"] if "block" not in graph.nodes[p]],
                           fixed=[f for f in graph.graph["fixed"] if "block" not in graph.nodes[f]])
    else:
        level.graph.update(file=inst["file"], source=_source(graph, inst), inputs=list(inst["inputs"]),
                           outputs=list(inst["outputs"]), params=[graph.nodes[p]["local"] for p in inst["params"]],
                           fixed=[graph.nodes[f]["local"] for f in inst["fixed"]], warnings=[],
                           recurrent=[], **{"class": inst["class"]})
    level.graph["submodules"] = [(instances[p]["name"], instances[p]["class"]) for p in children]
    return level


def _path(blocks: dict, call: str) -> str:
    return blocks["calls"][call]["instance"]


def _source(graph: Graph, inst: dict) -> str:
    program = graph.graph.get("block_sources", {}).get(inst["file"])
    return program if program is not None else graph.graph["source"]


def emit_blocks_source(graph: Graph, spec_file: str | None = None) -> str:
    """The standalone file: every class once (innermost first), the spec's own last."""
    blocks = graph.graph["blocks"]
    written: dict[str, str] = {}
    order = sorted(blocks["instances"].items(), key=lambda item: -item[0].count("."))
    for path, inst in order:
        if inst["class"] in written or not inst["calls"]:
            continue
        written[inst["class"]] = emit_source(level_graph(graph, inst["calls"][0]), inst["file"])
    top = emit_source(level_graph(graph, None), spec_file)
    imports, helpers, classes = set(), [], []
    for cls, source in [*written.items(), (class_name(graph.graph["file"]), top)]:
        head, rest = source.split("\n\n\n", 1)
        imports |= {line for line in head.splitlines() if line.startswith(("import ", "from "))}
        chunks = rest.split("\n\n\n")
        first = next(i for i, chunk in enumerate(chunks) if chunk.startswith("class "))
        helpers += [h for h in chunks[:first] if h not in helpers]
        text = "\n\n\n".join(chunks[first:]).rstrip("\n")
        if cls != class_name(graph.graph["file"]):  # each block's NamedTuple of outputs has its own name
            text = re.sub(r"(class |-> |return )Outputs\b", rf"\1{cls}Outputs", text)
        classes.append(text)
    lines = [line for line in _IMPORT_ORDER if not line or line in imports]
    lines += sorted(imports - set(_IMPORT_ORDER))
    if lines[0] == "":
        lines = lines[1:]
    head = top.split("\n\n\n", 1)[0].splitlines()
    comment = [line for line in head if line.startswith("#")]
    return "\n\n\n".join(["\n".join(comment + lines), *helpers, *classes]) + "\n"
