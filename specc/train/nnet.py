"""Compatibility with R's ``nnet`` for one-hidden-layer specs such as specs/sine_nnet.spec.

nnet keeps a network's weights in one flat vector ``Wts``, ordered by the unit
each weight feeds: for hidden unit 1 its bias then its inputs (``b->h1``,
``i1->h1``, …), then hidden unit 2, …, then for output 1 its bias and the
hidden units (``b->o``, ``h1->o``, …). :func:`wts_to_tensors` and
:func:`tensors_to_wts` translate between that vector and the spec's named
parameters, so an R user can start from (or compare with) the same numbers.

:class:`NnetObjective` is the criterion nnet fits, as Venables & Ripley describe
it (MASS, 4th ed., §8.10): the sum of squared errors of a network of logistic
hidden units and linear or logistic outputs, plus ``decay`` times the sum of
squared weights, with its gradient. specc computes it in a fixed order of
operations, with the C library's ``exp`` and a logistic that saturates as nnet's
does (exactly 0 below -15 and 1 above 15). Minimised by
:func:`specc.train.bfgs.vmmin`'s method (``fit(..., optimizer="bfgs",
engine="nnet")``) from nnet's starting weights, it retraces R's nnet fit of the
sine story bit for bit (tests/test_nnet.py): over a thousand BFGS steps the
smallest rounding difference changes the path, and with it where the fit stops.
Its numbers come from a small C kernel (specc/train/nnet_kernel.c, built when
specc is installed) or, where that is not built, from the NumPy implementation
here; the two agree to the last bit. The kernel also holds vmmin's whole loop
(:meth:`NnetObjective.vmmin`), written from bfgs.py's documented order of
operations, so a fit makes no Python call per iteration and still reaches
exactly the points, values, history and counts of the Python ``vmmin`` on the
same criterion; without the kernel, the Python ``vmmin`` runs.
"""
from __future__ import annotations

import ctypes
import importlib.util
import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import SpecError
from ..lower import spec_graph
from ..weights import apply_weights, refuse_non_finite
from .bfgs import BFGSResult, vmmin

LOGISTIC = ("logistic", "sigmoid")
PASS_THROUGH = ("identity", "linear")
SATURATION = 15.0  # nnet's logistic is exactly 0 below -SATURATION and 1 above it


@dataclass(frozen=True)
class NnetLayout:
    """Where nnet's units live in a spec: ``output = [logistic](Wo·logistic(Wh·input + bh) + bo)``."""

    input: str
    output: str
    hidden_weight: str  # [n_hidden, n_in]
    hidden_bias: str  # [n_hidden]
    output_weight: str  # [n_out, n_hidden], or [n_hidden] for a scalar output
    output_bias: str  # [n_out], or a scalar
    n_in: int
    n_hidden: int
    n_out: int
    linout: bool  # linear output units (nnet's linout=TRUE)
    scalar_output: bool = False  # y = w·h + b with a weight vector w and a scalar y

    @property
    def n_weights(self) -> int:
        return self.n_hidden * (self.n_in + 1) + self.n_out * (self.n_hidden + 1)

    def weight_names(self) -> list[str]:
        """nnet's names for the entries of ``Wts`` (as ``coef()`` prints them): ``b->h1``, ``i1->h1`` …"""
        out = ["o"] if self.n_out == 1 else [f"o{k}" for k in range(1, self.n_out + 1)]
        names = []
        for j in range(1, self.n_hidden + 1):
            names += [f"b->h{j}"] + [f"i{i}->h{j}" for i in range(1, self.n_in + 1)]
        for o in out:
            names += [f"b->{o}"] + [f"h{j}->{o}" for j in range(1, self.n_hidden + 1)]
        return names


def nnet_layout(model_or_graph) -> NnetLayout:
    """The :class:`NnetLayout` of a spec (module or IR); a :class:`SpecError` says why one does not fit."""
    g = spec_graph(model_or_graph)
    file = g.graph["file"]

    def fail(reason: str) -> SpecError:
        return SpecError(f"{file}: not a one-hidden-layer nnet network ({reason}); nnet's form is "
                         "'h[n] = logistic(W1·x + b1)' and 'y[k] = W2·h + b2' (or logistic(W2·h + b2))")

    def skip(node):
        while g.nodes[node].get("op") in PASS_THROUGH:
            node = g.nodes[node]["args"][0]
        return node

    def affine(node, what):
        """(weight, bias, source) of ``W·source + b`` (either order of the sum)."""
        attrs = g.nodes[node]
        if attrs.get("op") != "add":
            raise fail(f"{what} is not a weighted sum plus a bias")
        for product, bias in (attrs["args"], attrs["args"][::-1]):
            p = g.nodes[product]
            if p.get("op") == "matmul" and g.nodes[bias]["kind"] == "param" \
                    and g.nodes[p["args"][0]]["kind"] == "param":
                return p["args"][0], bias, skip(p["args"][1])
        raise fail(f"{what} is not a weight matrix times a vector plus a bias parameter")

    if len(g.graph["inputs"]) != 1 or len(g.graph["outputs"]) != 1:
        raise fail("it needs exactly one input and one output")
    output = g.graph["outputs"][0]
    top = skip(output)
    linout = g.nodes[top].get("op") not in LOGISTIC
    w_out, b_out, hidden = affine(top if linout else skip(g.nodes[top]["args"][0]), "the output")
    if g.nodes[hidden].get("op") not in LOGISTIC:
        raise fail("the output's inputs are not a logistic hidden layer")
    w_hid, b_hid, source = affine(skip(g.nodes[hidden]["args"][0]), "the hidden layer")
    if source != g.graph["inputs"][0]:
        raise fail("the hidden layer is not computed from the input")
    if len({w_out, b_out, w_hid, b_hid}) != 4 or len(g.graph["params"]) != 4:
        raise fail("it must have exactly four parameters: two weights and two biases")
    shape = {n: tuple(g.nodes[n]["shape"]) for n in (source, hidden, w_hid, b_hid, w_out, b_out, output)}
    n_in = shape[source][0] if shape[source] else 1
    n_hidden = shape[hidden][0] if shape[hidden] else 0
    n_out = shape[output][0] if shape[output] else 1
    scalar_output = not shape[output]
    if (shape[w_hid] != (n_hidden, n_in) or shape[b_hid] != (n_hidden,)
            or shape[w_out] != ((n_hidden,) if scalar_output else (n_out, n_hidden))
            or shape[b_out] != shape[output]):
        raise fail("its parameter shapes are not those of dense layers with one bias per unit")
    return NnetLayout(source, output, w_hid, b_hid, w_out, b_out, n_in, n_hidden, n_out, linout, scalar_output)


# ---------------------------------------------------------------- Wts <-> named tensors
def wts_to_tensors(wts, model_or_layout) -> dict[str, torch.Tensor]:
    """nnet's flat ``Wts`` (``b->h1, i1->h1, …, b->o, h1->o, …``) as the spec's named tensors (float64)."""
    layout = model_or_layout if isinstance(model_or_layout, NnetLayout) else nnet_layout(model_or_layout)
    w = _wts_vector(wts)
    if w.numel() != layout.n_weights:
        raise SpecError(f"nnet's Wts for this {layout.n_in}-{layout.n_hidden}-{layout.n_out} network has "
                        f"{layout.n_weights} numbers, not {w.numel()}")
    split = layout.n_hidden * (layout.n_in + 1)
    hidden = w[:split].reshape(layout.n_hidden, layout.n_in + 1)
    out = w[split:].reshape(layout.n_out, layout.n_hidden + 1)
    scalar = layout.scalar_output
    return {layout.hidden_weight: hidden[:, 1:].clone(), layout.hidden_bias: hidden[:, 0].clone(),
            layout.output_weight: (out[0, 1:] if scalar else out[:, 1:]).clone(),
            layout.output_bias: (out[0, 0] if scalar else out[:, 0]).clone()}


def tensors_to_wts(named, model_or_layout) -> torch.Tensor:
    """The spec's named tensors (a dict, or a module's parameters) as nnet's flat ``Wts`` (float64)."""
    layout = model_or_layout if isinstance(model_or_layout, NnetLayout) else nnet_layout(model_or_layout)
    if isinstance(named, torch.nn.Module):
        named = dict(named.named_parameters())
    t = {k: torch.as_tensor(v).detach().to(torch.float64) for k, v in named.items()}
    hidden = torch.cat([t[layout.hidden_bias].reshape(-1, 1), t[layout.hidden_weight]], dim=1)
    out = torch.cat([t[layout.output_bias].reshape(-1, 1), t[layout.output_weight].reshape(layout.n_out, -1)],
                    dim=1)
    return torch.cat([hidden.flatten(), out.flatten()])


def load_wts(model: torch.nn.Module, wts) -> None:
    """Set a module's parameters from nnet's flat ``Wts``, e.g. ``seq(0, 1, by=1/12)`` for the sine story.

    The module is converted to float64 first: R's numbers are doubles, and rounding them to float32
    would start the fit from a different point.
    """
    model.to(torch.float64)
    w = _wts_vector(wts)
    refuse_non_finite(w, "nnet Wts", "Wts")
    apply_weights(model, wts_to_tensors(w, model), origin="nnet Wts")


def _wts_vector(wts) -> torch.Tensor:
    """``wts`` as one float64 vector; anything but numbers is an error, not a torch exception."""
    try:
        return torch.as_tensor(wts, dtype=torch.float64).flatten()
    except (TypeError, ValueError, OverflowError, RuntimeError) as err:
        raise SpecError(f"nnet's Wts must be a list of numbers ({str(err).splitlines()[0]})") from None


def rang_init(model: torch.nn.Module, rang: float = 0.7, generator: torch.Generator | None = None) -> None:
    """nnet's default start: every weight and bias drawn uniformly from [-rang, rang] (nnet's ``rang``).

    nnet's advice holds: choose ``rang`` so that rang · max|x| is about 1 for large inputs.
    The numbers come from torch's generator, not R's, so they differ from R's draws.
    """
    if rang < 0:
        raise SpecError(f"rang must be at least 0, not {rang}")
    with torch.no_grad():
        for param in model.parameters():
            param.uniform_(-rang, rang, generator=generator)


# ---------------------------------------------------------------- nnet's criterion
def logistic(s: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """nnet's logistic, elementwise: 0 below -15, 1 above 15, else 1 / (1 + exp(-s)).

    ``exp`` is ``math.exp``, the C library's, as in specc/train/nnet_kernel.c; NumPy's vectorised exp
    can differ from it in the last bit, and a fit's path with it.
    """
    saturated = not (-SATURATION <= s.min() and s.max() <= SATURATION)  # (a NaN stays NaN, as in C)
    minus = np.negative(np.clip(s, -SATURATION, SATURATION) if saturated else s)  # exp(-s) cannot overflow
    e = np.fromiter(map(math.exp, minus.ravel().tolist()), np.float64, minus.size).reshape(s.shape)
    h = np.divide(1.0, np.add(1.0, e, out=e), out=out)
    if saturated:
        h[s < -SATURATION] = 0.0
        h[s > SATURATION] = 1.0
    return h


class NnetObjective:
    """nnet's criterion and its gradient at a flat ``Wts`` vector, for :func:`specc.train.bfgs.vmmin`.

    ``inputs`` is ``[rows, n_in]`` (or ``[rows]``), ``targets`` ``[rows, n_out]`` (or ``[rows]``).
    Two backends give the same numbers to the last bit: ``"c"``, specc's compiled kernel
    (specc/train/nnet_kernel.c, built when specc is installed; a call costs a few µs), and ``"numpy"``,
    the same computation vectorised over data rows, the fallback where the kernel is not built.
    The default is ``"c"`` when :data:`KERNEL` is loaded.

    ``value(w)`` is the criterion, ``gradient(w)`` its gradient (NumPy, or torch for a torch ``w``)
    and ``objective(w)`` both; a gradient asked for right after ``value`` at the same point reuses
    the NumPy backend's forward pass.
    """

    def __init__(self, layout: NnetLayout, inputs, targets, decay: float = 0.0, backend: str | None = None):
        x = np.asarray(torch.as_tensor(inputs, dtype=torch.float64), dtype=np.float64).reshape(len(inputs), -1)
        t = np.asarray(torch.as_tensor(targets, dtype=torch.float64), dtype=np.float64).reshape(len(targets), -1)
        if x.shape[1] != layout.n_in or t.shape[1] != layout.n_out or len(x) != len(t):
            raise SpecError(f"nnet data must be [rows, {layout.n_in}] inputs and [rows, {layout.n_out}] targets, "
                            f"not {list(x.shape)} and {list(t.shape)}")
        self.backend = backend or ("c" if KERNEL is not None else "numpy")
        if self.backend not in ("c", "numpy"):
            raise SpecError(f"nnet backend must be 'c' or 'numpy', not {self.backend!r}")
        if self.backend == "c" and KERNEL is None:
            raise SpecError("specc's compiled nnet kernel is not built: reinstall specc with "
                            "'pip install .' (it needs a C compiler), or use backend 'numpy'")
        self.layout, self.decay, self.rows = layout, float(decay), len(x)
        # Both backends work unit-major: one row per input, hidden unit or output, one column per data row.
        x_units, t_units = np.ascontiguousarray(x.T), np.ascontiguousarray(t.T)
        kind = _KernelCriterion if self.backend == "c" else _NumpyCriterion
        self._criterion = kind(layout, x_units, t_units, self.decay)

    def _point(self, wts) -> np.ndarray:
        """``wts`` as a flat float64 array, its size checked."""
        w = wts.detach().double().numpy() if isinstance(wts, torch.Tensor) else np.asarray(wts, dtype=np.float64)
        if w.size != self.layout.n_weights:
            raise SpecError(f"this {self.layout.n_in}-{self.layout.n_hidden}-{self.layout.n_out} network has "
                            f"{self.layout.n_weights} weights, not {w.size}")
        return w.reshape(-1)

    def value(self, wts) -> float:
        """The criterion at ``wts``."""
        return self._criterion.value(self._point(wts))

    def gradient(self, wts):
        """The criterion's gradient at ``wts``: a float64 NumPy array, or a torch tensor for a tensor ``wts``."""
        grad = self._criterion.value_and_gradient(self._point(wts))[1]
        return torch.from_numpy(grad) if isinstance(wts, torch.Tensor) else grad

    def __call__(self, wts):
        """``(f, grad)`` at ``wts``, in one pass."""
        f, grad = self._criterion.value_and_gradient(self._point(wts))
        return f, torch.from_numpy(grad) if isinstance(wts, torch.Tensor) else grad

    def vmmin(self, x0, *, max_iter: int = 100, abstol: float = -math.inf,
              reltol: float = 1.4901161193847656e-08, callback=None, rounds: int = 100) -> BFGSResult:
        """:func:`specc.train.bfgs.vmmin` of this criterion from ``x0``: the same arguments (but ``fn``)
        and the same :class:`~specc.train.bfgs.BFGSResult`, to the last bit.

        With the ``"c"`` backend the whole loop runs in the kernel (specc/train/nnet_kernel.c), with
        no Python call per iteration: each call into C runs up to ``rounds`` passes of the loop, and
        ``callback(iteration, f)`` runs between calls (every ``rounds`` passes, when the history grows,
        and at the end), not after every pass. With ``"numpy"`` this is ``vmmin`` itself."""
        if self.backend != "c" or max_iter <= 0:
            return vmmin(self.value, x0, gradient=self.gradient, max_iter=max_iter, abstol=abstol,
                         reltol=reltol, callback=callback)
        x, f, iterations, evaluations, history = self._criterion.vmmin(
            self._point(x0), max_iter=max_iter, abstol=abstol, reltol=reltol, callback=callback,
            rounds=max(1, int(rounds)))
        return BFGSResult(x=torch.from_numpy(x) if isinstance(x0, torch.Tensor) else x, fmin=f,
                          iterations=iterations, fn_evals=evaluations, converged=iterations < max_iter,
                          history=history)


class NnetEngine:
    """The ``nnet`` engine of :func:`specc.fit` (``bfgs``): :class:`NnetObjective` in nnet's weight order,
    NumPy in and out so that no torch operation runs per evaluation. ``criterion`` is fit's Criterion."""
    name = "nnet"

    def __init__(self, model: torch.nn.Module, criterion):
        if criterion.loss.name != "sse":
            raise SpecError(f"engine 'nnet' minimises nnet's criterion, the sum of squared errors: "
                            f"use loss 'sse', not '{criterion.loss.name}'")
        self.model, self.layout = model, nnet_layout(model)
        self.objective = NnetObjective(self.layout, criterion.inputs[0], criterion.targets[0], criterion.decay)
        self.x0 = tensors_to_wts(model, self.layout).numpy()

    def value_and_grad(self, x):
        return self.objective(x)

    def value(self, x) -> float:
        return self.objective.value(x)

    def gradient(self, x):
        return self.objective.gradient(x)

    def vmmin(self, x0, *, max_iter: int, abstol: float, reltol: float, callback=None) -> BFGSResult:
        """``vmmin(value, x0, gradient=gradient, ...)``, bit for bit, with its loop in C where the kernel
        is built (:meth:`NnetObjective.vmmin`); fit's bfgs calls this in place of vmmin."""
        return self.objective.vmmin(x0, max_iter=max_iter, abstol=abstol, reltol=reltol, callback=callback)

    def store(self, x) -> None:
        """Leave nnet's weights ``x`` in the module."""
        apply_weights(self.model, wts_to_tensors(x, self.layout), origin="nnet Wts")


class _NumpyCriterion:
    """The criterion in NumPy, in specc/train/nnet_kernel.c's order of operations (see its comment).

    Arrays are ``[unit, data row]``, and every sum in the kernel's order is a running sum,
    ``np.add.accumulate``, which is left to right by definition: over a unit's sources (bias
    first), over the output units, and for the gradient over the data rows.
    """

    def __init__(self, layout: NnetLayout, x: np.ndarray, t: np.ndarray, decay: float):
        L, rows = layout, x.shape[1]
        self.layout, self.decay, self.target = layout, decay, t
        self.split = L.n_hidden * (L.n_in + 1)  # where the output units' weights start
        # Each layer's sources under a row of ones (the bias "source"); h1[1:] holds the hidden units.
        self.x1 = np.vstack([np.ones(rows), x])
        self.h1 = np.ones((L.n_hidden + 1, rows))
        # weight · source for every [source, unit, row], summed down the sources.
        self.hidden_sums = np.empty((L.n_in + 1, L.n_hidden, rows))
        self.output_sums = np.empty((L.n_hidden + 1, L.n_out, rows))
        self.back_sums = np.empty((L.n_out, L.n_hidden, rows))
        # Gradient terms: column 0 the starting value (2 decay w, or 0), then one column per data row.
        self.terms = np.zeros((L.n_weights, rows + 1))
        self.hidden_terms = self.terms[:self.split, 1:].reshape(L.n_hidden, L.n_in + 1, rows)
        self.output_terms = self.terms[self.split:, 1:].reshape(L.n_out, L.n_hidden + 1, rows)
        self._last = None  # (w, criterion, output, error) of the latest forward pass

    @staticmethod
    def _unit_inputs(weights: np.ndarray, sources: np.ndarray, sums: np.ndarray) -> np.ndarray:
        """``[units, rows]``: each unit's bias plus weight times source, sources in order."""
        np.multiply(weights.T[:, :, None], sources[:, None, :], out=sums)
        return np.add.accumulate(sums, axis=0, out=sums)[-1]

    def forward(self, w: np.ndarray) -> float:
        L = self.layout
        hidden_w = w[:self.split].reshape(L.n_hidden, L.n_in + 1)
        output_w = w[self.split:].reshape(L.n_out, L.n_hidden + 1)
        logistic(self._unit_inputs(hidden_w, self.x1, self.hidden_sums), out=self.h1[1:])
        output = self._unit_inputs(output_w, self.h1, self.output_sums)
        if not L.linout:
            output = logistic(output)
        error = output - self.target
        squares = error * error
        # one running total, data row by data row, each row's outputs in turn
        total = np.add.accumulate(squares[0] if L.n_out == 1 else squares.T.ravel())[-1]
        if self.decay:
            total = total + self.decay * np.add.accumulate(w * w)[-1]
        total = float(total)
        self._last = (w.copy(), total, output, error)
        return total

    def value(self, w: np.ndarray) -> float:
        return self.forward(w)

    def value_and_gradient(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        if self._last is None or not np.array_equal(self._last[0], w):
            self.forward(w)
        _, total, output, error = self._last
        L = self.layout
        output_w = w[self.split:].reshape(L.n_out, L.n_hidden + 1)
        out_delta = 2.0 * error  # d criterion / d (an output unit's input)
        if not L.linout:
            out_delta = out_delta * (output * (1.0 - output))
        # carried back through the output weights, output units in order (one output: one product)
        np.multiply(output_w[:, 1:, None], out_delta[:, None, :], out=self.back_sums)
        back = self.back_sums[0] if L.n_out == 1 else np.add.accumulate(self.back_sums, axis=0)[-1]
        hidden = self.h1[1:]
        hidden_delta = back * (hidden * (1.0 - hidden))
        if self.decay:
            np.multiply(2.0 * self.decay, w, out=self.terms[:, 0])
        np.multiply(hidden_delta[:, None, :], self.x1[None, :, :], out=self.hidden_terms)
        np.multiply(out_delta[:, None, :], self.h1[None, :, :], out=self.output_terms)
        return total, np.add.accumulate(self.terms, axis=1)[:, -1].copy()


_INTERFACE = 2  # specc_nnet_interface() of the kernel this file calls


class _Problem(ctypes.Structure):
    """``problem`` in specc/train/nnet_kernel.c, field for field."""
    _fields_ = [("n_in", ctypes.c_int), ("n_hidden", ctypes.c_int), ("n_out", ctypes.c_int),
                ("rows", ctypes.c_int), ("linear_outputs", ctypes.c_int), ("decay", ctypes.c_double),
                ("x", ctypes.c_void_p), ("target", ctypes.c_void_p), ("work", ctypes.c_void_p)]


def _load_kernel() -> ctypes.CDLL | None:
    """specc/train/nnet_kernel.c as built by pip, or None where it was not built (running from a bare checkout)."""
    spec = importlib.util.find_spec("specc.train._nnet_kernel")
    if spec is None or not spec.origin:
        return None
    lib = ctypes.CDLL(spec.origin)
    size = getattr(lib, "specc_nnet_problem_size", None)
    if size is not None:
        size.restype = ctypes.c_size_t
    interface = getattr(lib, "specc_nnet_interface", None)
    if interface is not None:
        interface.restype = ctypes.c_int
    if size is None or size() != ctypes.sizeof(_Problem) or interface is None or interface() != _INTERFACE:
        # a build older (or newer) than this file
        warnings.warn(f"{spec.origin} does not match specc/train/nnet.py (rebuild it with 'pip install -e .'); "
                      "the nnet engine computes its criterion in NumPy instead", RuntimeWarning, stacklevel=2)
        return None
    pointer, double, int64 = ctypes.c_void_p, ctypes.c_double, ctypes.c_longlong
    lib.specc_nnet_criterion.argtypes = [pointer, pointer]
    lib.specc_nnet_criterion.restype = double
    lib.specc_nnet_criterion_and_gradient.argtypes = [pointer, pointer, pointer]
    lib.specc_nnet_criterion_and_gradient.restype = double
    lib.specc_nnet_vmmin_state_size.argtypes = [pointer]
    lib.specc_nnet_vmmin_state_size.restype = ctypes.c_size_t
    # (problem, state, counters, history, capacity, max_iter, abstol, reltol, passes) -> status
    lib.specc_nnet_vmmin.argtypes = [pointer, pointer, pointer, pointer, int64, int64, double, double, int64]
    lib.specc_nnet_vmmin.restype = ctypes.c_int
    return lib


KERNEL = _load_kernel()  # the compiled criterion, when specc was installed with it


class _KernelCriterion:
    """The criterion by the C kernel: the problem is laid out once, and a call passes three addresses."""

    def __init__(self, layout: NnetLayout, x: np.ndarray, t: np.ndarray, decay: float):
        # The kernel reads these arrays through raw pointers, so they must live as long as this object:
        # private copies, which no caller can change or free under it.
        self.x, self.target = np.array(x, order="C"), np.array(t, order="C")
        rows = self.x.shape[1]
        self.work = np.empty(2 * (layout.n_hidden + layout.n_out) * rows)
        self.w = np.empty(layout.n_weights)  # each call's point, where the kernel reads it
        self.grad = np.empty(layout.n_weights)
        self.problem = _Problem(layout.n_in, layout.n_hidden, layout.n_out, rows, int(layout.linout), decay,
                                self.x.ctypes.data, self.target.ctypes.data, self.work.ctypes.data)
        self.args = (ctypes.addressof(self.problem), self.w.ctypes.data)
        self.grad_address = self.grad.ctypes.data
        self.criterion = KERNEL.specc_nnet_criterion
        self.criterion_and_gradient = KERNEL.specc_nnet_criterion_and_gradient

    def value(self, w: np.ndarray) -> float:
        self.w[:] = w
        return self.criterion(*self.args)

    def value_and_gradient(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        self.w[:] = w
        f = self.criterion_and_gradient(*self.args, self.grad_address)
        return f, self.grad.copy()

    def vmmin(self, x0: np.ndarray, *, max_iter: int, abstol: float, reltol: float, callback,
              rounds: int) -> tuple[np.ndarray, float, int, int, list[float]]:
        """The kernel's vmmin from x0 (max_iter >= 1): (x, fmin, iterations, evaluations, history).

        The run's whole state lives in arrays made here: the kernel keeps nothing between calls. Each
        call runs at most ``rounds`` passes (so that a callback shows progress and Ctrl-C is noticed
        between calls); the history doubles whenever it is full."""
        n = self.w.size
        state = np.empty(KERNEL.specc_nnet_vmmin_state_size(self.args[0]))
        state[2:2 + n] = x0  # x; then fmin, f_last and the rest are the kernel's (nnet_kernel.c, vm_views)
        counters = np.zeros(4, dtype=np.int64)  # phase, iterations, evaluations, updates
        history = np.empty(max(2, min(max_iter + 1, 2048)))
        run = KERNEL.specc_nnet_vmmin
        while True:
            status = run(self.args[0], state.ctypes.data, counters.ctypes.data, history.ctypes.data, history.size,
                         max_iter, abstol, reltol, rounds)
            if status == _VM_NOT_FINITE:
                raise ValueError(f"vmmin: the objective is not finite at the starting point (f = {state[1]})")
            if status not in (_VM_DONE, _VM_RUNNING):
                raise RuntimeError(f"specc_nnet_vmmin refused its arguments (status {status})")
            if callback is not None:
                callback(int(counters[1]), float(state[1]))
            if status == _VM_DONE:
                break
            if counters[1] >= history.size:
                history = np.concatenate([history, np.empty(history.size)])
        iterations = int(counters[1])
        return state[2:2 + n].copy(), float(state[0]), iterations, int(counters[2]), history[:iterations].tolist()


_VM_DONE, _VM_RUNNING, _VM_NOT_FINITE = 0, 1, -1  # specc_nnet_vmmin's results
