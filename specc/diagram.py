"""Network diagrams with Graphviz: the neuron, layers and graph views of a spec.

    import specc
    specc.draw("specs/sine_nnet.spec")              # a graphviz.Digraph (shows inline in Jupyter)
    specc.draw(model)                                # a module from specc.load, with its current weights
    write_drawing(specc.draw(spec, weights="w.safetensors"), "net.png")

* **neurons** (default while no layer has more than ``max_units`` units): a
  circle per unit, bias nodes B1, B2 … as in R's nnet plot, one edge per
  scalar weight; with weights, colour = sign and width = |w| rescaled over
  the drawing (NeuralNetTools' ``rel_rsc``).  Units are placed here and
  pinned for Graphviz's neato, because dot reorders the units of a layer.
* **layers**: a node per vector and per parameter; a product ``W·v`` is a
  small junction that ``v`` and ``W`` both feed.
* **graph**: the IR itself, one node per operation with its spec line.

User text reaches DOT only inside HTML-like labels, escaped by :func:`text`,
and node ids are generated (``n0``, ``n1`` …), so no identifier or title can
break the DOT text.  docs/drawing.md says how each construct is drawn.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import graphviz

from .diagram_blocks import BlockCanvas
from .diagram_recurrent import DELAYED, delay_text, delayed_attrs, legend_lines, resolve, sequence_size
from .diagram_render import write_drawing
from .diagram_style import (FIXED, FONT, HELD, NEUTRAL, PALETTE, SKIP, Style, _dims, _label, _number, _range, _small,
                            _Weights, text)
from .diagram_units import CONST, Column, Net, NotDrawable, Term, format_connections, read_units
from .errors import SpecError
from .ir import Graph

if TYPE_CHECKING:  # torch is imported only where weights are read: a .dot of a spec needs no torch
    import torch

VIEWS = ("neurons", "layers", "graph")
UNIT_GAP, CAPTION, STACK_GAP, LAYER_GAP = 0.56, 0.5, 0.35, 2.0  # neuron view, in inches
MAX_EDGES = 600  # a spec with blocks and more edges: the layers view by default (three residual blocks: 913)


# ---------------------------------------------------------------- public API
def draw(spec, weights=None, view: str | None = None, collapse: bool = False, **options) -> graphviz.Digraph:
    """A ``graphviz.Digraph`` of ``spec``: a path, spec text, or a module from :func:`specc.load`.

    ``weights``: a safetensors/JSON file or a mapping of tensors, checked like
    :func:`specc.weights.apply_weights`; a module brings its current values.
    ``view``: 'neurons' | 'layers' | 'graph'; None picks neurons while every
    layer has at most ``max_units`` units, else layers.  ``options``: the
    fields of :class:`Style`.  A spec the unit views cannot show (``(W+V)·x``)
    is drawn as its graph, with a note saying why.  In a spec that uses blocks, each call is a
    labelled cluster; ``collapse``: one box per call, a chain of identical ones one box "× N"
    (the layers view unless ``view`` says otherwise).
    """
    if view is not None and view not in VIEWS:
        raise SpecError(f"unknown view '{view}' (choose from {', '.join(VIEWS)})")
    style = Style(**options)
    style.check()
    graph, values, file = _resolve(spec, weights)
    note, net = "", None
    blocks = "blocks" in graph.graph
    if collapse and blocks:
        view = view or "layers"
    if view != "graph":
        try:
            net = read_units(graph, join=not (collapse and blocks))
        except NotDrawable as err:
            view, note = "graph", f"drawn as the IR graph: {err}"
        else:
            if view is None:  # counted only for narrow layers: a million units has millions of connections
                narrow = net.widest() <= style.max_units
                crowded = narrow and blocks and len(net.connections()) > MAX_EDGES  # clusters read better as layers
                view = "neurons" if narrow and not crowded else "layers"
    canvas = _Canvas.start(view, style)
    board = BlockCanvas(canvas, graph, view, collapse) if blocks else canvas  # clusters, or boxes
    if view == "neurons":
        _NeuronView(board, net, values, style).draw()
    elif view == "layers":
        _LayerView(board, net, values, style).draw()
    else:
        _draw_graph_view(board, graph, values, style)
    if blocks:
        board.flush()
    canvas.finish(file if style.title is None else style.title, view, canvas.legend + ([note] if note else []))
    return canvas.dot


def draw_for_demo(spec, stem: str | os.PathLike) -> Path:
    """``stem``.svg where Graphviz is installed, else ``stem``.dot: the demo runs anywhere."""
    suffix = ".svg" if shutil.which("dot") else ".dot"
    return write_drawing(draw(spec), Path(str(stem) + suffix))


def connections_text(spec, weights=None) -> str:
    """The weights connection by connection, like nnet's ``summary`` (``specc inspect --weights``)."""
    graph, values, _ = _resolve(spec, weights)
    if values is None:
        raise SpecError("printing connections needs weights (a file, a mapping, or a module)")
    try:
        return format_connections(read_units(graph), values)
    except NotDrawable as err:
        return f"{graph.graph['file']}: no unit-level reading ({err}); parameters:\n" + "\n".join(
            f"  {name} = {values[name].tolist()}" for name in graph.graph["params"])


def connections_list(spec, weights=None) -> list[dict]:
    """The same connections as plain data (``specc inspect --json --weights``)."""
    graph, values, _ = _resolve(spec, weights)
    if values is None:
        raise SpecError("listing connections needs weights (a file, a mapping, or a module)")
    try:
        net = read_units(graph)
    except NotDrawable:
        return []
    return [{"from": net.unit_name(*c.source), "to": net.unit_name(*c.target),
             "weight": c.reference() if c.param else None, "value": c.value(values)} for c in net.connections()]


def _resolve(spec, weights) -> tuple[Graph, dict[str, "torch.Tensor"] | None, str]:
    """(IR, parameter values as float64 tensors or None, file name) of whatever :func:`draw` was given:
    an IR, a path or spec text (the rule of :func:`specc.api.read_spec`), or a module from specc.load.

    The IR is built at most once (a module brings its own), and weights from a file or a mapping are
    checked against its parameter table: no module is built or compiled to draw a spec.
    """
    from .api import graph as build
    values = None
    if isinstance(spec, (str, os.PathLike, Graph)):
        graph = build(spec)
    elif hasattr(spec, "named_parameters"):  # a torch module: torch is loaded already
        if getattr(type(spec), "spec_source", None) is None:
            raise SpecError(f"cannot draw a {type(spec).__name__}: give a spec or a module made by specc.load")
        from .lower import spec_graph
        graph = spec_graph(spec)
        if weights is None:
            values = {name: p.detach().cpu().double() for name, p in spec.named_parameters()}
            values |= {name: spec.get_buffer(name).detach().cpu().double() for name in graph.graph["fixed"]}
    else:
        raise SpecError(f"cannot draw a {type(spec).__name__}: give a path, spec text, or a module made by "
                        "specc.load")
    if weights is not None:
        import torch

        from .inits import start_value
        from .weights import check_against, read_weights
        if isinstance(weights, Mapping):
            tensors, origin = {name: torch.as_tensor(value) for name, value in weights.items()}, "weights"
        else:
            (tensors, _), origin = read_weights(weights), str(weights)
        check_against(graph, tensors, origin)
        values = {name: tensors[name].detach().cpu().to(torch.float64) for name in graph.graph["params"]}
        for name in graph.graph["fixed"]:  # not in the file: the value its init line gives, when not random
            start = tensors.get(name, start_value(graph.nodes[name]))
            if start is not None:
                values[name] = torch.as_tensor(start, dtype=torch.float64).expand(graph.nodes[name]["shape"])
    return graph, values, graph.graph["file"]


# ---------------------------------------------------------------- common parts
@dataclass
class _Canvas:
    """A Digraph plus the generated ids of what is on it and the legend lines gathered while drawing."""

    dot: graphviz.Digraph
    ids: dict = field(default_factory=dict)
    legend: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, view: str, style: Style) -> "_Canvas":
        layout = dict(layout="neato", splines="true", overlap="true") if view == "neurons" else dict(
            rankdir=style.rankdir or ("TB" if view == "graph" else "LR"), newrank="true", nodesep="0.25",
            ranksep="0.45")
        return cls(graphviz.Digraph("specc", graph_attr=dict(fontname=FONT, bgcolor="white", pad="0.25", **layout),
                                    node_attr=dict(fontname=FONT, fontsize="11"),
                                    edge_attr=dict(fontname=FONT, fontsize="9")))

    def id(self, key) -> str:
        return self.ids.setdefault(key, f"n{len(self.ids)}")

    def node(self, key, label: str, kind: str, **attrs) -> None:
        """``kind`` becomes the SVG class (``unit input``, ``bias``, ``param`` …), for CSS and for tests."""
        self.dot.node(self.id(key), _label(label), **{"class": kind}, **attrs)

    def edge(self, tail, head, kind: str, **attrs) -> None:
        self.dot.edge(self.id(tail), self.id(head), **{"class": kind}, **attrs)

    def finish(self, title: str, view: str, legend: list[str]) -> None:
        rows = [f'<TR><TD><B>{text(title)}</B> <FONT COLOR="#777777">({view} view)</FONT></TD></TR>'] if title else []
        rows += [f"<TR><TD>{_small(line)}</TD></TR>" for line in legend]
        if rows:
            self.dot.attr(label=_label('<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="1">' + "".join(rows)
                                       + "</TABLE>"), labelloc="t", labeljust="c", fontsize="14")


def _caption_html(column: Column, show_shapes: bool) -> str:
    name, size, what = column.caption(show_shapes)
    return f"<B>{text(name)}</B> {text(size)}<BR/>" + _small(text(what))


# ---------------------------------------------------------------- neuron view
class _NeuronView:
    """Layers are columns by depth, units in index order, bias nodes on top of the layer before."""

    def __init__(self, canvas: _Canvas, net: Net, values, style: Style):
        self.canvas, self.net, self.style = canvas, net, style
        self.links = net.connections(with_bias=style.show_bias)
        self.weights = _Weights(self.links, values, style, net.shared_params())
        self.vertical = style.rankdir in ("TB", "BT")
        self.flip = -1 if style.rankdir in ("RL", "TB") else 1  # RL: later layers to the left; TB: lower
        self.gap = UNIT_GAP + 0.16 * self.vertical  # side by side, labels like out1₂ need more room
        self.far = {"LR": "e", "RL": "w", "TB": "s", "BT": "n"}[style.rankdir or "LR"]  # the outputs' side

    def draw(self) -> None:
        across, previous = 0.0, None
        for stack in self.stacks().values():
            if previous is not None:  # far enough apart for the captions, and for the edges to fan out
                across += max(LAYER_GAP + 0.02 * self.net.widest(), (previous + self.extent(stack)) / 2 + 0.3)
            self.place(across, stack)
            previous = self.extent(stack)
        labelled = set()  # one t−1 label per pair of layers: on every edge it would hide the picture
        for link in self.links:
            if self.net.skips(link):  # routed around the layers it passes, in its own colour
                self.canvas.edge(link.source, link.target, "skip", arrowsize="0.45", color=SKIP, penwidth="1.4",
                                 tooltip="skip connection: the value itself, added further on")
            elif link.delay:  # recurrent: from the units of h back to the layer that reads prev(h)
                pair = (link.source[0], link.target[0], link.delay)
                mark = None if pair in labelled else _label(_small(text(delay_text(link.delay)), DELAYED))
                labelled.add(pair)
                # back into its own layer: out of and into the units' far side (Graphviz 2.43's router
                # crashes on dense edges between the units of one column, and the loops read as feedback)
                ports = dict(tailport=self.far, headport=self.far) if link.source[0] == link.target[0] else {}
                self.canvas.edge(link.source, link.target, f"{link.kind} recurrent", arrowsize="0.45", **ports,
                                 **delayed_attrs(self.weights.attrs(link), link.delay, mark))
            else:
                self.canvas.edge(link.source, link.target, link.kind, arrowsize="0.45", **self.weights.attrs(link))
        self.canvas.legend = self.weights.legend(self.links)
        if labelled:
            self.canvas.legend += legend_lines(self.net.graph, {link.delay for link in self.links if link.delay})
        if any(self.net.skips(link) for link in self.links):
            self.canvas.legend.append(f'<FONT COLOR="{SKIP}">━ a skip connection</FONT> (a value added again '
                                      "past the layers between)")
        if any(link.source[0].startswith(CONST) for link in self.links):
            self.canvas.legend.append("grey square: a number of the spec added in (not a bias)")

    def stacks(self) -> dict[int, list]:
        """What each depth shows, top to bottom: bias nodes (names), then columns."""
        used = {c.source[0] for c in self.links}
        stacks: dict[int, list] = {}
        for depth, bias in self.net.bias_nodes.items():
            if bias in used:
                stacks.setdefault(depth - 1, []).append(bias)
        for link in self.links:  # a constant term stands where a bias node would, before its layer
            if link.source[0].startswith(CONST) and link.target[1] == 0:
                stacks.setdefault(self.net.columns[link.target[0]].depth - 1, []).append(link.source[0])
        first_use: dict[str, int] = {}
        for link in self.links:
            depth = self.net.columns[link.target[0]].depth
            first_use[link.source[0]] = min(first_use.get(link.source[0], depth), depth)
        for column in self.net.drawn():
            # A parameter used as a value stands just before its first user, like a bias node.
            depth = first_use.get(column.node, 1) - 1 if column.kind in ("param", "fixed") else column.depth
            stacks.setdefault(depth, []).append(column)
        return dict(sorted(stacks.items()))

    def extent(self, stack: list) -> float:
        """How much room across the layers a stack needs, in inches: its widest caption, or its widest layer."""
        if self.vertical:  # captions sit beside their rows
            return 0.5
        return max(0.5 if isinstance(item, str) else self.caption_width(item) for item in stack)

    def caption_width(self, column: Column) -> float:
        """Estimated width of a caption in inches (11 pt head, 9 pt second line)."""
        name, size, what = column.caption(self.style.show_shapes)
        return max(len(f"{name} {size}") * 0.085, len(what) * 0.07)

    def caption_room(self, column: Column) -> float:
        """Room for a caption before the first unit: a line above it, or its width when layers are rows."""
        if not self.vertical:
            return CAPTION
        return self.caption_width(column) + 0.2

    def place(self, across: float, stack: list) -> None:
        heights = [self.gap if isinstance(item, str) else self.caption_room(item) + item.size * self.gap
                   for item in stack]
        top = (sum(heights) + STACK_GAP * (len(stack) - 1)) / 2
        for item, height in zip(stack, heights):
            if isinstance(item, str) and item.startswith(CONST):
                number = self.net.unit_name(item, 0)
                self.canvas.node((item, 0), text(number), "constant", shape="square", width="0.34", fixedsize="true",
                                 style="filled", fillcolor="#eeeeee", color=FIXED, fontsize="10",
                                 pos=self.pin(across, top - self.gap / 2), tooltip=f"the constant {number}")
            elif isinstance(item, str):
                fill, border = PALETTE["bias"]
                name = self.net.unit_name(item, 0)
                self.canvas.node((item, 0), text(name), "bias", shape="circle", width="0.42", fixedsize="true",
                                 style="filled", fillcolor=fill, color=border, pos=self.pin(across, top - self.gap / 2),
                                 tooltip=f"bias node {name}: the constant 1")
            else:
                self.layer(item, across, top)
            top -= height + STACK_GAP

    def pin(self, across: float, down: float) -> str:
        x, y = (-down, self.flip * across) if self.vertical else (self.flip * across, down)
        return f"{x:.3f},{y:.3f}!"

    def layer(self, column: Column, across: float, top: float) -> None:
        fill, border = PALETTE[column.look]
        room = self.caption_room(column)
        self.canvas.node(("caption", column.node), _caption_html(column, self.style.show_shapes), "caption",
                         shape="plaintext", margin="0", width="0", height="0", pos=self.pin(across, top - room / 2))
        for unit in range(column.size):
            label = text(column.name) + (f"<SUB>{unit + 1}</SUB>" if column.size > 1 else "")
            length = len(column.name) + len(str(unit + 1)) * (column.size > 1)
            self.canvas.node((column.node, unit), label, f"unit {column.look}",
                             shape="box" if column.kind in ("param", "fixed") else "circle",
                             style="filled,dashed" if column.kind == "fixed" else "filled", fillcolor=fill,
                             color=border, width="0.44", height="0.44", fixedsize="shape",
                             fontsize=str(11 if length <= 3 else 9 if length <= 5 else 7),
                             pos=self.pin(across, top - room - (unit + 0.5) * self.gap),
                             tooltip=self.net.unit_name(column.node, unit))


# ---------------------------------------------------------------- layers view
class _LayerView:
    def __init__(self, canvas: _Canvas, net: Net, values, style: Style):
        self.canvas, self.net, self.values, self.style = canvas, net, values, style
        self.junctions = self.fixed = 0
        self.delays: set[int] = set()  # steps back of the recurrent connections drawn

    def draw(self) -> None:
        columns = self.net.drawn()
        params, fixed = self.net.graph.graph["params"], self.net.graph.graph["fixed"]
        for column in columns:
            if column.kind not in ("param", "fixed"):
                fill, border = PALETTE[column.look]
                self.canvas.node(column.node, _caption_html(column, self.style.show_shapes), f"layer {column.look}",
                                 shape="box", style="rounded,filled", fillcolor=fill, color=border)
        used = {t.param for c in columns for t in c.terms if t.param and (t.kind != "bias" or self.style.show_bias)}
        used |= {o for c in columns for o in c.operands if o in params or o in fixed}
        for param in params + fixed:
            if param in used:
                self.param_node(param)
        for column in columns:
            for term in column.terms:
                self.term(term, column.node)
            for operand in column.operands:
                drawn_value = operand in params
                if self.delayed(operand, column.node, "wire"):
                    continue
                if operand in fixed:
                    self.canvas.edge(operand, column.node, "fixed", arrowsize="0.6", style="dashed", color=HELD)
                    continue
                self.canvas.edge(operand, column.node, "weight" if drawn_value else "wire", arrowsize="0.6",
                                 style="solid" if drawn_value else "dotted", color=NEUTRAL if drawn_value else FIXED)
        if self.junctions:
            self.canvas.legend.append("small circle: a product (· matrix, × scale) of what flows in and a parameter")
        if self.fixed:
            self.canvas.legend.append("grey dashed: added as it is (a constant factor is written on the edge)")
        if any(o not in params and o not in fixed for c in columns for o in c.operands):
            self.canvas.legend.append("dotted: an operand of an operation")
        if any(p in used for p in fixed):
            self.canvas.legend.append(f'<FONT COLOR="{HELD}">teal, dashed</FONT>: a fixed value (held, not trained)')
        if self.delays:
            self.canvas.legend += legend_lines(self.net.graph, self.delays)

    def delayed(self, source: str, head, kind: str, **attrs) -> bool:
        """Draw the loop edge of a recurrent connection (from h, marked t−1) when ``source`` is prev(h)."""
        node, steps = resolve(self.net.columns, source)
        if not steps:
            return False
        self.delays.add(steps)
        mark = _label(_small(text(delay_text(steps)), DELAYED))
        self.canvas.edge(node, head, f"{kind} recurrent", arrowsize="0.6", constraint="false",
                         **delayed_attrs(dict(attrs, color=NEUTRAL), steps, mark))
        return True

    def param_node(self, param: str) -> None:
        attrs = self.net.graph.nodes[param]
        label = f"<B>{text(param)}</B>" + (f" {text(_dims(attrs['shape']))}" if self.style.show_shapes else "")
        if self.values is not None and param in self.values:
            label += "<BR/>" + _small(text(_range(self.values[param])))
        if attrs["kind"] == "fixed":
            fill, border = PALETTE["fixed"]
            self.canvas.node(param, label + "<BR/>" + _small("fixed", HELD), "fixed", shape="box", style="filled,dashed",
                             fillcolor=fill, color=border, fontsize="10", width="0", height="0", margin="0.08,0.04",
                             tooltip=f"{param}: a fixed value (not trained)")
            return
        fill, border = PALETTE["bias" if attrs["role"] == "bias" else "param"]
        self.canvas.node(param, label, "param", shape="box", style="filled", fillcolor=fill, color=border,
                         fontsize="10", width="0", height="0", margin="0.08,0.04", tooltip=f"{param}: {attrs['role']}")

    def term(self, term: Term, target: str) -> None:
        factor = {"label": _label(text("×" + _number(term.const)))} if term.const != 1 else {}
        if term.kind == "bias":
            if not self.style.show_bias:
                return
            if term.param is None:  # a constant added on its own
                source = ("const", target, len(self.canvas.ids))
                self.canvas.node(source, text(_number(term.const)), "const", shape="plaintext")
                self.canvas.edge(source, target, "fixed", color=FIXED, style="dashed", arrowsize="0.6")
            elif term.param in self.net.graph.graph["fixed"]:
                self.canvas.edge(term.param, target, "fixed", color=HELD, style="dashed", arrowsize="0.6", **factor)
            else:
                self.canvas.edge(term.param, target, "bias", color=NEUTRAL, arrowsize="0.6", **factor)
        elif term.param is None:
            self.fixed += 1
            for source, _ in term.sources:
                if not self.delayed(source, target, "fixed", **factor):
                    self.canvas.edge(source, target, "fixed", color=FIXED, style="dashed", arrowsize="0.6", **factor)
        else:
            self.junctions += 1
            junction = ("junction", self.junctions)
            symbol = "·" if term.kind == "matrix" else "×"
            mark = "ᵀ" if term.transposed else ""  # Wᵀ: the same parameter node W, its edge marked ᵀ
            self.canvas.node(junction, text(symbol), "junction", shape="circle", width="0.22", height="0.22",
                             fixedsize="true", fontsize="12", color="#666666", tooltip=f"{symbol} {term.param}{mark}")
            for source, offset in term.sources:
                size = self.net.columns[source].size
                piece = {"label": _label(_small(text(f"{offset + 1}–{offset + size}")))} \
                    if len(term.sources) > 1 else {}
                if not self.delayed(source, junction, "data"):
                    self.canvas.edge(source, junction, "data", color=NEUTRAL, arrowsize="0.6", **piece)
            held = term.param in self.net.graph.graph["fixed"]
            self.canvas.edge(term.param, junction, "fixed" if held else "weight", color=HELD if held else NEUTRAL,
                             style="dashed", arrowsize="0.5",
                             **({"label": _label(_small(text(mark)))} if mark else {}))
            self.canvas.edge(junction, target, "data", color=NEUTRAL, arrowsize="0.6", **factor)


# ---------------------------------------------------------------- graph view
GRAPH_SHAPES = {"input": "ellipse", "param": "box", "fixed": "box", "const": "plaintext", "op": "box",
                "output": "ellipse"}
ORDERED_OPS = frozenset({"sub", "div", "pow", "matmul", "concat", "clamp"})  # operand order matters: number the edges


def _draw_graph_view(canvas: _Canvas, graph: Graph, values, style: Style) -> None:
    for node, attrs in graph.nodes.items():
        kind = attrs["kind"]
        shape = f" {text(_dims(attrs['shape']))}" if style.show_shapes and kind != "const" else ""
        if attrs.get("sequence") and shape:  # input x[T, 3]: a sequence of [3]
            shape = f" {text(sequence_size(attrs, '[' + ', '.join(map(str, attrs['shape'])) + ']'))}"
        if kind == "op":
            name = text(attrs["name"] + " = ") if attrs["name"] else ""
            via = f" (in {attrs['via']})" if attrs.get("via") else ""
            where = f"{attrs['label']}   line {attrs['span'].line}{via}"
            label = f"<B>{name}{text(attrs['op'])}</B>{shape}<BR/>{_small(text(where))}"
        elif kind == "const":
            label = text(attrs["label"])
        elif kind in ("param", "fixed"):
            role = attrs["role"] if kind == "param" else "fixed (not trained)"
            label = f"<B>{text(node)}</B>{shape}<BR/>{_small(text(role))}"
            if values is not None and node in values:
                label += "<BR/>" + _small(text(_range(values[node])))
        else:
            label = f"{text(kind)} <B>{text(attrs['name'])}</B>{shape}"
        fill, border = PALETTE[{"input": "input", "output": "output", "param": "param", "fixed": "fixed"}.get(kind, "node")]
        canvas.node(node, label, kind, shape=GRAPH_SHAPES[kind], fillcolor=fill, color=border,
                    style="rounded,filled" if kind == "op" else "filled,dashed" if kind == "fixed" else "filled")
    for (source, target), attrs in graph.edges.items():
        ordered = graph.nodes[target].get("op") in ORDERED_OPS
        label = {"label": _label(_small(text(",".join(str(p + 1) for p in attrs["positions"]))))} if ordered else {}
        canvas.edge(source, target, "data", arrowsize="0.6", color=NEUTRAL, **label)
    for of, prev in graph.graph.get("recurrent", ()):  # the IR has no edge h → prev(h): drawn, delayed
        canvas.edge(of, prev, "recurrent", arrowsize="0.6", constraint="false",
                    **delayed_attrs({"color": NEUTRAL, "tooltip": f"prev({of})"}, 1,
                                    _label(_small(text(delay_text(1)), DELAYED))))
    if graph.graph.get("recurrent"):
        canvas.legend += legend_lines(graph, {1})
