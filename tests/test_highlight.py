"""The Pygments lexer (specc/highlight.py): the tokens of a sample, no Error token in any bundled spec or
documented example, and `*.spec` going to specc's lexer for specc text and to RPM's for RPM text."""
from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest

pygments = pytest.importorskip("pygments")
from pygments import lexers  # noqa: E402
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, Punctuation, String  # noqa: E402

from specc.highlight import SpecLexer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = """\
# a comment: ᵀ · @
input x[3]
def P3(z) = 0.5 * (5*z^3 - 3*z)
h[10] = tanh(W·x + b)
y = Wᵀ·h + V'@h + e^2 ** 1e-3 + pi
init W = [[1, 2]]; output y
"""
RPM = """\
Name:           hello
Version:        2.10
Release:        1%{?dist}
Summary:        The "Hello World" program
License:        GPLv3+

%description
The "Hello World" program, done with all bells and whistles of a proper FOSS project.

%prep
%autosetup
"""
SPECC = "input x[3]\nh[4] = tanh(W·x + b)\ny = V·h\n"


def tokens(text: str) -> list[tuple]:
    return [(kind, value) for kind, value in SpecLexer().get_tokens(text) if value.strip()]


def test_the_tokens_of_a_sample():
    found = tokens(SAMPLE)
    assert found[0] == (Comment.Single, "# a comment: ᵀ · @")
    for expected in [(Keyword, "input"), (Keyword, "def"), (Name.Function, "P3"), (Keyword, "init"),
                     (Keyword, "output"), (Name.Builtin, "tanh"), (Name.Constant, "pi"), (Name.Constant, "e"),
                     (Name, "W"), (Number.Integer, "10"), (Number.Float, "0.5"), (Number.Float, "1e-3"),
                     (Operator, "·"), (Operator, "ᵀ"), (Operator, "'"), (Operator, "@"), (Operator, "^"),
                     (Operator, "**"), (Punctuation, "["), (Punctuation, ";")]:
        assert expected in found, expected
    assert (Name, "x") in found and (Keyword, "x") not in found
    assert tokens('enc = use "encoder.spec"')[-1] == (String.Double, '"encoder.spec"')
    assert tokens("relu2 = inputs")[::2] == [(Name, "relu2"), (Name, "inputs")]  # no keyword inside a name


def test_builtins_come_from_the_operation_table():
    from specc.ops import FUNCTIONS
    for name in FUNCTIONS:
        assert tokens(f"y = {name}(x)")[2] == (Name.Builtin, name)


def test_what_is_no_spec_text_is_an_error_token():
    assert (Error, "😀") in tokens("y = 😀")


def _documented_examples() -> list[str]:
    text = (ROOT / "docs" / "language.md").read_text(encoding="utf-8").split("## Warnings")[0]  # good ones
    return re.findall(r"```spec\n(.*?)```", text, re.S)


@pytest.mark.parametrize("path", sorted((ROOT / "specs").glob("*.spec")), ids=lambda p: p.name)
def test_no_error_token_in_a_bundled_spec(path):
    assert not [value for kind, value in tokens(path.read_text(encoding="utf-8")) if kind in Error]


def test_no_error_token_in_the_documented_good_examples():
    examples = _documented_examples()
    assert len(examples) >= 5
    for example in examples:
        assert not [value for kind, value in tokens(example) if kind in Error], example


def test_analyse_text_tells_specc_from_rpm():
    assert SpecLexer.analyse_text(SPECC) > 0.5
    for path in sorted((ROOT / "specs").glob("*.spec")):
        assert SpecLexer.analyse_text(path.read_text(encoding="utf-8")) > 0.5, path
    assert SpecLexer.analyse_text(RPM) < 0 and SpecLexer.analyse_text("") < 0


def _entry_point():
    found = [e for e in metadata.entry_points(group="pygments.lexers") if e.name == "specc"]
    return found[0] if found else None


def test_the_file_name_picks_the_lexer_by_the_text(monkeypatch):
    """Through Pygments' own choice among the lexers claiming `*.spec`: with specc's registered by its
    entry point when specc is installed, else handed to Pygments as a plugin would be."""
    if _entry_point() is None:
        find = lexers.find_lexer_class_for_filename
        monkeypatch.setitem(find.__globals__, "find_plugin_lexers", lambda: iter([SpecLexer]))
    assert type(lexers.get_lexer_for_filename("model.spec", code=SPECC)).__name__ == "SpecLexer"
    assert type(lexers.get_lexer_for_filename("model.spec", code=RPM)).__name__ == "RPMSpecLexer"
    assert type(lexers.get_lexer_for_filename("model.spec")).__name__ == "RPMSpecLexer"  # no text: as before
    for path in sorted((ROOT / "specs").glob("*.spec")):
        chosen = lexers.get_lexer_for_filename(path.name, code=path.read_text(encoding="utf-8"))
        assert type(chosen).__name__ == "SpecLexer", path


def test_the_entry_point_is_registered():
    entry = _entry_point()
    if entry is None:
        pytest.skip("specc is not installed with its entry points here (pip install -e .)")
    assert entry.value == "specc.highlight:SpecLexer"
    assert type(lexers.get_lexer_by_name("specc")).__name__ == "SpecLexer"
