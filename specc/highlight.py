"""A Pygments lexer for ``.spec`` files, so that Sphinx, MkDocs, ``pygmentize`` and anything else that
highlights with Pygments colours specs (docs/editors.md).

It is registered as the entry point ``specc`` of the group ``pygments.lexers`` (pyproject.toml), so once
specc is installed ``get_lexer_by_name("specc")`` finds it. The keywords are the parser's, the built-in
functions the operation table's (specc.ops.FUNCTIONS), so new ones are highlighted as they are added.

``*.spec`` is also RPM's pattern, and Pygments' RPMSpec lexer claims it. Given the text, Pygments asks
each lexer that claims the file name how sure it is (``analyse_text``) and takes the surest; ties go to
the class name later in the alphabet, which is this one. So :meth:`SpecLexer.analyse_text` answers
below zero for text that looks like RPM's (``Name:`` lines, ``%description``) or like nothing specc
writes, leaving such files to RPM; without any text, ``priority`` leaves ``*.spec`` to RPM as before.
"""
from __future__ import annotations

import re

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import (Comment, Keyword, Name, Number, Operator, Punctuation, String, Whitespace)

from .ops import FUNCTIONS
from .parser import CONSTANTS, KEYWORDS

__all__ = ["SpecLexer"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_DIMS = r"(\s*\[[0-9T,\s]*\])?"
# Lines only specc writes: declarations, defs, init lines, blocks, and anything with · or ᵀ.
_SPEC_LINE = re.compile(
    rf"(input|output|param|fixed)\s+{_NAME}{_DIMS}(\s*,\s*{_NAME}{_DIMS})*\s*(#.*)?$"
    rf"|def\s+{_NAME}\s*\(\s*({_NAME}\s*(,\s*{_NAME}\s*)*)?\)\s*="
    rf"|init\s+{_NAME}\s*=|block\s+{_NAME}\s*\{{|{_NAME}\s*=\s*use\b|.*[·ᵀ]")
_ASSIGNMENT = re.compile(rf"{_NAME}{_DIMS}\s*=\s*[^=\s]")  # also Python's, or a Makefile's: weaker
_RPM_LINE = re.compile(
    r"(Name|Version|Release|Summary|License|URL|Url|Source\d*|Patch\d*|BuildRequires|Requires(\(\w+\))?"
    r"|BuildArch|BuildRoot|Group|Epoch|Provides|Obsoletes|Conflicts|Vendor|Packager)\s*:"
    r"|%(description|prep|build|install|check|clean|files|changelog|package|define|global|if|else|endif"
    r"|setup|autosetup|pre|post|preun|postun)\b|.*%\{")
_LINES_READ = 400


def _score(text: str) -> float:
    """How specc-like a text is: 0.3 to 0.9 by the share of lines only specc writes; -1 for RPM's text,
    -0.01 when nothing says (Pygments then picks by its other rules: RPM's lexer for ``*.spec``)."""
    strong = weak = rpm = code = 0
    for line in text.splitlines()[:_LINES_READ]:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        code += 1
        if _RPM_LINE.match(line):
            rpm += 1
        elif _SPEC_LINE.match(line):
            strong += 1
        elif _ASSIGNMENT.match(line):
            weak += 1
    if rpm and rpm >= strong:
        return -1.0
    if not strong and not weak:
        return -0.01
    return min(0.9, 0.3 + 0.6 * (strong + weak / 2) / code)


class SpecLexer(RegexLexer):
    """The .spec language of specc: a network written as equations (docs/language.md)."""

    name = "specc"
    aliases = ["specc", "spec"]
    filenames = ["*.spec"]
    mimetypes = ["text/x-specc"]
    url = "https://github.com/specc/specc"
    priority = -0.5  # without the text, *.spec stays RPM's as before (the module's doc says why)

    tokens = {
        "root": [
            (r"[ \t\f]+", Whitespace),
            (r"\r\n|\r|\n", Whitespace),
            (r"#[^\r\n]*", Comment.Single),
            (r'"[^"\r\n]*"', String.Double),  # a used file: `enc = use "encoder.spec"`
            (rf"(def|block)([ \t\f]+)({_NAME})", bygroups(Keyword, Whitespace, Name.Function)),
            (words(sorted(KEYWORDS), prefix=r"\b", suffix=r"\b"), Keyword),
            (words(sorted(FUNCTIONS), prefix=r"\b", suffix=r"\b"), Name.Builtin),
            (words(sorted(CONSTANTS), prefix=r"\b", suffix=r"\b"), Name.Constant),
            (_NAME, Name),
            (r"([0-9]+\.[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+", Number.Float),
            (r"[0-9]+", Number.Integer),
            (r"\*\*|[·@ᵀ'^*/+\-=:.]", Operator),
            (r"[()\[\],;{}]", Punctuation),
        ],
    }


# Set after the class is made: Pygments clamps an analyse_text defined in the class body to 0..1, and
# only a score below RPM's 0 can hand RPM's files back to it (see the module's doc).
SpecLexer.analyse_text = staticmethod(_score)
