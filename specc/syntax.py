"""The AST: frozen records of a spec's statements and expressions, each keeping its source span.

specc/parser.py builds them (and re-exports every name here); every later stage reads them.
"""
from __future__ import annotations

from typing import Union


# ---------------------------------------------------------------- AST nodes
class Node:
    """An immutable AST record: its fields are its ``__slots__``, compared, hashed and shown by value.

    Written out rather than made with ``dataclass``, whose generated methods cost ~1 ms of start-up a
    class, a tenth of ``specc check`` on a small spec.
    """

    __slots__ = ()

    def __init__(self, *args, **kwargs):
        if kwargs:  # the parser passes fields by position; keywords are for people
            values = dict(zip(self.__slots__, args), **kwargs)
            args = tuple(values[name] for name in self.__slots__ if name in values)
            if len(values) != len(args):
                args = ()  # an unknown field: refused below
        if len(args) != len(self.__slots__):
            raise TypeError(f"{type(self).__name__} takes the fields {', '.join(self.__slots__)}")
        setter = object.__setattr__
        for name, value in zip(self.__slots__, args):
            setter(self, name, value)

    def _values(self) -> tuple:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other._values() == self._values()

    def __hash__(self) -> int:
        return hash((type(self), self._values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{n}={getattr(self, n)!r}' for n in self.__slots__)})"

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is immutable")

    __delattr__ = __setattr__

    def __reduce__(self):
        return type(self), self._values()


class Num(Node):
    """value: float; text: str; span: Span"""

    __slots__ = ('value', 'text', 'span')


class Name(Node):
    """id: str; span: Span"""

    __slots__ = ('id', 'span')


class BinOp(Node):
    """op: the name of an operator's row in specc.ops (add, sub …); left, right: Expr; span: Span"""

    __slots__ = ('op', 'left', 'right', 'span')


class Neg(Node):
    """operand: Expr; span: Span"""

    __slots__ = ('operand', 'span')


class Call(Node):
    """func: Name; args: tuple of Expr; span: Span"""

    __slots__ = ('func', 'args', 'span')


class Transpose(Node):
    """operand: Expr (written ``Wᵀ`` or ``W'``); span: Span"""

    __slots__ = ('operand', 'span')


class Index(Node):
    """operand: Expr; start: Num; stop: Num | None (None: one unit, ``x[2]``; else the slice ``x[2:4]``,
    both ends included); span: Span. Indices count from 1 and are whole numbers (checked here)."""

    __slots__ = ('operand', 'start', 'stop', 'span')


class Member(Node):
    """operand: Expr (a call of a block instance); name: Name (one of its outputs: ``vae(x).mu``); span: Span"""

    __slots__ = ('operand', 'name', 'span')


Expr = Union[Num, Name, BinOp, Neg, Call, Transpose, Index, Member]


class Decl(Node):
    """name: Name; dims: tuple[int, ...] | None (None: no brackets, or only ``[T]``; () never occurs);
    span: Span; steps: Span | None (where ``T`` is written: ``input x[T, 3]`` is a sequence of [3])"""

    __slots__ = ('name', 'dims', 'span', 'steps')

    def __init__(self, name, dims, span, steps=None):  # most declarations are not sequences
        super().__init__(name, dims, span, steps)


class InputDecl(Node):
    """decls: tuple[Decl, ...]; span: Span"""

    __slots__ = ('decls', 'span')


class OutputDecl(Node):
    """decls: tuple[Decl, ...]; span: Span"""

    __slots__ = ('decls', 'span')


class ParamDecl(Node):
    """decls: tuple[Decl, ...]; span: Span"""

    __slots__ = ('decls', 'span')


class FixedDecl(Node):
    """decls: tuple[Decl, ...]; span: Span. Values the module holds but training never changes."""

    __slots__ = ('decls', 'span')


class Def(Node):
    """name: Name; params: tuple[Name, ...]; body: Expr; span: Span"""

    __slots__ = ('name', 'params', 'body', 'span')


class Array(Node):
    """items: tuple of Expr or Array (a row of a matrix); span: Span. Numbers written out in an init line."""

    __slots__ = ('items', 'span')


class Init(Node):
    """name: Name; dist: Expr or Array; span: Span"""

    __slots__ = ('name', 'dist', 'span')


class Assign(Node):
    """target: Decl; expr: Expr; span: Span"""

    __slots__ = ('target', 'expr', 'span')


class UseFile(Node):
    """path: str (as written between the quotes, relative to the using file); span: Span"""

    __slots__ = ('path', 'span')


class Use(Node):
    """name: Name (the instance); source: UseFile or Name (a block of this file); span: Span"""

    __slots__ = ('name', 'source', 'span')


class Block(Node):
    """name: Name; statements: tuple[Statement, ...] (its body, as a spec's); span: Span"""

    __slots__ = ('name', 'statements', 'span')


Statement = Union[InputDecl, OutputDecl, ParamDecl, FixedDecl, Def, Init, Assign, Use, Block]


class Program(Node):
    """statements: tuple[Statement, ...]; source: str; file: str"""

    __slots__ = ('statements', 'source', 'file')


def walk(expr: Expr):
    """Yield ``expr`` and every sub-expression, in textual order."""
    yield expr
    if isinstance(expr, BinOp):
        yield from walk(expr.left)
        yield from walk(expr.right)
    elif isinstance(expr, (Neg, Transpose, Index, Member)):  # an index's numbers are not values: not yielded
        yield from walk(expr.operand)
    elif isinstance(expr, Call):  # the function's name is not a value, so it is not yielded
        for arg in expr.args:
            yield from walk(arg)
