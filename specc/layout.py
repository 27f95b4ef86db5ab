"""Laying out generated Python: lines of at most 100 characters, comments and string literals.

The code generator writes each statement on one line; these helpers break the
few that are too long inside brackets, where Python allows a new line. They
split only at spaces, which generated code never puts inside a string literal
except in the literals built here (:func:`string_literal`).
"""
from __future__ import annotations

import re

WIDTH = 100
_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_.]*) = (.*)$")


def comment(text: str) -> str:
    """Text safe inside a ``#`` comment: control and line-breaking characters are escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _words(text: str, width: int) -> list[str]:
    """The words of ``text`` (split at spaces); a word longer than ``width`` is also split after its
    opening brackets, where generated code may break a line too."""
    words = []
    for word in text.split(" "):
        while len(word) > width and re.search(r"[(\[]", word[:width]):
            cut = max(word.rfind("(", 0, width), word.rfind("[", 0, width)) + 1
            words.append(word[:cut])
            word = word[cut:]
        words.append(word)
    return words


_PHRASE_BREAK = re.compile(r"(?<=,) | (?=(?:or|and|\+|-|\*) )")


def _phrases(text: str, width: int) -> list[str]:
    """Pieces that read well on a line of their own (after a comma, before ``or`` or ``+``);
    a phrase longer than ``width`` is split into words."""
    phrases = []
    for phrase in _PHRASE_BREAK.split(text):
        phrases += [phrase] if len(phrase) <= width else _words(phrase, width)
    return phrases


def _chunks(text: str, width: int) -> list[str]:
    """``text`` split into lines of at most ``width`` characters (a longer word stays whole)."""
    pieces, current = [], ""
    for word in _phrases(text, width):
        glue = "" if current.endswith(("(", "[")) else " "
        candidate = f"{current}{glue}{word}" if current else word
        if len(candidate) > width and current:
            pieces.append(current)
            current = word
        else:
            current = candidate
    return pieces + [current]


def _bracketed(head: str, inner: str, tail: str, indent: str, width: int) -> list[str]:
    return [f"{indent}{head}"] + [f"{indent}    {piece}" for piece in _chunks(inner, width - len(indent) - 4)] \
        + [f"{indent}{tail}"]


def wrap(line: str, indent: str = "", width: int = WIDTH, docstring: bool = False) -> list[str]:
    """``line`` (written without ``indent``) as one or more lines of at most ``width`` characters."""
    if len(indent) + len(line) <= width:
        return [indent + line]
    if docstring:  # """text""" → the text on lines of its own
        return [f'{indent}"""'] + [f"{indent}{piece}" for piece in _chunks(line[3:-3], width - len(indent))] \
            + [f'{indent}"""']
    code, note = (line.split("  # ", 1) + [""])[:2] if "  # " in line else (line, "")
    above = [f"{indent}# {note}"] if note else []
    if len(indent) + len(code) <= width:
        return above + [indent + code]
    if code.startswith("if ") and code.endswith(":"):
        return above + _bracketed("if (", code[3:-1], "):", indent, width)
    if code.startswith("return "):
        return above + _bracketed("return (", code[7:], ")", indent, width)
    assignment = _ASSIGNMENT.match(code)
    if assignment and not code.rstrip().endswith(":"):
        return above + _bracketed(f"{assignment.group(1)} = (", assignment.group(2), ")", indent, width)
    opening, closing = code.find("("), code.rfind(")")
    if 0 <= opening < closing:  # a call or a def: break between its brackets
        return above + _bracketed(code[:opening + 1], code[opening + 1:closing], code[closing:], indent, width)
    return above + [indent + code]


def code_lines(statement: str, note: str, width: int = WIDTH - 8) -> list[str]:
    """A statement with its note as a trailing comment, or as a comment line above when that is too long."""
    one = f"{statement}  # {note}"
    if len(one) <= width:
        return [one]
    if len(note) + 2 > width:
        note = note[:width - 3] + "…"
    return [f"# {note}"] + wrap(statement, width=width)


def string_literal(text: str, indent: str, width: int = WIDTH) -> str:
    """``text`` as a Python expression: one literal, or adjacent literals in brackets, a line each, each
    line of the text split into pieces so that no line of the literal is longer than ``width``."""
    lines = text.splitlines(keepends=True) or [""]
    if len(lines) == 1 and len(indent) + len(repr(lines[0])) + 16 <= width:
        return repr(lines[0])
    room = width - len(indent) - 6
    pieces = []
    for line in lines:
        while len(repr(line)) > room:
            cut = room - 2
            while len(repr(line[:cut])) > room:
                cut -= 1
            pieces.append(line[:cut])
            line = line[cut:]
        pieces.append(line)
    return "(\n" + "".join(f"{indent}    {piece!r}\n" for piece in pieces) + f"{indent})"


def _packed(parts: list[str], joint: str, width: int) -> list[str]:
    """``parts`` joined by ``joint`` on as few lines of at most ``width`` as whole parts allow;
    each continuation line starts with the joint's word (``and …``)."""
    lines = [parts[0]]
    for part in parts[1:]:
        if len(lines[-1]) + len(joint) + len(part) <= width:
            lines[-1] += joint + part
        else:
            lines.append(joint.strip() + " " + part)
    return lines


def input_guard(tests: list[str], raise_call: str, width: int) -> list[str]:
    """``if self.check_inputs and not (…):`` and the ``raise`` under it, the tests packed over several
    lines when one would be longer than ``width``."""
    condition = f"if self.check_inputs and not ({' and '.join(tests)}):"
    lines = [condition] if len(condition) <= width else (
        ["if self.check_inputs and not ("] + ["    " + line for line in _packed(tests, " and ", width - 4)] + ["):"])
    return lines + wrap(raise_call, "    ", width)
