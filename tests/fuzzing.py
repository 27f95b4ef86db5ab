"""Spec fuzzing, shared by tests/test_fuzz.py (a few thousand cases under Hypothesis) and
benchmarks/fuzz.py (100,000 cases, plain random generation, no shrinking).

Two generators, both driven by a *picker*: anything with ``randint(a, b)`` and ``choice(seq)``,
so ``random.Random`` drives them fast and :class:`DataPicker` drives them under Hypothesis (which
then shrinks a failure to a short list of choices):

- :func:`derive`: a random derivation of specc's own grammar (specc/grammar.lark, compiled by Lark
  as the parser compiles it), its terminals drawn from :data:`TERMINALS` (names and numbers from
  small pools so that some specs mean something, hostile values among them). The test also runs
  Hypothesis's ``from_lark`` on the same grammar with the same terminals (:func:`lark_terminals`).
- :func:`mutate`: one to three edits of a seed spec (the bundled specs/*.spec and the spec blocks of
  docs/language.md): lines deleted, duplicated or swapped; characters inserted, deleted or replaced
  from :data:`TOKENS` and :data:`HOSTILE`; numbers swapped for huge ones; line endings changed;
  the text truncated.

:func:`examine` runs one text through every stage a user reaches (``specc.graph``, ``to_source``,
``draw``, ``load`` and the module's forward, and the CLI's ``check``, ``check --dump ast``,
``inspect``, ``explain``) and says how it ended: valid, refused with a ``SpecError`` (which class,
at which stage), or a crash (any other exception, or a CLI exit status other than 0/1, or a
traceback on stderr) with the stage and the exception.
"""
from __future__ import annotations

import contextlib
import io
import math
import re
import traceback
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

try:  # the regular-expression parser: re._parser since Python 3.11 (sre_parse, deprecated, before)
    from re import _constants as sre_constants, _parser as sre_parse
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants
    import sre_parse

ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------- pools
# A derivation is plain or hostile (a third of them). Plain names connect (x, h, W …; repeats weight the
# pick); hostile ones add keywords, constants, built-in functions and names the generated Python uses.
NAMES = ["x"] * 6 + ["h"] * 4 + ["y"] * 4 + ["W"] * 4 + ["b"] * 3 + ["z", "u", "a", "c", "V", "out", "relu", "tanh"]
HOSTILE_NAMES = ["softmax", "log_softmax", "concat", "sum", "max", "norm", "dropout", "layer_norm", "clamp", "exp",
                 "pi", "e", "input", "param", "init", "zeros", "ones", "normal", "uniform", "self", "torch",
                 "forward", "__init__", "_", "None", "class", "spec_ir", "training", "T", "F", "nn", "Outputs"]
# Names called, f(…), in derive(): mostly functions, and names a def may have.
CALLEES = ["relu", "tanh", "sigmoid", "softmax", "concat", "sum", "exp", "log", "dropout", "clamp", "maximum",
           "layer_norm", "norm", "f", "g"]
SIZES = ["1", "2", "3", "4", "5", "8", "10"]
NUMBERS = SIZES * 4 + ["2", "3", "0.5"]
HUGE_NUMBERS = ["0", "00", ".5", "2.", "1e-3", "1.5", "2e1", "1000000", "1000000000", "4294967297",
                "99999999999999999999", "1e308", "1e309", "1e-320", "1" + "0" * 400, "9" * 5000]
# The language's tokens, for insertions and replacements.
TOKENS = (["input ", "output ", "param ", "fixed ", "def ", "init ", " = ", " + ", " - ", "*", "/", "^", "**", "·",
           "@", "ᵀ", "'", "(", ")", "[", "]", ",", ";", ":", "\n", "# c", "x", "h", "W", "b", "y", "relu(", "concat(",
           "softmax(", "sum(", "dropout(", "pi", "e", "zeros", "normal(0, 1)", "[1, 2]", "[2:3]", "[2]", "x[3]",
           "h[4] = relu(W·x + b)\n"] + SIZES)
# Hostile characters and strings: unicode, control characters, line breaks Lark and str.splitlines
# disagree on, digits that are not ASCII, huge numbers.
HOSTILE = (["\x00", "\r", "\r\n", "\f", "\v", "\x85", "\u2028", "\u2029", "\ufeff", "\t", "\\", '"', "$", "`",
            "π", "é", "µ", "৪", "٣", "１", "²", "ǅ", "\U0001F600", "\u202e", "x\u0301", "ﬁ",
            "1/0", "log(-1)", "-1", "1e308*1e308", "x[0]", "x[-1]", "x[1.5]"] + HUGE_NUMBERS)


@lru_cache(maxsize=1)
def seeds() -> tuple[tuple[str, str], ...]:
    """(name, text) of the seed specs: the bundled specs, then docs/language.md's spec blocks."""
    found = [(p.name, p.read_text(encoding="utf-8")) for p in sorted((ROOT / "specs").glob("*.spec"))]
    docs = ROOT / "docs" / "language.md"
    if docs.is_file():
        blocks = re.findall(r"```spec\n(.*?)```", docs.read_text(encoding="utf-8"), re.S)
        found += [(f"language.md#{i}", block) for i, block in enumerate(blocks)]
    return tuple(found)


# ---------------------------------------------------------------- pickers
class DataPicker:
    """A picker drawing from Hypothesis's ``st.data()``: the generators under shrinking."""

    def __init__(self, data):
        from hypothesis import strategies as st
        self.data, self.st = data, st

    def randint(self, low: int, high: int) -> int:
        return self.data.draw(self.st.integers(low, high))

    def choice(self, seq):
        return self.data.draw(self.st.sampled_from(seq))


# ---------------------------------------------------------------- the grammar
@lru_cache(maxsize=1)
def grammar():
    """specc's grammar as a Lark object with its rules kept (the parser's own Lark instance is loaded
    from Lark's cache, which keeps no grammar), start rule ``start``."""
    from lark import Lark

    import specc.parser
    text = Path(specc.parser.__file__).with_name("grammar.lark").read_text(encoding="utf-8")
    return Lark(text, parser="lalr", start="start")


# Terminals drawn from pools rather than from their regular expressions. Keywords carry a space, so
# that `input x` is not drawn as the name `inputx`; the comment is a space: a comment anywhere but
# at the end of a line swallows the statement (mutate() puts hostile text inside real comments).
TERMINALS = {
    "NAME": NAMES, "NUMBER": NUMBERS,
    "_NL": ["\n"] * 6 + ["\r\n", "\r", "\n\n", "\n  "], "WS": [" "] * 4 + ["\t", "\f"], "COMMENT": [" "],
    "INPUT": ["input "], "OUTPUT": ["output "], "PARAM": ["param "], "FIXED": ["fixed "], "DEF": ["def "],
    "INIT": ["init "], "MATMUL": ["·", "@"], "POW": ["^", "**"], "TRANSPOSE": ["ᵀ", "'"],
}
HOSTILE_TERMINALS = dict(TERMINALS, NAME=NAMES + HOSTILE_NAMES, NUMBER=NUMBERS * 2 + HUGE_NUMBERS,
                         _NL=TERMINALS["_NL"] + ["\r\r", "\n\r"], WS=TERMINALS["WS"] + ["\t\f "])


def lark_terminals(hostile: bool = False) -> dict:
    """``explicit`` for Hypothesis's ``from_lark``: the pools of :data:`TERMINALS` (or
    :data:`HOSTILE_TERMINALS`), for the terminals the grammar has."""
    from hypothesis import strategies as st
    names = _terminal_names()
    pools = HOSTILE_TERMINALS if hostile else TERMINALS
    return {name: st.sampled_from(pool) for name, pool in pools.items() if name in names}


@lru_cache(maxsize=1)
def _compiled():
    terminals, rules, ignore = grammar().grammar.compile(["start"], ())
    expansions: dict[str, list[tuple]] = {}
    for rule in rules:
        option = tuple(rule.expansion)
        if rule.origin.name == "start" and not option:
            continue  # the empty spec: mutations make it often enough
        # More lines than a coin toss gives (the lines' star rule's recursive expansion four times as
        # likely), and fewer sizes, names and arguments in a list (the other star rules', a third as likely).
        star = rule.origin.name.startswith("__") and "_star_" in rule.origin.name
        recursive = star and rule.origin in option
        more = rule.origin.name.startswith("__start_star")
        weight = (4 if more else 1) if recursive else (1 if more or not star else 3)
        expansions.setdefault(rule.origin.name, []).extend([option] * weight)
    patterns = {t.name: t.pattern for t in terminals}
    return expansions, patterns, tuple(ignore), _heights(expansions)


def _terminal_names() -> set[str]:
    expansions, patterns, ignore, _ = _compiled()
    return set(patterns) | set(ignore)


def _heights(expansions: dict[str, list[tuple]]) -> dict[str, int]:
    """Each rule's least derivation depth, so that a deep derivation can turn to the shortest way out."""
    height: dict[str, float] = {name: math.inf for name in expansions}
    changed = True
    while changed:
        changed = False
        for name, options in expansions.items():
            best = min(1 + max((height.get(s.name, 0) for s in option if not s.is_term), default=0)
                       for option in options)
            if best < height[name]:
                height[name], changed = best, True
    return height


MAX_DEPTH = 12  # past this depth a derivation takes each rule's shortest way out
MAX_TOKENS = 120  # and past this many tokens


def derive(pick) -> str:
    """A random text of specc's grammar (syntax only: many mean nothing, some are valid specs); one in three
    draws its terminals from the hostile pools."""
    expansions, patterns, ignore, height = _compiled()
    pools = HOSTILE_TERMINALS if pick.randint(0, 2) == 0 else TERMINALS
    out: list[str] = []

    def symbol(sym, depth: int) -> None:
        if sym.is_term:
            out.append(_terminal(sym.name, patterns, pools, pick))
            if ignore and pick.randint(0, 7) == 0:
                out.append(_terminal(pick.choice(ignore), patterns, pools, pick))
            return
        options = expansions[sym.name]
        if depth > MAX_DEPTH or len(out) > MAX_TOKENS:
            least = min(1 + max((height.get(s.name, 0) for s in o if not s.is_term), default=0) for o in options)
            options = [o for o in options
                       if 1 + max((height.get(s.name, 0) for s in o if not s.is_term), default=0) == least]
        option = pick.choice(options)
        for i, child in enumerate(option):
            if child.name == "NAME" and option[i + 1:i + 2] and option[i + 1].name == "LPAR":
                # A name called is mostly a function; a def is named f or g, the names called too.
                out.append(pick.choice(["f", "g"] if i and option[i - 1].name == "DEF" else CALLEES))
                continue
            symbol(child, depth + 1)

    from lark.grammar import NonTerminal
    symbol(NonTerminal("start"), 0)
    return "".join(out)


def _terminal(name: str, patterns: dict, pools: dict, pick) -> str:
    if name in pools:
        return pick.choice(pools[name])
    pattern = patterns[name]
    if pattern.type == "str":
        return pattern.value
    return _from_regex(sre_parse.parse(pattern.to_regexp()), pick)  # a terminal added to the grammar later


def _from_regex(parsed, pick) -> str:
    """A string matching a parsed regular expression (the subset Lark terminals use)."""
    out = []
    for op, arg in parsed:
        if op == sre_constants.LITERAL:
            out.append(chr(arg))
        elif op == sre_constants.IN:
            chars = []
            for kind, value in arg:
                if kind == sre_constants.LITERAL:
                    chars.append(chr(value))
                elif kind == sre_constants.RANGE:
                    chars += [chr(value[0]), chr(value[1])]
                elif kind == sre_constants.CATEGORY:
                    chars += list("a0 _")
            out.append(pick.choice(chars or ["a"]))
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            low, high, sub = arg
            out += [_from_regex(sub, pick) for _ in range(pick.randint(low, min(high, low + 3)))]
        elif op == sre_constants.SUBPATTERN:
            out.append(_from_regex(arg[-1], pick))
        elif op == sre_constants.BRANCH:
            out.append(_from_regex(pick.choice(arg[1]), pick))
        elif op == sre_constants.ANY:
            out.append("a")
    return "".join(out)


# ---------------------------------------------------------------- mutations
def mutate(text: str, pick, edits: int | None = None) -> str:
    """One to three random edits of ``text`` (:data:`MUTATIONS`)."""
    for _ in range(edits if edits is not None else pick.randint(1, 3)):
        text = MUTATIONS[pick.choice(sorted(MUTATIONS))](text, pick)
    return text


def _piece(pick) -> str:
    return pick.choice(TOKENS) if pick.randint(0, 2) else pick.choice(HOSTILE)


def _lines_edit(text: str, pick, how: str) -> str:
    lines = text.split("\n")
    i, j = pick.randint(0, len(lines) - 1), pick.randint(0, len(lines) - 1)
    if how == "delete":
        del lines[i]
    elif how == "duplicate":
        lines.insert(j, lines[i])
    else:
        lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


def _at(text: str, pick) -> int:
    return pick.randint(0, len(text))


def _replace_number(text: str, pick) -> str:
    numbers = list(re.finditer(r"\d+(\.\d*)?", text))
    if not numbers:
        return text + pick.choice(HUGE_NUMBERS)
    m = pick.choice(numbers)
    return text[:m.start()] + pick.choice(HUGE_NUMBERS + SIZES) + text[m.end():]


def _replace_name(text: str, pick) -> str:
    names = list(re.finditer(r"[A-Za-z_]\w*", text))
    if not names:
        return text
    m = pick.choice(names)
    return text[:m.start()] + pick.choice([n.group() for n in names] + NAMES) + text[m.end():]


def _line_endings(text: str, pick) -> str:
    return text.replace("\n", pick.choice(["\r", "\r\n", "\n\n", "\f\n", "\u2028", "\x85", "\v"]))


def _in_comment(text: str, pick) -> str:
    at = text.find("#")
    if at < 0:
        return "# " + pick.choice(HOSTILE) + "\n" + text
    return text[:at + 1] + pick.choice(["\f", "\v", "\x85", "\u2028", "\u2029", "\r", "\x00"]) + text[at + 1:]


def _insert(text, pick):
    i = _at(text, pick)
    return text[:i] + _piece(pick) + text[i:]


def _delete(text, pick):
    i = _at(text, pick)
    return text[:i] + text[i + pick.randint(1, 4):]


def _replace(text, pick):
    i = _at(text, pick)
    return text[:i] + _piece(pick) + text[i + pick.randint(1, 3):]


MUTATIONS = {
    "delete line": lambda t, p: _lines_edit(t, p, "delete"),
    "duplicate line": lambda t, p: _lines_edit(t, p, "duplicate"),
    "swap lines": lambda t, p: _lines_edit(t, p, "swap"),
    "insert": _insert,
    "delete": _delete,
    "replace": _replace,
    "truncate": lambda t, p: t[:_at(t, p)],
    "number": _replace_number,
    "name": _replace_name,
    "line endings": _line_endings,
    "in comment": _in_comment,
}


def mutant(pick) -> str:
    """A seed spec, mutated."""
    return mutate(pick.choice(seeds())[1], pick)


# ---------------------------------------------------------------- running a case
@dataclass
class Outcome:
    """How one text ended: ``kind`` is 'valid', 'refused' (a SpecError), 'large' (valid, but too large to
    load here: see LOAD_BUDGET) or 'crash'; ``stage`` where it ended; ``error`` the SpecError's class or
    the crash's exception type; ``detail`` the crash's traceback or message."""

    kind: str
    stage: str = ""
    error: str = ""
    detail: str = ""
    seconds: float = 0.0


LOAD_BUDGET = 10_000_000  # elements (parameters + one sample's values): beyond, the module is not built
BATCH = 3
STEPS = 4  # time steps of a sequence input


def elements(ir) -> int:
    """Parameters, fixed values and one sample's node values, in numbers."""
    return sum(math.prod(attrs["shape"]) for attrs in ir.nodes.values())


def examine(text: str, folder: Path, stages: frozenset | None = None) -> Outcome:
    """Run ``text`` through every stage (or those named in ``stages``: graph is always run) and say how it
    ended. ``folder`` holds the file the CLI reads."""
    import specc
    from specc.errors import SpecError
    want = (lambda s: True) if stages is None else stages.__contains__
    stage = "graph"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the linter's warnings: random specs have dead code
        try:
            ir = specc.graph(text)
            refused = None
        except SpecError as err:
            refused = err
        except Exception as err:  # noqa: BLE001 - the point: anything else is a crash
            return _crash(stage, err)
        if refused is not None:
            problem = _check_error(refused, text)
            if problem:
                return Outcome("crash", stage, type(refused).__name__, problem)
        outcome = (_line_endings(text, refused) if want("line endings") else None) or _cli(text, folder, want)
        if outcome is not None:
            return outcome
        if refused is not None:
            return Outcome("refused", stage, type(refused).__name__)
        try:
            for stage, run in (("source", lambda: specc.to_source(ir)),
                               ("draw", lambda: specc.draw(ir).source)):
                if want(stage):
                    run()
            if elements(ir) > LOAD_BUDGET:
                return Outcome("large", "load", detail=f"{elements(ir)} elements")
            if want("load"):
                stage = "load"
                module = specc.load(ir)
                stage = "run"
                problem = _run(module, ir)
                if problem:
                    return Outcome("crash", stage, "wrong shape", problem)
        except SpecError as err:
            problem = _check_error(err, text)
            if problem:
                return Outcome("crash", stage, type(err).__name__, problem)
            return Outcome("refused", stage, type(err).__name__)
        except Exception as err:  # noqa: BLE001
            return _crash(stage, err)
    return Outcome("valid")


def _crash(stage: str, err: BaseException) -> Outcome:
    detail = "".join(traceback.format_exception(type(err), err, err.__traceback__, limit=-8))
    return Outcome("crash", stage, type(err).__name__, detail)


def _check_error(err, text: str) -> str:
    """What is wrong with a SpecError's report, or '': it formats, starts with its ``error:`` line, and an
    error placed in the text quotes the line the parser counted (lines end at LF, CRLF or CR; a \\f or
    U+2028 ends none) with the caret inside it."""
    try:
        report = err.format()
    except Exception as failure:  # noqa: BLE001
        return f"format() raised {type(failure).__name__}: {failure}"
    head = report.split("\n", 1)[0]
    if "error: " not in head or "Traceback" in report:
        return f"report does not start with a located error: {report[:300]!r}"
    if err.span is None or err.source is None or err.span.file != "<spec>":
        return ""
    lines = parser_lines(text)
    line, column = err.span.line, err.span.column
    if not 1 <= line <= len(lines):
        return f"line {line} of a text of {len(lines)} lines:\n{report}"
    if not 1 <= column <= len(lines[line - 1]) + 1:
        return f"column {column} of a line of {len(lines[line - 1])} characters:\n{report}"
    shown = (report.split("\n")[1:2] or [""])[0]
    if not shown.startswith("    ") and not lines[line - 1].strip():
        return ""  # nothing to quote
    if shown.startswith("    "):  # a long line may be shown as a window of it, cut with … at either end
        shown = _printable(shown[4:].removeprefix("…").removesuffix("…"))
        if shown in _printable(lines[line - 1]) and (shown or not lines[line - 1].strip()):
            return ""
    return f"the excerpt is not line {line} ({lines[line - 1][:200]!r}):\n{report[:1000]}"


def parser_lines(text: str) -> list[str]:
    """The lines of a spec as its line numbers count them."""
    text = text[1:] if text.startswith("\ufeff") else text
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _printable(line: str) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in line)


def _line_endings(text: str, refused) -> Outcome | None:
    """The text with CRLF or CR line ends ends as with LF: valid, or the same error at the same place."""
    import specc
    from specc.errors import SpecError
    if "\r" in text or "\n" not in text:
        return None
    expected = None if refused is None else (type(refused).__name__, refused.line, refused.column)
    for ending in ("\r\n", "\r"):
        try:
            specc.graph(text.replace("\n", ending))
            found = None
        except SpecError as err:
            found = (type(err).__name__, err.line, err.column)
        except Exception as err:  # noqa: BLE001
            return _crash("line endings", err)
        if found != expected:
            return Outcome("crash", "line endings", "a different ending",
                           f"with {ending!r} line ends: {found or 'valid'}; with '\\n': {expected or 'valid'}")
    return None


def _run(module, ir) -> str:
    """Run the module on random inputs of the documented shapes; '' when every output has its shape."""
    import torch
    dtype = next((t.dtype for t in module.parameters()), torch.float32)
    # a sequence input is [B, T, *shape]; an output computed at every step comes back [B, T, *shape]
    steps = lambda node: (STEPS,) if ir.nodes[node].get("stepped") else ()  # noqa: E731
    inputs = [torch.randn(BATCH, *steps(n), *ir.nodes[n]["shape"], dtype=dtype) for n in ir.graph["inputs"]]
    with torch.no_grad():
        out = module(*inputs)
    out = list(out) if isinstance(out, tuple) else [out]
    batch = (BATCH,) if inputs else ()  # a spec with no inputs has no batch: its outputs are its values
    wanted = [(*batch, *steps(n), *ir.nodes[n]["shape"]) for n in ir.graph["outputs"]]
    got = [tuple(t.shape) for t in out]
    return "" if got == wanted else f"outputs {got}, documented {wanted}"


CLI_RUNS = (("check", ("check",)), ("check --dump ast", ("check", "--dump", "ast")),
            ("inspect", ("inspect",)), ("explain", ("explain",)))


@lru_cache(maxsize=1)
def _built(build):
    return build()


def _parser(build):
    return lambda: _built(build)


def _cli(text: str, folder: Path, want) -> Outcome | None:
    """The CLI on the text as a file: exit status 0 or 1 (0 exactly when the spec is valid), no traceback,
    and on failure a report whose first line is ``FILE:LINE:COL: error: …`` or ``error: …``."""
    from specc import cli
    import specc
    from specc.errors import SpecError
    if not any(want(stage) for stage, _ in CLI_RUNS):
        return None
    path = folder / "fuzz.spec"
    path.unlink(missing_ok=True)  # rewriting a file in place costs ext4 a flush (auto_da_alloc): 4 ms
    with open(path, "w", encoding="utf-8", newline="") as file:  # the text's own line endings
        file.write(text)
    try:  # the CLI reads the file, whose text Python may read differently (universal newlines)
        specc.graph(path)
        valid = True
    except SpecError:
        valid = False
    except Exception as err:  # noqa: BLE001
        return _crash("graph (file)", err)
    for stage, command in CLI_RUNS:
        if not want(stage) or (stage in ("inspect", "explain") and not valid):
            continue
        stderr, stdout = io.StringIO(), io.StringIO()
        shown, build = warnings.showwarning, cli.build_parser
        # main() wraps showwarning on every call (restored here, or 10,000 calls nest) and builds its
        # argparse parser each time (4 ms: one is built once and reused, as argparse allows).
        cli.build_parser = _parser(build)
        try:
            with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(stdout):
                status = cli.main([*command, str(path)])
        except (Exception, SystemExit) as err:  # noqa: BLE001 - these commands never exit by argparse here
            return _crash(stage, err)
        finally:
            warnings.showwarning, cli.build_parser = shown, build
        err_text = stderr.getvalue()
        if "Traceback" in err_text:
            return Outcome("crash", stage, "traceback printed", err_text[-2000:])
        if status not in (0, 1):
            return Outcome("crash", stage, f"exit status {status}", err_text[-2000:])
        if stage == "check" and status != (0 if valid else 1):
            return Outcome("crash", stage, "check disagrees with specc.graph",
                           f"exit status {status}; specc.graph {'accepted' if valid else 'refused'} it\n"
                           + err_text[-2000:])
        if status == 1:
            first = next((line for line in err_text.splitlines() if " error: " in line or
                          line.startswith("error: ")), None)
            if first is None:
                return Outcome("crash", stage, "no error line", err_text[-2000:])
    return None
