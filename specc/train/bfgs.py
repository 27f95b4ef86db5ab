"""specc's variable-metric minimiser: the BFGS method of Nash's Algorithm 21.

Source: J. C. Nash, *Compact Numerical Methods for Computers: Linear Algebra and Function
Minimisation*, 2nd ed. (Adam Hilger, 1990), Algorithm 21, the variable-metric minimiser. It is
the method R's ``optim(method = "BFGS")`` and R's ``nnet`` use, so with the same constants and the
same arithmetic this code reaches the same points as they do; tests/test_bfgs.py and
tests/test_nnet.py hold it to numbers printed by R, which serves as a test oracle only
(docs/training.md, "Where the algorithms come from").

The method. The minimiser keeps a point x, the gradient g there, and H, an approximation to the
inverse of the Hessian that starts as the identity. Each iteration

1. looks along t = -H g. A direction that does not go downhill (t·g >= 0) resets H to the
   identity and the iteration is tried again along -g; if H was the identity already, that is
   the end.
2. searches the line by backtracking: x + s t for s = 1, 0.2, 0.04, ..., taking the first point
   where f is finite and f(x + s t) <= f(x) + 1e-4 s (t·g). The search gives up when the trial
   point no longer differs from x, coordinate by coordinate after adding 10 to both (for
   |x| <= 10 an absolute test at 10's precision, a relative one beyond).
3. learns from the step: with d = s t and c = g_new - g, if d·c > 0, H becomes
   H + (1 + c·Hc / d·c) d d' / d·c - (d (Hc)' + (Hc) d') / d·c (the BFGS update of the inverse);
   otherwise H is reset to the identity. H is also reset once it has absorbed more than 2n
   updates (n parameters) since it was last the identity: optim does so too, and its
   iteration counts (the tests' reference numbers) are not reproduced without this rule.
4. stops when f <= abstol, when an iteration improves f by at most reltol (|f_old - f| <=
   reltol (|f_old| + reltol)), when no step can be taken along -g, or after max_iter
   iterations. A stop on a tolerance or a failed search with H not the identity is first
   retried along -g, so the last word is always steepest descent's.

Counting follows what optim reports: ``iterations`` is the number of gradient evaluations (the
start included) and ``fn_evals`` the number of function evaluations.

Arithmetic. Over a thousand iterations a one-ulp change in a direction can change where a fit
stops, so the tests compare runs with R's to the last bit, and this code fixes the order of
every floating-point operation that matters: every dot product and every entry of H v is summed
left to right (index 0 first), the acceptance bound is (t·g · s) · 1e-4, and the update forms
each entry of the lower triangle (row p >= column q) as ((w_p d_q - y_p d_q) - d_p y_q) / d·c with
w = (1 + c·y / d·c) d and y = H c, then mirrors it, so that H stays exactly symmetric. NumPy's
``@``/``np.dot`` (BLAS: blocked, possibly fused multiply-adds) and ``np.sum`` (pairwise) would
round differently, so they are not used here:

* a dot product is the last element of ``np.add.accumulate`` of the products, a running sum by
  definition;
* H v is ``np.add.reduce`` of ``H * v[:, None]`` over axis 0: entry i adds H[j, i] v[j] =
  H[i, j] v[j] for j = 0, 1, ... because NumPy reduces a C-ordered array over its first axis one
  row at a time. NumPy does not promise that order; tests/test_bfgs.py checks it.

The gradient is kept negated (the steepest-descent direction -g): then t = H(-g) needs no
separate negation, and every quantity above comes out bit for bit the same, since negation is
exact.

Speed. nnet-sized fits (13 parameters) run thousands of iterations, so the minimiser's own cost
matters: the state lives in preallocated float64 arrays updated in place by about twenty NumPy
calls an iteration; benchmarks/bench_bfgs.py measures it. Where that cost dominates, the loop
also exists in C, written from the arithmetic above: the ``nnet`` engine runs it against its
compiled criterion (``specc_nnet_vmmin`` in specc/train/nnet_kernel.c, through
:meth:`specc.train.nnet.NnetObjective.vmmin`), and tests/test_nnet.py holds its points, values,
histories and counts to this code's bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

__all__ = ["BFGSResult", "VariableMetric", "vmmin"]

SHRINK = 0.2          # a rejected step is multiplied by this
ARMIJO = 1e-4         # fraction of the predicted decrease a step must achieve
MOVE_OFFSET = 10.0    # x_i has moved when MOVE_OFFSET + x_i changes

Vector = Any  # a 1-D float64 np.ndarray or torch.Tensor, matching x0

# The ufuncs the iterations call, looked up once (a module attribute costs as much as a tiny op).
_add, _subtract, _multiply, _divide = np.add, np.subtract, np.multiply, np.divide
_sum_rows, _running_sum = np.add.reduce, np.add.accumulate


@dataclass
class BFGSResult:
    x: Vector               # final point, float64, 1-D; same type as x0
    fmin: float
    iterations: int         # gradient evaluations, the start included (optim's counts["gradient"])
    fn_evals: int           # function evaluations (optim's counts["function"])
    converged: bool         # stopped by a rule before max_iter (optim's convergence == 0)
    history: list[float] = field(default_factory=list)  # f at the start of each iteration


def _as_float64(x0: Vector) -> np.ndarray:
    """A private, flat float64 copy of x0 (x0 itself is never modified)."""
    if isinstance(x0, torch.Tensor):
        x0 = x0.detach().cpu().numpy()
    return np.array(x0, dtype=np.float64).reshape(-1)


class _Objective:
    """The caller's function, seen as: value at a point, minus the gradient into a buffer.

    The function gets its own copy of each point, of x0's type, since it may keep or change it
    while the minimiser reuses its arrays; the gradient it returns (NumPy, torch, a sequence)
    is copied out, negated, for the converse reason. ``value(x, out)`` returns f(x) and, when
    fn returns gradients too, writes -grad f(x) into out; otherwise ``downhill(x, out)`` writes
    -grad f(x) at the point ``value`` was just called with (and is None when value writes it).
    """

    def __init__(self, fn: Callable, gradient: Callable | None, n: int, as_torch: bool):
        wrap = self.wrap = torch.from_numpy if as_torch else (lambda v: v)
        negative, ndarray, Tensor = np.negative, np.ndarray, torch.Tensor

        def store_negated(grad, out: np.ndarray) -> None:
            if type(grad) is not ndarray:
                grad = grad.numpy(force=True) if isinstance(grad, Tensor) else np.asarray(grad, dtype=np.float64)
            if grad.size != n:
                raise ValueError(f"fn returned a gradient of {grad.size} values for {n} parameters")
            negative(grad if grad.ndim == 1 else grad.reshape(n), out=out)

        if gradient is None and not as_torch:
            def value(x: np.ndarray, out: np.ndarray) -> float:
                f, grad = fn(x.copy())
                store_negated(grad, out)
                return float(f)
        elif gradient is None:
            def value(x: np.ndarray, out: np.ndarray) -> float:
                f, grad = fn(wrap(x.copy()))
                store_negated(grad, out)
                return float(f)
        else:
            def value(x: np.ndarray, out: np.ndarray) -> float:
                return float(fn(wrap(x.copy())))

            def downhill(x: np.ndarray, out: np.ndarray) -> None:
                store_negated(gradient(wrap(x.copy())), out)
        self.value, self.downhill = value, (None if gradient is None else downhill)


class VariableMetric:
    """One minimisation by Nash's variable-metric method; :func:`vmmin` is its interface.

    ``run()`` repeats ``iterate()`` until a stopping rule holds. An iteration is a ``direction``,
    a ``line_search`` along it and, after a step, an ``update`` of the inverse-Hessian
    approximation. Arrays are allocated once and updated in place, and NumPy gets scalars as
    0-d arrays (converting a Python float costs it more than the arithmetic at this size).
    """

    def __init__(self, objective: _Objective, x0: np.ndarray, *, max_iter: int, abstol: float,
                 reltol: float, callback: Callable[[int, float], None] | None):
        n = x0.size
        self.objective, self.n = objective, n
        self.gradient_at = objective.downhill  # None when objective.value leaves the gradient
        self.max_iter, self.abstol, self.reltol, self.callback = max_iter, abstol, reltol, callback
        self.x = x0                       # the current point (after a search: its last trial point)
        self.base = np.empty(n)           # where the current line search started
        self.shifted = np.empty(n)        # MOVE_OFFSET + a point
        self.shifted_x: list[float] = []  # MOVE_OFFSET + x, as a list (carried from the search)
        # -g where the current direction was computed, and -g at the latest trial point (each
        # with a column view for H v); the two swap roles after a step.
        self.downhill, self.downhill_new = np.empty(n), np.empty(n)
        self.downhill_col, self.downhill_new_col = self.downhill[:, None], self.downhill_new[:, None]
        self.change = np.empty(n)         # c = g_new - g
        self.change_col = self.change[:, None]
        self.H = np.eye(n)                # inverse-Hessian approximation, exactly symmetric
        self.identity = np.eye(n)
        self.products = np.empty((n, n))  # H[j, i] v[j], summed over j for (H v)_i
        # Rows w, y, d: the direction t becomes the step d = s t in place; y = H c; and
        # w = (1 + y·c / d·c) d. Adjacent rows let one pair of calls form y·c and d·c together,
        # and one call the outer products w d' and y d'.
        self.wyd = np.empty((3, n))
        self.w, self.y, self.t = self.wyd  # (views: the names below are all views, made once)
        self.yd, self.wy_cols = self.wyd[1:], self.wyd[:2, :, None]
        self.dots = np.empty((2, n))      # products, then their running sums
        self.dot = self.dots[0]
        self.outer = np.empty((2, n, n))  # w d' and y d'
        self.wd, self.yd_outer = self.outer
        self.dy_outer = self.yd_outer.T   # d y' (d_p y_q = y_q d_p)
        self.correction = np.empty((n, n))
        self.correction_flat = self.correction.reshape(-1)
        self.mirrored = np.empty((n, n))
        self.mirrored_flat = self.mirrored.reshape(-1)
        rows, cols = np.indices((n, n))   # flat index of (max(p, q), min(p, q)) for every (p, q)
        self.lower_of = (np.maximum(rows, cols) * n + np.minimum(rows, cols)).ravel()
        self.scalar = np.empty(())
        self.fmin = math.nan              # f at the current point (see ``converging``)
        self.f_last = math.nan            # the value of the latest evaluation
        self.iterations = self.fn_evals = 0
        self.updates = 0                  # updates absorbed since H was last the identity
        self.history: list[float] = []

    # ---------------------------------------------------------------- the pieces
    def start(self) -> None:
        """Evaluate f and g at x0, the first of ``iterations``."""
        f = self.objective.value(self.x, self.downhill)
        self.fn_evals = 1
        if not math.isfinite(f):
            raise ValueError(f"vmmin: the objective is not finite at the starting point (f = {f})")
        if self.gradient_at is not None:
            self.gradient_at(self.x, self.downhill)
        _add(self.x, MOVE_OFFSET, out=self.shifted)
        self.shifted_x = self.shifted.tolist()
        self.fmin = self.f_last = f
        self.iterations = 1
        self.history.append(f)

    def restart(self) -> None:
        """Forget the curvature learnt so far: H = I, the next direction is steepest descent."""
        self.H[:] = self.identity
        self.updates = 0

    def direction(self) -> float:
        """Set t = -H g and return the slope t·g (negative: t goes downhill)."""
        t, dot = self.t, self.dot
        # (H v)_i: the products H[j, i] v[j] = H[i, j] v[j] reduced over j, one row at a time
        _multiply(self.H, self.downhill_col, out=self.products)
        _sum_rows(self.products, axis=0, out=t)
        _multiply(t, self.downhill, out=dot)
        _running_sum(dot, out=dot)
        return -dot.item(-1)  # t·g = -(t·(-g)), exactly

    def line_search(self, slope: float) -> tuple[bool, float]:
        """Backtrack from x along t. Returns (accepted, step); x is left at the last trial point.

        The search fails (accepted False) when a trial point equals its start in every
        coordinate by the MOVE_OFFSET test; f_last is then the last value evaluated, if any.
        """
        self.x, self.base = self.base, self.x
        x, base, t, shifted, scalar = self.x, self.base, self.t, self.shifted, self.scalar
        start = self.shifted_x  # MOVE_OFFSET + base, kept from when base was a trial point
        value, new_downhill, bound = self.objective.value, self.downhill_new, self.fmin
        step, evaluations, accepted = 1.0, 0, False
        while True:
            if step == 1.0:
                _add(base, t, out=x)
            else:
                scalar[()] = step
                _multiply(t, scalar, out=x)
                _add(base, x, out=x)
            _add(x, MOVE_OFFSET, out=shifted)
            moved = shifted.tolist()
            if moved == start:
                break
            f = value(x, new_downhill)
            evaluations += 1
            # The bound is rounded as (slope * step) * ARMIJO, left to right.
            if f <= bound + slope * step * ARMIJO and math.isfinite(f):
                accepted = True
                break
            step *= SHRINK
        self.shifted_x = moved
        if evaluations:
            self.f_last = f
            self.fn_evals += evaluations
        return accepted, step

    def converging(self) -> bool:
        """The tolerance test on the latest value: f <= abstol, or too small a change from fmin."""
        f, fmin, reltol = self.f_last, self.fmin, self.reltol
        return not (f > self.abstol and abs(f - fmin) > reltol * (abs(fmin) + reltol))

    def update(self, step: float) -> None:
        """After a step from base to x: take the gradient at x and update H (or reset it)."""
        multiply, subtract, scalar = _multiply, _subtract, self.scalar
        if self.gradient_at is not None:
            self.gradient_at(self.x, self.downhill_new)
        self.downhill, self.downhill_new = self.downhill_new, self.downhill
        self.downhill_col, self.downhill_new_col = self.downhill_new_col, self.downhill_col
        c, dots, d = self.change, self.dots, self.t
        subtract(self.downhill_new, self.downhill, out=c)   # (-g_old) - (-g_new) = g_new - g_old
        if step != 1.0:
            scalar[()] = step
            multiply(d, scalar, out=d)                      # t becomes the step d = s t
        multiply(self.H, self.change_col, out=self.products)
        _sum_rows(self.products, axis=0, out=self.y)        # y = H c
        multiply(self.yd, c, out=dots)                      # y·c and d·c
        _running_sum(dots, axis=1, out=dots)
        dc = dots.item(1, -1)
        if dc <= 0:       # no positive curvature along the step: H would lose positive definiteness
            self.restart()
            return
        scalar[()] = 1.0 + dots.item(0, -1) / dc
        multiply(d, scalar, out=self.w)
        multiply(self.wy_cols, d, out=self.outer)           # w_p d_q and y_p d_q
        U = self.correction
        subtract(self.wd, self.yd_outer, out=U)
        subtract(U, self.dy_outer, out=U)                   # - d_p y_q
        scalar[()] = dc
        _divide(U, scalar, out=U)
        # Keep the lower triangle (p >= q) and mirror it, so that H stays exactly symmetric.
        self.correction_flat.take(self.lower_of, out=self.mirrored_flat, mode="clip")  # clip: unbuffered
        _add(self.H, self.mirrored, out=self.H)
        self.updates += 1
        if self.updates > 2 * self.n:
            self.restart()

    # ---------------------------------------------------------------- the loop
    def iterate(self) -> bool:
        """One pass: a direction, a search and an update. Returns False when the minimiser stops."""
        slope = self.direction()
        progress = False
        if slope < 0.0:
            accepted, step = self.line_search(slope)
            if self.converging():
                self.fmin = self.f_last
            elif accepted:
                self.fmin = self.f_last
                self.iterations += 1
                self.history.append(self.fmin)
                self.update(step)
                progress = True
        stop = False
        if not progress:  # no step, or too small a one: retry along -g, unless that was -g
            if self.updates == 0:
                stop = True
            else:
                self.restart()
        if self.callback is not None:
            self.callback(self.iterations, self.f_last)
        return not stop and self.iterations < self.max_iter

    def run(self) -> None:
        self.start()
        while self.iterate():
            pass


def vmmin(fn: Callable[[Vector], tuple[float, Vector]], x0: Vector, *,
          max_iter: int = 100, abstol: float = -math.inf,
          reltol: float = 1.4901161193847656e-08,
          callback: Callable[[int, float], None] | None = None,
          gradient: Callable[[Vector], Vector] | None = None) -> BFGSResult:
    """Minimise ``fn`` from ``x0`` by the variable-metric method (see the module's docstring).

    ``fn(x)`` returns ``(f, grad)``. ``x`` is a float64 1-D NumPy array if ``x0`` is one (or a
    list), a float64 CPU torch tensor if ``x0`` is a tensor; each call gets its own copy.
    ``grad`` may be a NumPy array, a torch tensor of any float dtype or a sequence.
    ``BFGSResult.x`` has ``x0``'s type. The defaults are optim's: ``max_iter`` 100, no
    ``abstol``, ``reltol`` sqrt(machine epsilon).

    With ``gradient``, ``fn(x)`` returns ``f`` alone and ``gradient(x)`` the gradient, asked for
    only at accepted points, always right after ``fn`` at the same point (so it may reuse that
    call's forward pass): rejected trial points then cost no gradient.

    ``callback(iteration, f)`` runs after every pass of the main loop with the latest value
    (``iteration`` repeats when a pass only reset H); R's ``trace`` prints at the same places.

    ``x0`` is copied to float64; build it in float64 (``torch.tensor([-1.2, 1.0])`` is float32,
    and -1.2 rounded to float32 is another start). As in optim, ``fmin`` can be the value at the
    last *rejected* trial point when the final search fails, so it may differ from ``fn(x)`` in
    the last digits.
    """
    as_torch = isinstance(x0, torch.Tensor)
    x = _as_float64(x0)
    objective = _Objective(fn, gradient, x.size, as_torch)
    if max_iter <= 0:  # optim evaluates once and reports no iterations
        f0 = objective.value(x, np.empty(x.size))
        return BFGSResult(objective.wrap(x), f0, 0, 0, True, [])
    m = VariableMetric(objective, x, max_iter=max_iter, abstol=abstol, reltol=reltol, callback=callback)
    m.run()
    return BFGSResult(x=objective.wrap(m.x), fmin=m.fmin, iterations=m.iterations,
                      fn_evals=m.fn_evals, converged=m.iterations < max_iter, history=m.history)
