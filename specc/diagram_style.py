"""The look of specc's diagrams: the palette, the options a user sets (:class:`Style`), the escaping
of user text for Graphviz's HTML-like labels, and the edge styles that show weights.

specc/diagram.py draws the views with these; nothing here runs Graphviz or imports torch.
"""
from __future__ import annotations

import html
import math
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import SpecError
from .options import check as check_values

if TYPE_CHECKING:  # torch is imported only where weights are read
    import torch

    from .diagram_units import Connection

FONT = "Helvetica,Arial,sans-serif"
COLOR = re.compile(r"#[0-9a-fA-F]{3}([0-9a-fA-F]{3})?([0-9a-fA-F]{2})?$|[A-Za-z][A-Za-z0-9]*$")
PALETTE = {"input": ("#d7e7f7", "#3f6e9e"), "node": ("#ffffff", "#555555"), "output": ("#fbe3c8", "#b8702a"),
           "bias": ("#fff3ad", "#a88c00"), "param": ("#eeeeee", "#777777"), "op": ("#efe7f7", "#7a5a9e"),
           "fixed": ("#dcefee", "#2a7f7f")}  # fixed values (`fixed mu[3]`): teal, dashed, in every view
NEUTRAL, FIXED, HELD = "#8a8a8a", "#a0a0a0", "#2a7f7f"  # HELD: a fixed value's edges
SKIP = "#7b3294"  # skip connections (x in r = x + W·h), apart from the grey and red/blue mesh
SHARED_HUES = ("#2f6fd0", "#8a3fc0", "#d07a1f", "#1f9a8a")  # shared parameters' edges, when no weights are given


@dataclass(frozen=True)
class Style:
    """The options a user of Keras' plot_model or R's plotnet looks for."""

    rankdir: str | None = None  # LR | TB | RL | BT; None: LR, but TB for the graph view
    title: str | None = None  # None: the spec's file name; '' for none
    show_shapes: bool = True
    show_bias: bool = True
    pos_color: str = "#007700"  # the colours of the first story's plot.nnet call
    neg_color: str = "#ff7777"
    width_range: tuple[float, float] = (0.6, 5.0)  # edge widths in points for the smallest and largest |w|
    weight_labels: bool = False
    max_units: int = 32

    def check(self) -> None:
        for color in (self.pos_color, self.neg_color):
            if not COLOR.match(color):
                raise SpecError(f"'{color}' is not a colour: give a name like 'darkgreen' or '#rrggbb'")
        if self.rankdir not in (None, "LR", "TB", "RL", "BT"):
            raise SpecError(f"rankdir must be LR, TB, RL or BT, not '{self.rankdir}'")
        check_values({"width_range": self.width_range, "max_units": self.max_units})


# ---------------------------------------------------------------- escaping
def text(value: object) -> str:
    """User text for an HTML-like label: control characters dropped, markup and backslashes escaped."""
    cleaned = "".join(ch for ch in str(value) if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    escaped = html.escape(cleaned, quote=True).replace("\n", "<BR/>").replace("\t", " ")
    return escaped.replace("\\", "\\\\")  # Graphviz expands \G, \N … even in HTML labels; \\ is one \


def _small(inner: str, color: str = "#555555") -> str:
    return f'<FONT POINT-SIZE="9" COLOR="{color}">{inner}</FONT>'


def _label(inner: str) -> str:
    return f"<{inner}>"


def _number(value: float) -> str:
    return f"{value:g}"


def _dims(shape: tuple[int, ...]) -> str:
    return "[" + "×".join(map(str, shape)) + "]" if shape else "scalar"


def _range(values: torch.Tensor) -> str:
    low, high = values.min().item(), values.max().item()
    return f"{low:.3g} … {high:.3g}" if low != high else f"{low:.4g}"


class _Weights:
    """Edge styles: sign → colour, |w| → width rescaled over the drawing (plotnet's rel_rsc)."""

    def __init__(self, links: list[Connection], values, style: Style, shared: list[str]):
        self.values, self.style = values, style
        self.hues = {p: SHARED_HUES[k % len(SHARED_HUES)] for k, p in enumerate(shared)}
        magnitudes = [abs(c.value(values)) for c in links if c.kind == "weight" and values is not None]
        magnitudes = [m for m in magnitudes if math.isfinite(m)]  # a NaN weight is drawn, but scales nothing
        self.low, self.high = (min(magnitudes), max(magnitudes)) if magnitudes else (0.0, 0.0)

    def width(self, magnitude: float) -> float:
        low, high = self.style.width_range
        if not math.isfinite(magnitude):
            return high if magnitude == math.inf else low
        if self.high == self.low:
            return (low + high) / 2
        return low + (high - low) * (magnitude - self.low) / (self.high - self.low)

    def attrs(self, link: Connection) -> dict[str, str]:
        if link.kind == "fixed" and link.param is not None:  # a fixed value's entry: held, never trained
            value = link.value(self.values)
            said = link.reference() + ("" if value is None else f" = {value:.6g}")
            return dict(color=HELD, style="dashed", penwidth="1", tooltip=f"fixed value {said}",
                        label=_label(_small(text(link.reference()), HELD)))
        if link.kind != "weight":
            label = "" if link.kind == "wire" or link.const == 1 else _number(link.const)
            return dict(color=FIXED, style="dotted" if link.kind == "wire" else "dashed", penwidth="0.8",
                        tooltip=f"fixed: {label or 1}", **({"label": _label(_small(text(label)))} if label else {}))
        attrs = dict(tooltip=link.reference(), style="dashed" if link.param in self.hues else "solid")
        if link.const != 1:  # e.g. legendre's 2.5·b: a factor the spec puts on a parameter
            attrs["label"] = _label(_small(text(link.reference().split("[")[0])))
        if self.values is None:
            attrs.update(color=self.hues.get(link.param, NEUTRAL), penwidth="1")
            return attrs
        value = link.value(self.values)
        attrs.update(color=self.style.pos_color if value > 0 else self.style.neg_color if value < 0 else NEUTRAL,
                     penwidth=f"{self.width(abs(value)):.2f}", tooltip=f"{link.reference()} = {value:.6g}")
        if self.style.weight_labels:
            attrs["label"] = _label(_small(text(f"{value:.2f}")))
        return attrs

    def legend(self, links: list[Connection]) -> list[str]:
        lines = []
        if any(c.kind == "weight" for c in links):
            if self.values is None:
                lines.append("one edge per weight (no weights given: drawn neutral)")
            else:
                pos, neg = self.style.pos_color, self.style.neg_color
                lines.append(f'<FONT COLOR="{pos}">━ positive</FONT>  <FONT COLOR="{neg}">━ negative</FONT>'
                             f"   width ∝ |w|, {self.low:.3g} … {self.high:.3g}")
        if self.hues:
            lines.append("dashed: the same parameter on several edges (" + ", ".join(
                f'<FONT COLOR="{hue}">{text(p)}</FONT>' if self.values is None else text(p)
                for p, hue in self.hues.items()) + ")")
        if any(c.kind == "fixed" and c.param is None for c in links):
            lines.append("grey dashed: a factor the spec fixes (no parameter)")
        if any(c.kind == "fixed" and c.param is not None for c in links):
            lines.append(f'<FONT COLOR="{HELD}">teal dashed</FONT>: a fixed value (held, not trained)')
        if any(c.kind == "wire" for c in links):
            lines.append("dotted: an operand of an operation")
        return lines
