"""What the language server (specc/lsp.py) knows about one open document, without pygls: its problems
(errors and warnings), the names it defines and where, and what a hover says about a name.

Positions here are the compiler's (specc.errors.Span: lines and columns from 1, columns counting code
points, the end one past the last character) or LSP's (line and character from 0, characters counting
code units of the negotiated encoding: UTF-16 unless the client asks otherwise). :func:`to_lsp` and
:func:`from_lsp` convert, line by line as the parser counts lines (specc.errors.split_lines).

Nothing here may fail on any text: a broken document still has a partial syntax tree (each line a
syntax error points at is blanked and the rest parsed again), and the server falls back on the last IR
built without errors for sizes.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache

from .blocks import used_path
from .errors import Span, SpecError, split_lines
from .ir import Graph

MAX_REPARSES = 20  # lines blanked to recover a partial syntax tree from a broken document
MAX_REPORTED = 10  # syntax errors reported at once
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# ---------------------------------------------------------------- positions
def _units(text: str, encoding: str) -> int:
    """The length of ``text`` in the client's code units."""
    if encoding == "utf-32":
        return len(text)
    if encoding == "utf-8":
        return len(text.encode("utf-8", "surrogatepass"))
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)  # astral characters are 2 UTF-16 units


def to_lsp(lines: list[str], line: int, column: int, encoding: str = "utf-16") -> tuple[int, int]:
    """A compiler position (from 1, code points) as an LSP one (from 0, code units), clamped to the text."""
    if not lines:
        return 0, 0
    row = min(max(line - 1, 0), len(lines) - 1)
    text = lines[row]
    return row, _units(text[:min(max(column - 1, 0), len(text))], encoding)


def from_lsp(lines: list[str], line: int, character: int, encoding: str = "utf-16") -> tuple[int, int]:
    """An LSP position as (row from 0, code point index in that row), clamped to the text."""
    if not lines or line >= len(lines) or line < 0:
        return max(0, min(line, len(lines) - 1)), 0
    count = 0
    for index, ch in enumerate(lines[line]):
        if count >= character:
            return line, index
        count += _units(ch, encoding)
    return line, len(lines[line])


def span_range(lines: list[str], span: Span, encoding: str = "utf-16") -> tuple[tuple[int, int], tuple[int, int]]:
    """A span as an LSP range ((line, character) of start and end)."""
    start = to_lsp(lines, span.line, span.column, encoding)
    end = to_lsp(lines, span.end_line, span.end_column, encoding)
    return start, max(start, end)


# ---------------------------------------------------------------- problems
@dataclass
class Problem:
    """An error or a warning, as the compiler reported it."""

    severity: str  # 'error' or 'warning'
    message: str
    span: Span | None
    notes: tuple = ()
    code: str = ""


def _problem(err, severity: str) -> Problem:
    return Problem(severity, err.message, err.span, tuple(err.notes), getattr(err, "code", "") or "")


def placed(problem: Problem, file: str) -> tuple[Span | None, str, list]:
    """Where a problem is shown in ``file``, its message there, and its related places (note text, span).
    A problem inside another file (a used block's) is shown at the first note in this file (the use
    site), its own place becoming the first related one."""
    related = [(text, span) for text, span in problem.notes if span is not None]
    span = problem.span
    if span is None or span.file == file:
        return span, problem.message, related
    here = next((s for _, s in related if s.file == file), None)
    message = f"in {_relative(span.file, file)}:{span.line}:{span.column}: {problem.message}"
    return here, message, [(problem.message, span)] + related


def _relative(other: str, file: str) -> str:
    """Another file's name as seen from the document's folder (as a `use` line writes it)."""
    try:
        return os.path.relpath(other, os.path.dirname(file) or ".") if os.path.isabs(other) == os.path.isabs(file) \
            else other
    except ValueError:  # another drive
        return other


# ---------------------------------------------------------------- names
@dataclass
class Symbol:
    """A name the document defines: where it is written, and the statement that defines it."""

    name: str
    kind: str  # input, param, fixed, node, alias, def, output, use, block, argument (a def's)
    span: Span  # the name
    stmt: Span  # the whole statement (a parameter's first appearance, if it has no param line)
    detail: str = ""
    scope: Span | None = None  # where the name means this: a def's or a block's statement; None: everywhere
    children: list = field(default_factory=list)  # a def's arguments, a block's names
    target: str | None = None  # a use of a file: that file, as the compiler resolves it


_DECLS = {"InputDecl": "input", "ParamDecl": "param", "FixedDecl": "fixed", "OutputDecl": "output"}


def symbols_of(program) -> list[Symbol]:
    """The names a syntax tree defines, in source order; parameters without a ``param`` line at their
    first appearance outside ``init`` lines (as the IR orders them); a block's names as its children."""
    return _scope(program.statements, program.file, None)


def _scope(statements, file: str, scope: Span | None) -> list[Symbol]:
    from .ops import FUNCTIONS
    from .parser import CONSTANTS
    found = _statements(statements, file)
    defined = {s.name for s in found if s.kind != "output"}
    functions = set(FUNCTIONS) | {s.name for s in found if s.kind in ("def", "use")}
    for symbol in found:  # `g = relu` is an alias, not a node
        if symbol.kind == "node" and symbol.detail in functions:
            symbol.kind, symbol.detail = "alias", f"alias of {symbol.detail}"
            functions.add(symbol.name)
        elif symbol.kind == "node":
            symbol.detail = "node"
    free = []
    for stmt in statements:
        expr, local = _body(stmt)
        for name in _names_in(expr):
            if not (name.id in defined or name.id in functions or name.id in CONSTANTS or name.id in local):
                defined.add(name.id)
                free.append(Symbol(name.id, "param", name.span, name.span, "parameter"))
    found = sorted(found + free, key=lambda s: (s.span.line, s.span.column))
    for symbol in found:
        symbol.scope = scope
    return found


def _statements(statements, file: str) -> list[Symbol]:
    found = []
    for stmt in statements:
        kind = type(stmt).__name__
        if kind in _DECLS:
            for decl in stmt.decls:
                sizes = (["T"] if getattr(decl, "steps", None) else []) + [str(d) for d in decl.dims or ()]
                dims = f" [{', '.join(sizes)}]" if sizes else ""
                found.append(Symbol(decl.name.id, _DECLS[kind], decl.name.span, stmt.span, _DECLS[kind] + dims))
        elif kind == "Def":
            args = ", ".join(p.id for p in stmt.params)
            symbol = Symbol(stmt.name.id, "def", stmt.name.span, stmt.span, f"def {stmt.name.id}({args})")
            symbol.children = [Symbol(p.id, "argument", p.span, p.span, f"argument of {stmt.name.id}",
                                      scope=stmt.span) for p in stmt.params]
            found.append(symbol)
        elif kind == "Assign":
            expr = stmt.expr  # a name alone may be an alias (`g = relu`): _scope decides
            named = expr.id if type(expr).__name__ == "Name" else ""
            found.append(Symbol(stmt.target.name.id, "node", stmt.target.name.span, stmt.span, named))
        elif kind == "Use":
            path = getattr(stmt.source, "path", None)
            if path is None:
                symbol = Symbol(stmt.name.id, "use", stmt.name.span, stmt.span, f"instance of block {stmt.source.id}")
            else:
                symbol = Symbol(stmt.name.id, "use", stmt.name.span, stmt.span, f'instance of "{path}"',
                                target=used_path(path, file))
            found.append(symbol)
        elif kind == "Block":
            symbol = Symbol(stmt.name.id, "block", stmt.name.span, stmt.span, f"block {stmt.name.id}")
            symbol.children = _scope(stmt.statements, file, stmt.span)
            found.append(symbol)
    return found


def _body(stmt) -> tuple:
    """A statement's expression whose free names are parameters, and the names local to it."""
    kind = type(stmt).__name__
    if kind == "Assign":
        return stmt.expr, ()
    if kind == "Def":
        return stmt.body, {p.id for p in stmt.params}
    return None, ()


def _names_in(expr):
    if expr is None:
        return
    from .parser import walk
    for node in walk(expr):
        if type(node).__name__ == "Name":
            yield node


# ---------------------------------------------------------------- one document
@dataclass
class Analysis:
    """One version of a document: its problems, its (partial) syntax tree and names, and its IR if built."""

    text: str
    file: str
    problems: list = field(default_factory=list)
    program: object = None  # the syntax tree, of the whole text or of what parses once bad lines are blanked
    ir: Graph | None = None
    symbols: list = field(default_factory=list)
    internal: str | None = None  # a failure of specc itself (logged by the server)

    @property
    def lines(self) -> list[str]:
        return split_lines(self.text)


def analyse(text: str, file: str) -> Analysis:
    """Parse and build a document's IR, collecting every problem; never raises."""
    from .limits import DEFAULT
    from .lower import build_graph, collector_paused
    result = Analysis(text, file)
    try:
        result.program = _parse_recovering(text, file, result.problems)
        if result.program is not None:
            result.symbols = symbols_of(result.program)
        if result.program is not None and not result.problems:
            with collector_paused():
                result.ir = build_graph(result.program, limits=DEFAULT)
            result.problems += [_problem(w, "warning") for w in result.ir.graph.get("warnings", ())]
    except SpecError as err:
        result.problems.append(_problem(err, "error"))
    except RecursionError:
        result.problems.append(Problem("error", "the spec is nested too deeply to analyse", None))
    except Exception as err:  # a bug of specc's: reported, never fatal to the editor
        result.internal = f"{type(err).__name__}: {err}"
        result.problems.append(Problem("error", f"specc internal error (please report it): {result.internal}",
                                       None))
    return result


def _parse_recovering(text: str, file: str, problems: list):
    """The syntax tree of the text; on a syntax error, that error (and later ones that are not on the
    line right after the previous one, which are mostly its echoes), and the tree of the text with each
    bad line blanked."""
    from .parser import parse_program
    lines, last_line = split_lines(text), None
    for _ in range(MAX_REPARSES):
        try:
            return parse_program("\n".join(lines) if last_line is not None else text, file)
        except SpecError as err:
            span = err.span
            first = last_line is None
            if first or (span and span.line > last_line + 1 and len(problems) < MAX_REPORTED):
                problems.append(_problem(err, "error"))
            if span is None or span.file != file or not 1 <= span.line <= len(lines):
                return None
            row = span.line - 1
            while row > 0 and not lines[row].strip():  # an error at the end of the text: its last line
                row -= 1
            if not lines[row].strip():
                return None
            lines[row] = ""
            last_line = span.line
    return None


# ---------------------------------------------------------------- what is under the cursor
def word_at(lines: list[str], row: int, index: int) -> tuple[str, int, int] | None:
    """The identifier at (or just before) a code point index of a row: (name, start, end); None in a
    comment, after a ``.`` (a block's output), or where there is none."""
    if not 0 <= row < len(lines):
        return None
    text = lines[row]
    comment = text.find("#")
    for match in IDENTIFIER.finditer(text):
        if match.start() <= index <= match.end() and (comment < 0 or match.start() < comment):
            if match.start() > 0 and text[match.start() - 1] in ".0123456789":  # .mu, or 1e3's e
                return None
            return match.group(), match.start(), match.end()
    return None


def find_symbol(symbols: list[Symbol], name: str, at: tuple[int, int] | None = None) -> Symbol | None:
    """The symbol a name means at a place (line, column from 1): the innermost scope's (a def's argument
    inside that def, a block's name inside that block), else the document's name (its declaration
    rather than its output line)."""
    best = None
    for symbol in symbols:
        if symbol.children and at and _inside(at, symbol.stmt):
            inner = find_symbol(symbol.children, name, at)
            if inner is not None:
                return inner
        if symbol.name == name and (symbol.scope is None or at and _inside(at, symbol.scope)) \
                and (best is None or best.kind == "output"):
            best = symbol
    return best


def enclosing(symbols: list[Symbol], at: tuple[int, int], kind: str) -> Symbol | None:
    """The symbol of a kind (a block) whose statement holds a place."""
    return next((s for s in symbols if s.kind == kind and _inside(at, s.stmt)), None)


def _inside(place: tuple[int, int], span: Span) -> bool:
    return (span.line, span.column) <= place <= (span.end_line, span.end_column)


# ---------------------------------------------------------------- hover text
def _dims(shape) -> str:
    return f"[{', '.join(map(str, shape))}]" if shape else "scalar"


def role_of(ir: Graph, name: str) -> str:
    attrs = ir.nodes[name]
    kind = attrs["kind"]
    if kind == "param":
        return f"parameter ({attrs.get('role', 'other')})"
    role = {"input": "input", "fixed": "fixed value", "op": "node", "const": "constant"}.get(kind, kind)
    if kind == "input" and attrs.get("sequence"):
        role = "sequence input"
    return role + (", output" if name in ir.graph.get("outputs", ()) else "")


def initialiser(attrs: dict) -> str | None:
    init = attrs.get("init")
    if init is None:
        return None
    args = attrs.get("init_args") or ()
    if init == "values":
        return "the values written in its init line"
    return f"{init}({', '.join(f'{a:g}' if isinstance(a, float) else str(a) for a in args)})" if args else init


def describe_name(name: str, ir: Graph | None, text: str | None, file: str, stale: bool = False) -> list[str]:
    """Markdown lines about a name of the IR: size, role, initialiser, where its sizes came from."""
    if ir is None or name not in ir.nodes or ir.nodes[name].get("name") != name:
        return []
    attrs = ir.nodes[name]
    size = _dims(attrs.get("shape", ()))
    lines = [f"**{name}** — {role_of(ir, name)} · `{size}`" + (" per step" if attrs.get("stepped") else "")]
    init = initialiser(attrs)
    if init:
        lines.append(f"init: `{init}`")
    if text is not None:
        origin = provenance(text, file, name)
        if origin:
            lines.append(f"size: {origin}")
    if stale:
        lines.append("*(from the last version without errors)*")
    return lines


@lru_cache(maxsize=64)
def provenance(text: str, file: str, name: str) -> str | None:
    """Where a name's sizes came from, as ``specc explain`` says it (specc/explain.py)."""
    from .explain import explain, format_explanation
    try:
        _, found = explain(text, file, name)
    except Exception:  # a name explain does not list, or a text that no longer builds: no provenance
        return None
    told = format_explanation(found)
    head = f"{name} "
    if told.startswith(head) and "]: " in told:
        return told.split("]: ", 1)[1]
    return None


def hover_text(found: Analysis, good: Analysis | None, name: str, symbol: Symbol | None,
               at: tuple[int, int]) -> str:
    """The Markdown a hover shows for a name at a place: from the document's IR, else from the last
    version that built (``good``), else from the syntax tree alone."""
    from .ops import FUNCTIONS
    from .parser import CONSTANTS, KEYWORDS
    if symbol is None:
        if name in FUNCTIONS:
            doc = FUNCTIONS[name].doc
            return f"**{name}** — built-in function" + (f"\n\n{doc}" if doc else "")
        if name in KEYWORDS:
            return f"**{name}** — keyword"
        if name in CONSTANTS:
            return f"**{name}** — constant, {CONSTANTS[name]!r}"
        if name == "T":
            return "**T** — the number of steps of the sequence inputs (`input x[T, 3]`), known at run time"
    if symbol is not None and symbol.kind in ("argument", "def", "alias", "block"):
        if symbol.kind == "argument":
            return f"**{name}** — {symbol.detail}"
        first = found.lines[symbol.stmt.line - 1].strip() if symbol.stmt.line <= len(found.lines) else ""
        return f"**{name}** — {symbol.detail}\n\n```spec\n{first}\n```"
    built = found if found.ir is not None else good
    stale = built is good and built is not None and built is not found
    lines = []
    if built is not None:
        block = enclosing(found.symbols, at, "block") if symbol is not None and symbol.scope else None
        if symbol is not None and symbol.kind == "use":
            lines = _instance(built.ir, name, symbol)
        elif block is not None:
            lines = _in_block(built, name, symbol, block)
        else:
            lines = describe_name(name, built.ir, built.text, built.file)
        if lines and stale:
            lines.append("*(from the last version without errors)*")
    if not lines and symbol is not None:
        lines = [f"**{name}** — {symbol.detail or symbol.kind}"]
        if found.ir is None:
            lines.append("*(sizes are known once the errors are fixed)*")
    return "\n\n".join(lines)


def _instances(ir: Graph) -> dict:
    return (ir.graph.get("blocks") or {}).get("instances") or {}


def _instance(ir: Graph, name: str, symbol: Symbol) -> list[str]:
    """A use: what it instantiates, its inputs and outputs, and its own parameters with their sizes."""
    found = _instances(ir).get(name)
    lines = [f"**{name}** — {symbol.detail}"]
    if found:
        lines.append(f"inputs: {', '.join(found.get('inputs', ())) or 'none'} · "
                     f"outputs: {', '.join(found.get('outputs', ())) or 'none'}")
        params = [f"{p} `{_dims(ir.nodes[p]['shape'])}`" for p in found.get("params", ()) if p in ir.nodes]
        if params:
            lines.append("parameters: " + ", ".join(params))
    return lines


def _in_block(built: Analysis, name: str, symbol: Symbol, block: Symbol) -> list[str]:
    """A name inside a block: as the first use of the block has it, naming every use's own copy."""
    uses = [i["name"] for i in _instances(built.ir).values()
            if i.get("block") == block.name and f"{i['name']}.{name}" in built.ir.nodes]
    if not uses:
        return [f"**{name}** — {symbol.detail or symbol.kind} of block {block.name}"]
    lines = describe_name(f"{uses[0]}.{name}", built.ir, built.text, built.file)
    shown = ", ".join(f"{u}.{name}" for u in uses[:6]) + (" …" if len(uses) > 6 else "")
    return lines + [f"in block {block.name}: each use has its own ({shown})"]
