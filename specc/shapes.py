"""Shape inference by unification (specc/shape_inference.py walks the IR with it).

Every value in the graph gets a *term*: unknown, scalar, vector of a size, or
matrix of two sizes. Sizes and terms are union-find variables, so a fact
learnt anywhere (a declaration, an input, a later use of a shared parameter)
flows everywhere, in both directions. Each bound size remembers where its
number came from, so a conflict can name both origins.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .errors import ShapeError, SizeConflictError, Span

Origin = tuple[str, Span | None]  # (what fixed it, e.g. "h[10]"; where)


class Size:
    __slots__ = ("parent", "value", "origin")

    def __init__(self):
        self.parent: Size | None = None
        self.value: int | None = None
        self.origin: Origin | None = None

    def root(self) -> "Size":
        node = self
        while node.parent is not None:
            node = node.parent
        if node is not self:  # path compression
            self.parent = node
        return node


SCALAR, VECTOR, MATRIX = "scalar", "vector", "matrix"


class Term:
    """A shape variable: ``kind`` is None until something decides it. A *flexible* one (a named
    constant's, ``c = 1``) is a scalar unless a use needs a vector (see :meth:`Unifier.constant`)."""

    __slots__ = ("parent", "kind", "sizes", "flexible")

    def __init__(self, kind: str | None = None, sizes: tuple[Size, ...] = (), flexible: bool = False):
        self.parent: Term | None = None
        self.kind = kind
        self.sizes = sizes
        self.flexible = flexible

    def root(self) -> "Term":
        node = self
        while node.parent is not None:
            node = node.parent
        if node is not self:
            self.parent = node
        return node


def _rank_word(term: Term) -> str:
    return {SCALAR: "a scalar", VECTOR: "a vector", MATRIX: "a matrix", None: "undetermined"}[term.kind]


@dataclass
class Unifier:
    """Holds the variables of one spec; methods raise positioned errors."""

    sums: list[tuple[Size, list[Size], Span]] = field(default_factory=list)
    bounds: list[tuple[Size, dict]] = field(default_factory=list)  # (a vector's size, the node indexing it)
    # A constant broadcast into a value: if the constant ends a vector, so must the value (settle_constants).
    links: list[tuple[Term, Term, Span | None, str]] = field(default_factory=list)
    units: list[tuple[Term, Size, Span | None]] = field(default_factory=list)  # a constant's units in a concat
    terms: dict[str, Term] = field(default_factory=dict)  # each node's term, once infer has run
    # prev(h) before h's own term exists: h's id → the terms of its prev nodes, made one with h's term later
    delayed: dict[str, list[tuple[Term, Span | None, str]]] = field(default_factory=dict)
    # Provenance for `specc explain` (None: not kept): (size, origin, where, what) when a bind gives a
    # size its number, (size, other size, where, what) when two sizes are made one, (term, term, where,
    # what) when an undetermined term takes another's shape.
    trace: list | None = None

    # ------------------------------------------------------------ constructors
    def unknown(self) -> Term:
        return Term()

    def scalar(self) -> Term:
        return Term(SCALAR)

    def vector(self, size: Size | None = None) -> Term:
        return Term(VECTOR, (size or Size(),))

    def matrix(self) -> Term:
        return Term(MATRIX, (Size(), Size()))

    def constant(self) -> Term:
        """A named constant's shape (``c = 1``): a scalar that broadcasts, unless a use needs a vector —
        either side of ``·``, a function of a vector (softmax), an ``output c[n]`` line — which gives it
        that vector's size. An elementwise partner or a concat does not decide it (there it broadcasts,
        or counts one unit)."""
        return Term(flexible=True)

    def fixed(self, dims: tuple[int, ...], origin: Origin) -> Term:
        """A term for declared dims: () scalar, (n,) vector, (m, n) matrix."""
        kinds = {0: SCALAR, 1: VECTOR, 2: MATRIX}
        if len(dims) not in kinds:
            raise ShapeError(f"{origin[0]} has {len(dims)} dimensions; a value is a scalar, a vector [n] "
                             f"or a matrix [m, n]", origin[1])
        sizes = tuple(Size() for _ in dims)
        for size, value in zip(sizes, dims):
            self.bind(size, value, origin, origin[1], origin[0])
        return Term(kinds[len(dims)], sizes)

    # ------------------------------------------------------------ sizes
    def bind(self, size: Size, value: int, origin: Origin, where: Span | None, what: str) -> None:
        root = size.root()
        if root.value is None:
            root.value, root.origin = value, origin
            if self.trace is not None:
                self.trace.append((size, origin, where, what))
        elif root.value != value:
            self._conflict(what, where, (root.value, root.origin), (value, origin))

    def unify_sizes(self, a: Size, b: Size, where: Span | None, what: str) -> None:
        ra, rb = a.root(), b.root()
        if ra is rb:
            return
        if ra.value is not None and rb.value is not None and ra.value != rb.value:
            self._conflict(what, where, (ra.value, ra.origin), (rb.value, rb.origin))
        if ra.value is None:
            ra, rb = rb, ra
        rb.parent = ra  # keep the root that carries a value (and its origin)
        if self.trace is not None:
            self.trace.append((a, b, where, what))

    @staticmethod
    def _conflict(what: str, where: Span | None, first: tuple[int, Origin | None],
                  second: tuple[int, Origin | None]) -> None:
        def told(value, origin):
            return f"{value} from {origin[0]}" if origin else str(value)
        notes = tuple((f"size {value} comes from {origin[0]}", origin[1])
                      for value, origin in (first, second) if origin)
        raise SizeConflictError(f"size conflict in {what}: {told(*first)} meets {told(*second)}", where,
                                notes=notes)

    # ------------------------------------------------------------ terms
    def unify(self, a: Term, b: Term, where: Span | None, what: str) -> Term:
        ra, rb = a.root(), b.root()
        if ra is rb:
            return ra
        if ra.kind is None:
            ra.parent = rb
            rb.flexible = rb.flexible and ra.flexible  # equal to a plain unknown: no longer free to broadcast
            if self.trace is not None:  # the unknown takes its partner's shape here
                self.trace.append((ra, rb, where, what))
            return rb
        if rb.kind is None:
            rb.parent = ra
            if self.trace is not None:
                self.trace.append((rb, ra, where, what))
            return ra
        if ra.kind != rb.kind:
            raise ShapeError(f"{what}: {_rank_word(ra)} here but {_rank_word(rb)} there", where)
        for sa, sb in zip(ra.sizes, rb.sizes):
            self.unify_sizes(sa, sb, where, what)
        rb.parent = ra
        return ra

    def elementwise(self, a: Term, b: Term, where: Span | None, what: str) -> Term:
        """``a + b`` and friends: scalars broadcast; an undetermined side takes its partner's shape."""
        ra, rb = a.root(), b.root()
        if _flexible(ra) or _flexible(rb):
            return self._broadcast_constant(ra, rb, where, what)
        if ra.kind is None or rb.kind is None or ra.kind == rb.kind:
            return self.unify(ra, rb, where, what)
        if SCALAR in (ra.kind, rb.kind):
            return ra if rb.kind == SCALAR else rb
        raise ShapeError(f"{what} needs operands of one kind or a scalar; got {_rank_word(ra)} and "
                         f"{_rank_word(rb)} (use · for a matrix product)", where)

    def _broadcast_constant(self, ra: Term, rb: Term, where: Span | None, what: str) -> Term:
        """A constant still free to be a scalar meets a partner: the result is shaped as the partner (or,
        beside a scalar, as the constant); :meth:`settle_constants` checks it once the constant is decided."""
        if _flexible(ra) and _flexible(rb):
            result = self.constant()
            self.links += [(ra, result, where, what), (rb, result, where, what)]
            return result
        constant, other = (ra, rb) if _flexible(ra) else (rb, ra)
        if other.kind == SCALAR:
            return constant
        self.links.append((constant, other, where, what))
        return other

    def settle_constants(self) -> None:
        """After every use: a constant that became a vector makes each value it was broadcast into that
        vector (sizes must agree); an undecided one stays a scalar, one unit in a concat."""
        changed = True
        while changed:
            changed = False
            for constant, other, where, what in self.links:
                rc, ro = constant.root(), other.root()
                if rc.kind is None or rc is ro:
                    continue
                if ro.kind == SCALAR:
                    raise ShapeError(f"{what}: the constant is {_rank_word(rc)} here, which makes the result "
                                     "one, but the result is used as a scalar; give the constant a size or use "
                                     "two constants", where)
                self.unify(ro, rc, where, what)
                changed = True
        for constant, size, where in self.units:
            root = constant.root()
            if root.kind == VECTOR:
                self.unify_sizes(size, root.sizes[0], where, "concat")
            elif root.kind == MATRIX:
                raise ShapeError("concat joins scalars and vectors, not matrices", where)
            else:
                self.bind(size, 1, ("a scalar", where), where, "concat")

    def product(self, a: Term, b: Term, where: Span | None, what: str) -> Term:
        """``A·v``: matrix [m, n] by vector [n] is a vector [m]; vector · vector is their dot product."""
        ra = a.root()
        if ra.kind is None:  # a constant on the left is a vector (a dot product), never a matrix
            self.unify(ra, self.vector() if ra.flexible else self.matrix(), where, what)
            ra = ra.root()
        rb = b.root()
        if ra.kind == SCALAR:
            raise ShapeError(f"the left side of {what} must be a matrix (or a vector, for a dot product), "
                             "not a scalar; use * to scale", where)
        if rb.kind == MATRIX:
            raise ShapeError(f"the right side of {what} must be a vector or a scalar, not a matrix", where)
        inner = ra.sizes[-1]
        if rb.kind is None:
            self.unify(rb, self.vector(inner), where, what)
        elif rb.kind == SCALAR:  # a scalar counts as a vector of size 1
            self.bind(inner, 1, (f"the scalar on the right of {what}", where), where, what)
        else:
            self.unify_sizes(inner, rb.sizes[0], where, what)
        return self.vector(ra.sizes[0]) if ra.kind == MATRIX else self.scalar()

    def concat(self, parts: list[Term], where: Span | None) -> Term:
        sizes = []
        for part in parts:
            root = part.root()
            if _flexible(root):  # one unit, unless another use makes the constant a vector
                sizes.append(Size())
                self.units.append((root, sizes[-1], where))
                continue
            if root.kind is None:
                self.unify(root, self.vector(), where, "concat")
                root = root.root()
            if root.kind == MATRIX:
                raise ShapeError("concat joins scalars and vectors, not matrices", where)
            if root.kind == SCALAR:
                one = Size()
                self.bind(one, 1, ("a scalar", where), where, "concat")
                sizes.append(one)
            else:
                sizes.append(root.sizes[0])
        total = Size()
        self.sums.append((total, sizes, where))
        return self.vector(total)

    def solve_sums(self) -> None:
        """Propagate ``total = sum(parts)`` until nothing changes (concat's sizes)."""
        changed = True
        while changed:
            changed = False
            for total, parts, where in self.sums:
                known = [p.root().value for p in parts]
                missing = [p for p, v in zip(parts, known) if v is None]
                t = total.root().value
                if not missing:
                    s = sum(known)
                    if t is None:
                        self.bind(total, s, ("the sizes joined by concat", where), where, "concat")
                        changed = True
                    elif t != s:
                        self.bind(total, s, ("the sizes joined by concat", where), where, "concat")
                elif t is not None and len(missing) == 1:
                    rest = t - sum(v for v in known if v is not None)
                    if rest < 1:
                        raise SizeConflictError(f"concat: the joined parts already have {t - rest} units, "
                                                f"more than the {t} the result has", where)
                    self.bind(missing[0], rest, ("what concat's result leaves for this part", where), where,
                              "concat")
                    changed = True


def _flexible(root: Term) -> bool:
    return root.flexible and root.kind is None


# ---------------------------------------------------------------- shape rules of the operation table
# A rule gets the unifier, the operands' terms, where to point and what to call the operation in a
# message, the row's name, and the node's attributes (indexing reads its start and stop there).
def _same(u: Unifier, args: list[Term], where: Span | None, what: str, name: str, attrs: dict) -> Term:
    return args[0]


def _vector(u: Unifier, args: list[Term], where: Span | None, what: str, name: str, attrs: dict) -> Term:
    if args[0].root().kind == SCALAR:
        raise ShapeError(f"'{name}' needs a vector; {what} is a scalar", where)
    return u.unify(args[0], u.vector(), where, what)


def _broadcast(u: Unifier, args: list[Term], where: Span | None, what: str, name: str, attrs: dict) -> Term:
    """``a + b``, ``maximum(a, b)``, ``clamp(x, lo, hi)``: the operands pairwise, as ``+`` meets them."""
    term = args[0]
    for arg in args[1:]:
        term = u.elementwise(term, arg, where, what)
    return term


def _reduce(u: Unifier, args: list[Term], where: Span | None, what: str, name: str, attrs: dict) -> Term:
    """``sum(v)`` and friends: a vector's units to one scalar. A scalar is its own reduction; an operand
    nothing has decided yet is taken for a vector (as softmax takes it): reducing it is why it is there."""
    root = args[0].root()
    if root.kind == MATRIX:
        dims = [s.root().value for s in root.sizes]
        shown = f" {dims}" if None not in dims else ""
        raise ShapeError(f"'{name}' reduces the units of a vector (or a scalar) to one number; the operand "
                         f"of {what} is a matrix{shown}", where)
    if root.kind is None:
        u.unify(root, u.vector(), where, what)
    return u.scalar()


def _transpose(u: Unifier, args: list[Term], where: Span | None, what: str, name: str, attrs: dict) -> Term:
    """Wᵀ of a matrix [m, n] is [n, m] over the same two sizes, so either use of W tells both."""
    root = args[0].root()
    if root.kind in (SCALAR, VECTOR):
        hint = "a scalar is its own transpose: drop the ᵀ" if root.kind == SCALAR else \
            "a vector is one sample's units, with no orientation: a dot product is written w·h, with no ᵀ"
        raise ShapeError(f"{what} transposes {_rank_word(root)}; only a matrix has a transpose ({hint})", where)
    root = u.unify(root, u.matrix(), where, what)
    rows, columns = root.sizes
    return Term(MATRIX, (columns, rows))


def _pick(u: Unifier, args: list[Term], where: Span | None, what: str, name: str, attrs: dict) -> Term:
    """x[2] is a scalar and x[2:4] a vector of 3 units; x must be a vector of at least 4 (checked once
    every size is known, by :func:`_check_bounds`)."""
    root = args[0].root()
    if root.kind in (SCALAR, MATRIX):
        hint = "; index a product instead, e.g. (W·x)[2]" if root.kind == MATRIX else ""
        raise ShapeError(f"{what} indexes {_rank_word(root)}; only a vector has units to index{hint}", where)
    root = u.unify(root, u.vector(), where, what)
    u.bounds.append((root.sizes[0], attrs))
    if name == "index":
        return u.scalar()
    return u.fixed((attrs["stop"] - attrs["start"] + 1,), (f"the slice {what}", where))


def _prev(u: Unifier, args: list[Term], where: Span | None, what: str, name: str, attrs: dict) -> Term:
    """prev(h, start) has h's shape, through the recurrence: h's term once it exists (:func:`infer`
    joins them then). The start broadcasts into it as ``+`` would: a scalar fits any shape, anything
    else (an undeclared parameter h0) takes h's shape."""
    term = u.terms.get(attrs["of"])
    if term is None:
        term = u.unknown()
        u.delayed.setdefault(attrs["of"], []).append((term, where, what))
    if args[0].root().kind != SCALAR:
        return u.elementwise(term, args[0], where, what)
    return term


RULES: dict[str, Callable[[Unifier, list[Term], Span | None, str, str, dict], Term]] = {
    "broadcast": _broadcast,
    "same": _same,
    "vector": _vector,
    "reduce": _reduce,
    "product": lambda u, args, where, what, name, attrs: u.product(args[0], args[1], where, what),
    "concat": lambda u, args, where, what, name, attrs: u.concat(args, where),
    "transpose": _transpose,
    "index": _pick,
    "slice": _pick,
    "prev": _prev,
}


def concrete(term: Term) -> tuple[int | None, ...]:
    """The final shape; an undetermined kind counts as a scalar, an unbound size as None."""
    root = term.root()
    return tuple(s.root().value for s in root.sizes)
