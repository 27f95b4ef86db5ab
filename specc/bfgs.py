"""A faithful port of R's ``vmmin`` (src/appl/optim.c), the BFGS minimiser
behind ``optim(method = "BFGS")`` and the ``nnet`` package.

The aim is to reproduce R's iterates, not merely its algorithm: the same
constants, the same backtracking line search, the same resets of the inverse
Hessian and the same stopping and counting rules.  Where R's C code fixes an
order of floating-point operations (sequential dot products, the lower
triangle of the symmetric update) we follow it, because over ~1,500
iterations one-ulp differences in the search direction are enough to change
the iteration count.  Variable names follow the C code (B, X, c, t, D1, D2,
ilast, ...) so the two can be read side by side.

Not ported: ``mask`` (every parameter is free) and ``trace`` printing
(use ``callback`` instead).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

__all__ = ["BFGSResult", "vmmin"]

# Constants from optim.c.
STEPREDN = 0.2   # factor by which a rejected step length is shrunk
ACCTOL = 0.0001  # Armijo sufficient-decrease constant
RELTEST = 10.0   # "has the point moved?" test: reltest + x == reltest + x_new


@dataclass
class BFGSResult:
    x: torch.Tensor         # final point (float64, 1-D)
    fmin: float
    iterations: int         # R's "iter" (== number of gradient evaluations)
    fn_evals: int           # R's counts["function"]
    converged: bool         # R's fail == 0, i.e. stopped before maxit
    history: list[float] = field(default_factory=list)  # f at start of each iteration


def _seqsum(a: torch.Tensor) -> torch.Tensor:
    """Sum along the last dim strictly left to right, like the C ``for`` loops.

    torch.sum/mv use blocked (and possibly FMA) reductions whose rounding
    differs from R's; CPU cumsum is a plain sequential loop, so its last
    element matches ``s = 0; for (j...) s += a[j]`` bit for bit.
    """
    return torch.cumsum(a, dim=-1)[..., -1]


def vmmin(fn: Callable[[torch.Tensor], tuple[float, torch.Tensor]],
          x0: torch.Tensor, *, max_iter: int = 100, abstol: float = -math.inf,
          reltol: float = 1.4901161193847656e-08,
          callback: Callable[[int, float], None] | None = None) -> BFGSResult:
    """Minimise ``fn`` from ``x0`` exactly as R's ``vmmin`` does.

    ``fn(x)`` must return ``(f, grad)``.  R calls separate ``fminfn`` and
    ``fmingr``; it only ever asks for the gradient at the point it just
    evaluated and accepted, so we keep the gradient of the last ``fn`` call
    instead of recomputing it.  Counts are still R's: every ``fn`` call is a
    function evaluation, and a gradient evaluation is counted only where R
    would call ``fmingr``.

    ``callback(iter, f)`` is invoked where R's ``trace`` prints
    "iter N value f" (once per pass of the main loop; ``iter`` repeats after
    a failed step resets B).  nnet prints every 10th, i.e. ``iter % 10 == 0``.
    """
    b = x0.detach().to(torch.float64).flatten().clone()
    n = b.numel()

    def evaluate(x: torch.Tensor) -> tuple[float, torch.Tensor]:
        fx, gx = fn(x.clone())  # clone: fn may mark or modify its argument
        if gx.dtype != torch.float64 or gx.dim() != 1:
            gx = gx.to(torch.float64).flatten()
        return float(fx), gx.detach()

    if max_iter <= 0:
        # R evaluates once and reports no iterations and fail = 0.
        f0, _ = evaluate(b)
        return BFGSResult(b, f0, 0, 0, True, [])

    f, g = evaluate(b)
    if not math.isfinite(f):
        raise ValueError("initial value in 'vmmin' is not finite")
    fmin = f
    funcount = gradcount = 1
    it = 1
    ilast = gradcount          # gradcount at the last reset of B
    history = [fmin]
    eye = torch.eye(n, dtype=torch.float64)
    lower = torch.ones(n, n, dtype=torch.bool).tril()
    B = eye
    count = n

    # Tensors are never modified in place below (every update makes a new
    # tensor), so plain assignment is enough to keep old values around.
    while True:
        if ilast == gradcount:
            B = eye            # (re)start from steepest descent
        X, c = b, g            # start of this line search and its gradient
        # t = -B g.  C does s -= B[i][j] * g[j] from s = 0, which equals a
        # sequential sum of B[i][j] * (-g[j]) exactly (negation is exact).
        t = _seqsum(B * g.neg())
        gradproj = float(_seqsum(t * g))

        if gradproj < 0.0:     # search direction is downhill
            steplength = 1.0
            accpoint = False
            RX = RELTEST + X
            while True:
                b = X + steplength * t  # not torch.add(alpha=): that may fuse
                # C counts coordinates that did not move, but only ever asks
                # whether all n of them stayed put (the search has failed).
                count = n if torch.equal(RX, RELTEST + b) else 0
                if count < n:
                    f, g_last = evaluate(b)
                    funcount += 1
                    accpoint = (math.isfinite(f)
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
                g = g_last     # R's fmingr(b): b is the point just evaluated
                gradcount += 1
                it += 1
                history.append(fmin)
                t = steplength * t        # s = actual step
                c = g - c                 # y = change in gradient
                D1 = float(_seqsum(t * c))
                if D1 > 0:
                    X = _seqsum(B * c)    # X reused as B y, as in C
                    D2 = 1.0 + float(_seqsum(X * c)) / D1
                    # C updates only the lower triangle, evaluating
                    # (D2*t[i]*t[j] - X[i]*t[j] - t[i]*X[j]) / D1 in that
                    # order, and reads B[j][i] for the upper one.  Mirroring
                    # the lower triangle of U reproduces that bit for bit.
                    U = (torch.outer(D2 * t, t) - torch.outer(X, t)
                         - torch.outer(t, X)) / D1
                    B = B + torch.where(lower, U, U.T)
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

    return BFGSResult(x=b, fmin=fmin, iterations=it, fn_evals=funcount,
                      converged=it < max_iter, history=history)
