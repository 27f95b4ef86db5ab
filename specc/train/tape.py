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

The tape evaluates several parameter vectors at once (:meth:`Tape.evaluate`
takes ``[R, n]``: the batched restarts of :mod:`specc.train.multistart`). Every value
is a 3-D array ``[restarts, samples, units]``, each axis of size 1 where the
value does not vary along it: an input is ``[1, B, n]``, a per-model vector
``[R, 1, n]``, a scalar ``[., ., 1]`` (so a lone scalar is a vector of size 1),
a matrix (parameters and what is computed from them alone) ``[R, m, k]``.
NumPy broadcasting then does what the generated code does with ``unsqueeze``,
products are batched matrix products, and every elementwise rule of the table
works unchanged. Values that depend on no parameter are computed once, when
the tape is built.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..inits import start_value
from ..ir import Graph
from ..ops import OPS
from .losses import softmax_output

LOSSES = ("sse", "mse", "bce", "cross_entropy")


def _unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A gradient in the (3-D) shape of the operand it belongs to: summed over the axes the operand
    was broadcast along, spread over those where the gradient is the smaller (a constant's)."""
    axes = tuple([axis for axis in (0, 1, 2) if shape[axis] == 1 and g.shape[axis] != 1])
    if axes:
        g = g.sum(axes, keepdims=True)
    return g if g.shape == shape else np.broadcast_to(g, shape)


def supported(graph: Graph) -> bool:
    """Whether every operation the outputs need has a NumPy rule (in its row, or here for the shape
    rules whose arithmetic depends on the operands' shapes: products, concat, indexing)."""
    wanted = graph.ancestors(graph.graph["outputs"])
    return all(OPS[graph.nodes[n]["op"]].numpy is not None or OPS[graph.nodes[n]["op"]].shape in _BY_SHAPE
               for n in wanted if graph.nodes[n]["kind"] == "op")


def _tail(shape: tuple[int, ...]) -> tuple[int, int]:
    """The last two axes of a value of IR shape ``shape`` in the 3-D layout (one sample's worth)."""
    return (1, 1) if not shape else (1, shape[0]) if len(shape) == 1 else tuple(shape)


def _per_sample(value: np.ndarray) -> np.ndarray:
    """An input or target as ``[1, B, units]``."""
    value = np.asarray(value, dtype=np.float64)
    return value.reshape(1, len(value), -1)


class Tape:
    """``f, grad = tape(theta)`` for a loss summed over a spec's outputs; ``tape.evaluate``
    does the same for a matrix of parameter vectors, one row per restart.

    ``theta`` is the flat float64 vector of all parameters in the spec's order
    (each raveled row-major, as ``torch.nn.utils.parameters_to_vector``).
    ``loss`` is ``"sse"`` (sum of squared errors, nnet's criterion), ``"mse"``
    (their mean, per output), ``"bce"`` or ``"cross_entropy"`` (as torch's
    ``F.binary_cross_entropy`` and ``F.cross_entropy`` with class probabilities
    compute them, per output; for a softmax output, cross_entropy of the
    probabilities themselves, as :mod:`specc.train.losses` does);
    ``decay`` adds ``decay·Σθ²`` as nnet does. ``fixed``: the values of the spec's fixed values
    (``fixed mu[3]``), by name, constants of the criterion like the data (one not given: the value
    its init line gives, when that draws no random numbers).
    """

    def __init__(self, graph: Graph, inputs: dict[str, np.ndarray], targets: dict[str, np.ndarray],
                 loss: str = "sse", decay: float = 0.0, fixed: dict[str, np.ndarray] | None = None):
        if loss not in LOSSES or not supported(graph):
            raise ValueError(f"the NumPy objective supports the losses {', '.join(LOSSES)}")
        if loss == "cross_entropy" and any(graph.nodes[n]["shape"] == () for n in graph.graph["outputs"]):
            raise ValueError("the NumPy objective's cross_entropy needs vector outputs (class scores)")
        self.loss, self.decay = loss, float(decay)
        wanted = graph.ancestors(graph.graph["outputs"])
        order = [n for n in graph.topological() if n in wanted]
        index = {n: i for i, n in enumerate(order)}
        self.values: list = [None] * len(order)
        self.batch = next((len(inputs[n]) for n in graph.graph["inputs"]), 1)
        self.param_slices = []  # (slot, start, stop, trailing shape)
        start = 0
        for name in graph.graph["params"]:
            shape = graph.nodes[name]["shape"]
            stop = start + int(np.prod(shape, dtype=np.int64))
            if name in index:
                self.param_slices.append((index[name], start, stop, _tail(shape)))
            start = stop
        self.size = start
        self.dependent = {slot for slot, *_ in self.param_slices}  # values that depend on a parameter
        self.steps = []  # (slot, forward, backward, args): the operations run on every evaluation
        for node in order:
            attrs = graph.nodes[node]
            slot = index[node]
            if attrs["kind"] == "input":
                self.values[slot] = _per_sample(inputs[node])
            elif attrs["kind"] == "const":
                self.values[slot] = np.full((1, 1, 1), float(attrs["value"]))
            elif attrs["kind"] == "fixed":  # a constant of the criterion: no gradient
                value = (fixed or {}).get(node, start_value(attrs))  # not given: its init line's value
                if value is None:
                    raise ValueError(f"the NumPy objective needs the value of the fixed value '{node}'")
                value = np.broadcast_to(np.asarray(value, dtype=np.float64), attrs["shape"])
                self.values[slot] = value.reshape((1,) + _tail(attrs["shape"]))
            elif attrs["kind"] == "op":
                args = tuple(index[a] for a in attrs["args"])
                forward, backward = self._rules(graph, attrs)
                if any(a in self.dependent for a in args):
                    self.dependent.add(slot)
                    self.steps.append((slot, forward, backward, args))
                else:  # a function of the data and constants alone: computed here, once
                    with np.errstate(all="ignore"):
                        value = np.asarray(forward(*[self.values[a] for a in args]), dtype=np.float64)
                    if len(attrs["shape"]) == 1 and value.shape[-1] != attrs["shape"][0]:  # h0[4] = 0: broadcast
                        value = np.broadcast_to(value, value.shape[:-1] + attrs["shape"])
                    self.values[slot] = value
        self.outputs = [(index[name], _per_sample(targets[name]), self._loss_of(graph, name))
                        for name in graph.graph["outputs"]]
        self.backward_steps = self.steps[::-1]

    def _loss_of(self, graph: Graph, name: str) -> Callable:
        """The loss rule of output ``name``: of probabilities for cross_entropy on a softmax output."""
        if self.loss == "cross_entropy" and softmax_output(graph, name):
            return _nll_of_probabilities
        return _LOSS[self.loss]

    def _rules(self, graph: Graph, attrs: dict) -> tuple[Callable, Callable]:
        row = OPS[attrs["op"]].on(*(graph.nodes[a]["shape"] for a in attrs["args"]))  # sum(scalar): identity
        if row.shape in _BY_SHAPE:
            return _BY_SHAPE[row.shape](graph, attrs)
        return row.numpy

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        values, grads = self.evaluate(np.asarray(theta, dtype=np.float64).reshape(1, -1))
        return float(values[0]), grads[0]

    def evaluate(self, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The criterion ``[R]`` and its gradient ``[R, n]`` at each row of ``thetas`` ``[R, n]``."""
        thetas = np.asarray(thetas, dtype=np.float64)
        restarts = len(thetas)
        values = self.values
        for slot, start, stop, tail in self.param_slices:
            values[slot] = thetas[:, start:stop].reshape((restarts,) + tail)
        for slot, forward, _, args in self.steps:
            values[slot] = forward(*[values[a] for a in args])
        grads: dict = {}
        dependent = self.dependent

        def add(slot, g):
            if g.shape != values[slot].shape:
                g = _unbroadcast(g, values[slot].shape)
            grads[slot] = g if slot not in grads else grads[slot] + g

        total = np.zeros(restarts)
        for slot, target, loss in self.outputs:
            value, g = loss(values[slot], target)
            total += value
            if slot in dependent:
                add(slot, g)
        for slot, _, backward, args in self.backward_steps:
            g = grads.pop(slot, None)
            if g is not None:
                parts = backward(g, *[values[a] for a in args], values[slot])
                for arg, part in zip(args, parts):
                    if arg in dependent:
                        add(arg, part if isinstance(part, np.ndarray) else np.asarray(part))
        gradient = np.zeros((restarts, self.size))
        for slot, start, stop, _ in self.param_slices:
            if slot in grads:
                gradient[:, start:stop] = grads[slot].reshape(restarts, -1)
        if self.decay:
            total += self.decay * np.einsum("ij,ij->i", thetas, thetas)
            gradient += (2.0 * self.decay) * thetas
        return total, gradient


# ---------------------------------------------------------------- losses: (value [R], d loss / d output)
# A target is [1, B, n]; an output is [R or 1, B or 1, n], so output - target is [R or 1, B, n].
def _sse(value, target):
    r = value - target
    return np.square(r).sum((1, 2)), 2.0 * r


def _mse(value, target):
    r = value - target
    scale = 1.0 / (r.shape[1] * r.shape[2])
    return scale * np.square(r).sum((1, 2)), (2.0 * scale) * r


def _bce(p, t):
    # torch's F.binary_cross_entropy: each log clamped at -100, the gradient's denominator at 1e-12.
    p = np.broadcast_to(p, np.broadcast_shapes(p.shape, t.shape))
    scale = 1.0 / (p.shape[1] * p.shape[2])
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = t * np.maximum(np.log(p), -100.0) + (1.0 - t) * np.maximum(np.log1p(-p), -100.0)
        return -scale * terms.sum((1, 2)), scale * (p - t) / np.maximum(p * (1.0 - p), 1e-12)


def _cross_entropy(s, t):
    # torch's F.cross_entropy with class probabilities: the mean over rows of -Σ t · log_softmax(s).
    s = np.broadcast_to(s, np.broadcast_shapes(s.shape, t.shape))
    scale = 1.0 / s.shape[1]
    top = s.max(-1, keepdims=True)
    shifted = s - top
    log_sum = np.log(np.exp(shifted).sum(-1, keepdims=True))
    log_softmax = shifted - log_sum
    value = -scale * (t * log_softmax).sum((1, 2))
    return value, scale * (np.exp(log_softmax) * t.sum(-1, keepdims=True) - t)


def _nll_of_probabilities(p, t):
    # cross_entropy on a softmax output (specc.train.losses.nll_of_probabilities): the mean over rows of
    # -Σ t · max(log p, -100); the gradient -t / p where the log is not clamped (torch's clamp passes
    # it at -100 itself), else 0. The softmax row's backward rule carries it on to the scores.
    p = np.broadcast_to(p, np.broadcast_shapes(p.shape, t.shape))
    scale = 1.0 / p.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p = np.log(p)
        kept = log_p >= -100.0
        value = -scale * (t * np.where(kept, log_p, -100.0)).sum((1, 2))
        return value, np.where(kept, (-scale) * t / p, 0.0)


_LOSS = {"sse": _sse, "mse": _mse, "bce": _bce, "cross_entropy": _cross_entropy}


# ---------------------------------------------------------------- shape-dependent rules
def _swap(a: np.ndarray) -> np.ndarray:
    return a.swapaxes(-1, -2)


def _product(graph: Graph, attrs: dict) -> tuple[Callable, Callable]:
    left = graph.nodes[attrs["args"][0]]
    if len(left["shape"]) == 2:  # A·v = v @ A.T on a batch of rows, per restart; a scalar v has one unit
        # (NumPy's stacked matmul is about twice as fast on a contiguous right operand)
        return (lambda A, v: np.matmul(v, np.ascontiguousarray(_swap(A))),
                lambda g, A, v, y: (np.matmul(_swap(g), v), np.matmul(g, A)))
    # vector · vector: a dot product
    return (lambda a, v: (v * a).sum(-1, keepdims=True), lambda g, a, v, y: (g * v, g * a))


def _concat(graph: Graph, attrs: dict) -> tuple[Callable, Callable]:
    sizes = [graph.nodes[a]["shape"][0] if graph.nodes[a]["shape"] else 1 for a in attrs["args"]]
    bounds = np.cumsum([0] + sizes)

    def concat(*parts):
        lead = np.broadcast_shapes(*(p.shape[:2] for p in parts))
        return np.concatenate([np.broadcast_to(p, lead + p.shape[2:]) for p in parts], -1)

    def concat_backward(g, *parts_and_out):
        return tuple(g[..., lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:]))
    return concat, concat_backward


def _pick(graph: Graph, attrs: dict) -> tuple[Callable, Callable]:
    """x[2] and x[2:4]: units start … stop (from 1, both included) of the last axis; a scalar keeps
    its unit axis. The gradient goes back to those units, zero elsewhere."""
    lo, hi = attrs["start"] - 1, attrs["stop"]

    def pick_backward(g, a, y):
        grad = np.zeros(np.broadcast_shapes(g.shape[:-1], a.shape[:-1]) + a.shape[-1:])
        grad[..., lo:hi] = g
        return (grad,)
    return (lambda a: a[..., lo:hi]), pick_backward


# Shape rules whose NumPy arithmetic depends on the operands' shapes (or on the node: indexing).
_BY_SHAPE = {"product": _product, "concat": _concat, "index": _pick, "slice": _pick}
