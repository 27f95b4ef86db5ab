"""Text → frozen AST. Lark does the parsing; every node keeps its source span.

Only syntax is checked here (plus the names the language reserves); meaning —
which name is a parameter, what size a vector has — is the graph stage's job.
"""
from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from .ops import BINARY_OPERATORS
from .errors import (IndexRangeError, LimitError, ReservedNameError, ShapeError, Span, SpecError, SpecSyntaxError,
                     normalise_newlines, split_lines)
from .limits import DEFAULT, Limits, literal, shown_digits, written_size
# The AST nodes live in specc/syntax.py; every stage imports them from here, as before.
from .syntax import (Array, Assign, BinOp, Block, Call, Decl, Def, Expr, FixedDecl, Index, Init, InputDecl, Member,
                     Name, Neg, Node, Num, OutputDecl, ParamDecl, Program, Statement, Transpose, Use, UseFile, walk)

KEYWORDS = frozenset({"input", "output", "param", "fixed", "def", "init", "block", "use"})
# Each stage walks an expression recursively; this keeps every walk far inside Python's recursion limit.
MAX_NESTING = 200
CONSTANTS = {"pi": 3.141592653589793, "e": 2.718281828459045}
STEPS = "T"  # the size that counts time steps: `input x[T, 3]` is a sequence of [3]
_PARSING = threading.Lock()  # one parser and one AST builder, shared: one parse at a time
__all__ = ["CONSTANTS", "KEYWORDS", "MAX_NESTING", "STEPS", "parse_program",  # and the AST, re-exported:
           "Array", "Assign", "BinOp", "Block", "Call", "Decl", "Def", "Expr", "FixedDecl", "Index", "Init",
           "InputDecl", "Member", "Name", "Neg", "Node", "Num", "OutputDecl", "ParamDecl", "Program", "Statement",
           "Transpose", "Use", "UseFile", "walk"]


# ---------------------------------------------------------------- Lark plumbing
class _BracketContinuation:
    """Post-lexer: a newline inside ( ) or [ ] continues the statement."""

    always_accept = ("_NL",)

    def __init__(self):
        self.last: Token | None = None  # the latest token: where an unforeseen failure is reported

    def process(self, stream):
        depth = 0
        for token in stream:
            self.last = token
            if token.type in ("LPAR", "LSQB"):
                depth += 1
            elif token.type in ("RPAR", "RSQB"):
                depth = max(0, depth - 1)
            elif token.type == "_NL" and depth:
                continue
            yield token


@lru_cache(maxsize=1)
def _parser() -> tuple[Lark, "_ToAst"]:
    """The parser, built once, with the AST builder inside it: LALR reductions build the AST directly,
    with no parse tree in between (twice as fast); the builder is told each parse's file name."""
    # Package data beside this module (importlib.resources would import zipfile: ~5 ms at every start).
    grammar = Path(__file__).with_name("grammar.lark").read_text(encoding="utf-8")
    builder = _ToAst()
    return Lark(grammar, parser="lalr", lexer="contextual", postlex=_BracketContinuation(),
                transformer=builder, maybe_placeholders=True, cache=True), builder


class _Paren(Node):
    """A parenthesised expression while its parent is built: the parent's span includes the brackets."""

    __slots__ = ("expr", "span")


def _unwrap(child):
    return child.expr if isinstance(child, _Paren) else child


class _ToAst(Transformer):
    """Lark callbacks, one per grammar rule; children are tokens and already built AST nodes.

    Spans come from the first and last child (keyword and bracket tokens are named in the grammar so
    that they reach here). ``depth`` records how deeply each expression nests, so that a statement
    nested beyond MAX_NESTING is refused before any stage walks it recursively.
    """

    def __init__(self):
        super().__init__()
        self.file = "<spec>"
        self.limits: Limits = DEFAULT  # sizes and indices above limits.size are refused where written
        self.depth: dict[int, int] = {}

    def _span(self, first, last=None) -> Span:
        """From the start of ``first`` to the end of ``last``: tokens, or AST nodes with their spans."""
        start = getattr(first, "span", first)
        end = start if last is None else getattr(last, "span", last)
        return Span(self.file, start.line, start.column, end.end_line, end.end_column)

    def _name(self, token: Token) -> Name:
        return Name(str(token), self._span(token))

    def _expr(self, node, *children):
        self.depth[id(node)] = 1 + max((self.depth.get(id(_unwrap(c)), 1) for c in children), default=0)
        return node

    def _statement_expr(self, child, statement_span: Span):
        expr = _unwrap(child)
        if self.depth.get(id(expr), 1) + 1 > MAX_NESTING:
            raise LimitError(f"this statement nests more than {MAX_NESTING} operations inside each other; "
                             "split it into named nodes", statement_span)
        return expr

    def _decls(self, children):
        keyword, *decls = children
        return tuple(decls), self._span(keyword, decls[-1])

    def input_decl(self, children):
        return InputDecl(*self._decls(children))

    def output_decl(self, children):
        return OutputDecl(*self._decls(children))

    def param_decl(self, children):
        return ParamDecl(*_no_steps(*self._decls(children), "a parameter"))

    def fixed_decl(self, children):
        return FixedDecl(*_no_steps(*self._decls(children), "a fixed value"))

    def decl(self, children):
        name, dims = children
        sizes, end, steps = dims if dims is not None else (None, name, None)
        return Decl(_checked_name(self._name(name)), sizes, self._span(name, end), steps)

    def dims(self, tokens):
        """The sizes written in brackets, where they end, and where a leading ``T`` is (else None)."""
        sizes, steps = [], None
        for position, token in enumerate(tokens[1:-1]):
            text = str(token)
            if token.type == "NAME":
                if text == STEPS and position == 0:
                    steps = self._span(token)
                    continue
                if text == STEPS:
                    raise ShapeError(f"'{STEPS}', the number of time steps, can only be the first size: "
                                     f"write it as in 'input x[{STEPS}, 3]'", self._span(token))
                raise SpecSyntaxError(f"a size must be a whole number of at least 1 (or '{STEPS}', first, "
                                      f"for time steps), not {text!r}", self._span(token))
            if not (text.isascii() and text.isdigit()) or not text.strip("0"):
                raise SpecSyntaxError(f"a size must be a whole number of at least 1, not {text!r}",
                                      self._span(token))
            sizes.append(written_size(text, self._span(token), self.limits))
        return tuple(sizes) or None, tokens[-1], steps

    def def_stmt(self, children):
        keyword, name, *params, body = children
        span = self._span(keyword, body)
        params = tuple(_checked_name(self._name(p)) for p in params if p is not None)
        return Def(_checked_name(self._name(name)), params, self._statement_expr(body, span), span)

    def init_stmt(self, children):
        keyword, name, dist = children
        span = self._span(keyword, dist)
        return Init(self._name(name), self._statement_expr(dist, span), span)

    def array(self, children):
        opening, *items, closing = children
        return Array(tuple(_unwrap(item) for item in items), self._span(opening, closing))

    def assign(self, children):
        name, dims, expr = children
        sizes, end, steps = dims if dims is not None else (None, name, None)
        span = self._span(name, expr)
        target = Decl(_checked_name(self._name(name)), sizes, self._span(name, end), steps)
        _no_steps((target,), span, "a node")
        return Assign(target, self._statement_expr(expr, span), span)

    def use_stmt(self, children):
        name, keyword, source = children
        span = self._span(name, source)
        if source.type == "STRING":
            target = UseFile(str(source)[1:-1], self._span(source))
        else:
            target = _not_keyword(self._name(source))
        return Use(_checked_name(self._name(name)), target, span)

    def block_def(self, children):
        keyword, name, *statements, closing = children
        body = tuple(s for s in statements if s is not None)
        return Block(_checked_name(self._name(name)), body, self._span(keyword, closing))

    def member(self, children):
        operand, name = children
        node = Member(_unwrap(operand), self._name(name), self._span(operand, name))
        return self._expr(node, operand)

    def neg(self, children):
        minus, operand = children
        return self._expr(Neg(_unwrap(operand), self._span(minus, operand)), operand)

    def number(self, children):
        token = children[0]
        return Num(literal(str(token), self._span(token)), str(token), self._span(token))

    def name(self, children):
        return _not_keyword(self._name(children[0]))

    def call(self, children):
        func, *args, closing = children
        args = [a for a in args if a is not None]
        node = Call(_not_keyword(self._name(func)), tuple(_unwrap(a) for a in args), self._span(func, closing))
        return self._expr(node, *args)

    def transpose(self, children):
        operand, mark = children
        return self._expr(Transpose(_unwrap(operand), self._span(operand, mark)), operand)

    def bound(self, children):
        minus, token = children
        text = ("-" if minus is not None else "") + str(token)
        return Num(float(text), text, self._span(minus if minus is not None else token, token))

    def index(self, children):
        operand, _, start, _, stop, closing = children
        for bound in (start, stop):
            if bound is not None:
                _check_index(bound)
                written_size(bound.text, bound.span, self.limits, "index")
        if stop is not None and stop.value < start.value:
            raise IndexRangeError(f"the slice {start.text}:{stop.text} runs backwards: a slice is first:last "
                                  f"with first ≤ last, both included (e.g. {stop.text}:{start.text})",
                                  self._span(start, stop))
        return self._expr(Index(_unwrap(operand), start, stop, self._span(operand, closing)), operand)

    def step_back(self, children):
        """``h[t-1]``, h at the previous time step: the same as ``prev(h)``."""
        operand, _, step, _, back, closing = children
        span = self._span(operand, closing)
        if back is None:  # x[i]
            raise SpecSyntaxError(f"an index is a whole number written in the spec (x[2], from 1), not the name "
                                  f"'{step}'; h[t-1] is h at the previous time step", self._span(step))
        if str(step) != "t":
            raise SpecSyntaxError(f"'{step}' is no index: the step before is written h[t-1] (t is the time step)",
                                  self._span(step))
        if str(back) != "1":
            raise SpecSyntaxError(f"only one step back can be written, h[t-1], not h[t-{back}]; for two, name "
                                  "the previous step (hp = h[t-1]) and write hp[t-1]", self._span(step, back))
        call = Call(Name("prev", span), (_unwrap(operand),), span)
        return self._expr(call, operand)

    def paren(self, children):
        opening, expr, closing = children
        return _Paren(_unwrap(expr), self._span(opening, closing))

    def start(self, children):
        return tuple(c for c in children if c is not None)


def _binop(op: str):
    def build(self, children):
        left, *_, right = children  # the matmul and pow operator tokens sit in between
        node = BinOp(op, _unwrap(left), _unwrap(right), self._span(left, right))
        return self._expr(node, left, right)
    return build


# One handler per binary operator of the operation table; the grammar's rule aliases are the rows' names.
for _op in BINARY_OPERATORS:
    setattr(_ToAst, _op, _binop(_op))


def _no_steps(decls: tuple, span: Span, what: str) -> tuple:
    """``T`` is a size of sequence inputs (and of outputs) only: a node's size per step is its own."""
    for decl in decls:
        if decl.steps is not None:
            raise ShapeError(f"'{STEPS}', the number of time steps, is a size of sequence inputs only, not of "
                             f"{what}: declare a sequence as 'input x[{STEPS}, 3]'; its nodes are sized per "
                             "step", decl.steps)
    return decls, span


def _check_index(bound: Num) -> None:
    """Indices are whole numbers from 1, as the units are numbered (x[1] … x[n])."""
    if not bound.text.lstrip("-").isdigit():
        raise IndexRangeError(f"an index is a whole number, not {bound.text}: the units of a vector [n] are "
                              "numbered 1 … n", bound.span)
    if bound.value < 1:
        raise IndexRangeError(f"{shown_digits(bound.text)} is not an index: indices count from 1, so the units "
                              "of a vector [n] are 1 … n", bound.span)


def _not_keyword(name: Name) -> Name:
    # The contextual lexer reads a keyword as a NAME where no keyword fits; refuse it here.
    if name.id in KEYWORDS:
        raise ReservedNameError(f"'{name.id}' is a keyword and cannot be used as a name", name.span)
    return name


def _checked_name(name: Name) -> Name:
    """Names that a statement *defines* may not be keywords or constants."""
    _not_keyword(name)
    if name.id in CONSTANTS:
        raise ReservedNameError(f"'{name.id}' is a built-in constant and cannot be redefined", name.span)
    return name


_TOKEN_WORDS = {
    "NAME": "a name", "NUMBER": "a number", "_NL": "end of line", "$END": "end of file",
    "MATMUL": "'·'", "POW": "'^'", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'",
    "COMMA": "','", "EQUAL": "'='", "PLUS": "'+'", "MINUS": "'-'", "STAR": "'*'", "SLASH": "'/'",
    "SEMICOLON": "';'", "COLON": "':'", "TRANSPOSE": "'ᵀ'", "DOT": "'.'", "LBRACE": "'{'", "RBRACE": "'}'",
    "STRING": "a file name in quotes",
}


def _describe(token_type: str) -> str:
    if token_type in _TOKEN_WORDS:
        return _TOKEN_WORDS[token_type]
    return f"'{token_type.lower()}'" if token_type.isupper() else token_type


_KEYWORD_TOKENS = frozenset(k.upper() for k in KEYWORDS)


def _syntax_error(err: UnexpectedInput, file: str, source: str) -> SpecError:
    line, column = max(err.line, 1), max(err.column, 1)
    if isinstance(err, UnexpectedToken) and err.token.type in ("EQUAL", "LSQB"):
        previous = (err.token_history or [None])[-1]  # `input = 3`: the lexer read the name as the keyword
        if previous is not None and previous.type in _KEYWORD_TOKENS:
            return ReservedNameError(f"'{previous}' is a keyword and cannot be used as a name",
                                     Span(file, previous.line, previous.column, previous.end_line,
                                          previous.end_column), source=source)
    if isinstance(err, UnexpectedCharacters):
        char = source[err.pos_in_stream] if err.pos_in_stream < len(source) else "?"
        message = f"unexpected character {char!r}"
        width = 1
    else:
        token = getattr(err, "token", None)
        if token is None or token.type == "$END":
            lines = split_lines(source)
            if len(lines) > 1 and not lines[-1]:  # the text's last newline ends its last line
                lines.pop()
            line, column = len(lines), len(lines[-1]) + 1
            found, width = "end of file", 1
        elif token.type == "_NL":
            found, width = "end of line", 1
        else:  # the token as written: '@' where '@' was typed, not its '·' twin
            kind = {"NAME": "name ", "NUMBER": "number "}.get(token.type, "")
            found, width = f"{kind}'{token}'", max(1, len(str(token)))
        expected = sorted({_describe(t) for t in (err.expected or ()) if not t.startswith("__")})
        message = f"unexpected {found}"
        if isinstance(err, UnexpectedToken) and token is not None and token.type in _KEYWORD_TOKENS:
            message = f"'{token}' is a keyword and cannot be used here"
        elif expected:
            message += "; expected " + (", ".join(expected[:-1]) + " or " + expected[-1]
                                        if len(expected) > 1 else expected[0])
    return SpecSyntaxError(message, Span(file, line, column, line, column + width), source=source,
                           notes=_capitalised_keyword(err, file, source))


def _capitalised_keyword(err: UnexpectedInput, file: str, source: str) -> tuple:
    """`Input x`, `Param W[2, 3]`: a statement that starts with a keyword in capitals reads as a name
    followed by another; the note says keywords are lower case."""
    if not isinstance(err, UnexpectedToken) or err.token.type != "NAME":
        return ()
    previous = (err.token_history or [None])[-1]
    if previous is None or previous.type != "NAME" or str(previous) == str(previous).lower() \
            or str(previous).lower() not in KEYWORDS:
        return ()
    before = split_lines(source)[previous.line - 1][:previous.column - 1].strip()
    if before and not before.endswith(";"):  # the word does not start a statement
        return ()
    word = str(previous).lower()
    return ((f"keywords are lower case: write '{word}'",
             Span(file, previous.line, previous.column, previous.end_line, previous.end_column)),)


def parse_program(source: str, file: str = "<spec>", limits: Limits = DEFAULT) -> Program:
    """Parse spec text into a :class:`Program`; raise :class:`SpecError` on any mistake.

    Line ends are made ``\\n`` first (CRLF, CR), so that Lark's line numbers and every excerpt count
    the same lines. ``limits.size`` bounds the sizes and indices written (specc/limits.py). Nothing
    else escapes: whatever Lark or a callback raises becomes a :class:`SpecSyntaxError` at the
    latest token read.
    """
    parser, builder = _parser()
    if source.startswith("\ufeff"):  # a byte-order mark some editors write; not part of the text
        source = source[1:]
    source = normalise_newlines(source)
    with _PARSING:
        builder.file, builder.depth, builder.limits = file, {}, limits
        postlex = parser.options.postlex
        postlex.last = None
        try:
            statements = parser.parse(source)
        except (UnexpectedEOF, UnexpectedInput) as err:
            raise _syntax_error(err, file, source) from None
        except SpecError as err:
            raise err.with_source(source) from None
        except VisitError as err:
            if isinstance(err.orig_exc, SpecError):
                raise err.orig_exc.with_source(source) from None
            raise _unforeseen(err.orig_exc, postlex.last, file, source) from None
        except Exception as err:  # a LarkError of another kind, or a failure in a callback
            raise _unforeseen(err, postlex.last, file, source) from None
        finally:
            builder.depth, builder.limits = {}, DEFAULT
    return Program(tuple(statements), source, file)


def _at(token: Token | None, file: str) -> Span:
    if token is None or getattr(token, "line", None) is None:
        return Span(file, 1, 1, 1, 2)
    return Span(file, token.line, token.column, token.end_line or token.line,
                token.end_column or token.column + 1)


def _unforeseen(err: BaseException, token: Token | None, file: str, source: str) -> SpecSyntaxError:
    """What no rule of this module foresaw, as a syntax error where the parser had got to."""
    return SpecSyntaxError(f"cannot parse this ({type(err).__name__}: {err})", _at(token, file), source=source)
