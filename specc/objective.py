"""The IR compiled into a NumPy loss-and-gradient function, for full-batch quasi-Newton fits.

Small networks fitted by BFGS (R's nnet way) spend their time in thousands of
evaluations of f(θ) and ∇f(θ) on tiny arrays, where PyTorch's per-operation
and autograd overhead (~150 µs an evaluation) dwarfs the arithmetic (~20 µs
in NumPy). So for those fits the graph is also compiled into a straight-line
tape of NumPy operations with a reverse pass: each operation's forward and
backward rule is its row's ``numpy`` backend in :mod:`specc.ops` (products and
concat, whose arithmetic depends on shapes, are built here). The tape computes
what the generated ``forward`` computes, in float64; tests/test_objective.py
checks value and gradient against torch autograd for every bundled spec.

Values are kept in one layout: per-sample values are 2-D (``[B, n]``, and
``[B, 1]`` for a scalar), per-model values keep their shape (``[n]``, ``()``),
so NumPy broadcasting does what the generated code does with ``unsqueeze``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .ir import Graph
from .ops import OPS


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


def supported(graph: Graph) -> bool:
    """Whether every operation the outputs need has a NumPy rule (in its row, or here for the shape
    rules whose arithmetic depends on the operands' shapes: products and concat)."""
    wanted = graph.ancestors(graph.graph["outputs"])
    return all(OPS[graph.nodes[n]["op"]].numpy is not None or OPS[graph.nodes[n]["op"]].shape in _BY_SHAPE
               for n in wanted if graph.nodes[n]["kind"] == "op")


class Objective:
    """``f, grad = objective(theta)`` for a loss summed over a spec's outputs.

    ``theta`` is the flat float64 vector of all parameters in the spec's order
    (each raveled row-major, as ``torch.nn.utils.parameters_to_vector``).
    ``loss`` is ``"sse"`` (sum of squared errors, nnet's criterion) or ``"mse"``
    (their mean, per output); ``decay`` adds ``decay·Σθ²`` as nnet does.
    """

    def __init__(self, graph: Graph, inputs: dict[str, np.ndarray], targets: dict[str, np.ndarray],
                 loss: str = "sse", decay: float = 0.0):
        if loss not in ("sse", "mse") or not supported(graph):
            raise ValueError("the NumPy objective supports the sse and mse losses")
        self.loss, self.decay = loss, float(decay)
        wanted = graph.ancestors(graph.graph["outputs"])
        order = [n for n in graph.topological() if n in wanted]
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

    def _rules(self, graph: Graph, attrs: dict) -> tuple[Callable, Callable]:
        row = OPS[attrs["op"]]
        if row.shape in _BY_SHAPE:
            return _BY_SHAPE[row.shape](self, graph, attrs)
        return row.numpy

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


def _product(objective: Objective, graph: Graph, attrs: dict) -> tuple[Callable, Callable]:
    left, right = (graph.nodes[a] for a in attrs["args"])
    if len(left["shape"]) == 2:
        if right["shape"] == () and not right["batched"]:  # a lone scalar counts as a vector of size 1
            return (lambda A, v: A[:, 0] * v,
                    lambda g, A, v, y: (g[:, None] * v, g @ A[:, 0]))
        return (lambda A, v: v @ A.T,
                lambda g, A, v, y: (g.T @ v if v.ndim == 2 else np.outer(g, v), g @ A))
    keep = attrs["batched"]  # vector · vector: a dot product
    return (lambda a, v: (v * a).sum(-1, keepdims=keep), lambda g, a, v, y: (g * v, g * a))


def _concat(objective: Objective, graph: Graph, attrs: dict) -> tuple[Callable, Callable]:
    sizes = [graph.nodes[a]["shape"][0] if graph.nodes[a]["shape"] else 1 for a in attrs["args"]]
    batch = objective.batch if attrs["batched"] else None
    bounds = np.cumsum([0] + sizes)

    def concat(*parts):
        return np.concatenate([_widen(p, n, batch) for p, n in zip(parts, sizes)], -1)

    def concat_backward(g, *parts_and_out):
        return tuple(g[..., lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:]))
    return concat, concat_backward


# Shape rules whose NumPy arithmetic depends on the operands' shapes.
_BY_SHAPE = {"product": _product, "concat": _concat}


def _per_sample(value: np.ndarray) -> np.ndarray:
    return value.reshape(-1, 1) if value.ndim == 1 else value


def _widen(value, size: int, batch: int | None) -> np.ndarray:
    """A concat part as ``[B, size]``, or as ``[size]`` when nothing in the concat is per-sample."""
    value = np.asarray(value)
    if value.ndim == 2:
        return value
    value = value.reshape(size)
    return value if batch is None else np.broadcast_to(value, (batch, size))
