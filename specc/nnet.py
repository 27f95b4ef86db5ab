"""Compatibility with R's ``nnet`` for one-hidden-layer specs such as specs/sine_nnet.spec.

nnet keeps a network's weights in one flat vector ``Wts``, ordered by the unit
each weight feeds: for hidden unit 1 its bias then its inputs (``b->h1``,
``i1->h1``, …), then hidden unit 2, …, then for output 1 its bias and the
hidden units (``b->o``, ``h1->o``, …). :func:`wts_to_tensors` and
:func:`tensors_to_wts` translate between that vector and the spec's named
parameters, so an R user can start from (or compare with) the same numbers.

:class:`NnetObjective` is nnet's fitting criterion (the sum of squared errors
plus ``decay`` times the sum of squared weights) and its gradient, computed
as nnet's C code computes them: the same order of every addition, glibc's
``exp``, and nnet's logistic that is exactly 0 below -15 and 1 above 15. Fed
to :func:`specc.bfgs.vmmin` (``fit(..., optimizer="bfgs", engine="nnet")``)
it retraces nnet's iterates bit for bit. Over a thousand BFGS steps the
smallest rounding difference changes the path, and with it where the fit
stops, so this is the way to get nnet's fit rather than a fit. Its numbers
come from a small C kernel (specc/nnet_kernel.c, built when specc is
installed) or, where that is not built, from a NumPy port of it; the two
agree to the last bit.
"""
from __future__ import annotations

import ctypes
import importlib.util
import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .errors import SpecError
from .lower import spec_graph
from .weights import apply_weights

LOGISTIC = ("logistic", "sigmoid")
PASS_THROUGH = ("identity", "linear")
CLAMP = 15.0  # nnet.c: sigmoid(s) is 0 for s < -15 and 1 for s > 15


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
    w = torch.as_tensor(wts, dtype=torch.float64).flatten()
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
    apply_weights(model, wts_to_tensors(wts, model), origin="nnet Wts")


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


# ---------------------------------------------------------------- nnet's criterion, as nnet computes it
class NnetObjective:
    """nnet's criterion and gradient at a flat ``Wts`` vector: ``(f, grad)`` for :func:`specc.bfgs.vmmin`.

    ``inputs`` is ``[rows, n_in]`` (or ``[rows]``), ``targets`` ``[rows, n_out]`` (or ``[rows]``).
    Two backends compute the same numbers to the last bit: ``"c"``, specc's compiled kernel
    (specc/nnet_kernel.c, built when specc is installed; a call costs about 2 µs), and
    ``"numpy"``, a vectorised port kept as its reference and as the fallback where the kernel is not
    built. The default is ``"c"`` when :data:`KERNEL` is loaded.

    In NumPy every sum runs in nnet.c's order (sequential over units and then over rows), which
    vectorises over rows; the logistic uses glibc's ``exp`` (numpy's vectorised exp rounds
    differently). Arrays are unit-major (``[unit, row]``) and preallocated.
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
        L, rows = layout, len(x)
        self.layout, self.decay, self.rows = layout, float(decay), rows
        self.split = L.n_hidden * (L.n_in + 1)
        if self.backend == "c":
            self._w = np.empty(L.n_weights)  # the point of each call, where the kernel reads it
            self._c = _KernelCall(L, x, t, self.decay, self._w)
            return
        self.x_bias = np.vstack([np.ones(rows), x.T])  # [1 + n_in, rows]; row 0 is nnet's bias unit
        self.h_bias = np.ones((L.n_hidden + 1, rows))  # row 0: bias; rows 1..: the hidden units' outputs
        self.targets = np.ascontiguousarray(t.T)  # [n_out, rows]
        self.hidden_terms = np.empty((L.n_in + 1, L.n_hidden, rows))  # source · weight, per source
        self.out_terms = np.empty((L.n_hidden + 1, L.n_out, rows))
        # Slopes: column 0 is nnet's starting value 2·decay·w, columns 1.. each row's contribution.
        self.slopes = np.zeros((L.n_weights, rows + 1))
        self.slope_hidden = self.slopes[:self.split, 1:].reshape(L.n_hidden, L.n_in + 1, rows)  # views
        self.slope_out = self.slopes[self.split:, 1:].reshape(L.n_out, L.n_hidden + 1, rows)
        # The same sources, shaped once for the broadcasts of every call.
        self.x_terms, self.x_slopes = self.x_bias[:, None, :], self.x_bias[None, :, :]
        self._forward = None  # (weights, output weights, hidden, out, diff) of the last value()
        self.h_terms, self.h_slopes = self.h_bias[:, None, :], self.h_bias[None, :, :]

    def _point(self, wts) -> np.ndarray:
        """``wts`` as a flat float64 array (for the kernel: copied into the buffer it reads), size checked."""
        w = wts.detach().double().numpy() if isinstance(wts, torch.Tensor) else np.asarray(wts, dtype=np.float64)
        if w.size != self.layout.n_weights:
            raise SpecError(f"this {self.layout.n_in}-{self.layout.n_hidden}-{self.layout.n_out} network has "
                            f"{self.layout.n_weights} weights, not {w.size}")
        if self.backend == "c":
            self._w[:] = w.reshape(-1)
            return self._w
        return w.reshape(-1)

    def logistic(self, s: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """nnet.c's sigmoid: 0 below -15, 1 above 15, else 1/(1 + exp(-s)) with glibc's exp."""
        inside = -CLAMP <= s.min() and s.max() <= CLAMP
        minus = np.negative(s if inside else np.clip(s, -CLAMP, CLAMP))  # exp(-s) then never overflows
        # math.exp is glibc's exp, as nnet's C uses; NumPy's SIMD exp differs in the last bit now and then.
        e = np.array(list(map(math.exp, minus.ravel().tolist()))).reshape(s.shape)
        h = np.divide(1.0, np.add(1.0, e, out=e), out=out)
        if not inside:
            h[s < -CLAMP] = 0.0
            h[s > CLAMP] = 1.0
        return h

    def __call__(self, wts):
        """``(f, grad)`` at ``wts``: a float64 NumPy array (the gradient is one too) or a torch tensor."""
        return self.value(wts), self.gradient(wts)

    def value(self, wts) -> float:
        """nnet's criterion at ``wts`` (NumPy keeps its forward pass for :meth:`gradient` at the same point)."""
        w = self._point(wts)
        if self.backend == "c":
            return self._c.value()
        L = self.layout
        w_hidden = w[:self.split].reshape(L.n_hidden, L.n_in + 1)  # [unit, bias + inputs]
        w_out = w[self.split:].reshape(L.n_out, L.n_hidden + 1)
        # Forward: each unit's sum starts at its bias and adds source·weight in source order.
        np.multiply(w_hidden.T[:, :, None], self.x_terms, out=self.hidden_terms)
        hidden = self.logistic(_sequential_sum(self.hidden_terms), out=self.h_bias[1:])  # [n_hidden, rows]
        np.multiply(w_out.T[:, :, None], self.h_terms, out=self.out_terms)
        out = _sequential_sum(self.out_terms)  # [n_out, rows]
        if not L.linout:
            out = self.logistic(out)
        diff = out - self.targets
        squares = diff * diff
        error = np.add.accumulate(squares[0] if L.n_out == 1 else squares.T.ravel())[-1]  # rows, then outputs
        penalty = np.add.accumulate(self.decay * w * w)[-1] if self.decay else 0.0
        self._forward = (w.copy(), w_out, hidden, out, diff)
        return float(error + penalty)

    def gradient(self, wts):
        """nnet's gradient at ``wts``, from the forward pass :meth:`value` just made there."""
        as_tensor = isinstance(wts, torch.Tensor)
        w = self._point(wts)
        if self.backend == "c":
            grad = self._c.gradient()
            return torch.from_numpy(grad) if as_tensor else grad
        if self._forward is None or not np.array_equal(self._forward[0], w):
            self.value(w)
        _, w_out, hidden, out, diff = self._forward
        L = self.layout
        # Backward (nnet's bpass): output deltas, then hidden ones, summed over outputs last to first.
        delta_out = 2 * diff
        if not L.linout:
            delta_out = delta_out * (out * (1.0 - out))
        if L.n_out == 1:  # 0 + delta·w is delta·w: one product per unit and row
            hidden_sum = w_out[0, 1:, None] * delta_out
        else:
            hidden_sum = _sequential_sum(w_out[::-1, 1:, None] * delta_out[::-1, None, :])  # [n_hidden, rows]
        delta_hidden = hidden_sum * (hidden * (1.0 - hidden))
        if self.decay:
            np.multiply(2 * self.decay, w, out=self.slopes[:, 0])
        np.multiply(delta_hidden[:, None, :], self.x_slopes, out=self.slope_hidden)
        np.multiply(delta_out[:, None, :], self.h_slopes, out=self.slope_out)
        grad = np.add.accumulate(self.slopes, axis=1)[:, -1]
        return torch.from_numpy(grad) if as_tensor else grad


class NnetEngine:
    """The ``nnet`` engine of :func:`specc.fit` (``bfgs``): :class:`NnetObjective` in nnet's weight order,
    NumPy in and out so that no torch operation runs per evaluation. ``criterion`` is fit's Criterion."""

    def __init__(self, model: torch.nn.Module, criterion):
        if criterion.loss.name != "sse":
            raise SpecError(f"engine 'nnet' minimises nnet's criterion, the sum of squared errors: "
                            f"use loss 'sse', not '{criterion.loss.name}'")
        self.model, self.layout = model, nnet_layout(model)
        self.objective = NnetObjective(self.layout, criterion.inputs[0], criterion.targets[0], criterion.decay)
        self.x0 = tensors_to_wts(model, self.layout).numpy()

    def __call__(self, x):
        return self.objective(x)

    def value(self, x) -> float:
        return self.objective.value(x)

    def gradient(self, x):
        return self.objective.gradient(x)

    def store(self, x) -> None:
        """Leave nnet's weights ``x`` in the module."""
        apply_weights(self.model, wts_to_tensors(x, self.layout), origin="nnet Wts")


class _Net(ctypes.Structure):
    """specc_nnet in specc/nnet_kernel.c, field for field."""
    _fields_ = [("n_in", ctypes.c_int), ("n_hidden", ctypes.c_int), ("n_out", ctypes.c_int),
                ("rows", ctypes.c_int), ("linout", ctypes.c_int), ("decay", ctypes.c_double),
                ("inputs", ctypes.c_void_p), ("targets", ctypes.c_void_p), ("scratch", ctypes.c_void_p)]


def _load_kernel() -> ctypes.CDLL | None:
    """specc/nnet_kernel.c as built by pip, or None where it was not built (running from a bare checkout)."""
    spec = importlib.util.find_spec("specc._nnet_kernel")
    if spec is None or not spec.origin:
        return None
    lib = ctypes.CDLL(spec.origin)
    lib.specc_nnet_struct_size.restype = ctypes.c_size_t
    if lib.specc_nnet_struct_size() != ctypes.sizeof(_Net):  # a build older than this file
        warnings.warn(f"{spec.origin} does not match specc/nnet.py (rebuild it with 'pip install -e .'); "
                      "the nnet engine runs its NumPy port instead", RuntimeWarning, stacklevel=2)
        return None
    lib.specc_nnet_value.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    lib.specc_nnet_value.restype = ctypes.c_double
    lib.specc_nnet_gradient.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    lib.specc_nnet_gradient.restype = ctypes.c_double
    return lib


KERNEL = _load_kernel()  # the compiled criterion, when specc was installed with it


class _KernelCall:
    """One network's arguments for the C kernel, laid out once: a call passes three addresses."""

    def __init__(self, layout: NnetLayout, x: np.ndarray, t: np.ndarray, decay: float, weights: np.ndarray):
        # The kernel reads these arrays through raw pointers, so they must outlive it: keep them here,
        # as private copies that no caller can change or free under it.
        self.inputs, self.targets = np.array(x, order="C"), np.array(t, order="C")
        # hidden, outputs, their errors and deltas, the hidden deltas: as specc_nnet's comment says.
        self.scratch = np.empty(2 * layout.n_hidden + 3 * layout.n_out)
        self.grad = np.empty(layout.n_weights)
        self.net = _Net(layout.n_in, layout.n_hidden, layout.n_out, len(x), int(layout.linout), decay,
                        self.inputs.ctypes.data, self.targets.ctypes.data, self.scratch.ctypes.data)
        self.addresses = (ctypes.addressof(self.net), weights.ctypes.data)
        self.grad_address = self.grad.ctypes.data

    def value(self) -> float:
        return KERNEL.specc_nnet_value(*self.addresses)

    def gradient(self) -> np.ndarray:
        KERNEL.specc_nnet_gradient(*self.addresses, self.grad_address)
        return self.grad.copy()


def _sequential_sum(terms: np.ndarray) -> np.ndarray:
    """terms[0] + terms[1] + … in that order (C's ``for`` loop), vectorised over the other axes."""
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total
