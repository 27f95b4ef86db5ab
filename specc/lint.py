"""Warnings: likely mistakes that still compile, found once the IR is built (docs/language.md, "Warnings").

- ``free-name``: a free name (it becomes a parameter) that looks like a misspelt node, input, fixed
  value or function: ``relu(x + rr)`` where ``r`` is a node.
- ``extra-output``: without an ``output`` line, a node nothing uses becomes an output; reported when
  a free name looks like a misspelling of it (the typo's victim).
- ``dead-node``: with an ``output`` line, a node nothing uses and the line does not list.
- ``matrix-star``: ``W*x`` where a capitalised, undeclared ``W`` becomes a vector: a matrix product
  (``W·x``) was probably meant. When such a ``*`` ends in a shape error, the error gets the same note.

"Looks like" is :func:`closeness`. Typos in short names cannot be told from naming schemes (``b1``
beside ``h1``, ``Wx`` beside ``x``), so those schemes are excluded. The checks cost a few dictionary
look-ups per name, so ``specc check`` stays fast on large specs.
"""
from __future__ import annotations

import os
import sys
from functools import lru_cache

from .errors import ShapeError, Span, SpecDiagnostic, SpecError
from .ops import FUNCTIONS

MAX_DISTANCE = 2
_DIGITS = "0123456789"


# ---------------------------------------------------------------- how close two names are
def distance(a: str, b: str, limit: int = MAX_DISTANCE) -> int:
    """Edit distance with adjacent transpositions (optimal string alignment); ``limit + 1`` once it
    is past ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2, previous = None, list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (ca != cb))
            if previous2 is not None and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], previous2[j - 2] + 1)
        if min(row) > limit:
            return limit + 1
        previous2, previous = previous, row
    return min(previous[-1], limit + 1)


def _split(name: str) -> tuple[str, str]:
    """``h12`` → (``h``, ``12``): a stem and its index."""
    stem = name.rstrip(_DIGITS)
    return stem, name[len(stem):]


def _naming_scheme(a: str, b: str) -> bool:
    """Whether two different stems differ the way names of one scheme do rather than by a typo: a
    first character that says the role (``b_h`` beside ``W_h``, ``bx`` beside ``hx``), or a prefix or
    suffix (``Wx`` beside ``x``, ``W_out`` beside ``out``). A doubled letter (``rr`` for ``r``) is a typo."""
    if len(a) == len(b):
        return a[1:] == b[1:] and (len(a) <= 3 or not a[1].isalpha())
    short, long = sorted((a, b), key=len)
    if long.startswith(short):
        block, neighbour = long[len(short):], short[-1]
    elif long.endswith(short):
        block, neighbour = long[:len(long) - len(short)], short[0]
    else:
        return False
    if set(block) == {neighbour}:
        return False
    return len(short) <= 3 or any(not c.isalpha() for c in block)


def closeness(free: str, known: str) -> int | None:
    """How far a free name is from a known one when it looks like a misspelling of it, else None.

    A case slip (``X`` for ``x``) is 0. Otherwise both names need at least two characters; names
    with different indices (``x3``, ``x2``) are close only when their stems are equal and the indices
    one edit apart; else the stems may be one edit apart (two when both have five or more characters),
    unless they differ as names of one scheme do (:func:`_naming_scheme`)."""
    if free == known:
        return None
    if free.lower() == known.lower():
        return 0
    if len(free) < 2 or len(known) < 1:
        return None
    (fs, fi), (ks, ki) = _split(free), _split(known)
    if fi != ki:
        return 1 if fs == ks and fi and ki and distance(fi, ki, 1) <= 1 else None
    if _naming_scheme(fs, ks):  # first: it is cheaper than the distance, and decides most pairs of a big spec
        return None
    limit = 1 if min(len(fs), len(ks)) <= 4 else 2
    d = distance(fs, ks, limit)
    return d if d <= limit else None


def _variants(text: str, deletions: int) -> set[str]:
    """The text in lower case with up to ``deletions`` characters deleted: two texts within that edit
    distance share one (transpositions included)."""
    found = frontier = {text.lower()}
    for _ in range(deletions):
        frontier = {w[:i] + w[i + 1:] for w in frontier for i in range(len(w))}
        found = found | frontier
    return found


class _Index:
    """Known names filed three ways, the three cases of :func:`closeness`: in lower case; by index,
    then by each variant of the stem; by stem, then by each variant of the index. A free name's close
    matches are then a few look-ups away, not a comparison with every name (specs may have thousands)."""

    def __init__(self, names):
        self.case: dict[str, list[str]] = {}
        self.stems: dict[str, dict[str, list[str]]] = {}  # index → stem variant → names
        self.indices: dict[str, dict[str, list[str]]] = {}  # stem → index variant → names
        self.memo: dict[tuple, set[str]] = {}  # stems and indices repeat: h1, W1, b1
        for name in names:
            stem, index = _split(name)
            self.case.setdefault(name.lower(), []).append(name)
            by_stem = self.stems.setdefault(index, {})
            for variant in self._variants(stem, _deletions(stem), stem=True):
                by_stem.setdefault(variant, []).append(name)
            if index:
                by_index = self.indices.setdefault(stem, {})
                for variant in self._variants(index, 1):
                    by_index.setdefault(variant, []).append(name)

    def _variants(self, text: str, deletions: int, stem: bool = False) -> set[str]:
        found = self.memo.get((text, deletions, stem))
        if found is None:  # a stem's, not "": two one-character stems meet there, and differ by scheme
            found = self.memo[text, deletions, stem] = _variants(text, deletions) - ({""} if stem else set())
        return found

    def closest(self, free: str) -> list[tuple[int, str]]:
        """(closeness, name) of the known names closest to ``free``, ties all; or none."""
        stem, index = _split(free)
        candidates = list(self.case.get(free.lower(), ()))
        by_stem = self.stems.get(index)
        if by_stem:
            for variant in self._variants(stem, _deletions(stem), stem=True):
                candidates += by_stem.get(variant, ())
        by_index = self.indices.get(stem) if index else None
        if by_index:
            for variant in self._variants(index, 1):
                candidates += by_index.get(variant, ())
        if not candidates:
            return []
        ranked = sorted({(d, known) for known in candidates if (d := closeness(free, known)) is not None})
        return [(d, name) for d, name in ranked if d == ranked[0][0]]


def _deletions(stem: str) -> int:
    """How many deletions find a stem's close matches: two edits are allowed between stems of five or
    more characters (a very long one is looked up with one only: 1 + n + n² variants otherwise)."""
    return 1 if len(stem) < 5 or len(stem) > 40 else 2


@lru_cache(maxsize=1)
def _builtin_index() -> _Index:
    return _Index(FUNCTIONS)  # the same for every spec: built once


# ---------------------------------------------------------------- the checks
def diagnose(builder, graph) -> list[SpecDiagnostic]:
    """Every warning of a built IR, in source order; ``builder`` is lower.py's, after lowering."""
    source = builder.program.source
    declared = set(builder.param_decls)
    free = {name: span for name, span in builder.params.items() if name not in declared}
    found: list[SpecDiagnostic] = []
    if free:
        _misspelt(builder, graph, free, found)
    _unused(builder, graph, found)
    for span, label, name, other, matrix in _stars(builder):
        shape = graph.nodes[name].get("shape")
        if name in free and not matrix and shape is not None and len(shape) == 1:
            found.append(SpecDiagnostic(f"'{label}' multiplies '{name}' elementwise, so '{name}' becomes a "
                                        f"vector {list(shape)}; {_star_note(span, name, other)[0]}", span,
                                        code="matrix-star"))
    for diagnostic in found:
        diagnostic.source = source
    found.sort(key=lambda d: (d.span.line, d.span.column) if d.span else (0, 0))
    return found


def _known(builder) -> dict[str, tuple[str, Span | None]]:
    """Names a free name may be a misspelling of: what each is, and where it is defined."""
    known = {}
    for name, definition in builder.defs.items():
        known[name] = ("a function, defined", definition.name.span)
    for name in builder.aliases:
        known[name] = ("a function, defined", builder.defined.get(name))
    for name, decl in getattr(builder, "fixed_decls", {}).items():
        known[name] = ("a fixed value, declared", decl.name.span)
    for name, decl in builder.inputs.items():
        known[name] = ("an input, declared", decl.name.span)
    for name, stmt in builder.assigns.items():
        known[name] = ("a node, defined", stmt.target.name.span)
    return known


def _misspelt(builder, graph, free: dict[str, Span], found: list) -> None:
    known = _known(builder)
    index = _Index(known)
    known.update((name, ("a built-in function", None)) for name in FUNCTIONS)
    extra = set(graph.graph["outputs"]) if builder.output_decl is None and len(graph.graph["outputs"]) > 1 \
        else set()
    victims: dict[str, list[str]] = {}
    for name, span in free.items():
        # a built-in function only for a longer name, one edit away: 'sig' is not 'sin', 'self' not 'gelu'
        scored = index.closest(name)
        if len(name) >= 4:
            scored += [(d, m) for d, m in _builtin_index().closest(name) if d <= 1]
        if not scored or len(graph.nodes[name].get("shape", ())) == 2:
            continue  # a matrix (S in S·x) stands for no node or input: those are never matrices
        matches = [m for d, m in scored if d == min(scored)[0]]
        shown = " or ".join(f"'{m}'" for m in matches[:3])
        notes = tuple((f"'{m}' is {known[m][0]} here", known[m][1]) for m in matches[:3]
                      if known[m][1] is not None)
        notes += ((f"if a parameter is meant, declare it: 'param {name}'", None),)
        found.append(SpecDiagnostic(f"'{name}' becomes a parameter; did you mean {shown}?", span,
                                    code="free-name", notes=notes))
        for match in matches:
            if match in extra:
                victims.setdefault(match, []).append(name)
    for node, names in victims.items():
        written = " or ".join(f"'{n}'" for n in names)
        found.append(SpecDiagnostic(
            f"nothing uses '{node}', so it becomes an extra output; was '{node}' meant where {written} is "
            "written?", builder.assigns[node].target.name.span, code="extra-output",
            notes=tuple((f"'{n}' is written here and becomes a parameter", free[n]) for n in names)))


def _unused(builder, graph, found: list) -> None:
    """With an output line: the nodes nothing uses that it does not list (dead code)."""
    if builder.output_decl is None:
        return
    outputs = set(graph.graph["outputs"]) | {of for of, _ in graph.graph["recurrent"]}  # prev(h) uses h
    for name, stmt in builder.assigns.items():
        if name not in outputs and name in graph and graph.out_degree(name) == 0:
            found.append(SpecDiagnostic(
                f"nothing uses '{name}' and the output line does not list it: it is dead code",
                stmt.target.name.span, code="dead-node",
                notes=(("the outputs are listed here", builder.output_decl.span),)))


# ---------------------------------------------------------------- W*x where W·x was meant
def _stars(builder) -> list[tuple]:
    """``P*v`` and ``v*P`` with a parameter P that looks like a matrix: declared [m, n], on the left of
    · elsewhere, or undeclared and capitalised; v not a number. Each is (where, the source text, P, v's
    text, whether P is a matrix by its declaration or other uses). Read from the lowered operations (a
    flat loop: cheap on large specs); def bodies are seen where they are called."""
    nodes, products, muls = builder.nodes, set(), []
    for attrs in nodes.values():  # one pass: large specs have many operations
        op = attrs.get("op")
        if op == "matmul":
            products.add(attrs["args"][0])
        elif op == "mul":
            muls.append(attrs)
    stars, seen = [], set()
    for attrs in muls:
        span = attrs.get("expr_span", attrs["span"])  # a statement's own operation: its right-hand side
        if span in seen:
            continue
        label = attrs.get("label") or ""
        for position, name in enumerate(attrs["args"]):
            other = attrs["args"][1 - position]
            if nodes.get(name, {}).get("kind") != "param" or nodes.get(other, {}).get("kind") == "const":
                continue
            decl = builder.param_decls.get(name)
            matrix = (decl is not None and decl.dims is not None and len(decl.dims) == 2) or name in products
            if not (matrix or (decl is None and name[0].isupper())):
                continue
            parts = label.split("*", 1) if position == 0 else label.rsplit("*", 1)
            if len(parts) == 2 and parts[position].strip() == name:  # P is written as itself, by name
                seen.add(span)
                stars.append((span, label, name, parts[1 - position].strip(), matrix))
                break
    return stars


def _star_note(span: Span, name: str, other: str) -> tuple[str, Span]:
    depth, bare = 0, True
    for i, char in enumerate(other):  # + - * / outside brackets bind looser than ·: W·(x + 1)
        depth += (char in "([") - (char in ")]")
        bare = bare and not (depth == 0 and (char in "+*/" or char == "-" and i > 0))
    other = other if bare else f"({other})"
    return f"for a matrix product write '{name}·{other}' or '{name}@{other}'", span


def star_notes(builder, err: SpecError) -> SpecError:
    """A shape error in a spec with ``W*x`` (W a matrix, or capitalised): a note on each such ``*``."""
    if isinstance(err, ShapeError):
        for span, _, name, other, _ in _stars(builder)[:2]:
            text, _ = _star_note(span, name, other)
            err.notes += ((text, None if span == err.span else span),)  # no second caret at the same place
    return err


# ---------------------------------------------------------------- the Python API
def issue(graph) -> None:
    """Issue the IR's warnings with the :mod:`warnings` module, as from the caller outside specc."""
    diagnostics = graph.graph.get("warnings")
    if not diagnostics:
        return
    import warnings
    here, level, frame = os.path.dirname(os.path.abspath(__file__)), 1, sys._getframe(0)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(here + os.sep):
        frame, level = frame.f_back, level + 1
    for diagnostic in diagnostics:
        warnings.warn(diagnostic, stacklevel=level)
