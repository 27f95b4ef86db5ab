"""The documentation's examples are run, so they stay true."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import specc
from specc.lower import graph_of

ROOT = Path(__file__).resolve().parent.parent
LANGUAGE = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
_, ERRORS = LANGUAGE.split("\n## Errors\n")

ERROR_EXAMPLES = re.findall(r"### (.+?)\n\n```spec\n(.*?)```\n\n```text\n(.*?)```", ERRORS, re.S)
GOOD_EXAMPLES = re.findall(r"```spec\n(.*?)```", LANGUAGE.split("\n## Warnings\n")[0], re.S)


def test_every_error_class_has_an_example():
    titles = " ".join(title for title, _, _ in ERROR_EXAMPLES)
    for name in ["SpecSyntaxError", "ReservedNameError", "RedefinitionError", "InputAssignmentError",
                 "UnknownFunctionError", "KindError", "ArityError", "ArgumentError", "SizeConflictError", "UndeterminedSizeError",
                 "ShapeError", "IndexRangeError", "CycleError", "InitError", "LimitError", "ConstantError"]:
        assert f"`{name}`" in titles, name


@pytest.mark.parametrize("title,spec,report", ERROR_EXAMPLES, ids=[t for t, _, _ in ERROR_EXAMPLES])
def test_error_example_prints_as_documented(tmp_path, title, spec, report):
    (tmp_path / "bad.spec").write_text(spec, encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "specc", "check", "bad.spec"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr == report
    error_class = re.search(r"`(\w+Error)`", title).group(1)
    with pytest.raises(getattr(specc.errors, error_class)):
        specc.graph(spec)


# ---------------------------------------------------------------- the warnings, before the errors
WARNINGS = LANGUAGE.split("\n## Errors\n")[0].split("\n## Warnings\n")[1]
WARNING_EXAMPLES = re.findall(r"### (.+?)\n\n```spec\n(.*?)```\n\n```text\n(.*?)```", WARNINGS, re.S)
WARNING_CODES = {"free-name", "extra-output", "dead-node", "matrix-star"}  # specc/lint.py's checks


def _codes(title: str) -> set[str]:
    return set(re.findall(r"`([a-z]+-[a-z]+)`", title.splitlines()[0]))


def test_every_warning_has_an_example():
    assert set().union(*(_codes(title) for title, _, _ in WARNING_EXAMPLES)) == WARNING_CODES


@pytest.mark.parametrize("title,spec,report", WARNING_EXAMPLES,
                         ids=[t.splitlines()[0] for t, _, _ in WARNING_EXAMPLES])
def test_warning_example_prints_as_documented(tmp_path, title, spec, report):
    (tmp_path / "bad.spec").write_text(spec, encoding="utf-8")
    check = [sys.executable, "-m", "specc", "check", "bad.spec"]
    result = subprocess.run(check, cwd=tmp_path, capture_output=True, text=True)
    assert (result.returncode, result.stderr) == (0, report)
    strict = subprocess.run(check + ["--strict"], cwd=tmp_path, capture_output=True, text=True)
    assert (strict.returncode, strict.stdout) == (1, "")
    assert strict.stderr == report.replace(": warning: ", ": error: ")
    graph_of.cache_clear()  # a memoised IR has issued its warnings already
    with pytest.warns(specc.errors.SpecDiagnostic) as caught:
        specc.graph(spec)
    assert {w.message.code for w in caught if isinstance(w.message, specc.errors.SpecDiagnostic)} == _codes(title)


@pytest.mark.parametrize("spec", GOOD_EXAMPLES)
def test_good_example_compiles(spec, monkeypatch):
    monkeypatch.chdir(ROOT / "specs")  # spec text uses files from the current folder: the bundled specs
    assert isinstance(specc.load(spec), torch.nn.Module)


# ---------------------------------------------------------------- the dumps in docs/ir.md
IR_DOC = (ROOT / "docs" / "ir.md").read_text(encoding="utf-8")
DUMP_EXAMPLES = re.findall(r"`specc check --dump (ast|ir) (\S+)`[^\n]*\n\n```text\n(.*?)```", IR_DOC, re.S)


def test_the_dump_examples_are_what_specc_prints():
    assert {stage for stage, _, _ in DUMP_EXAMPLES} == {"ast", "ir"}
    for stage, file, shown in DUMP_EXAMPLES:
        result = subprocess.run([sys.executable, "-m", "specc", "check", "--dump", stage, file], cwd=ROOT,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(shown), f"docs/ir.md's {stage} dump of {file} is out of date"
