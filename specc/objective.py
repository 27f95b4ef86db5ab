"""The IR compiled into a NumPy loss-and-gradient function, for full-batch quasi-Newton fits.

Small networks fitted by BFGS (R's nnet way) spend their time in thousands of
evaluations of f(θ) and ∇f(θ) on tiny arrays, where PyTorch's per-operation
and autograd overhead (~150 µs an evaluation) dwarfs the arithmetic (~20 µs
in NumPy). So for those fits the graph is also compiled into a straight-line
tape of NumPy operations with a hand-written reverse pass. The tape computes
what the generated ``forward`` computes, in float64; tests/test_objective.py
checks value and gradient against torch autograd for every bundled spec.

Values are kept in one layout: per-sample values are 2-D (``[B, n]``, and
``[B, 1]`` for a scalar), per-model values keep their shape (``[n]``, ``()``),
so NumPy broadcasting does what the generated code does with ``unsqueeze``.
"""
from __future__ import annotations

from typing import Callable

import networkx as nx
import numpy as np

from .graph import _ordered, needed

# name → (forward(x), backward(g, x, out)); one row per function. gelu has no
# row (NumPy has no erf): specs using it fall back to torch autograd.
_SIGMOID = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
UNARY: dict[str, tuple[Callable, Callable]] = {
    "identity": (lambda x: x, lambda g, x, y: g),
    "linear": (lambda x: x, lambda g, x, y: g),
    "relu": (lambda x: np.maximum(x, 0.0), lambda g, x, y: g * (x > 0)),
    "tanh": (np.tanh, lambda g, x, y: g * (1.0 - y * y)),
    "sigmoid": (_SIGMOID, lambda g, x, y: g * y * (1.0 - y)),
    "logistic": (_SIGMOID, lambda g, x, y: g * y * (1.0 - y)),
    # torch's softplus switches to the identity above 20 (its default threshold).
    "softplus": (lambda x: np.where(x > 20, x, np.log1p(np.exp(np.minimum(x, 20)))),
                 lambda g, x, y: g * np.where(x > 20, 1.0, _SIGMOID(x))),
    "elu": (lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
            lambda g, x, y: g * np.where(x > 0, 1.0, y + 1.0)),
    "silu": (lambda x: x * _SIGMOID(x), lambda g, x, y: g * (_SIGMOID(x) * (1.0 + x * (1.0 - _SIGMOID(x))))),
    "leaky_relu": (lambda x: np.where(x > 0, x, 0.01 * x), lambda g, x, y: g * np.where(x > 0, 1.0, 0.01)),
    "exp": (np.exp, lambda g, x, y: g * y),
    "log": (np.log, lambda g, x, y: g / x),
    "sin": (np.sin, lambda g, x, y: g * np.cos(x)),
    "cos": (np.cos, lambda g, x, y: -g * np.sin(x)),
    "abs": (np.abs, lambda g, x, y: g * np.sign(x)),
    "sqrt": (np.sqrt, lambda g, x, y: g * 0.5 / y),
    "square": (np.square, lambda g, x, y: g * 2.0 * x),
    "softmax": (lambda x: _softmax(x),
                lambda g, x, y: y * (g - (g * y).sum(-1, keepdims=True))),
    "log_softmax": (lambda x: x - _logsumexp(x),
                    lambda g, x, y: g - np.exp(y) * g.sum(-1, keepdims=True)),
}
# name → (forward(a, b), backward(g, a, b, out) → (ga, gb)); broadcasting is undone afterwards.
ELEMENTWISE: dict[str, tuple[Callable, Callable]] = {
    "add": (np.add, lambda g, a, b, y: (g, g)),
    "sub": (np.subtract, lambda g, a, b, y: (g, -g)),
    "mul": (np.multiply, lambda g, a, b, y: (g * b, g * a)),
    "div": (np.divide, lambda g, a, b, y: (g / b, -g * a / (b * b))),
    # d(a^b)/db = a^b·ln a, defined for a > 0; elsewhere the exponent gets no gradient.
    "pow": (np.power, lambda g, a, b, y: (g * b * a ** (b - 1), g * y * np.log(np.where(a > 0, a, 1.0)))),
}
OTHER_OPS = {"neg", "matmul", "concat"}


def _logsumexp(x):
    top = x.max(-1, keepdims=True)
    return top + np.log(np.exp(x - top).sum(-1, keepdims=True))


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a gradient back down to the shape of the operand it belongs to."""
    if g.shape == shape:
        return g
    while g.ndim > len(shape):
        g = g.sum(0)
    for axis, size in enumerate(shape):
        if size == 1 and g.shape[axis] != 1:
            g = g.sum(axis, keepdims=True)
    return g


def supported(graph: nx.DiGraph) -> bool:
    """Whether every operation the outputs need has a NumPy rule here."""
    known = UNARY.keys() | ELEMENTWISE.keys() | OTHER_OPS
    return all(graph.nodes[n]["op"] in known for n in needed(graph) if graph.nodes[n]["kind"] == "op")


class Objective:
    """``f, grad = objective(theta)`` for a loss summed over a spec's outputs.

    ``theta`` is the flat float64 vector of all parameters in the spec's order
    (each raveled row-major, as ``torch.nn.utils.parameters_to_vector``).
    ``loss`` is ``"sse"`` (sum of squared errors, nnet's criterion) or ``"mse"``
    (their mean, per output); ``decay`` adds ``decay·Σθ²`` as nnet does.
    """

    def __init__(self, graph: nx.DiGraph, inputs: dict[str, np.ndarray], targets: dict[str, np.ndarray],
                 loss: str = "sse", decay: float = 0.0):
        if loss not in ("sse", "mse") or not supported(graph):
            raise ValueError("the NumPy objective supports the sse and mse losses over the built-in operations "
                             "other than gelu")
        self.loss, self.decay = loss, float(decay)
        wanted = needed(graph)
        order = [n for n in _ordered(graph) if n in wanted]
        index = {n: i for i, n in enumerate(order)}
        self.values: list = [None] * len(order)
        self.batch = next((len(inputs[n]) for n in graph.graph["inputs"]), 1)
        self.param_slices = []  # (slot, start, stop, shape)
        start = 0
        for name in graph.graph["params"]:
            shape = graph.nodes[name]["shape"]
            stop = start + int(np.prod(shape, dtype=np.int64))
            if name in index:
                self.param_slices.append((index[name], start, stop, shape))
            start = stop
        self.size = start
        self.steps = []  # (slot, forward, backward, args)
        for node in order:
            attrs = graph.nodes[node]
            slot = index[node]
            if attrs["kind"] == "input":
                self.values[slot] = _per_sample(np.asarray(inputs[node], dtype=np.float64))
            elif attrs["kind"] == "const":
                self.values[slot] = np.float64(attrs["value"])
            elif attrs["kind"] == "op":
                args = tuple(index[a] for a in attrs["args"])
                self.steps.append((slot, *self._rules(graph, attrs), args))
        self.outputs = [(index[name], _per_sample(np.asarray(targets[name], dtype=np.float64)))
                        for name in graph.graph["outputs"]]
        # Which values need a gradient (those that depend on a parameter), and their static shapes.
        self.dependent = {slot for slot, *_ in self.param_slices}
        for slot, _, _, args in self.steps:
            if any(a in self.dependent for a in args):
                self.dependent.add(slot)
        # Only steps on the way from a parameter to an output are differentiated.
        self.backward_steps = [step for step in reversed(self.steps) if step[0] in self.dependent]
        self._forward(np.zeros(self.size))
        self.shapes = [np.shape(v) for v in self.values]

    def _rules(self, graph: nx.DiGraph, attrs: dict) -> tuple[Callable, Callable]:
        op = attrs["op"]
        if op in ELEMENTWISE:
            return ELEMENTWISE[op][0], ELEMENTWISE[op][1]
        if op in UNARY:
            forward, backward = UNARY[op]
            return forward, lambda g, a, y: (backward(g, a, y),)
        if op == "neg":
            return np.negative, lambda g, a, y: (-g,)
        left, right = (graph.nodes[a] for a in attrs["args"][:2]) if len(attrs["args"]) > 1 else (None, None)
        if op == "matmul" and len(left["shape"]) == 2:
            if right["shape"] == () and not right["batched"]:  # a lone scalar counts as a vector of size 1
                return (lambda A, v: A[:, 0] * v,
                        lambda g, A, v, y: (g[:, None] * v, g @ A[:, 0]))
            return (lambda A, v: v @ A.T,
                    lambda g, A, v, y: (g.T @ v if v.ndim == 2 else np.outer(g, v), g @ A))
        if op == "matmul":  # vector · vector: a dot product
            keep = attrs["batched"]
            return (lambda a, v: (v * a).sum(-1, keepdims=keep), lambda g, a, v, y: (g * v, g * a))
        sizes = [graph.nodes[a]["shape"][0] if graph.nodes[a]["shape"] else 1 for a in attrs["args"]]
        batch = self.batch if attrs["batched"] else None
        bounds = np.cumsum([0] + sizes)

        def concat(*parts):
            return np.concatenate([_widen(p, n, batch) for p, n in zip(parts, sizes)], -1)

        def concat_backward(g, *parts_and_out):
            return tuple(g[..., lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:]))
        return concat, concat_backward

    def _forward(self, theta: np.ndarray) -> None:
        values = self.values
        for slot, start, stop, shape in self.param_slices:
            values[slot] = theta[start:stop].reshape(shape)
        for slot, forward, _, args in self.steps:
            values[slot] = forward(*[values[a] for a in args])

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.asarray(theta, dtype=np.float64)
        self._forward(theta)
        values, shapes, dependent = self.values, self.shapes, self.dependent
        grads: list = [None] * len(values)

        def add(slot, g):
            if np.shape(g) != shapes[slot]:
                g = _unbroadcast(np.asarray(g), shapes[slot])
            grads[slot] = g if grads[slot] is None else grads[slot] + g

        total = 0.0
        for slot, target in self.outputs:
            residual = values[slot] - target  # a per-model output broadcasts to every sample
            scale = 1.0 if self.loss == "sse" else 1.0 / residual.size
            total += scale * float(np.vdot(residual, residual))
            if slot in dependent:
                add(slot, (2.0 * scale) * residual)
        for slot, _, backward, args in self.backward_steps:
            g = grads[slot]
            if g is not None:
                for arg, part in zip(args, backward(g, *[values[a] for a in args], values[slot])):
                    if arg in dependent:
                        add(arg, part)
        gradient = np.zeros(self.size)
        for slot, start, stop, _ in self.param_slices:
            if grads[slot] is not None:
                gradient[start:stop] = grads[slot].reshape(-1)
        if self.decay:
            total += self.decay * float(np.dot(theta, theta))
            gradient += (2.0 * self.decay) * theta
        return total, gradient


def _per_sample(value: np.ndarray) -> np.ndarray:
    return value.reshape(-1, 1) if value.ndim == 1 else value


def _widen(value, size: int, batch: int | None) -> np.ndarray:
    """A concat part as ``[B, size]``, or as ``[size]`` when nothing in the concat is per-sample."""
    value = np.asarray(value)
    if value.ndim == 2:
        return value
    value = value.reshape(size)
    return value if batch is None else np.broadcast_to(value, (batch, size))
