"""specc/shapes.py and shape inference: sizes flow in both directions; conflicts name both origins."""
import pytest

import specc
from specc.errors import ShapeError, SizeConflictError, Span, UndeterminedSizeError
from specc.shapes import MATRIX, SCALAR, VECTOR, Size, Unifier, concrete
from conftest import assert_spec_error

HERE = Span("<spec>", 1, 1, 1, 2)


# ---------------------------------------------------------------- the unifier alone
def test_sizes_unify_in_both_directions():
    u = Unifier()
    a, b, c = Size(), Size(), Size()
    u.unify_sizes(a, b, HERE, "a")
    u.unify_sizes(b, c, HERE, "b")
    u.bind(c, 7, ("'c[7]'", HERE), HERE, "c")
    assert a.root().value == 7 and a.root().origin == ("'c[7]'", HERE)


def test_a_conflict_names_both_origins():
    u = Unifier()
    first, second = Span("<spec>", 1, 7, 1, 8), Span("<spec>", 2, 1, 2, 2)
    left = u.fixed((3,), ("'input x[3]'", first))
    right = u.fixed((4,), ("'h[4]'", second))
    with pytest.raises(SizeConflictError) as caught:
        u.unify(left, right, HERE, "'x + h'")
    err = caught.value
    assert err.message == "size conflict in 'x + h': 3 from 'input x[3]' meets 4 from 'h[4]'"
    assert err.notes == (("size 3 comes from 'input x[3]'", first), ("size 4 comes from 'h[4]'", second))


def test_elementwise_broadcasts_scalars_and_adopts_the_partner():
    u = Unifier()
    vector = u.fixed((5,), ("v", HERE))
    assert u.elementwise(u.scalar(), vector, HERE, "s*v").root() is vector.root()
    free = u.unknown()
    u.elementwise(free, vector, HERE, "b+v")
    assert free.root().kind == VECTOR and concrete(free) == (5,)
    with pytest.raises(ShapeError):
        u.elementwise(u.fixed((2, 5), ("M", HERE)), vector, HERE, "M+v")


def test_product_makes_an_unknown_left_side_a_matrix():
    u = Unifier()
    weight, x = u.unknown(), u.fixed((3,), ("x", HERE))
    out = u.product(weight, x, HERE, "W·x")
    u.bind(out.root().sizes[0], 4, ("y[4]", HERE), HERE, "y")
    assert weight.root().kind == MATRIX and concrete(weight) == (4, 3)
    assert u.product(u.fixed((3,), ("w", HERE)), x, HERE, "w·x").root().kind == SCALAR  # a dot product


def test_concat_sizes_add_up_and_solve_for_one_missing_part():
    u = Unifier()
    part, joined = u.unknown(), u.concat([u.fixed((3,), ("v", HERE)), u.scalar()], HERE)
    total = u.concat([u.fixed((2,), ("w", HERE)), part], HERE)
    u.bind(total.root().sizes[0], 6, ("y[6]", HERE), HERE, "y")
    u.solve_sums()
    assert concrete(joined) == (4,) and concrete(part) == (4,)


# ---------------------------------------------------------------- inference over whole specs
SHAPES = [
    # (spec, {name: expected shape}) — nodes, parameters and inputs alike
    ("input x[3]\ny = W·x + b\noutput y[2]", {"W": (2, 3), "b": (2,), "y": (2,)}),          # from the output line
    ("input x[3]\nh = tanh(W·x)\nz[4] = h + c", {"h": (4,), "W": (4, 3), "c": (4,)}),     # from a later use
    ("input x1[3], x2[3]\nh1 = W·x1\nh2[4] = W·x2", {"h1": (4,), "W": (4, 3)}),          # from a shared param
    ("input x[3]\ny = b * x", {"b": (3,), "y": (3,)}),                                     # elementwise partner
    ("input x\ny = b*x", {"b": (), "y": ()}),                                              # scalar input: scalar b
    ("input x\nh[4] = W·x", {"W": (4, 1)}),                                                # scalar counts as [1]
    ("input x\ny = a * W·x\noutput y[3]", {"a": (3,), "W": (3, 1)}),                      # a takes W·x's shape
    ("param a\ninput x\ny = a * W·x\noutput y[3]", {"a": (), "W": (3, 1)}),               # unless declared
    ("input x, v[3]\ny = x + v", {"y": (3,)}),                                             # broadcasting
    ("input x, v[3]\ny = concat(x, v, 1)", {"y": (5,)}),                                   # scalars count as 1
    ("input v[3]\ny[5] = concat(v, p)", {"p": (2,)}),                                      # the missing part
    ("input h[4]\nparam w[4]\ny = w·h", {"y": ()}),                                        # dot product
    ("input x[2]\nparam A[5, 2]\ny = B·A·x\noutput y[3]", {"B": (3, 5), "y": (3,)}),
    ("input x, v[3]\ndef f(z) = 2*z\na = f(x)\nb = f(v)", {"a": (), "b": (3,)}),          # defs are per call
    ("input x, v[3]\ndef f(z) = k*z\na = f(x)\nb = f(v)", {"k": (), "b": (3,)}),
    ("input x[2]\ny = -x^2 + x^x", {"y": (2,)}),
    ("input u[4]\nr[8] = relu(A·u + c)\ns = r * sigmoid(G·r)\nout[3] = P·concat(s, u) + q",
     {"A": (8, 4), "G": (8, 8), "P": (3, 12), "s": (8,), "q": (3,)}),
    ("y = a + 1", {"a": (), "y": ()}),
    ("input x\nparam v\ny = x", {"v": ()}),                                                # unused: a scalar
]


@pytest.mark.parametrize("text,shapes", SHAPES, ids=[t.replace("\n", "; ") for t, _ in SHAPES])
def test_inferred_shapes(text, shapes):
    graph = specc.graph(text)
    assert {name: graph.nodes[name]["shape"] for name in shapes} == shapes


def test_inferred_shapes_are_the_module_shapes():
    model = specc.load("input x[3]\ny = W·x + b\noutput y[2]")
    assert {n: tuple(p.shape) for n, p in model.named_parameters()} == {"W": (2, 3), "b": (2,)}


# ---------------------------------------------------------------- shape errors, with exact positions
SHAPE_ERRORS = [
    ("input x[3]\nh[4] = relu(W·x + b)\ny[2] = W·h", SizeConflictError, 3, 8,
     "size conflict in 'W·h': 3 from 'input x[3]' meets 4 from 'h[4]'"),
    ("input x1[3], x2[2]\nh1 = W·x1\nh2[4] = W·x2", SizeConflictError, 3, 9,
     "3 from 'input x1[3]' meets 2 from 'input x2[2]'"),
    ("input x[3], v[4]\ny = x + v", SizeConflictError, 2, 5, "3 from 'input x[3]' meets 4 from 'input v[4]'"),
    ("input x[3]\ny[4] = x * 2", SizeConflictError, 2, 1, "3 from 'input x[3]' meets 4 from 'y[4]'"),
    ("input x[3]\ny = x\noutput y[2]", SizeConflictError, 3, 8, "3 from 'input x[3]' meets 2 from 'output y[2]'"),
    ("param W[2, 2]\ninput x[3]\ny = W·x", SizeConflictError, 3, 5, "2 from 'param W[2, 2]' meets 3 from 'input x[3]'"),
    ("input x\nparam v[4]\ny = v·x", SizeConflictError, 3, 5, "4 from 'param v[4]' meets 1 from the scalar"),
    ("input v[3]\ny[2] = concat(v, p)", SizeConflictError, 2, 8, "the joined parts already have 3 units"),
    ("input x[3]\ny[2] = W·x\nz = W * x", ShapeError, 3, 5, "got a matrix and a vector"),    # one W, two shapes
    ("param M[2, 2]\ninput x[2]\ny = M + x", ShapeError, 3, 5, "needs operands of one kind or a scalar"),
    ("input x\ny = softmax(x)", ShapeError, 2, 5, "'softmax' needs a vector; 'softmax(x)' is a scalar"),
    ("input x\ny = log_softmax(2 * x)", ShapeError, 2, 5, "'log_softmax' needs a vector"),
    ("param W[2, 3]\ny = W", ShapeError, 2, 1, "'y' would be a matrix [2, 3]"),
    ("param a\ninput x[3]\ny = a·x", ShapeError, 3, 5, "the left side of 'a·x' must be a matrix"),
    ("param A[2, 3], B[3, 3]\ny = A·B", ShapeError, 2, 5, "the right side of 'A·B' must be a vector or a scalar"),
    ("input x[2, 3]", ShapeError, 1, 7, "input 'x' must be a scalar or a vector [n], not [2, 3]"),
    ("param T[2, 2, 2]\ninput x\ny = x", ShapeError, 1, 7, "has 3 dimensions"),
    ("input x\ny[3] = x * 2", ShapeError, 2, 1, "'y' is declared with size [3] but its value is a scalar"),
    ("input x[3]\ny = relu(W·x)", UndeterminedSizeError, 2, 1,
     "the size of 'y' is not determined by anything; give it one, e.g. 'y[N] = …'"),
    ("input x[2]\ny = B·A·x\noutput y[3]", UndeterminedSizeError, 2, 5,
     "the shape of parameter 'B' is not determined by its uses; declare it, e.g. 'param B[3, N]'"),
    ("input x[3]\nh = W·x\noutput h", UndeterminedSizeError, 2, 1, "the size of 'h'"),
]


@pytest.mark.parametrize("text,error,line,column,words", SHAPE_ERRORS, ids=[row[4][:40] for row in SHAPE_ERRORS])
def test_shape_errors(text, error, line, column, words):
    assert_spec_error(text, error, line, column, words)


def test_a_size_conflict_report_shows_both_origins():
    err = pytest.raises(SizeConflictError, specc.graph, "input x[3]\nh[4] = relu(W·x + b)\ny[2] = W·h").value
    assert err.format().splitlines() == [
        "<spec>:3:8: error: size conflict in 'W·h': 3 from 'input x[3]' meets 4 from 'h[4]'",
        "    y[2] = W·h", "           ^~~",
        "<spec>:1:7: note: size 3 comes from 'input x[3]'", "    input x[3]", "          ^",
        "<spec>:2:1: note: size 4 comes from 'h[4]'", "    h[4] = relu(W·x + b)", "    ^",
    ]
