"""Golden files per stage, as stanc3 keeps them: `specc check --dump ast|ir` of every bundled spec, and
the error report `specc check` prints for every bad spec in tests/bad.

After an intended change to the parser, the IR or an error message, regenerate them and review the diff:

    SPECC_UPDATE_GOLDEN=1 python -m pytest tests/test_dump.py
"""
import os
from pathlib import Path

import pytest

import specc
from conftest import ROOT, SPECS
from specc.cli import main
from specc.dump import dump_ast, dump_ir, value_text
from specc.errors import Span

GOLDEN = ROOT / "tests" / "golden"
BAD = sorted((ROOT / "tests" / "bad").glob("*.spec"))
UPDATE = os.environ.get("SPECC_UPDATE_GOLDEN") == "1"


def _compare(golden: Path, text: str) -> None:
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), f"no golden file {golden.relative_to(ROOT)}: run with SPECC_UPDATE_GOLDEN=1"
    assert golden.read_text(encoding="utf-8") == text, \
        f"{golden.relative_to(ROOT)} changed; see this file's docstring"


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("stage", ["ast", "ir"])
@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_golden_dump(path, stage, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)  # the command a user runs from the project's root: file names are relative
    code, out, err = _run(["check", "--dump", stage, f"specs/{path.name}"], capsys)
    assert (code, err) == (0, "")
    _compare(GOLDEN / stage / f"{path.stem}.txt", out)


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_golden_error_report(path, monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    code, out, err = _run(["check", f"tests/bad/{path.name}"], capsys)
    if path.stem.startswith("warn_"):  # a warning: reported the same way, but the spec compiles
        assert code == 0 and out.startswith(f"tests/bad/{path.name}: ok (") and "warning" in out
        assert err.split(": ", 2)[1] == "warning"
    else:
        assert (code, out) == (1, "")
    assert "Traceback" not in err and err.endswith("\n")
    _compare(GOLDEN / "errors" / f"{path.stem}.txt", err)


def test_every_golden_file_has_its_source():
    for stage, sources in (("ast", SPECS), ("ir", SPECS), ("errors", BAD)):
        stems = {p.stem for p in sources}
        orphans = [p.name for p in (GOLDEN / stage).glob("*.txt") if p.stem not in stems]
        assert not orphans, f"golden files in tests/golden/{stage} without a spec: {orphans}"
    assert len(BAD) >= 20


# ---------------------------------------------------------------- the formats
def test_ast_dump_format():
    assert dump_ast(specc.parse("input x[3]\ny = relu(W·x) + 1\n")).splitlines() == [
        "Program file='<spec>'",
        "  statements[0]: InputDecl 1:1-1:11",
        "    decls[0]: Decl 1:7-1:11 dims=(3,) steps=None",
        "      name: Name 1:7-1:8 id='x'",
        "  statements[1]: Assign 2:1-2:18",
        "    target: Decl 2:1-2:2 dims=None steps=None",
        "      name: Name 2:1-2:2 id='y'",
        "    expr: BinOp 2:5-2:18 op='add'",
        "      left: Call 2:5-2:14",
        "        func: Name 2:5-2:9 id='relu'",
        "        args[0]: BinOp 2:10-2:13 op='matmul'",
        "          left: Name 2:10-2:11 id='W'",
        "          right: Name 2:12-2:13 id='x'",
        "      right: Num 2:17-2:18 value=1.0 text='1'",
    ]


def test_ir_dump_lists_graph_attributes_then_nodes_in_topological_order():
    ir = specc.graph("input x[3]\ny[2] = W·x\n")
    lines = dump_ir(ir).splitlines()
    head = lines.index(f"nodes ({len(ir)}, in topological order)")
    assert lines[:6] == ["graph", "  file='<spec>'", "  fixed=[]", "  inputs=['x']", "  outputs=['y']",
                         "  params=['W']"]
    assert lines[1:head] == sorted(lines[1:head])  # the graph attributes, sorted by name
    assert [line.split()[0] for line in lines[head + 1:]] == ir.topological()
    (w,) = [line for line in lines if line.startswith("  W ")]
    assert w.split(None, 1)[1].startswith("kind='param' shape=(2, 3) batched=False declared=False ")
    assert "role='weight'" in w and "init='linear_weight'" in w and "span=2:8-2:9" in w


def test_values_are_written_deterministically():
    class Row:
        name = "add"
    assert [value_text(v) for v in (None, 2, 0.5, float("inf"), "a'b", (3,), (), [1, 2], {"k": (1, 2)},
                                    frozenset({"b", "a"}), Span("f", 1, 2, 3, 4), Row(), object())] == [
        "None", "2", "0.5", "inf", '"a\'b"', "(3,)", "()", "[1, 2]", "{'k': (1, 2)}", "{'a', 'b'}", "1:2-3:4",
        "<Row add>", "<object>"]


def test_dump_ast_needs_only_the_syntax_and_dump_ir_the_meaning(tmp_path, capsys):
    spec = tmp_path / "unknown.spec"
    spec.write_text("input x\ny = rleu(x)\n", encoding="utf-8")
    code, out, _ = _run(["check", "--dump", "ast", str(spec)], capsys)
    assert code == 0 and "id='rleu'" in out
    code, out, err = _run(["check", "--dump", "ir", str(spec)], capsys)
    assert (code, out) == (1, "") and "unknown function 'rleu'" in err


def test_dump_of_several_files_is_their_dumps_in_order(monkeypatch, capsys):
    monkeypatch.chdir(ROOT)
    code, out, _ = _run(["check", "--dump", "ir", "specs/xor.spec", "specs/cubic.spec"], capsys)
    assert code == 0
    assert out == dump_ir(specc.graph(Path("specs/xor.spec"))) + dump_ir(specc.graph(Path("specs/cubic.spec")))
