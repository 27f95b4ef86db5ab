"""The language server (specc/lsp.py, specc/lsp_analysis.py): positions in code units, every problem of a
document with its range, hover text, names from broken text, and a real LSP client (pytest-lsp) driving
``specc lsp`` as a subprocess over stdio: open, diagnostics, hover, definition, completion, symbols, edit."""
from __future__ import annotations

import asyncio
import os
import random
import sys
from pathlib import Path

import pytest

from specc import parser
from specc.errors import Span
from specc.lsp_analysis import (Problem, analyse, describe_name, find_symbol, from_lsp, hover_text, placed,
                                span_range, to_lsp, word_at)

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- positions
# (line text, code point index, UTF-16 units, UTF-8 bytes): `·` and `ᵀ` are one UTF-16 unit, 😀 two
POSITIONS = [
    ("y = Wᵀ·h", 7, 7, 10),
    ("y = 😀 + 1", 5, 6, 8),
    ("y = 😀😀 + q", 7, 9, 13),
    ("", 0, 0, 0),
]


@pytest.mark.parametrize("text, index, utf16, utf8", POSITIONS)
def test_columns_count_code_units_of_the_negotiated_encoding(text, index, utf16, utf8):
    lines = ["# first", text]
    assert to_lsp(lines, 2, index + 1) == (1, utf16)
    assert to_lsp(lines, 2, index + 1, "utf-8") == (1, utf8)
    assert to_lsp(lines, 2, index + 1, "utf-32") == (1, index)
    assert from_lsp(lines, 1, utf16) == (1, index)
    assert from_lsp(lines, 1, utf8, "utf-8") == (1, index)


def test_positions_past_the_text_are_clamped():
    lines = ["input x", "y = 2*x"]
    assert to_lsp(lines, 9, 40) == (1, 7)
    assert from_lsp(lines, 1, 99) == (1, 7)
    assert from_lsp(lines, 7, 0) == (1, 0)
    assert to_lsp([], 1, 1) == (0, 0)


# ---------------------------------------------------------------- problems
def test_a_syntax_error_after_an_astral_character_has_its_utf16_range():
    found = analyse("input x\ny = 😀 + 1\n", "m.spec")
    (problem,) = found.problems
    assert problem.severity == "error" and problem.message == "unexpected character '😀'"
    assert span_range(found.lines, problem.span) == ((1, 4), (1, 6))
    assert found.ir is None and [s.name for s in found.symbols] == ["x"]  # the rest still parses


def test_a_size_conflict_keeps_its_notes_and_the_names_still_parse():
    found = analyse("input x[3]\nh[4] = tanh(W·x + b)\ny[5] = V·h + b\n", "m.spec")
    (problem,) = found.problems
    assert "size conflict" in problem.message and problem.span.line == 3
    assert [text for text, _ in problem.notes] == ["size 4 comes from 'h[4]'", "size 5 comes from 'y[5]'"]
    assert [(s.name, s.kind) for s in found.symbols] == [
        ("x", "input"), ("h", "node"), ("W", "param"), ("b", "param"), ("y", "node"), ("V", "param")]


def test_warnings_are_problems_with_their_code():
    found = analyse("input x[3]\nr[3] = relu(W·x + b)\ny = relu(x + rr)\n", "m.spec")
    assert found.ir is not None
    assert [(p.severity, p.code, p.span.line) for p in found.problems] == [
        ("warning", "extra-output", 2), ("warning", "free-name", 3)]
    assert "did you mean 'r'?" in found.problems[1].message and found.problems[1].notes


def test_later_syntax_errors_are_reported_but_not_their_echoes():
    text = "input x\ny = 2*x +\nz = )\nq = 3\nr = (\n"
    found = analyse(text, "m.spec")
    assert [p.span.line for p in found.problems] == [2, 5]  # line 3 follows line 2's error: not told
    assert [s.name for s in found.symbols] == ["x", "q"]


def test_an_error_in_a_used_file_is_shown_at_the_use_site():
    here = Span("main.spec", 3, 1, 3, 20)
    problem = Problem("error", "size conflict", Span("enc.spec", 2, 5, 2, 6), (("used here", here),))
    span, message, related = placed(problem, "main.spec")
    assert span == here and message == "in enc.spec:2:5: size conflict"
    assert related[0] == ("size conflict", Span("enc.spec", 2, 5, 2, 6))
    assert placed(problem, "enc.spec")[:2] == (problem.span, "size conflict")


GARBAGE = "inputouparmfxd=()[],;·@ᵀ'^*+-/.:#\n 0123xyzWb😀\"{}"


def test_no_text_breaks_the_analysis():
    rng = random.Random(13)
    texts = ["", "\n\n", "((((((((", "input", "init", "x[", "y = " + "(" * 400 + "x" + ")" * 400,
             "\r\n".join(["input x[2]", "y = W·x"])]
    texts += ["".join(rng.choice(GARBAGE) for _ in range(rng.randint(1, 60))) for _ in range(300)]
    for text in texts:
        found = analyse(text, "m.spec")
        assert found.internal is None, (text, found.internal)
        for problem in found.problems:
            if problem.span is not None:
                (l0, c0), (l1, c1) = span_range(found.lines, problem.span)
                assert 0 <= l0 <= l1 < max(1, len(found.lines)) and c0 >= 0 and c1 >= 0


def test_a_failure_of_specc_is_a_diagnostic_not_a_crash(monkeypatch):
    from specc import lsp_analysis

    def broken(program):
        raise KeyError("a bug")
    monkeypatch.setattr(lsp_analysis, "symbols_of", broken)
    found = analyse("input x\ny = 2*x\n", "m.spec")
    assert found.internal == "KeyError: 'a bug'" and found.problems[0].message.startswith("specc internal error")


def test_a_failing_request_is_answered_with_nothing(caplog):
    pytest.importorskip("pygls")
    from lsprotocol import types as T

    from specc.lsp import build_server
    hover = build_server().protocol.fm.features[T.TEXT_DOCUMENT_HOVER]
    assert hover(object()) is None  # params without a document: logged, answered with nothing
    assert "hover failed" in caplog.text


# ---------------------------------------------------------------- names and hovers
def test_hover_text_has_size_role_initialiser_and_provenance():
    text = (ROOT / "specs" / "two_io.spec").read_text(encoding="utf-8")
    found = analyse(text, "two_io.spec")
    told = "\n".join(describe_name("W1", found.ir, text, found.file))
    assert "parameter (weight)" in told and "`[10, 5]`" in told and "init: `linear_weight`" in told
    assert "10 from 'h[10]' (5:1)" in told and "5 from 'input in1[5]' (2:7)" in told
    assert "node, output" in describe_name("out1", found.ir, text, found.file)[0]
    assert "init: `linear_bias(5)`" in describe_name("b", found.ir, text, found.file)
    assert describe_name("in1", found.ir, text, found.file)[0].startswith("**in1** — input · `[5]`")
    assert "stale" not in told and "last version" in "\n".join(describe_name("h", found.ir, None, "x", stale=True))


def test_symbols_aliases_defs_and_arguments():
    found = analyse((ROOT / "specs" / "legendre.spec").read_text(encoding="utf-8"), "l.spec")
    kinds = {s.name: s.kind for s in found.symbols}
    assert kinds == {"x": "input", "P3": "def", "y": "node", "a": "param", "b": "param", "c": "param", "d": "param"}
    found = analyse((ROOT / "specs" / "two_io.spec").read_text(encoding="utf-8"), "t.spec")
    aliases = {s.name: s.detail for s in found.symbols if s.kind == "alias"}
    assert aliases == {"g": "alias of relu", "f": "alias of relu"}
    assert "relu" not in {s.name for s in found.symbols}
    text = "input z\ndef f(z) = 2*z\ny = f(z)\n"
    found = analyse(text, "m.spec")
    assert find_symbol(found.symbols, "z", (2, 14)).kind == "argument"  # z inside f's body
    assert find_symbol(found.symbols, "z", (3, 7)).kind == "input"


@pytest.mark.skipif(not hasattr(parser, "Use"), reason="blocks are not in this checkout's language")
def test_blocks_and_uses_have_their_names_and_hovers():
    path = ROOT / "specs" / "residual_blocks.spec"
    text = path.read_text(encoding="utf-8")
    found = analyse(text, str(path))
    assert found.problems == []
    block = found.symbols[0]
    assert (block.name, block.kind) == ("res", "block")
    assert [(s.name, s.kind) for s in block.children] == [
        ("u", "input"), ("h", "node"), ("W1", "param"), ("b1", "param"), ("y", "node"), ("W2", "param"),
        ("b2", "param")]
    assert [s.detail for s in found.symbols if s.kind == "use"] == ["instance of block res"] * 3
    inside = (5, 19)  # W1 in the block's `h[16] = relu(W1·u + b1)`
    assert find_symbol(found.symbols, "W1", inside).span.line == 5
    assert find_symbol(found.symbols, "y", (6, 2)).span.line == 6  # the block's y
    assert find_symbol(found.symbols, "y", (13, 2)).span.line == 13
    told = hover_text(found, None, "W1", find_symbol(found.symbols, "W1", inside), inside)
    assert "`[16, 8]`" in told and "r1.W1, r2.W1, r3.W1" in told and "16 from 'h[16]'" in told
    told = hover_text(found, None, "r2", find_symbol(found.symbols, "r2", (10, 1)), (10, 1))
    assert "instance of block res" in told and "r2.W2 `[8, 16]`" in told
    assert "block res {" in hover_text(found, None, "res", block, (9, 10))
    assert find_symbol(found.symbols, "res", (9, 11)) is block  # `r1 = use res` goes to the block


def test_words_under_the_cursor():
    lines = ["h = W1·x + 1e3 # note", "m = vae(x).mu"]
    assert word_at(lines, 0, 5)[:1] == ("W1",) and word_at(lines, 0, 6)[:1] == ("W1",)
    assert word_at(lines, 0, 13) is None  # the e of 1e3
    assert word_at(lines, 0, 18) is None  # in a comment
    assert word_at(lines, 1, 12) is None  # a block's output, not a name of this document
    assert word_at(lines, 5, 0) is None


# ---------------------------------------------------------------- the server, over stdio
ENCODER = "input u[4]\nh[3] = tanh(W·u + b)\ny[5] = V·h + q\nz[3] = h\n"
USING = 'input x[4]\nenc = use "enc.spec"\ny = enc(x).y\n'
BROKEN = "input x[3]\nh[4] = tanh(W·x + b)\ny[3] = Uᵀ·h + 😀\n"
CONFLICT = "input x[3]\nh[4] = tanh(W·x + b)\ny[5] = Uᵀ·h + h\n"


def _server_env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def test_the_server_over_stdio(tmp_path):
    pytest.importorskip("pygls")
    pytest_lsp = pytest.importorskip("pytest_lsp")
    from lsprotocol import types as T
    uri = (tmp_path / "model.spec").as_uri()

    async def session():
        client = pytest_lsp.make_test_lsp_client()
        await client.start_io(sys.executable, "-m", "specc", "lsp", env=_server_env())
        ended = False
        try:
            await client.initialize_session(T.InitializeParams(
                capabilities=pytest_lsp.client_capabilities("visual-studio-code")))
            await drive(client)
            await client.shutdown_session()
            ended = True
        finally:
            if not ended and client._server is not None and client._server.returncode is None:
                client._server.terminate()  # a failed check: stop() would wait for the server to exit
            await client.stop()

    async def diagnostics(client, send):
        waiting = client.wait_for_notification(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        send()
        await asyncio.wait_for(waiting, 10)
        return client.diagnostics[uri]

    def at(line, character):
        return dict(text_document=T.TextDocumentIdentifier(uri=uri),
                    position=T.Position(line=line, character=character))

    async def drive(client):
        # an error: its range in UTF-16 units (😀 is two), its message
        (problem,) = await diagnostics(client, lambda: client.text_document_did_open(T.DidOpenTextDocumentParams(
            text_document=T.TextDocumentItem(uri=uri, language_id="specc", version=1, text=BROKEN))))
        assert problem.message == "unexpected character '😀'" and problem.severity == T.DiagnosticSeverity.Error
        assert (problem.range.start.line, problem.range.start.character, problem.range.end.character) == (2, 14, 16)
        assert await client.text_document_hover_async(T.HoverParams(**at(40, 3))) is None  # past the end
        # definitions and symbols work on the part that parses
        found = await client.text_document_definition_async(T.DefinitionParams(**at(1, 14)))
        assert (found.range.start.line, found.range.start.character, found.range.end.character) == (0, 6, 7)

        # an incremental edit replaces 😀 (two units) by c: no problem left
        fixed = await diagnostics(client, lambda: client.text_document_did_change(T.DidChangeTextDocumentParams(
            text_document=T.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[T.TextDocumentContentChangePartial(
                range=T.Range(start=T.Position(line=2, character=14), end=T.Position(line=2, character=16)),
                text="c")])))
        assert list(fixed) == []

        hover = await client.text_document_hover_async(T.HoverParams(**at(1, 12)))  # W in tanh(W·x + b)
        assert "parameter (weight)" in hover.contents.value and "`[4, 3]`" in hover.contents.value
        assert "4 from 'h[4]' (2:1)" in hover.contents.value and "init: `linear_weight`" in hover.contents.value
        assert (hover.range.start.character, hover.range.end.character) == (12, 13)
        hover = await client.text_document_hover_async(T.HoverParams(**at(2, 0)))
        assert "node, output" in hover.contents.value and "`[3]`" in hover.contents.value
        hover = await client.text_document_hover_async(T.HoverParams(**at(1, 9)))
        assert "built-in function" in hover.contents.value

        found = await client.text_document_definition_async(T.DefinitionParams(**at(2, 10)))  # h
        assert (found.range.start.line, found.range.start.character) == (1, 0)

        items = await client.text_document_completion_async(T.CompletionParams(**at(2, 0)))
        labels = {item.label for item in items.items}
        assert {"tanh", "layer_norm", "h", "W", "x", "input", "pi"} <= labels

        symbols = await client.text_document_document_symbol_async(
            T.DocumentSymbolParams(text_document=T.TextDocumentIdentifier(uri=uri)))
        assert [(s.name, s.detail) for s in symbols] == [
            ("x", "input [3]"), ("h", "node"), ("W", "parameter"), ("b", "parameter"), ("y", "node"),
            ("U", "parameter"), ("c", "parameter")]

        # a size conflict: its notes as related places; hovers use the last version that built
        (problem,) = await diagnostics(client, lambda: client.text_document_did_change(T.DidChangeTextDocumentParams(
            text_document=T.VersionedTextDocumentIdentifier(uri=uri, version=3),
            content_changes=[T.TextDocumentContentChangeWholeDocument(text=CONFLICT)])))
        assert "size conflict" in problem.message and problem.range.start.line == 2
        assert [r.location.range.start.line for r in problem.related_information] == [1, 2]
        hover = await client.text_document_hover_async(T.HoverParams(**at(1, 12)))
        assert "`[4, 3]`" in hover.contents.value and "last version without errors" in hover.contents.value
        if hasattr(parser, "Use"):
            await used_file(client)

    async def used_file(client):
        """An error inside a used file shows at the use line; saving the fix clears it."""
        (tmp_path / "enc.spec").write_text(ENCODER.replace("z[3]", "z[2]"), encoding="utf-8")
        main = tmp_path / "main.spec"
        main.write_text(USING, encoding="utf-8")
        here = dict(text_document=T.TextDocumentIdentifier(uri=main.as_uri()))
        waiting = client.wait_for_notification(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        client.text_document_did_open(T.DidOpenTextDocumentParams(text_document=T.TextDocumentItem(
            uri=main.as_uri(), language_id="specc", version=1, text=USING)))
        await asyncio.wait_for(waiting, 10)
        (problem,) = client.diagnostics[main.as_uri()]
        assert problem.message.startswith("in enc.spec:4:1: size conflict in 'z'") and problem.range.start.line == 1
        assert problem.related_information[0].location.uri == (tmp_path / "enc.spec").as_uri()
        assert problem.related_information[0].location.range.start.line == 3

        (tmp_path / "enc.spec").write_text(ENCODER, encoding="utf-8")
        del client.diagnostics[main.as_uri()]
        client.text_document_did_save(T.DidSaveTextDocumentParams(**here))  # every open document again
        while main.as_uri() not in client.diagnostics:
            await asyncio.wait_for(client.wait_for_notification(T.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS), 10)
        assert list(client.diagnostics[main.as_uri()]) == []
        hover = await client.text_document_hover_async(T.HoverParams(**here, position=T.Position(line=2, character=5)))
        assert 'instance of "enc.spec"' in hover.contents.value and "enc.W `[3, 4]`" in hover.contents.value
        found = await client.text_document_definition_async(T.DefinitionParams(**here, position=T.Position(
            line=1, character=13)))
        assert found.uri == (tmp_path / "enc.spec").as_uri()

    asyncio.run(asyncio.wait_for(session(), 30))


def test_without_pygls_the_command_names_the_extra(capsys, monkeypatch):
    from specc.cli import main
    monkeypatch.setitem(sys.modules, "pygls", None)  # `import pygls` now fails as if not installed
    assert main(["lsp"]) == 1
    assert "pip install 'specc[lsp]'" in capsys.readouterr().err


def test_the_command_line_and_the_vscode_extension_agree():
    import json

    from specc.cli import build_parser
    from specc.parser import KEYWORDS
    args = build_parser().parse_args(["lsp", "--stdio"])  # a client may add --stdio
    assert args.command == "lsp" and args.stdio
    folder = ROOT / "editors" / "vscode"
    package = json.loads((folder / "package.json").read_text(encoding="utf-8"))
    (language,) = package["contributes"]["languages"]
    assert language["id"] == "specc" and language["extensions"] == [".spec"]
    assert (folder / package["main"]).is_file() and (folder / language["configuration"]).is_file()
    settings = package["contributes"]["configuration"]["properties"]
    assert [settings["specc.server.command"]["default"], *settings["specc.server.args"]["default"]] == ["specc", "lsp"]
    assert "vscode-languageclient" in package["dependencies"] and not (folder / "node_modules").exists()
    (grammar,) = package["contributes"]["grammars"]
    rules = json.loads((folder / grammar["path"]).read_text(encoding="utf-8"))["patterns"]
    keywords = next(r["match"] for r in rules if r.get("name") == "keyword.other.specc")
    assert set(KEYWORDS) <= set(keywords.split("(")[1].split(")")[0].split("|"))
    script = (folder / "extension.js").read_text(encoding="utf-8")
    assert 'require("vscode-languageclient/node")' in script and "server.command" in script
    assert "docs/editors.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_project_extras_name_the_server_dependencies():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert any(d.startswith("pygls>=2") for d in project["optional-dependencies"]["lsp"])
    assert "specc[lsp]" in project["optional-dependencies"]["dev"]
    assert any(d.startswith("pytest-lsp") for d in project["optional-dependencies"]["dev"])
    assert project["entry-points"]["pygments.lexers"] == {"specc": "specc.highlight:SpecLexer"}
