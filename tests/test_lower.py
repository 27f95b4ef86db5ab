"""specc/lower.py: the IR, names and their meanings, outputs, parameter order, roles, and meaning errors."""
import networkx as nx
import pytest

import specc
from specc.errors import (ArityError, CycleError, InitError, InputAssignmentError, KindError, LimitError,
                          RedefinitionError, ReservedNameError, SpecError, UnknownFunctionError, UnknownNameError)
from specc.lower import MAX_OPERATIONS
from specc.ir import Graph
from conftest import assert_spec_error

# ---------------------------------------------------------------- the IR's documented attributes
EVERY_NODE = {"kind", "shape", "batched", "span", "name", "stmt", "order"}
BY_KIND = {"input": {"dims"}, "param": {"role", "fan_in", "init", "init_args", "declared", "dims"},
           "const": {"value", "label"}, "op": {"op", "args", "label", "via"}, "output": {"args"}}
NAMED_OP = {"stmt_span", "expr_span", "dims"}


def test_every_node_has_its_documented_attributes():
    graph = specc.graph("input x[3], s\ndef f(z) = tanh(z) * k\nh[4] = f(W·x + b)\ny = 2*pi - h * s\n")
    kinds = set()
    for node, attrs in graph.nodes.items():
        kinds.add(attrs["kind"])
        assert EVERY_NODE | BY_KIND[attrs["kind"]] <= set(attrs), node
        if attrs["kind"] == "op" and attrs["name"]:
            assert NAMED_OP <= set(attrs), node
        assert isinstance(attrs["shape"], tuple) and all(isinstance(s, int) for s in attrs["shape"])
    assert kinds == set(BY_KIND)
    assert {"file", "source", "program", "inputs", "outputs", "params"} <= set(graph.graph)
    for (source, target), data in graph.edges.items():
        args = graph.nodes[target]["args"]
        assert [args[p] for p in data["positions"]] == [source] * len(data["positions"])


def test_graph_shape_of_a_small_spec():
    graph = specc.graph("input x[3]\nh[4] = relu(W·x + b)\n", )
    assert isinstance(graph, Graph) and graph.is_acyclic()
    as_nx = graph.to_networkx()  # the same IR for networkx users
    assert isinstance(as_nx, nx.DiGraph) and nx.is_directed_acyclic_graph(as_nx)
    assert dict(as_nx.nodes(data=True)) == graph.nodes and as_nx.graph == graph.graph
    assert list(nx.lexicographical_topological_sort(as_nx, key=lambda n: graph.nodes[n]["order"])) == \
        graph.topological()
    assert graph.graph["inputs"] == ["x"] and graph.graph["outputs"] == ["h"] and graph.graph["params"] == ["W", "b"]
    h = graph.nodes["h"]
    assert (h["kind"], h["op"], h["name"], h["shape"], h["batched"]) == ("op", "relu", "h", (4,), True)
    (total,) = h["args"]
    assert graph.nodes[total]["op"] == "add" and graph.nodes[total]["stmt"] == "h"
    assert graph.nodes[total]["label"] == "W·x + b"
    assert graph.nodes["W"]["batched"] is False and graph.nodes["output:h"]["args"] == ("h",)
    assert graph.has_edge("h", "output:h")


def test_an_argument_used_twice_is_one_edge_with_two_positions():
    graph = specc.graph("input x\ny = x * x")
    assert graph.edges["x", "y"]["positions"] == [0, 1]


def test_constants_and_def_provenance():
    graph = specc.graph("input x\ndef f(z) = z * k\ny = f(x) + pi")
    consts = [a for _, a in graph.nodes.items() if a["kind"] == "const"]
    assert [(c["name"], c["value"]) for c in consts] == [("pi", 3.141592653589793)]
    inlined = [a for _, a in graph.nodes.items() if a.get("via") == "f"]
    assert [a["op"] for a in inlined] == ["mul"]


# ---------------------------------------------------------------- outputs
@pytest.mark.parametrize("text,outputs", [
    ("input x\nh = x\ny = h\nz = h", ["y", "z"]),                              # unused nodes, definition order
    ("input x\nz = h * 2\nh = x\ny = h", ["z", "y"]),
    ("input x\ny = x\noutput y", ["y"]),
    ("input x\na = x\nb = 2*x\noutput b, a", ["b", "a"]),                      # the output line's order
    ("input x\nh = 2*x\ny = h\noutput h, y", ["h", "y"]),                      # a used node may be an output
    ("input x\noutput x\ny = x", ["x"]),                                       # an input may be an output
    ("input x\ndef f(z) = z * h\nh = x + 1\ny = f(x)", ["y"]),
    ("input x\ndef f(z) = z * h\nh = x + 1\ny = x", ["y"]),                    # a def body uses h, called or not
    ("input x\ng = relu\ny = g(x)", ["y"]),                                     # an alias is not a node
    ("y = a + 1", ["y"]),                                                       # no inputs at all
])
def test_outputs(text, outputs):
    assert specc.graph(text).graph["outputs"] == outputs


# ---------------------------------------------------------------- parameters: which names, in which order
@pytest.mark.parametrize("text,params", [
    ("input x[2]\nh[3] = sigmoid(W1·x + b1)\ny[1] = sigmoid(W2·h + b2)", ["W1", "b1", "W2", "b2"]),
    ("input x\ny = a + b*x + c*x^2 + d*x^3", ["a", "b", "c", "d"]),
    ("input x[2]\ny[3] = W·x + b\nparam b[3], W[3, 2]", ["W", "b"]),              # first appearance wins
    ("param b[3], W[3, 2]\ninput x[2]\ny = W·x + b", ["b", "W"]),                 # a param line counts
    ("input x[2]\ninit b = 1\ny[3] = W·x + b", ["W", "b"]),                       # init lines do not
    ("input x\ndef f(z) = z * k + m\ny = a * f(x)", ["k", "m", "a"]),             # a def body counts where written
    ("input x\ny = a * f(x)\ndef f(z) = z * k", ["a", "k"]),
    ("input x\ny = a * x + a * x^2", ["a"]),                                       # shared: once
    ("input x\ndef f(z) = w * z\ny = f(x) + f(2*x)", ["w"]),                      # shared by every call
    ("input x\ndef f(x) = x * 2\ny = f(x)", []),                                   # an argument is local
    ("input x\ny = x\nparam unused[2, 2]", ["unused"]),
    ("input x\ny = 2*pi*x + e", []),
])
def test_parameter_names_and_order(text, params):
    assert specc.graph(text).graph["params"] == params
    assert [name for name, _ in specc.load(text).named_parameters()] == params


def test_declared_scalar_and_undeclared_shapes():
    graph = specc.graph("param a\ninput x[3]\ny = a * x + b * x")
    assert graph.nodes["a"]["shape"] == () and graph.nodes["b"]["shape"] == (3,)  # `param a` is a scalar
    assert graph.nodes["a"]["declared"] is True and graph.nodes["b"]["declared"] is False


# ---------------------------------------------------------------- aliases and functions
@pytest.mark.parametrize("text", [
    "input x\ng = relu\ny = g(x)",
    "input x\ny = g(x)\ng = relu",                                  # alias used before it is written
    "input x\nf = g\ng = relu\ny = f(x)",                           # an alias of an alias
    "input x\ndef r(z) = relu(z)\ng = r\ny = g(x)",                  # an alias of a def
    "input x\ng = logistic\nh = sigmoid\ny = g(x) - h(x) + relu(x)",
])
def test_aliases_call_the_function(text):
    graph = specc.graph(text)
    ops = {a["op"] for _, a in graph.nodes.items() if a["kind"] == "op"}
    assert "relu" in ops or "logistic" in ops
    assert not ({"g", "f", "h"} & set(graph.nodes))


def test_def_arguments_are_computed_once_and_free_names_are_shared():
    model = specc.load("input x\ndef sq(z) = z * z * k\ny = sq(x + 1) + sq(x)")
    source = specc.to_source("input x\ndef sq(z) = z * z * k\ny = sq(x + 1) + sq(x)")
    assert [n for n, _ in model.named_parameters()] == ["k"]
    assert "sq_z = x + 1" in source  # the argument, a shared temporary named after the def and its argument


# ---------------------------------------------------------------- roles and default initialisers
def test_roles_follow_the_nn_linear_habit():
    graph = specc.graph("input x[3], s\nh[4] = tanh(W·x + V·x + b)\ny = a * h - c + U·h\nparam w[4]\nz = w·h")
    role = {n: (graph.nodes[n]["role"], graph.nodes[n]["fan_in"], graph.nodes[n]["init"]) for n in graph.graph["params"]}
    assert role["W"] == ("weight", 3, "linear_weight") and role["V"] == ("weight", 3, "linear_weight")
    assert role["b"] == ("bias", 3, "linear_bias")
    assert role["U"] == ("weight", 4, "linear_weight")
    assert role["c"] == ("bias", 4, "linear_bias")      # added (subtracted) in a sum with U·h
    assert role["a"] == ("other", None, "randn")        # a factor, not a term of the sum
    assert role["w"] == ("other", None, "randn")        # a vector in a dot product
    assert graph.nodes["b"]["init_args"] == (3,)
    negated = specc.graph("input x[3]\ny[2] = -W·x + b")
    assert [negated.nodes[n]["role"] for n in ("W", "b")] == ["weight", "bias"]


# ---------------------------------------------------------------- meaning errors, with exact positions
MEANING_ERRORS = [
    # (spec, error class, line, column, words in the message)
    ("input x\nh = x\nh = 2*x", RedefinitionError, 3, 1, "'h' is already defined (at line 2)"),
    ("input x\ninput x", RedefinitionError, 2, 7, "'x' is already defined"),
    ("param a\nparam a", RedefinitionError, 2, 7, "'a' is already defined"),
    ("input x\ndef f(z) = z\nf = 2", RedefinitionError, 3, 1, "'f' is already defined"),
    ("def f(a, a) = a", RedefinitionError, 1, 10, "argument 'a' appears twice in 'f'"),
    ("input x\ny = a*x\ninit a = 1\ninit a = 2", RedefinitionError, 4, 6, "'a' already has an init line"),
    ("input x\ny = x\noutput y, y", RedefinitionError, 3, 11, "output 'y' is listed twice"),
    ("input x\ny = x\noutput y\noutput y", RedefinitionError, 4, 1, "outputs are already declared"),
    ("input x\nx = 1", InputAssignmentError, 2, 1, "cannot assign to 'x': it is an input"),
    ("x[2] = 1\ninput x", InputAssignmentError, 1, 1, "cannot assign to 'x'"),
    ("input x\ny = rleu(x)", UnknownFunctionError, 2, 5, "unknown function 'rleu'; did you mean 'relu'?"),
    ("input x\ny = qqq(x)", UnknownFunctionError, 2, 5, "define it with 'def'"),
    ("input x\ny = relu + x", KindError, 2, 5, "'relu' is a function, not a value"),
    ("input x\ng = relu\ny = 2 * g", KindError, 3, 9, "'g' is a function, not a value"),
    ("input x\ndef f(z) = z\ny = f + x", KindError, 3, 5, "'f' is a function, not a value"),
    ("input x\nh = x\ny = h(x)", KindError, 3, 5, "'h' is a value, not a function"),
    ("input x\ny = x(1)", KindError, 2, 5, "'x' is a value, not a function"),
    ("input x\ng[3] = relu", KindError, 2, 1, "'g' names the function 'relu' and cannot have a size"),
    ("input x\ng = h\nh = g\ny = g(x)", KindError, 4, 5, "'g' is a value, not a function"),
    ("input x\ny = tanh(x, x)", ArityError, 2, 5, "'tanh' takes 1 argument, not 2"),
    ("input x\ny = relu()", ArityError, 2, 5, "'relu' takes 1 argument, not 0"),
    ("input x\ny = concat()", ArityError, 2, 5, "'concat' takes at least 1 argument, not 0"),
    ("input x\ndef f(a, b) = a * b\ny = f(x)", ArityError, 3, 5, "'f' takes 2 argument(s) (a, b), not 1"),
    ("input x[3]\ny[2] = W·x\ninit W = uniform(1, 2, 3)", ArityError, 3, 10, "takes 0 to 2 argument(s), not 3"),
    ("input x\na = relu(b + x)\nb = tanh(a)", CycleError, 2, 1, "'a' depends on itself: a → b → a"),
    ("input x\nb = tanh(a)\na = relu(b + x)\ny = x", CycleError, 2, 1, "'b' depends on itself: b → a → b"),
    ("input x\nh = h + x", CycleError, 2, 1, "'h' depends on itself: h → h"),
    ("input x\ng = g\ny = x", CycleError, 2, 1, "'g' depends on itself"),
    ("input x\ndef f(z) = f(z) + 1\ny = f(x)", CycleError, 2, 12, "function 'f' calls itself (f → f)"),
    ("input x\ndef f(z) = g(z)\ndef g(z) = f(z)\ny = f(x)", CycleError, 3, 12, "(f → g → f)"),
    ("input x\nh = relu(x)\ninit h = zeros", InitError, 3, 6, "init applies to parameters; 'h' is a node"),
    ("input x\ny = x\ninit x = 1", InitError, 3, 6, "'x' is an input"),
    ("input x\ny = x\ninit relu = 1", InitError, 3, 6, "'relu' is a function"),
    ("input x\ny = x\ninit q = 1", InitError, 3, 6, "'q' is not a parameter of this spec (parameters: none)"),
    ("input x\ny = a * x\ninit a = x", InitError, 3, 10, "an init value is a constant expression"),
    ("input x\ny = a * x\ninit a = softmax(2)", InitError, 3, 10, "an init value is a constant expression"),
    ("input x\ny = a * x\ninit a = 1/0", InitError, 3, 10, "this constant is inf, not a finite number"),
    ("input x\ny = a * x\ninit a = log(-1)", InitError, 3, 10, "nan, not a finite number"),
    ("input x[3]\ny[2] = W·x + b\ninit b = xavier_uniform", InitError, 3, 10,
     "init scheme 'xavier_uniform' needs a matrix; 'b' has shape [2]"),
    ("input x\ny = a * x\ninit a = kaiming_normal", InitError, 3, 10, "needs a matrix; 'a' has shape []"),
    ("input x\nrelu = x", ReservedNameError, 2, 1, "'relu' is a built-in function and cannot be redefined"),
    ("input x\ndef tanh(z) = z", ReservedNameError, 2, 5, "'tanh' is a built-in function"),
    ("input concat", ReservedNameError, 1, 7, "'concat' is a built-in function"),
    ("param sigmoid", ReservedNameError, 1, 7, "'sigmoid' is a built-in function"),
    ("input x\ndef f(exp) = exp", ReservedNameError, 2, 7, "'exp' is a built-in function"),
    ("input x\ny = forward * x", ReservedNameError, 2, 5, "'forward' cannot be a parameter name"),
    ("input x\ny = x * training", ReservedNameError, 2, 9, "'training' cannot be a parameter name"),
    ("input x[2]\ny[2] = to·x", ReservedNameError, 2, 8, "'to' cannot be a parameter name"),
    ("input x\ny = __init__ + x", ReservedNameError, 2, 5, "'__init__' cannot be a parameter name"),
    ("param parameters[2]\ninput x", ReservedNameError, 1, 7, "'parameters' cannot be a parameter name"),
    ("input x\ny = x * reset_parameters", ReservedNameError, 2, 9, "'reset_parameters' cannot be"),
    ("input x\ny = x * spec_source", ReservedNameError, 2, 9, "'spec_source' cannot be"),
    ("input x\ndef f(z) = z * __class__\ny = f(x)", ReservedNameError, 2, 16, "'__class__' cannot be"),
    ("input x\ny = x\noutput q", UnknownNameError, 3, 8, "output 'q' is not a node of this spec"),
    ("input x", SpecError, 1, 1, "the spec defines no nodes, so it has no outputs"),
    ("input x\ndef f0(z) = z * 2 + 1\n" + "".join(f"def f{i}(z) = f{i - 1}(f{i - 1}(z))\n" for i in range(1, 30))
     + "y = f29(x)", LimitError, 2, 13, f"more than {MAX_OPERATIONS} operations"),
]


@pytest.mark.parametrize("text,error,line,column,words", MEANING_ERRORS,
                         ids=[row[4][:40] for row in MEANING_ERRORS])
def test_meaning_errors(text, error, line, column, words):
    assert_spec_error(text, error, line, column, words)


def test_redefinition_points_at_both_places():
    err = pytest.raises(RedefinitionError, specc.graph, "input x\nh = x\nh = 2*x").value
    ((text, span),) = err.notes
    assert text == "first definition of 'h'" and (span.line, span.column) == (2, 1)
    assert err.format().splitlines()[3:5] == ["<spec>:2:1: note: first definition of 'h'", "    h = x"]


def test_a_node_may_be_called_training():
    """Only parameters become module attributes; nodes, inputs and outputs are free to use these names."""
    model = specc.load("input forward, to\ntraining = forward + to")
    assert [n for n, _ in model.named_parameters()] == [] and model.spec_outputs == ("training",)


def test_reserved_names_cover_the_installed_torch_module():
    torch = pytest.importorskip("torch")
    from specc.lower import TORCH_MODULE_ATTRIBUTES
    missing = (set(dir(torch.nn.Module)) | set(vars(torch.nn.Module()))) - TORCH_MODULE_ATTRIBUTES
    assert not missing, f"add to TORCH_MODULE_ATTRIBUTES: {sorted(missing)}"


def test_the_cached_order_is_the_lexicographic_topological_order_after_any_additions():
    import random
    rng = random.Random(4)
    for _ in range(200):
        graph = Graph()
        for step in range(30):
            if rng.random() < 0.5 or len(graph) < 2:
                graph.add_node(f"n{step}", order=rng.randrange(40))
            else:
                tail, head = rng.sample(sorted(graph), 2)
                if graph.nodes[tail]["order"] < graph.nodes[head]["order"]:  # acyclic: edges go up in order
                    graph.add_edge(tail, head)
            if rng.random() < 0.3:
                graph.topological()  # cache it, then keep adding
        as_nx = graph.to_networkx()
        assert graph.topological() == list(nx.lexicographical_topological_sort(
            as_nx, key=lambda n: (graph.nodes[n]["order"], n)))
