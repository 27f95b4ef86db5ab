"""Tests for specc.train.bfgs, specc's variable-metric minimiser (Nash's Algorithm 21).

R is the oracle: the method is the one R's optim(method = "BFGS") uses, and
specc fixes the order of its floating-point operations (see specc/train/bfgs.py),
so from the same start it reaches the same points.  The Rosenbrock reference
numbers were produced by R 4.2.2 with the ?optim example functions:

    fr  <- function(x) 100 * (x[2] - x[1] * x[1])^2 + (1 - x[1])^2
    grr <- function(x) c(-400 * x[1] * (x[2] - x[1] * x[1]) - 2 * (1 - x[1]),
                         200 * (x[2] - x[1] * x[1]))
    optim(c(-1.2, 1), fr, grr, method = "BFGS")                         # (a)
    optim(c(-1.2, 1), fr, grr, method = "BFGS", control = list(maxit = 10))
    optim(c(-1.2, 1), fr, grr, method = "BFGS", control = list(abstol = 0.1))

printed with digits = 17, and likewise for the 6-d chained Rosenbrock in
test_chained_rosenbrock_matches_r (R code in its docstring) and for
optim(c(0, 0), function(x) x[1]^2 + x[2]^2 + 3, function(x) 2 * x,
method = "BFGS"), which stops at once with counts 1 / 1.  The counts must
match exactly and the values to (nearly) the last bit.  Should that order
ever be lost (e.g. NumPy changing how it reduces), these are the tests that
say so; relax them only to the point and value, with a comment, never
silently.
"""

import math

import numpy as np
import pytest
import torch

from specc.train.bfgs import BFGSResult, VariableMetric, _Objective, vmmin

F64 = torch.float64


def rosenbrock(x: torch.Tensor) -> tuple[float, torch.Tensor]:
    # Same operation order as the R functions above, so f and g are
    # bit-identical to what R's optim sees.
    x1, x2 = x[0].item(), x[1].item()
    d, e = x2 - x1 * x1, 1 - x1
    f = 100 * (d * d) + e * e
    g = torch.tensor([-400 * x1 * d - 2 * e, 200 * d], dtype=F64)
    return f, g


def start(kind: str = "torch"):
    # float64 on purpose: torch.tensor([-1.2, 1.0]) is float32, and -1.2
    # rounded to float32 sends BFGS down a visibly different path.
    return {"torch": lambda: torch.tensor([-1.2, 1.0], dtype=F64),
            "numpy": lambda: np.array([-1.2, 1.0])}[kind]()


X0_TYPES = {"torch": torch.Tensor, "numpy": np.ndarray}


def counting(fn):
    calls = []

    def wrapped(x):
        calls.append(x)
        return fn(x)
    return wrapped, calls


@pytest.mark.parametrize("kind", X0_TYPES)
def test_rosenbrock_matches_r_default(kind):
    fn, calls = counting(rosenbrock)
    r = vmmin(fn, start(kind))  # R's defaults: maxit 100, reltol sqrt(eps)
    assert isinstance(r, BFGSResult)
    # R: $counts function 110 gradient 43, $convergence 0
    assert (r.fn_evals, r.iterations, r.converged) == (110, 43, True)
    assert len(calls) == r.fn_evals  # one fn call per R function evaluation
    # fn sees x0's type, float64, and a fresh object on every call.
    assert all(type(x) is X0_TYPES[kind] and x.dtype in (F64, np.float64)
               for x in calls)
    assert len({id(x) for x in calls}) == len(calls)
    assert len(r.history) == r.iterations
    assert type(r.x) is X0_TYPES[kind]
    assert r.x.dtype in (F64, np.float64) and r.x.shape == (2,)
    assert r.x.tolist() == pytest.approx(
        [0.99999999690491403, 0.99999999379741900], rel=1e-12, abs=0)
    assert r.fmin == pytest.approx(9.5949556437698302e-18, rel=1e-9)


def chained_rosenbrock(x: torch.Tensor) -> tuple[float, torch.Tensor]:
    xs = x.tolist()
    s, g = 0.0, [0.0] * len(xs)
    for i in range(len(xs) - 1):
        d, e = xs[i + 1] - xs[i] * xs[i], 1 - xs[i]
        s = s + (100 * (d * d) + e * e)
        g[i] = g[i] + (-400 * xs[i] * d - 2 * e)
        g[i + 1] = g[i + 1] + 200 * d
    return s, torch.tensor(g, dtype=F64)


@pytest.mark.parametrize("kind", X0_TYPES)
def test_chained_rosenbrock_matches_r(kind):
    """n = 6 exercises the full symmetric update of H.  R reference:

    fc <- function(x) { s <- 0; for (i in 1:5) { d <- x[i+1] - x[i]*x[i]
        e <- 1 - x[i]; s <- s + (100*(d*d) + e*e) }; s }
    gc <- function(x) { g <- numeric(6); for (i in 1:5) {
        d <- x[i+1] - x[i]*x[i]; e <- 1 - x[i]
        g[i] <- g[i] + (-400*x[i]*d - 2*e); g[i+1] <- g[i+1] + 200*d }; g }
    optim(rep(c(-1.2, 1), 3), fc, gc, method = "BFGS")

    (explicit loops because R's sum() accumulates in long double).
    """
    x0 = [-1.2, 1.0] * 3
    r = vmmin(chained_rosenbrock,
              torch.tensor(x0, dtype=F64) if kind == "torch" else np.array(x0))
    assert (r.fn_evals, r.iterations, r.converged) == (219, 76, True)
    # fmin ~ 1e-23 is very sensitive to rounding: an update of H rounded
    # otherwise (e.g. not mirrored from the lower triangle) moves it by ~3e-3.
    assert r.fmin == pytest.approx(9.0109694223458987e-24, rel=1e-9)
    assert r.x.tolist() == pytest.approx(
        [0.99999999999985589, 0.99999999999968181, 0.99999999999936784,
         0.99999999999877087, 0.99999999999751288, 0.99999999999496236],
        rel=1e-15, abs=0)


def test_zero_gradient_at_start_stops_at_once():
    # H = I gives the slope t·g = 0, which is not downhill; right after a reset
    # that ends the search (R: counts 1 / 1, convergence 0).
    fn = lambda x: (float(x @ x) + 3.0, 2 * x)  # noqa: E731
    r = vmmin(fn, torch.zeros(2, dtype=F64))
    assert (r.fn_evals, r.iterations, r.converged, r.fmin) == (1, 1, True, 3.0)


def test_maxit_is_honoured_and_reports_not_converged():
    r = vmmin(rosenbrock, start(), max_iter=10)
    # R: counts 26 / 10, convergence 1
    assert (r.fn_evals, r.iterations, r.converged) == (26, 10, False)
    assert len(r.history) == 10
    assert r.x.tolist() == pytest.approx(
        [-0.061292561069772794, -0.045339168757372914], rel=1e-12, abs=0)
    assert r.fmin == pytest.approx(1.3673830993995524, rel=1e-12)


def test_abstol_stops_early():
    r = vmmin(rosenbrock, start(), abstol=0.1)
    # R: counts 76 / 21, convergence 0, value 0.067112644301407703
    assert (r.fn_evals, r.iterations, r.converged) == (76, 21, True)
    assert r.fmin < 0.1 < r.history[-2]
    assert r.fmin == pytest.approx(0.067112644301407703, rel=1e-12)


def test_history_and_callback():
    seen = []
    r = vmmin(rosenbrock, start(), callback=lambda it, f: seen.append((it, f)))
    assert r.history[0] == pytest.approx(24.2)  # f(-1.2, 1)
    # Accepted steps satisfy the Armijo condition, so f never goes up.
    assert all(a >= b for a, b in zip(r.history, r.history[1:]))
    its = [it for it, _ in seen]
    assert its == sorted(its) and its[-1] == r.iterations


# n = 8 on purpose: rows of H are then 64 bytes apart, and NumPy 2.4.6's
# np.negative gives wrong results on views with exactly that stride (found
# in an earlier version of specc.train.bfgs), so keep a case for such bugs.
@pytest.mark.parametrize("n, seed", [(1, 0), (6, 0), (6, 1), (6, 2), (6, 3),
                                     (8, 0), (13, 0)])
def test_convex_quadratic_exact_minimum(n, seed):
    gen = torch.Generator().manual_seed(seed)
    Q = torch.randn(n, n, generator=gen, dtype=F64)
    A = Q @ Q.T + 0.5 * torch.eye(n, dtype=F64)  # SPD
    b = torch.randn(n, generator=gen, dtype=F64)
    A_inv = torch.linalg.inv(A)
    x_star = torch.linalg.solve(A, b)

    def quad(x):
        # 0.5 x'Ax - b'x plus the constant 0.5 b'A^{-1}b, written as
        # 0.5 r'A^{-1}r with r = Ax - b so f is accurate near the minimum
        # (the textbook form loses ~1e-16 absolute, i.e. ~1e-8 in x).
        r = A @ x - b
        return float(0.5 * r @ A_inv @ r), r  # gradient = Ax - b

    # reltol = 0: run until the line search can no longer move the point.
    r = vmmin(quad, torch.zeros(n, dtype=F64), reltol=0.0)
    assert r.converged and r.iterations < 10 * n + 20
    assert torch.allclose(r.x, x_star, rtol=0, atol=1e-8)
    assert r.fmin < 1e-20


def test_non_finite_initial_value_raises():
    bad = lambda x: (math.inf, torch.zeros_like(x))  # noqa: E731
    with pytest.raises(ValueError, match=r"not finite at the starting point \(f = inf\)"):
        vmmin(bad, torch.zeros(3, dtype=F64))


def test_nonpositive_maxit_only_evaluates():
    r = vmmin(rosenbrock, start(), max_iter=0)
    assert (r.iterations, r.fn_evals, r.converged) == (0, 0, True)
    assert r.fmin == pytest.approx(24.2)
    assert r.x.tolist() == [-1.2, 1.0]


@pytest.mark.parametrize("kind", X0_TYPES)
def test_does_not_modify_x0(kind):
    x0 = start(kind)
    vmmin(rosenbrock, x0)
    assert x0.tolist() == [-1.2, 1.0]


def test_float32_and_list_starts_are_copied_to_float64():
    r = vmmin(rosenbrock, torch.tensor([-1.0, 1.0]))  # float32 in
    assert r.x.dtype == F64 and isinstance(r.x, torch.Tensor)
    r = vmmin(rosenbrock, [-1.0, 1.0])
    assert isinstance(r.x, np.ndarray) and r.x.dtype == np.float64


def np_rosenbrock(x: np.ndarray) -> tuple[float, np.ndarray]:
    f, g = rosenbrock(x)
    return f, g.numpy()


# Every form of gradient fn may return must give the very same run.
GRADIENT_FORMS = {
    "numpy": lambda g: g,
    "torch float64": torch.from_numpy,
    "torch float32 + requires_grad": (
        lambda g: torch.from_numpy(g).float().requires_grad_()),
    "list": lambda g: g.tolist(),
    "column": lambda g: g.reshape(-1, 1),
}


@pytest.mark.parametrize("form", GRADIENT_FORMS)
def test_gradient_forms_give_the_same_run(form):
    reference = vmmin(np_rosenbrock, start("numpy"))
    convert = GRADIENT_FORMS[form]

    def fn(x):
        f, g = np_rosenbrock(x)
        return f, convert(g)
    r = vmmin(fn, start("numpy"))
    if form.startswith("torch float32"):
        # float32 gradients are a different problem; it must still run.
        assert r.converged and r.fmin < 1e-6
        return
    assert (r.iterations, r.fn_evals, r.fmin) == (
        reference.iterations, reference.fn_evals, reference.fmin)
    assert np.array_equal(r.x, reference.x)


def test_fn_may_keep_and_scribble_on_its_argument_and_reuse_its_gradient():
    reference = vmmin(np_rosenbrock, start("numpy"))
    kept, grad_buffer = [], np.empty(2)

    def careless(x):
        f, g = np_rosenbrock(x)
        kept.append(x)
        grad_buffer[:] = g
        x[:] = np.nan          # vmmin handed over a copy: no harm done
        return f, grad_buffer  # the same array every call
    r = vmmin(careless, start("numpy"))
    assert (r.iterations, r.fn_evals) == (reference.iterations, reference.fn_evals)
    assert np.array_equal(r.x, reference.x)
    assert len({id(x) for x in kept}) == len(kept)


@pytest.mark.parametrize("gradient", [np.zeros(3), np.zeros(1), torch.zeros(2, 2)])
def test_gradient_of_the_wrong_size_is_an_error(gradient):
    with pytest.raises(ValueError, match="gradient of .* values for 2 parameters"):
        vmmin(lambda x: (1.0, gradient), np.zeros(2))


def test_zero_gradient_after_progress_resets_h_then_stops():
    """An 'uphill' (here: flat, slope 0) direction after progress resets
    H and retries; flat again right after a reset ends the run.  Worked out
    by hand: step 1 is accepted at step length 0.2 (3 evaluations),
    step 2 lands on ~0 (4), where the gradient is 0, so the next pass resets
    H and the one after gives up, both still at iteration 3."""
    def gradient_vanishes_near_zero(x):
        g = 2 * x if np.max(np.abs(x)) >= 0.5 else np.zeros_like(x)
        return float(x @ x), g
    seen = []
    r = vmmin(gradient_vanishes_near_zero, np.array([1.0, -0.7]),
              callback=lambda it, f: seen.append(it))
    assert (r.iterations, r.fn_evals, r.converged) == (3, 4, True)
    assert seen == [2, 3, 3, 3]
    assert np.abs(r.x).max() < 1e-15


def sequential(column, start=0.0, op=float.__add__):
    s = start
    for v in column:
        s = op(s, float(v))
    return s


@pytest.mark.parametrize("n", [2, 8, 13, 40])
def test_numpy_sums_left_to_right_where_specc_bfgs_relies_on_it(n):
    """H v in specc.train.bfgs is np.add.reduce over axis 0 of a C-ordered array,
    which NumPy does one row after another, left to right; NumPy does not
    promise that, so this says so first if it ever changes.  Dot products
    are np.add.accumulate (running sums by definition), checked here too.
    The data spans many magnitudes, so another order would round
    differently (checked)."""
    rng = np.random.default_rng(n)
    M = rng.standard_normal((n, n)) * 10.0 ** rng.integers(-12, 12, (n, n))
    by_loop = [sequential(M[:, i]) for i in range(n)]
    assert np.add.reduce(M, axis=0).tolist() == by_loop
    out = np.empty(n)
    np.add.reduce(M, axis=0, out=out)
    assert out.tolist() == by_loop
    assert np.add.accumulate(M.T, axis=1)[:, -1].tolist() == by_loop
    assert [np.add.accumulate(M[:, i])[-1] for i in range(n)] == by_loop
    reversed_order = [sequential(M[::-1, i]) for i in range(n)]
    assert n < 8 or reversed_order != by_loop  # the test has teeth


def test_h_v_and_the_update_round_as_written():
    """One update of H by hand, in the order specc/train/bfgs.py documents: every
    sum left to right, w = (1 + y·c / d·c) d, each lower entry
    ((w_p d_q - y_p d_q) - d_p y_q) / d·c, mirrored; then H v."""
    n = 7
    rng = np.random.default_rng(5)
    H = rng.standard_normal((n, n))
    H = H + H.T
    d, noise, v = rng.standard_normal((3, n))
    c = d + 0.3 * noise  # d·c > 0: an update, not a reset

    def dot(a, b):
        return sequential([a[i] * b[i] for i in range(n)])

    def times_H(M, u):
        return [sequential([M[i][j] * u[j] for j in range(n)]) for i in range(n)]

    y = times_H(H.tolist(), c)
    dc = dot(d, c)
    assert dc > 0
    w = [(1.0 + dot(y, c) / dc) * d[p] for p in range(n)]
    expected = H.tolist()
    for p in range(n):
        for q in range(p + 1):
            expected[p][q] += ((w[p] * d[q] - y[p] * d[q]) - d[p] * y[q]) / dc
            expected[q][p] = expected[p][q]

    m = VariableMetric(_objective_for_test(n), np.zeros(n), max_iter=1, abstol=-math.inf, reltol=0.0,
                       callback=None)
    m.H[:] = H
    m.t[:] = d               # the step, as the line search leaves it at step length 1
    m.downhill[:] = 0.0      # -g before the step: g = 0 ...
    m.gradient_at = lambda x, out: np.negative(c, out=out)  # ... and g = c after it
    m.update(1.0)
    assert m.H.tolist() == expected
    m.downhill[:] = v
    m.direction()
    assert m.t.tolist() == times_H(expected, v)


def _objective_for_test(n):
    return _Objective(lambda x: (0.0, np.zeros(n)), None, n, as_torch=False)


def test_h_is_reset_after_more_than_2n_updates():
    """The restart rule: after 2n + 1 updates in a row H is the identity again."""
    seen = []

    class Watch(VariableMetric):
        def update(self, step):
            super().update(step)
            seen.append((self.updates, bool((self.H == np.eye(self.n)).all())))

    n = 3
    A = np.diag([1.0, 10.0, 100.0]) + 0.5
    m = Watch(_Objective(lambda x: (0.5 * float(x @ A @ x), A @ x), None, n, False), np.ones(n),
              max_iter=50, abstol=-math.inf, reltol=0.0, callback=None)
    m.run()
    assert (2 * n, False) in seen and (0, True) in seen
    assert max(u for u, _ in seen) == 2 * n


def test_non_finite_trial_values_are_rejected():
    def walled(x):  # +inf beyond |x| = 2: the first, long steps land there
        if np.abs(x).max() > 2:
            return math.inf, np.zeros_like(x)
        return float(x @ x), 2 * x
    r = vmmin(walled, np.array([1.5, -1.0]), reltol=0.0)
    assert r.converged and r.fmin < 1e-20 and math.isfinite(r.fmin)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_separate_value_and_gradient_give_the_same_run_with_gradients_only_at_accepted_points(kind):
    joint = vmmin(np_rosenbrock, np.array([-1.2, 1.0]))
    calls = {"value": 0, "gradient": 0}

    def value(x):
        calls["value"] += 1
        return np_rosenbrock(np.asarray(x))[0]

    def gradient(x):
        calls["gradient"] += 1
        grad = np_rosenbrock(np.asarray(x))[1]
        return torch.from_numpy(grad) if kind == "torch" else grad

    x0 = np.array([-1.2, 1.0]) if kind == "numpy" else torch.tensor([-1.2, 1.0], dtype=torch.float64)
    split = vmmin(value, x0, gradient=gradient)
    assert (split.iterations, split.fn_evals, split.fmin) == (joint.iterations, joint.fn_evals, joint.fmin)
    np.testing.assert_array_equal(np.asarray(split.x), joint.x)
    assert calls == {"value": joint.fn_evals, "gradient": joint.iterations}  # R's counts: 110 and 43


def test_no_file_calls_itself_a_port_of_rs_code():
    """specc is MIT: its BFGS and nnet criterion are its own implementations of
    published algorithms (docs/training.md, "Where the algorithms come from"),
    with R as a test oracle only.  Keep it so in words too."""
    import re
    from pathlib import Path
    root = Path(__file__).resolve().parent.parent
    claims = re.compile(r"port(ed)? (of|from) R\b|translat\w* from R\b|faithful port|"
                        + r"optim\.c|nnet\.c\b|src/appl", re.IGNORECASE)
    files = [*root.glob("specc/**/*.py"), *root.glob("specc/*.c"), *root.glob("docs/*.md"),
             *root.glob("benchmarks/*.py"), *root.glob("tests/*.py")]
    found = [f"{path.relative_to(root)}:{number}: {line.strip()}"
             for path in files if path != Path(__file__).resolve()
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if claims.search(line)]
    assert not found, "\n".join(found)
