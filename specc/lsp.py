"""``specc lsp``: a Language Server Protocol server for ``.spec`` files, on pygls (the ``lsp`` extra).

It speaks LSP over standard input and output (docs/editors.md shows how editors start it) and gives:

- diagnostics: every error and warning of the document, as ``specc check`` reports them, live on open
  and on each change, notes as related places; an error inside a used file is shown at the use site;
- hover: a name's size, role (input, node, parameter and its role, fixed value, output), initialiser and
  where its sizes came from (specc/explain.py), built-in functions, keywords and constants;
- go-to-definition (a name's declaring statement, or a parameter's first appearance), completion
  (the document's names, built-in functions, keywords, constants) and document symbols.

What a document means is worked out by specc/lsp_analysis.py. While the document has an error, hover
uses the last version that built, and definitions and symbols the part of the text that parses. No
text may stop the server: each request's failure is logged (standard error, and the client's log) and
answered with nothing.
"""
from __future__ import annotations

import functools
import logging
import sys

from .errors import split_lines
from .lsp_analysis import (Analysis, analyse, find_symbol, from_lsp, hover_text, placed, span_range,
                           word_at)

log = logging.getLogger("specc.lsp")

SYMBOL_KINDS = {"input": "Variable", "param": "Field", "fixed": "Constant", "node": "Variable",
                "alias": "Function", "def": "Function", "output": "Event", "argument": "TypeParameter",
                "block": "Class", "use": "Module"}
COMPLETION_KINDS = {"input": "Variable", "param": "Field", "fixed": "Constant", "node": "Variable",
                    "alias": "Function", "def": "Function", "output": "Variable", "argument": "Variable",
                    "block": "Class", "use": "Module"}


def serve() -> int:
    """Run the server over standard input and output until the client ends it."""
    from .files import require
    require("pygls", "specc lsp")
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="specc lsp: %(levelname)s: %(message)s")
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the protocol's stream
    build_server().start_io(stdin, stdout)
    return 0


class Documents:
    """Each open document's latest analysis, and the latest one whose IR built (for hovers while the
    document has an error)."""

    def __init__(self):
        self.latest: dict[str, Analysis] = {}
        self.good: dict[str, Analysis] = {}

    def update(self, uri: str, text: str, file: str) -> Analysis:
        found = self.latest.get(uri)
        if found is None or found.text != text:
            found = analyse(text, file)
            self.latest[uri] = found
            if found.ir is not None:
                self.good[uri] = found
            if found.internal:
                log.error("analysing %s: %s", uri, found.internal)
        return found

    def forget(self, uri: str) -> None:
        self.latest.pop(uri, None)
        self.good.pop(uri, None)


def build_server():
    """The pygls server with specc's features registered."""
    from lsprotocol import types as T
    from pygls.lsp.server import LanguageServer
    from pygls.uris import from_fs_path, to_fs_path

    from . import __version__
    from .errors import Span
    from .ops import FUNCTIONS
    from .parser import CONSTANTS, KEYWORDS

    server = LanguageServer("specc", __version__, text_document_sync_kind=T.TextDocumentSyncKind.Incremental)
    documents = Documents()

    def guarded(handler):
        """Answer nothing rather than fail: a request's error is logged, the server keeps running."""
        @functools.wraps(handler)
        def run(params):
            try:
                return handler(params)
            except Exception as err:  # noqa: BLE001 — any failure, whatever the text
                log.exception("%s failed", handler.__name__)
                try:
                    server.window_log_message(T.LogMessageParams(
                        type=T.MessageType.Error,
                        message=f"specc lsp: {handler.__name__}: {type(err).__name__}: {err}"))
                except Exception:  # noqa: BLE001 — the connection itself is gone
                    pass
                return None
        return run

    def encoding() -> str:
        chosen = server.workspace.position_encoding
        return str(getattr(chosen, "value", chosen) or "utf-16")

    def file_of(uri: str) -> str:
        """The file name spans carry: the path of a file: URI (so a `use` finds its files), else the URI."""
        path = to_fs_path(uri) if uri.startswith("file:") else None
        return path or uri

    def current(uri: str) -> Analysis:
        return documents.update(uri, server.workspace.get_text_document(uri).source, file_of(uri))

    def to_range(lines: list[str], span, enc: str):
        (l0, c0), (l1, c1) = span_range(lines, span, enc)
        return T.Range(start=T.Position(line=l0, character=c0), end=T.Position(line=l1, character=c1))

    def location(span, uri: str, lines: list[str], file: str, enc: str):
        """An LSP location of a span: in the document, or in the other file it names (read to count its units)."""
        if span.file != file:
            try:
                from .api import read_spec_file
                lines, uri = split_lines(read_spec_file(span.file)[0]), from_fs_path(span.file) or span.file
            except Exception:  # noqa: BLE001 — unreadable: its place counted in code points
                lines, uri = [], from_fs_path(span.file) or span.file
        if not lines:
            position = T.Position(line=max(span.line - 1, 0), character=max(span.column - 1, 0))
            return T.Location(uri=uri, range=T.Range(start=position, end=position))
        return T.Location(uri=uri, range=to_range(lines, span, enc))

    def publish(uri: str, version: int | None) -> None:
        found, enc = current(uri), encoding()
        lines, diagnostics = found.lines, []
        for problem in found.problems:
            span, message, related = placed(problem, found.file)
            where = to_range(lines, span, enc) if span is not None else \
                T.Range(start=T.Position(line=0, character=0), end=T.Position(line=0, character=0))
            diagnostics.append(T.Diagnostic(
                range=where, message=message, source="specc", code=problem.code or None,
                severity=T.DiagnosticSeverity.Error if problem.severity == "error" else T.DiagnosticSeverity.Warning,
                related_information=[T.DiagnosticRelatedInformation(location=location(s, uri, lines, found.file, enc),
                                                                     message=text) for text, s in related] or None))
        server.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri=uri, version=version,
                                                                            diagnostics=diagnostics))

    @server.feature(T.TEXT_DOCUMENT_DID_OPEN)
    @guarded
    def did_open(params: T.DidOpenTextDocumentParams):
        publish(params.text_document.uri, params.text_document.version)

    @server.feature(T.TEXT_DOCUMENT_DID_CHANGE)
    @guarded
    def did_change(params: T.DidChangeTextDocumentParams):
        publish(params.text_document.uri, params.text_document.version)

    @server.feature(T.TEXT_DOCUMENT_DID_SAVE)
    @guarded
    def did_save(params: T.DidSaveTextDocumentParams):
        for uri in list(documents.latest):  # the saved file may be used by any open document
            documents.latest.pop(uri, None)
            publish(uri, None)

    @server.feature(T.TEXT_DOCUMENT_DID_CLOSE)
    @guarded
    def did_close(params: T.DidCloseTextDocumentParams):
        documents.forget(params.text_document.uri)
        server.text_document_publish_diagnostics(T.PublishDiagnosticsParams(uri=params.text_document.uri,
                                                                            diagnostics=[]))

    def cursor(params):
        """(analysis, its lines, the cursor's row from 0 and code point index)."""
        found = current(params.text_document.uri)
        lines = found.lines
        return (found, lines, *from_lsp(lines, params.position.line, params.position.character, encoding()))

    def at_cursor(params):
        """(analysis, lines, name, its range, place from 1) of the identifier under the cursor, or None."""
        found, lines, row, index = cursor(params)
        enc = encoding()
        word = word_at(lines, row, index)
        if word is None:
            return None
        name, start, end = word
        span = Span(found.file, row + 1, start + 1, row + 1, end + 1)
        return found, lines, name, to_range(lines, span, enc), (row + 1, start + 1)

    def symbols_for(uri: str, found: Analysis) -> list:
        """The document's names: from its (partial) syntax tree, else from the last version that built."""
        if found.program is None and uri in documents.good:
            return documents.good[uri].symbols
        return found.symbols

    @server.feature(T.TEXT_DOCUMENT_HOVER)
    @guarded
    def hover(params: T.HoverParams):
        hit = at_cursor(params)
        if hit is None:
            return None
        found, lines, name, where, place = hit
        symbol = find_symbol(symbols_for(params.text_document.uri, found), name, place)
        text = hover_text(found, documents.good.get(params.text_document.uri), name, symbol, place)
        if not text:
            return None
        return T.Hover(contents=T.MarkupContent(kind=T.MarkupKind.Markdown, value=text), range=where)

    @server.feature(T.TEXT_DOCUMENT_DEFINITION)
    @guarded
    def definition(params: T.DefinitionParams):
        found, _, row, index = cursor(params)
        symbols = symbols_for(params.text_document.uri, found)
        used = next((s for s in symbols if s.target and s.stmt.line == row + 1 and index + 1 >= s.span.end_column),
                    None)
        if used is not None:  # right of `enc` in `enc = use "encoder.spec"`: that file
            start = T.Position(line=0, character=0)
            return T.Location(uri=from_fs_path(used.target) or used.target, range=T.Range(start=start, end=start))
        hit = at_cursor(params)
        if hit is None:
            return None
        found, lines, name, _, place = hit
        symbol = find_symbol(symbols, name, place)
        if symbol is None or symbol.span.file != found.file:
            return None
        return T.Location(uri=params.text_document.uri, range=to_range(lines, symbol.span, encoding()))

    @server.feature(T.TEXT_DOCUMENT_COMPLETION)
    @guarded
    def completion(params: T.CompletionParams):
        uri = params.text_document.uri
        found = current(uri)
        items, seen = [], set()

        def add(label: str, kind: str, detail: str) -> None:
            if label not in seen:
                seen.add(label)
                items.append(T.CompletionItem(label=label, kind=getattr(T.CompletionItemKind, kind), detail=detail))

        def walk(symbols):
            for symbol in symbols:
                if symbol.kind != "argument":
                    add(symbol.name, COMPLETION_KINDS.get(symbol.kind, "Variable"), symbol.detail or symbol.kind)
                walk(symbol.children)
        walk(symbols_for(uri, found))
        for name in sorted(FUNCTIONS):
            add(name, "Function", "built-in function")
        for name in sorted(KEYWORDS):
            add(name, "Keyword", "keyword")
        for name in CONSTANTS:
            add(name, "Constant", f"constant {CONSTANTS[name]:.6g}")
        return T.CompletionList(is_incomplete=False, items=items)

    @server.feature(T.TEXT_DOCUMENT_DOCUMENT_SYMBOL)
    @guarded
    def document_symbol(params: T.DocumentSymbolParams):
        uri = params.text_document.uri
        found, enc = current(uri), encoding()
        lines = found.lines

        def convert(symbols) -> list:
            converted = []
            for symbol in symbols:
                if symbol.span.file != found.file:
                    continue
                name_range = to_range(lines, symbol.span, enc)
                whole = to_range(lines, symbol.stmt, enc)
                if (whole.start.line, whole.start.character) > (name_range.start.line, name_range.start.character) \
                        or (whole.end.line, whole.end.character) < (name_range.end.line, name_range.end.character):
                    whole = name_range  # the range must hold the name
                converted.append(T.DocumentSymbol(
                    name=symbol.name, detail=symbol.detail or symbol.kind, range=whole, selection_range=name_range,
                    kind=getattr(T.SymbolKind, SYMBOL_KINDS.get(symbol.kind, "Object")),
                    children=convert(symbol.children) or None))
            return converted
        return convert(symbols_for(uri, found))

    return server
