"""Property tests: random valid specs compile, compute what an independent reference computes, and their
emitted standalone source agrees with specc.load.

The generator builds a spec statement by statement together with a reference: for each statement a small
function that computes the same values with plain torch from the module's parameters. Statements are
written in a random order (a node may be used before its definition), with random names (Python keywords
and names the generated code uses included) and random separators.
"""
import importlib.util
import itertools
import keyword
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import specc
from conftest import as_list
from specc.ops import FUNCTIONS
from specc.lower import MODULE_ATTRIBUTES
from specc.parser import CONSTANTS, KEYWORDS

# Random specs have dead code and names that look like typos of each other: the linter's warnings are
# expected here (tests/test_diagnostics.py tests them).
pytestmark = pytest.mark.filterwarnings("ignore::specc.errors.SpecDiagnostic")

ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "logistic": torch.sigmoid,
               "identity": lambda v: v, "linear": lambda v: v, "softplus": F.softplus, "elu": F.elu,
               "gelu": F.gelu, "silu": F.silu, "leaky_relu": F.leaky_relu, "sin": torch.sin, "cos": torch.cos,
               "abs": torch.abs, "square": torch.square}
HOSTILE = ["self", "torch", "nn", "F", "math", "class", "lambda", "None", "True", "__x", "__import__", "getattr",
           "check_input", "Outputs", "batch_size", "_y", "out", "class_", "x_", "spec__x", "t", "print"]
RESERVED = KEYWORDS | set(CONSTANTS) | set(FUNCTIONS) | MODULE_ATTRIBUTES
_counter = itertools.count()


@dataclass
class Value:
    name: str
    size: int | None  # None: a scalar


@dataclass
class Spec:
    inputs: list[Value]
    statements: list[tuple[str, str | None]] = field(default_factory=list)  # (text, node it defines)
    steps: list = field(default_factory=list)  # (name, fn(env, params) -> tensor), in dependency order
    nodes: list[Value] = field(default_factory=list)
    used: set = field(default_factory=set)
    names: set = field(default_factory=set)
    weights: list[tuple[str, int, int]] = field(default_factory=list)  # (W, in size, out size) of dense layers


def column(t):
    """A batch of scalars [B] as [B, 1], to meet vectors."""
    return t.unsqueeze(-1) if t.dim() == 1 else t


@st.composite
def fresh(draw, spec):
    while True:
        name = draw(st.sampled_from(HOSTILE) | st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,5}", fullmatch=True))
        if name not in RESERVED and name not in spec.names:
            spec.names.add(name)
            return name


@st.composite
def statement(draw, spec):
    values = spec.inputs + spec.nodes
    v = draw(st.sampled_from(values))
    f = draw(st.sampled_from(sorted(ACTIVATIONS)))
    act = ACTIVATIONS[f]
    h = draw(fresh(spec))
    kind = draw(st.sampled_from(["dense", "shared", "scale", "function", "alias", "def", "concat", "power", "dot",
                                 "softmax", "numbers"]))
    if kind == "shared" and spec.weights:  # reuse an earlier layer's weight on a value of the same input size
        W, n_in, n_out = draw(st.sampled_from(spec.weights))
        same = [u for u in values if (u.size or 1) == n_in]
        u = draw(st.sampled_from(same))
        spec.used.add(u.name)
        spec.statements.append((f"{h} = {f}({W}·{u.name})", h))
        spec.steps.append((h, lambda env, p: act(column(env[u.name]) @ p[W].T)))
        return Value(h, n_out)
    spec.used.add(v.name)
    if kind in ("dense", "shared"):
        n = draw(st.integers(1, 4))
        W, b = draw(fresh(spec)), draw(fresh(spec))
        spec.weights.append((W, v.size or 1, n))
        spec.statements.append((f"{h}[{n}] = {f}({W}·{v.name} + {b})", h))
        spec.steps.append((h, lambda env, p: act(column(env[v.name]) @ p[W].T + p[b])))
        return Value(h, n)
    if kind == "scale":  # free parameters take their partner's shape
        a, c = draw(fresh(spec)), draw(fresh(spec))
        spec.statements.append((f"{h} = {a} * {v.name} + {c}", h))
        spec.steps.append((h, lambda env, p: p[a] * env[v.name] + p[c]))
        return Value(h, v.size)
    if kind == "function":
        spec.statements.append((f"{h} = {f}({v.name})", h))
        spec.steps.append((h, lambda env, p: act(env[v.name])))
        return Value(h, v.size)
    if kind == "alias":
        g = draw(fresh(spec))
        spec.statements += [(f"{g} = {f}", None), (f"{h} = {g}(2 * {v.name}) - {v.name}", h)]
        spec.steps.append((h, lambda env, p: act(2 * env[v.name]) - env[v.name]))
        return Value(h, v.size)
    if kind == "def":  # a free name in a body is one parameter shared by every call
        d, z, w = draw(fresh(spec)), draw(fresh(spec)), draw(fresh(spec))
        spec.statements += [(f"def {d}({z}) = {f}({z}) * {w} + {z}", None),
                            (f"{h} = {d}({v.name}) - {d}(2*{v.name})", h)]
        body = lambda t, p: act(t) * p[w] + t  # noqa: E731
        spec.steps.append((h, lambda env, p: body(env[v.name], p) - body(2 * env[v.name], p)))
        return Value(h, v.size)
    if kind == "concat":
        u = draw(st.sampled_from(values))
        spec.used.add(u.name)
        spec.statements.append((f"{h} = concat({v.name}, {u.name}, 1)", h))
        spec.steps.append((h, lambda env, p: torch.cat([column(env[v.name]), column(env[u.name]),
                                                         torch.ones_like(column(env[v.name])[:, :1])], -1)))
        return Value(h, (v.size or 1) + (u.size or 1) + 1)
    if kind == "power":
        c = draw(fresh(spec))
        spec.statements.append((f"{h} = -{v.name}^2 + {c}*{v.name} / 2", h))
        spec.steps.append((h, lambda env, p: -(env[v.name] ** 2) + p[c] * env[v.name] / 2))
        return Value(h, v.size)
    if kind == "dot" and v.size:
        w = draw(fresh(spec))
        spec.statements += [(f"param {w}[{v.size}]", None), (f"{h} = {w}·{v.name}", h)]
        spec.steps.append((h, lambda env, p: (p[w] * env[v.name]).sum(-1)))
        return Value(h, None)
    if kind == "softmax" and v.size:
        spec.statements.append((f"{h} = softmax({v.name})", h))
        spec.steps.append((h, lambda env, p: torch.softmax(env[v.name], -1)))
        return Value(h, v.size)
    spec.statements.append((f"{h} = {v.name} * sqrt(2) + 2*pi - e^2", h))  # numbers alone are folded
    spec.steps.append((h, lambda env, p: env[v.name] * 2 ** 0.5 + 2 * torch.pi - torch.e ** 2))
    return Value(h, v.size)


@st.composite
def specs(draw):
    spec = Spec(inputs=[])
    for _ in range(draw(st.integers(1, 2))):
        spec.inputs.append(Value(draw(fresh(spec)), draw(st.sampled_from([None, 1, 2, 3]))))
    for _ in range(draw(st.integers(1, 5))):
        spec.nodes.append(draw(statement(spec)))
    lines = [(f"input {', '.join(v.name + (f'[{v.size}]' if v.size else '') for v in spec.inputs)}", None)]
    lines += spec.statements
    lines = draw(st.permutations(lines))  # any order: a node may be used before its definition
    order = [name for _, name in lines if name]
    if draw(st.booleans()):
        outputs = draw(st.lists(st.sampled_from(spec.nodes), min_size=1, unique_by=lambda v: v.name))
        lines.append(("output " + ", ".join(v.name + (f"[{v.size}]" if v.size and draw(st.booleans()) else "")
                                             for v in outputs), None))
        outputs = [v.name for v in outputs]
    else:
        outputs = [name for name in order if name not in spec.used]
    separators = draw(st.lists(st.sampled_from(["\n", "; ", "  # note\n", "\n\n"]), min_size=len(lines),
                               max_size=len(lines)))
    text = "".join(line + sep for (line, _), sep in zip(lines, separators))
    return text, spec, outputs


def reference(spec: Spec, inputs, params):
    env = {v.name: x for v, x in zip(spec.inputs, inputs)}
    for name, step in spec.steps:
        env[name] = step(env, params)
    return env


def import_file(path: Path):
    module_spec = importlib.util.spec_from_file_location(f"generated_{next(_counter)}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example])
@given(specs(), st.integers(0, 2 ** 16))
def test_random_specs_compute_their_reference_and_their_source_agrees(drawn, seed):
    text, spec, outputs = drawn
    graph = specc.graph(text)
    assert graph.graph["outputs"] == outputs
    model = specc.load(text).double()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=torch.float64))
    inputs = [torch.randn(5, *([v.size] if v.size else []), generator=generator, dtype=torch.float64)
              for v in spec.inputs]
    result = as_list(model(*inputs))

    env = reference(spec, inputs, dict(model.named_parameters()))
    for name, value in zip(outputs, result, strict=True):
        torch.testing.assert_close(value, env[name], atol=1e-9, rtol=1e-9, equal_nan=True)

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "generated.py"
        path.write_text(specc.to_source(text), encoding="utf-8")
        standalone = getattr(import_file(path), type(model).__name__)().double()
    standalone.load_state_dict(model.state_dict())
    assert list(standalone.state_dict()) == list(model.state_dict()) == graph.graph["params"]
    for ours, theirs in zip(result, as_list(standalone(*inputs)), strict=True):
        assert torch.equal(ours, theirs) or torch.allclose(ours, theirs, equal_nan=True, atol=0, rtol=0)
    assert all(not keyword.iskeyword(n) for n in type(standalone).forward.__code__.co_varnames)
