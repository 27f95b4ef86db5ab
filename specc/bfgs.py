"""A faithful port of R's ``vmmin`` (src/appl/optim.c), the BFGS minimiser
behind ``optim(method = "BFGS")`` and the ``nnet`` package.

The aim is to reproduce R's iterates, not merely its algorithm: the same
constants, the same backtracking line search, the same resets of the inverse
Hessian and the same stopping and counting rules.  Variable names follow the
C code (B, X, c, t, D1, D2, ilast, ...) so the two can be read side by side.

Speed.  nnet-sized fits (13 parameters) run thousands of iterations, so the
optimiser's own cost matters: the state lives in preallocated float64 NumPy
arrays updated in place by ~25 NumPy calls an iteration (~0.3-1 µs each; a
torch op costs ~2.5 µs), with buffers stacked so one call does two jobs.
benchmarks/bench_bfgs.py measures it.

Rounding.  C sums each dot product and each row of B @ v left to right, and
over ~1,500 iterations a one-ulp change in the search direction can change
the iteration count, so we keep C's order rather than call ``np.dot``/``@``
(BLAS: blocked, maybe FMA) or ``np.sum`` (pairwise):

* dot products are running sums, ``np.add.accumulate``, whose last element
  is ``s = 0; for (i...) s += a[i]*b[i]`` by definition;
* ``B @ v`` is ``np.add.reduce(B * v[:, None], axis=0)`` (B is exactly
  symmetric): NumPy reduces over the first axis of a C-ordered array row by
  row, i.e. in C's order.  That is how NumPy works, not a documented promise;
  tests/test_bfgs.py checks it directly;
* the rank-2 update of B is C's lower-triangle formula, mirrored.

So the R reference tests match R's counts and points to the last bit on this
platform.  Elsewhere, if NumPy changed its reduction order, or where R's C
compiler contracts ``a*b + c`` into an FMA (R's own results then differ by
platform), results could differ from R in the last bits; the algorithm,
constants and counting rules would still be R's.

Not ported: ``mask`` (every parameter is free) and ``trace`` printing
(use ``callback`` instead).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

__all__ = ["BFGSResult", "vmmin"]

# Constants from optim.c.
STEPREDN = 0.2   # factor by which a rejected step length is shrunk
ACCTOL = 0.0001  # Armijo sufficient-decrease constant
RELTEST = 10.0   # "has the point moved?" test: reltest + x == reltest + x_new

Vector = Any  # a 1-D float64 np.ndarray or torch.Tensor, matching x0


@dataclass
class BFGSResult:
    x: Vector               # final point, float64, 1-D; same type as x0
    fmin: float
    iterations: int         # R's "iter" (== number of gradient evaluations)
    fn_evals: int           # R's counts["function"]
    converged: bool         # R's fail == 0, i.e. stopped before maxit
    history: list[float] = field(default_factory=list)  # f at start of each iteration


def _float64_copy(x0: Vector) -> np.ndarray:
    """A private, flat float64 copy of x0 (so x0 itself is never modified)."""
    if isinstance(x0, torch.Tensor):
        x0 = x0.detach().cpu().numpy()
    return np.array(x0, dtype=np.float64).reshape(-1)


def _evaluator(fn: Callable, n: int, as_torch: bool) -> Callable:
    """Wrap ``fn`` as ``evaluate(b, grad_out) -> f``.

    fn gets a fresh copy of b, of the type x0 had, because it may keep or
    modify its argument while we keep overwriting b in place.  Its gradient
    (NumPy, torch or a sequence) is copied into the float64 buffer grad_out
    for the same reason in reverse: fn may reuse the array it returned.
    """
    def evaluate(b: np.ndarray, grad_out: np.ndarray) -> float:
        x = b.copy()
        fx, gx = fn(torch.from_numpy(x) if as_torch else x)
        if isinstance(gx, torch.Tensor):
            gx = gx.numpy(force=True)  # detaches and moves to CPU if needed
        elif not isinstance(gx, np.ndarray):
            gx = np.asarray(gx, dtype=np.float64)
        if gx.size != n:
            raise ValueError(f"fn returned a gradient of {gx.size} values "
                             f"for {n} parameters")
        grad_out[:] = gx if gx.ndim == 1 else gx.reshape(n)
        return float(fx)
    return evaluate


def _update_term_indices(n: int) -> np.ndarray:
    """Flat indices into outer([D2 t; X], t) (shape 2 x n x n) that pick, for
    every (i, j), the three terms of C's B update at (max(i,j), min(i,j)):
    D2*t[i]*t[j], X[i]*t[j] and t[i]*X[j] (= outer(X, t)[j][i])."""
    i, j = np.indices((n, n))
    row, col = np.maximum(i, j), np.minimum(i, j)
    return np.concatenate([(row * n + col).ravel(),            # D2 t t'
                           (n * n + row * n + col).ravel(),    # X t'
                           (n * n + col * n + row).ravel()])   # t X'


def vmmin(fn: Callable[[Vector], tuple[float, Vector]], x0: Vector, *,
          max_iter: int = 100, abstol: float = -math.inf,
          reltol: float = 1.4901161193847656e-08,
          callback: Callable[[int, float], None] | None = None,
          gradient: Callable[[Vector], Vector] | None = None) -> BFGSResult:
    """Minimise ``fn`` from ``x0`` exactly as R's ``vmmin`` does.

    ``fn(x)`` must return ``(f, grad)``.  ``x`` is a float64 1-D NumPy array
    if ``x0`` is one (or a list), a float64 CPU torch tensor if ``x0`` is a
    tensor; each call gets its own copy.  ``grad`` may be a NumPy array or a
    torch tensor of any float dtype.  ``BFGSResult.x`` has ``x0``'s type.

    R calls separate ``fminfn`` and ``fmingr``; it only ever asks for the
    gradient at the point it just evaluated and accepted, so we keep the
    gradient of the last ``fn`` call instead of recomputing it.  Counts are
    still R's: every ``fn`` call is a function evaluation, and a gradient
    evaluation is counted only where R would call ``fmingr``.

    ``callback(iter, f)`` is invoked where R's ``trace`` prints
    "iter N value f" (once per pass of the main loop; ``iter`` repeats after
    a failed step resets B).  nnet prints every 10th, i.e. ``iter % 10 == 0``.

    ``x0`` is copied to float64; build it in float64 (``torch.tensor([-1.2,
    1.0])`` is float32, and -1.2 rounded to float32 is a different start).
    Like R, ``fmin`` can be the value of the last *rejected* trial point
    when the final line search fails, so it may differ from ``fn(x)`` in
    the last digits.

    With ``gradient``, the interface is R's own: ``fn(x)`` returns ``f``
    alone and ``gradient(x)`` the gradient, asked for only at accepted
    points and always right after ``fn`` at the same point (so it may reuse
    that call's forward pass). Rejected trial points then cost no gradient.
    """
    as_torch = isinstance(x0, torch.Tensor)
    b = _float64_copy(x0)
    n = b.size
    if gradient is None:
        evaluate, fill_gradient = _evaluator(fn, n, as_torch), None
    else:
        convert = torch.from_numpy if as_torch else (lambda v: v)
        evaluate = lambda b, grad_out: float(fn(convert(b.copy())))  # noqa: E731
        fill_gradient = _evaluator(lambda x: (0.0, gradient(x)), n, as_torch)
    result_x = torch.from_numpy if as_torch else (lambda v: v)

    if max_iter <= 0:
        # R evaluates once and reports no iterations and fail = 0.
        f0 = evaluate(b, np.empty(n))
        return BFGSResult(result_x(b), f0, 0, 0, True, [])

    g = np.empty(n)            # gradient at b (at X during a line search)
    f = evaluate(b, g)
    if fill_gradient is not None and math.isfinite(f):
        fill_gradient(b, g)
    if not math.isfinite(f):
        raise ValueError("initial value in 'vmmin' is not finite")
    fmin = f
    funcount = gradcount = 1
    it = 1
    ilast = gradcount          # gradcount at the last reset of B
    history = [fmin]
    count = n

    # Preallocated state.  Where C copies (X = b, c = g) we swap buffers;
    # everything else is updated in place.
    X = np.empty(n)            # start of the current line search
    g_trial = np.empty(n)      # gradient at the latest trial point
    c = np.empty(n)            # y = change in gradient
    rb = np.empty(n)           # RELTEST + b
    B = np.empty((n, n))       # inverse Hessian approximation, kept symmetric
    identity = np.eye(n)
    # B @ v: row 0 stays 0 (C's `s = 0`), rows 1.. get B * v[:, None].
    matvec_terms = np.zeros((n + 1, n))
    matvec_products = matvec_terms[1:]
    # Stacked so that one NumPy call serves two: outer([Dt; By], t) and the
    # dot products [By; t] . c.  t is the search direction, then the step.
    DtByt = np.empty((3, n))
    Dt, By, t = DtByt          # D2 * t, B y (C reuses X for it), t
    DtBy_cols, t_row, Byt = DtByt[:2, :, None], t[None, :], DtByt[1:]
    c_col = c[:, None]
    dot_terms = np.empty((2, n))  # products, then their running sums
    gradproj_terms = dot_terms[1]
    outer_terms = np.empty((2, n, n))  # outer(D2 t, t), outer(X, t)
    update_terms = np.empty((3, n, n))
    DtTt, XtT, TXt = update_terms      # C's three terms, see the update
    update_sources = _update_term_indices(n)
    U = np.empty((n, n))       # the update of B
    # NumPy converts a Python float operand on every call (~0.2 µs); a 0-d
    # array that we write the value into is cheaper.
    scalar = np.empty(())
    reltest = np.array(RELTEST)

    # Local aliases: attribute look-ups cost as much as small NumPy calls.
    multiply, subtract, divide, add = np.multiply, np.subtract, np.divide, np.add
    add_down, subtract_down = np.add.reduce, np.subtract.reduce
    accumulate, isfinite = np.add.accumulate, math.isfinite
    gather_outer_terms = outer_terms.reshape(-1).take
    update_terms_flat = update_terms.reshape(-1)

    while True:
        if ilast == gradcount:
            B[:] = identity    # (re)start from steepest descent
        # t = -B g: C's `s = 0; s -= B[i][j] * g[j]` for j ascending.  Column
        # i of B * g[:, None] holds those terms (B is exactly symmetric), and
        # subtracting down the columns from the zero row repeats C's steps.
        multiply(B, g[:, None], out=matvec_products)
        subtract_down(matvec_terms, axis=0, out=t)
        multiply(t, g, out=gradproj_terms)   # gradproj += t[i] * g[i]
        accumulate(gradproj_terms, out=gradproj_terms)
        gradproj = gradproj_terms.item(-1)

        if gradproj < 0.0:     # search direction is downhill
            X, b = b, X        # C copies X = b; b becomes the trial point
            steplength = 1.0
            accpoint = False
            add(X, reltest, out=rb)
            unmoved = rb.tolist()  # reltest + X: b "has not moved" if equal
            while True:
                scalar[()] = steplength
                multiply(t, scalar, out=b)
                add(X, b, out=b)   # b = X + steplength * t, as C rounds it
                # C counts coordinates that did not move, but only ever asks
                # whether all n of them stayed put (the search has failed).
                add(b, reltest, out=rb)
                count = n if rb.tolist() == unmoved else 0
                if count < n:
                    f = evaluate(b, g_trial)
                    funcount += 1
                    accpoint = (isfinite(f)
                                and f <= fmin + gradproj * steplength * ACCTOL)
                    if not accpoint:
                        steplength *= STEPREDN
                if count == n or accpoint:
                    break
            # As in R, f here may be the last *rejected* value when the
            # search failed; it still feeds the convergence test and Fmin.
            enough = f > abstol and abs(f - fmin) > reltol * (abs(fmin) + reltol)
            if not enough:     # stop if value is small or change is tiny
                count = n
                fmin = f
            if count < n:      # making progress
                fmin = f
                if fill_gradient is not None:
                    fill_gradient(b, g_trial)
                g, g_trial = g_trial, g  # R's fmingr(b): b was just evaluated
                gradcount += 1
                it += 1
                history.append(fmin)
                scalar[()] = steplength
                multiply(t, scalar, out=t)   # s = actual step
                subtract(g, g_trial, out=c)  # y = change in gradient
                # C computes D1 = t'y and only if D1 > 0 goes on to By = B y
                # and D2 = By'y.  Computing By first (wasted only when
                # D1 <= 0, which is rare) lets one call form both sums.
                multiply(B, c_col, out=matvec_products)
                add_down(matvec_terms, axis=0, out=By)
                multiply(Byt, c, out=dot_terms)
                accumulate(dot_terms, axis=1, out=dot_terms)
                D1 = dot_terms.item(1, -1)
                if D1 > 0:
                    D2 = 1.0 + dot_terms.item(0, -1) / D1
                    # C updates the lower triangle only, evaluating
                    # (D2*t[i]*t[j] - X[i]*t[j] - t[i]*X[j]) / D1 in that
                    # order, and reads B[j][i] for the upper one.  So form
                    # outer(D2 t, t) and outer(X, t) (t[i]*X[j] is the latter
                    # transposed), gather each term at [max(i,j), min(i,j)],
                    # and B stays exactly symmetric and bit for bit C's.
                    scalar[()] = D2
                    multiply(t, scalar, out=Dt)
                    multiply(DtBy_cols, t_row, out=outer_terms)
                    gather_outer_terms(update_sources, out=update_terms_flat,
                                       mode="clip")  # "clip": unbuffered
                    subtract(DtTt, XtT, out=U)
                    subtract(U, TXt, out=U)
                    scalar[()] = D1
                    divide(U, scalar, out=U)
                    add(B, U, out=B)
                else:          # curvature condition fails: reset B
                    ilast = gradcount
            else:              # no progress
                if ilast < gradcount:     # retry with B = I unless just reset
                    count = 0
                    ilast = gradcount
        else:                  # uphill direction
            count = 0
            if ilast == gradcount:
                count = n      # already steepest descent: give up
            else:
                ilast = gradcount         # reset B and retry
        if callback is not None:
            callback(it, f)
        if it >= max_iter:
            break
        if gradcount - ilast > 2 * n:
            ilast = gradcount             # periodic restart
        if count == n and ilast == gradcount:
            break

    return BFGSResult(x=result_x(b), fmin=fmin, iterations=it,
                      fn_evals=funcount, converged=it < max_iter,
                      history=history)
