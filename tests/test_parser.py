"""specc/parser.py: statements, separators, precedence, spans, syntax errors, and no Lark leaks."""
import random

import pytest

import specc
from specc.errors import LimitError, ReservedNameError, SpecError, SpecSyntaxError
from specc.parser import MAX_NESTING, Call, Name, Neg, Num, parse_program, walk
from conftest import assert_spec_error

_SYMBOLS = {"add": "+", "sub": "-", "mul": "*", "div": "/", "matmul": "@", "pow": "^"}


def show(expr) -> str:
    """An expression with every grouping made explicit."""
    if isinstance(expr, Num):
        return expr.text
    if isinstance(expr, Name):
        return expr.id
    if isinstance(expr, Neg):
        return f"(-{show(expr.operand)})"
    if isinstance(expr, Call):
        return f"{expr.func.id}({', '.join(show(a) for a in expr.args)})"
    return f"({show(expr.left)} {_SYMBOLS[expr.op]} {show(expr.right)})"


def expression(text: str):
    (statement,) = parse_program(f"y = {text}").statements
    return statement.expr


# ---------------------------------------------------------------- precedence and associativity
@pytest.mark.parametrize("text,grouped", [
    ("a + b * c", "(a + (b * c))"),
    ("a - b - c", "((a - b) - c)"),
    ("a / b * c", "((a / b) * c)"),
    ("a * W·x", "(a * (W @ x))"),               # the product binds tighter than *
    ("W·x * a", "((W @ x) * a)"),
    ("B·A·x", "(B @ (A @ x))"),                 # right to left
    ("B@A@x", "(B @ (A @ x))"),
    ("-W·x", "((-W) @ x)"),                     # unary minus binds tighter than the product
    ("-x^2", "(-(x ^ 2))"),                     # power binds tighter than unary minus
    ("x^y^z", "(x ^ (y ^ z))"),                 # right-associative
    ("x**y**z", "(x ^ (y ^ z))"),
    ("x^-1", "(x ^ (-1))"),
    ("2^-x^2", "(2 ^ (-(x ^ 2)))"),
    ("--x", "(-(-x))"),
    ("W·x^2", "(W @ (x ^ 2))"),
    ("(a + b) * c", "((a + b) * c)"),
    ("f(a, b + c) * 2", "(f(a, (b + c)) * 2)"),
    ("f()", "f()"),
    ("0.5 * (5*z^3 - 3*z)", "(0.5 * ((5 * (z ^ 3)) - (3 * z)))"),
    ("2*pi*x", "((2 * pi) * x)"),
])
def test_precedence(text, grouped):
    assert show(expression(text)) == grouped


@pytest.mark.parametrize("text,value", [("3", 3.0), ("0.5", 0.5), (".5", 0.5), ("2.", 2.0), ("1e-3", 1e-3),
                                        ("2.5E+4", 2.5e4)])
def test_numbers(text, value):
    number = expression(text)
    assert isinstance(number, Num) and number.value == value and number.text == text


# ---------------------------------------------------------------- statements and separators
@pytest.mark.parametrize("text,kinds", [
    ("", []),
    ("# only a comment\n", []),
    ("input x; y = x", ["InputDecl", "Assign"]),
    (";;input x;;y = x;;", ["InputDecl", "Assign"]),
    ("input x\r\ny = x\r\n", ["InputDecl", "Assign"]),                       # CRLF
    ("input x\ry = x\r", ["InputDecl", "Assign"]),                           # old Mac line ends
    ("\ufeffinput x\ny = x", ["InputDecl", "Assign"]),                        # a byte-order mark
    ("input x  # the input\n\n\ny = x # out\n# end", ["InputDecl", "Assign"]),
    ("input x\ny = (x\n\n  + 1)\n", ["InputDecl", "Assign"]),                 # newline inside ( )
    ("param W[\n  4,\n  3]", ["ParamDecl"]),                                   # newline inside [ ]
    ("input x\ny = f(\n x,\n x\n)", ["InputDecl", "Assign"]),
    ("output a[3], b\n", ["OutputDecl"]),
    ("def f(a, b) = a * b\ndef g() = 1", ["Def", "Def"]),
    ("init a = -1; init b = uniform(0, 1)", ["Init", "Init"]),
    ("y[3] = x", ["Assign"]),
])
def test_statements_and_separators(text, kinds):
    assert [type(s).__name__ for s in parse_program(text).statements] == kinds


def test_declarations_keep_names_and_sizes():
    (inputs, params, output) = parse_program("input in1[5], x\nparam W[4, 3], a\noutput y[2]").statements
    assert [(d.name.id, d.dims) for d in inputs.decls] == [("in1", (5,)), ("x", None)]
    assert [(d.name.id, d.dims) for d in params.decls] == [("W", (4, 3)), ("a", None)]
    assert [(d.name.id, d.dims) for d in output.decls] == [("y", (2,))]


def test_spans_point_at_the_text():
    program = parse_program("input x\n  h[4] = relu(W·x + b)  # c\n", file="f.spec")
    assign = program.statements[1]
    assert (assign.span.file, assign.span.line, assign.span.column) == ("f.spec", 2, 3)
    assert (assign.target.name.span.line, assign.target.name.span.column) == (2, 3)
    call = assign.expr
    assert (call.span.column, call.span.end_column) == (10, 23)
    product = call.args[0].left
    assert (product.span.column, product.span.end_column) == (15, 18)


def test_walk_is_textual_order():
    names = [n.id for n in walk(expression("a + b * f(c, d·e) - g")) if isinstance(n, Name)]
    assert names == ["a", "b", "c", "d", "e", "g"]  # a called function's name is not a value


# ---------------------------------------------------------------- syntax errors
SYNTAX_ERRORS = [
    # (spec, error class, line, column, words in the message)
    ("input x\ny = x $ 2", SpecSyntaxError, 2, 7, "unexpected character '$'"),
    ("input x\ny = (x", SpecSyntaxError, 2, 7, "unexpected end of file; expected ')'"),
    ("input x\ny = x +", SpecSyntaxError, 2, 8, "unexpected end of file"),
    ("input x\ny = x +\n 1", SpecSyntaxError, 2, 8, "unexpected end of line"),
    ("input x\nh = relu(W·x + )", SpecSyntaxError, 2, 16, "unexpected ')'"),
    ("input x y", SpecSyntaxError, 1, 9, "unexpected name 'y'"),
    ("y = 1 2", SpecSyntaxError, 1, 7, "unexpected number '2'"),
    ("y = x @@ x", SpecSyntaxError, 1, 8, "unexpected '@'"),
    ("y == x", SpecSyntaxError, 1, 4, "unexpected '='"),
    ("input x[0]", SpecSyntaxError, 1, 9, "a size must be a whole number of at least 1, not '0'"),
    ("input x[2.5]", SpecSyntaxError, 1, 9, "not '2.5'"),
    ("input x[]", SpecSyntaxError, 1, 9, "unexpected ']'"),
    ("def f(a,) = a", SpecSyntaxError, 1, 9, "unexpected ')'"),
    ("init W", SpecSyntaxError, 1, 7, "expected '='"),
    ("\ufeffy = x \\ 2", SpecSyntaxError, 1, 7, "unexpected character '\\\\'"),
    # keywords where a name belongs
    ("input x\ny = param + x", ReservedNameError, 2, 5, "'param' is a keyword and cannot be used as a name"),
    ("input x\ninput = 3", ReservedNameError, 2, 1, "'input' is a keyword and cannot be used as a name"),
    ("input x\ninit[2] = x", ReservedNameError, 2, 1, "'init' is a keyword"),
    ("def param(z) = z", ReservedNameError, 1, 5, "'param' is a keyword"),
    ("def f(output) = 1", ReservedNameError, 1, 7, "'output' is a keyword"),
    ("y = def(2)", ReservedNameError, 1, 5, "'def' is a keyword"),
    ("param input", ReservedNameError, 1, 7, "'input' is a keyword and cannot be used as a name"),
    ("y = x input", SpecSyntaxError, 1, 7, "'input' is a keyword and cannot be used here"),
    # the constants
    ("pi = 3", ReservedNameError, 1, 1, "'pi' is a built-in constant and cannot be redefined"),
    ("param e", ReservedNameError, 1, 7, "'e' is a built-in constant"),
    ("def f(pi) = pi", ReservedNameError, 1, 7, "'pi' is a built-in constant"),
    ("input e[2]", ReservedNameError, 1, 7, "'e' is a built-in constant"),
    # beyond the nesting limit
    ("input x\ny = " + " + ".join(["x"] * (MAX_NESTING + 5)), LimitError, 2, 1, "split it into named nodes"),
    ("input x\ny = " + "relu(" * (MAX_NESTING + 5) + "x" + ")" * (MAX_NESTING + 5), LimitError, 2, 1, "nests"),
]


@pytest.mark.parametrize("text,error,line,column,words", SYNTAX_ERRORS, ids=[row[4][:40] for row in SYNTAX_ERRORS])
def test_syntax_errors(text, error, line, column, words):
    assert_spec_error(text, error, line, column, words)


def test_deep_but_allowed_nesting_compiles():
    text = "input x\ny = " + " + ".join(["x"] * (MAX_NESTING - 5))
    assert specc.load(text)  # every later stage copes with what the parser lets through


def test_keyword_in_a_value_position_reports_the_keyword():
    err = pytest.raises(SpecError, specc.graph, "input x\ny = x + output").value
    assert "'output' is a keyword" in err.message


# ---------------------------------------------------------------- fuzzing: only SpecError, never Lark's
_ALPHABET = list("abxyzWhin01234 5.e_-+*/^@·()[],;=#\n\t\r$\\'\"π") + ["input ", "param ", "output ", "def ",
                                                                     "init ", "relu", "concat", "pi"]


def _random_texts(count: int, seed: int):
    rng = random.Random(seed)
    for _ in range(count):
        yield "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 40)))
    for _ in range(count // 2):  # near-misses of a valid spec: one character dropped, doubled or replaced
        text = list("input x[2]\nh[3] = relu(W·x + b); def f(z) = z*a\ny = f(V·h)\ninit a = 2*pi\n")
        i = rng.randrange(len(text))
        text[i:i + 1] = rng.choice([[], [text[i]] * 2, [rng.choice(_ALPHABET)]])
        yield "".join(text)
    for _ in range(count // 4):
        yield bytes(rng.randrange(256) for _ in range(rng.randint(1, 30))).decode("utf-8", "replace")


@pytest.mark.parametrize("seed", range(3))
def test_random_text_raises_only_spec_errors(seed):
    for text in _random_texts(150, seed):
        try:
            specc.graph(text)
        except SpecError as err:
            assert err.line is None or err.line >= 1, text
            err.format()  # formatting never fails either
        # anything else (a Lark exception, a KeyError …) fails the test with the text in the traceback
