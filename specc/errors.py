"""One error hierarchy for every mistake a spec can contain.

Every error carries the place it points at (file, line, column) so the CLI can
print ``FILE:LINE:COL: error: message`` with the source line and a caret.
Notes point at further places, e.g. where each of two conflicting sizes came from.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A region of a spec file; lines and columns count from 1."""

    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class SpecError(Exception):
    """A mistake in a spec (or in data given to a compiled spec), with its place."""

    kind = "error"

    def __init__(self, message: str, span: Span | None = None, *,
                 notes: tuple[tuple[str, Span | None], ...] = (), source: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.notes = tuple(notes)
        self.source = source
        # Texts of other files by name (a used block's file): a span there is quoted from its own file.
        self.sources: dict[str, str] = {}

    @property
    def file(self) -> str | None:
        return self.span.file if self.span else None

    @property
    def line(self) -> int | None:
        return self.span.line if self.span else None

    @property
    def column(self) -> int | None:
        return self.span.column if self.span else None

    def with_source(self, source: str) -> "SpecError":
        if self.source is None:
            self.source = source
        return self

    def __str__(self) -> str:
        return f"{self.span}: {self.message}" if self.span else self.message

    def format(self) -> str:
        """The compiler-style report: location, message, source line, caret, notes."""
        return _report(self, "error")


def _report(problem, level: str) -> str:
    """An error's or a warning's report: ``FILE:LINE:COL: LEVEL: message``, the line, a caret, notes."""
    sources = getattr(problem, "sources", None) or {}

    def text_of(span: Span | None) -> str | None:
        return sources.get(span.file, problem.source) if span is not None else problem.source

    lines = [_located(problem.span, level, problem.message)]
    lines += _excerpt(text_of(problem.span), problem.span)
    for text, span in problem.notes:
        lines.append(_located(span, "note", text))
        lines += _excerpt(text_of(span), span)
    return "\n".join(lines)


def _located(span: Span | None, level: str, message: str) -> str:
    return f"{span}: {level}: {message}" if span else f"{level}: {message}"


EXCERPT_WIDTH = 240  # characters of a source line an excerpt shows


def normalise_newlines(source: str) -> str:
    """CRLF and CR-only line ends as ``\\n``: the parser counts lines by ``\\n`` alone, so this and
    :func:`split_lines` give every stage the same lines."""
    return source.replace("\r\n", "\n").replace("\r", "\n") if "\r" in source else source


def split_lines(source: str) -> list[str]:
    """A spec's lines as the parser counts them: split at newlines only, never at the \\f, VT, NEL
    or U+2028 that ``str.splitlines`` also breaks at (a comment may hold them)."""
    return normalise_newlines(source).split("\n")


def _excerpt(source: str | None, span: Span | None) -> list[str]:
    if source is None or span is None:
        return []
    lines = split_lines(source)
    if not 1 <= span.line <= len(lines):
        return []
    # one character for one: the caret stays under its column, and a \f or U+2028 breaks no line
    text = "".join(" " if ch == "\t" or not ch.isprintable() else ch for ch in lines[span.line - 1])
    width = max(1, span.end_column - span.column) if span.end_line == span.line else 1
    start = span.column - 1
    if len(text) > EXCERPT_WIDTH:  # a very long line: the part around the caret, cut with …
        first = max(0, min(start - EXCERPT_WIDTH // 4, len(text) - EXCERPT_WIDTH))
        cut = text[first:first + EXCERPT_WIDTH]
        text = ("…" if first else "") + cut + ("…" if first + EXCERPT_WIDTH < len(text) else "")
        start = start - first + (1 if first else 0)
        width = max(1, min(width, EXCERPT_WIDTH - (start - (1 if first else 0))))
    return ["    " + text, "    " + " " * start + "^" + "~" * (width - 1)]


class SpecSyntaxError(SpecError):
    """The text does not follow the grammar."""


class ReservedNameError(SpecError):
    """A keyword, built-in function, constant or nn.Module attribute used as a name."""


class RedefinitionError(SpecError):
    """A name defined twice."""


class InputAssignmentError(SpecError):
    """An assignment to a declared input."""


class UnknownFunctionError(SpecError):
    """A call to a function that is neither built in nor defined."""


class UnknownNameError(SpecError):
    """A name that cannot mean anything where it is used."""


class ArityError(SpecError):
    """A function called with the wrong number of arguments."""


class ArgumentError(SpecError):
    """A function argument that must be a number written in the spec (a dropout rate) and is not one,
    or is out of its range."""


class ShapeError(SpecError):
    """A value of the wrong kind: a vector where a scalar must be, a matrix product of two vectors …"""


class SizeConflictError(ShapeError):
    """Two sizes that must be equal are not."""


class UndeterminedSizeError(ShapeError):
    """A size that nothing in the spec determines."""


class IndexRangeError(ShapeError):
    """An index or slice that is not whole numbers counted from 1 (``x[0]``, ``x[1.5]``, ``x[4:2]``),
    or that runs past the units the value has."""


class CycleError(SpecError):
    """Nodes that depend on each other."""


class KindError(SpecError):
    """A name used as the wrong kind of thing: a function as a value, a node called like a function."""


class InitError(SpecError):
    """An ``init`` line that names no parameter or gives an unusable distribution."""


class LimitError(SpecError):
    """A spec beyond what the compiler takes on: an expression nested too deeply, too many operations."""


class ConstantError(SpecError):
    """A number the spec writes or computes from numbers alone that is not finite (``1e400``, ``1/0``,
    ``log(-1)``), a division by a constant zero, or a number the module's dtype cannot hold."""


class DataError(SpecError):
    """Data (inputs, targets, weights) that do not fit the spec."""


class SpecWarning(UserWarning):
    """Something the user should know that does not stop the command (e.g. a slower fallback);
    the CLI prints it as one line, ``specc: warning: message``."""


class SpecDiagnostic(SpecWarning):
    """A likely mistake that still compiles (a misspelt name that becomes a parameter, a node nothing
    uses), with its place: reported as ``FILE:LINE:COL: warning: message`` with the source line, a
    caret and notes, like an error. ``code`` names the check (docs/language.md, "Warnings");
    ``specc check --strict`` makes them errors. The IR keeps them (``graph.graph["warnings"]``)."""

    def __init__(self, message: str, span: Span | None = None, *, code: str = "",
                 notes: tuple[tuple[str, Span | None], ...] = (), source: str | None = None):
        super().__init__(message)
        self.message, self.span, self.code = message, span, code
        self.notes, self.source = tuple(notes), source

    def __str__(self) -> str:
        return f"{self.span}: {self.message}" if self.span else self.message

    def format(self, level: str = "warning") -> str:
        """The report, as an error's; ``level="error"`` under ``--strict``."""
        return _report(self, level)
