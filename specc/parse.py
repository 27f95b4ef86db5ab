"""Text → frozen AST. Lark does the parsing; every node keeps its source span.

Only syntax is checked here (plus the names the language reserves); meaning —
which name is a parameter, what size a vector has — is the graph stage's job.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Union

import lark
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from .errors import LimitError, ReservedNameError, Span, SpecError, SpecSyntaxError

KEYWORDS = frozenset({"input", "output", "param", "def", "init"})
# Each stage walks an expression recursively; this keeps every walk far inside Python's recursion limit.
MAX_NESTING = 200
CONSTANTS = {"pi": 3.141592653589793, "e": 2.718281828459045}


# ---------------------------------------------------------------- AST nodes
@dataclass(frozen=True)
class Num:
    value: float
    text: str
    span: Span


@dataclass(frozen=True)
class Name:
    id: str
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str  # add sub mul div matmul pow
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True)
class Neg:
    operand: "Expr"
    span: Span


@dataclass(frozen=True)
class Call:
    func: Name
    args: tuple["Expr", ...]
    span: Span


Expr = Union[Num, Name, BinOp, Neg, Call]


@dataclass(frozen=True)
class Decl:
    name: Name
    dims: tuple[int, ...] | None  # None: no brackets; () never occurs
    span: Span


@dataclass(frozen=True)
class InputDecl:
    decls: tuple[Decl, ...]
    span: Span


@dataclass(frozen=True)
class OutputDecl:
    decls: tuple[Decl, ...]
    span: Span


@dataclass(frozen=True)
class ParamDecl:
    decls: tuple[Decl, ...]
    span: Span


@dataclass(frozen=True)
class Def:
    name: Name
    params: tuple[Name, ...]
    body: Expr
    span: Span


@dataclass(frozen=True)
class Init:
    name: Name
    dist: Expr
    span: Span


@dataclass(frozen=True)
class Assign:
    target: Decl
    expr: Expr
    span: Span


Statement = Union[InputDecl, OutputDecl, ParamDecl, Def, Init, Assign]


@dataclass(frozen=True)
class Program:
    statements: tuple[Statement, ...]
    source: str
    file: str


def walk(expr: Expr):
    """Yield ``expr`` and every sub-expression, in textual order."""
    yield expr
    if isinstance(expr, BinOp):
        yield from walk(expr.left)
        yield from walk(expr.right)
    elif isinstance(expr, Neg):
        yield from walk(expr.operand)
    elif isinstance(expr, Call):  # the function's name is not a value, so it is not yielded
        for arg in expr.args:
            yield from walk(arg)


# ---------------------------------------------------------------- Lark plumbing
class _BracketContinuation:
    """Post-lexer: a newline inside ( ) or [ ] continues the statement."""

    always_accept = ("_NL",)

    def process(self, stream):
        depth = 0
        for token in stream:
            if token.type in ("LPAR", "LSQB"):
                depth += 1
            elif token.type in ("RPAR", "RSQB"):
                depth = max(0, depth - 1)
            elif token.type == "_NL" and depth:
                continue
            yield token


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = resources.files("specc").joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer="contextual", postlex=_BracketContinuation(),
                propagate_positions=True, maybe_placeholders=True)


class _ToAst(Transformer):
    def __init__(self, file: str):
        super().__init__()
        self.file = file

    def _span(self, meta_or_token) -> Span:
        m = meta_or_token
        return Span(self.file, m.line, m.column, m.end_line, m.end_column)

    def _name(self, token: Token) -> Name:
        return Name(str(token), self._span(token))

    def _decls(self, meta, children):
        return tuple(children), self._span(meta)

    @v_args(meta=True)
    def input_decl(self, meta, children):
        return InputDecl(*self._decls(meta, children))

    @v_args(meta=True)
    def output_decl(self, meta, children):
        return OutputDecl(*self._decls(meta, children))

    @v_args(meta=True)
    def param_decl(self, meta, children):
        return ParamDecl(*self._decls(meta, children))

    @v_args(meta=True)
    def decl(self, meta, children):
        name, dims = children
        return Decl(_checked_name(self._name(name)), dims, self._span(meta))

    def dims(self, tokens):
        sizes = []
        for token in tokens:
            text = str(token)
            if not text.isdigit() or int(text) < 1:
                raise SpecSyntaxError(f"a size must be a whole number of at least 1, not {text!r}",
                                      self._span(token))
            sizes.append(int(text))
        return tuple(sizes)

    @v_args(meta=True)
    def def_stmt(self, meta, children):
        name, *params, body = children
        params = tuple(_checked_name(self._name(p)) for p in params if p is not None)
        return Def(_checked_name(self._name(name)), params, body, self._span(meta))

    @v_args(meta=True)
    def init_stmt(self, meta, children):
        name, dist = children
        return Init(self._name(name), dist, self._span(meta))

    @v_args(meta=True)
    def assign(self, meta, children):
        name, dims, expr = children
        target = Decl(_checked_name(self._name(name)), dims, self._span(name))
        return Assign(target, expr, self._span(meta))

    def _binop(op):
        @v_args(meta=True)
        def build(self, meta, children):
            left, *_, right = children  # the matmul and pow operator tokens sit in between
            return BinOp(op, left, right, self._span(meta))
        return build

    add, sub, mul, div = _binop("add"), _binop("sub"), _binop("mul"), _binop("div")
    matmul, pow = _binop("matmul"), _binop("pow")

    @v_args(meta=True)
    def neg(self, meta, children):
        return Neg(children[0], self._span(meta))

    def number(self, children):
        token = children[0]
        return Num(float(token), str(token), self._span(token))

    def name(self, children):
        return _not_keyword(self._name(children[0]))

    @v_args(meta=True)
    def call(self, meta, children):
        func, *args = children
        return Call(_not_keyword(self._name(func)), tuple(a for a in args if a is not None), self._span(meta))

    def start(self, children):
        return tuple(c for c in children if c is not None)


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
    "SEMICOLON": "';'",
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
            lines = source.splitlines() or [""]
            line, column = len(lines), len(lines[-1]) + 1
            found, width = "end of file", 1
        elif token.type == "_NL":
            found, width = "end of line", 1
        else:  # the token as written: '@' where '@' was typed, not its '·' twin
            kind = {"NAME": "name ", "NUMBER": "number "}.get(token.type, "")
            found, width = f"{kind}'{token}'", max(1, len(str(token)))
        expected = sorted({_describe(t) for t in (err.expected or ()) if not t.startswith("__")})
        message = f"unexpected {found}"
        if isinstance(err, UnexpectedToken) and token is not None and token.type in {"INPUT", "OUTPUT", "PARAM",
                                                                                    "DEF", "INIT"}:
            message = f"'{token}' is a keyword and cannot be used here"
        elif expected:
            message += "; expected " + (", ".join(expected[:-1]) + " or " + expected[-1]
                                        if len(expected) > 1 else expected[0])
    return SpecSyntaxError(message, Span(file, line, column, line, column + width), source=source)


def _check_nesting(tree: lark.Tree, file: str) -> None:
    """Refuse an expression nested more than MAX_NESTING levels deep, before anything recurses into it."""
    stack = [(statement, statement, 1) for statement in tree.children if isinstance(statement, lark.Tree)]
    while stack:
        node, statement, depth = stack.pop()
        if depth > MAX_NESTING:
            meta = statement.meta
            raise LimitError(f"this statement nests more than {MAX_NESTING} operations inside each other; "
                             "split it into named nodes", Span(file, meta.line, meta.column, meta.end_line,
                                                                meta.end_column))
        stack.extend((child, statement, depth + 1) for child in node.children if isinstance(child, lark.Tree))


def parse_program(source: str, file: str = "<spec>") -> Program:
    """Parse spec text into a :class:`Program`; raise :class:`SpecError` on any mistake."""
    parser = _parser()
    if source.startswith("\ufeff"):  # a byte-order mark some editors write; not part of the text
        source = source[1:]
    try:
        tree = parser.parse(source)
        _check_nesting(tree, file)
        statements = _ToAst(file).transform(tree)
    except (UnexpectedEOF, UnexpectedInput) as err:
        raise _syntax_error(err, file, source) from None
    except SpecError as err:
        raise err.with_source(source) from None
    except VisitError as err:
        if isinstance(err.orig_exc, SpecError):
            raise err.orig_exc.with_source(source) from None
        raise
    except lark.exceptions.LarkError as err:  # anything else Lark may raise is still the user's syntax
        raise SpecSyntaxError(f"cannot parse: {err}", Span(file, 1, 1, 1, 2), source=source) from None
    return Program(tuple(statements), source, file)
