#!/usr/bin/env python
"""Cost per iteration of specc.train.bfgs.vmmin itself, without the objective.

Each problem is run once for real to record the (f, gradient) of every call;
the timed runs then replay those values, so ``fn`` costs ~0.2 µs and what is
left is the minimiser (plus the copy of x it hands to fn).  The replaying fn
ignores x, so every version is fed the same sequence of values; each timed
run must stop at the recorded iteration count (checked).  The variants take
turns within each repeat, so a change in the machine's load hits them alike.

    python benchmarks/bench_bfgs.py                       # current version
    # before/after: any older specc/train/bfgs.py, e.g. the last commit's
    git show HEAD:specc/train/bfgs.py > /tmp/bfgs_old.py
    python benchmarks/bench_bfgs.py --baseline /tmp/bfgs_old.py

A baseline module only needs a ``vmmin(fn, x0, **kw)``; it is timed with
NumPy and torch starting points like the current one (``--baseline-torch-only``
for versions that accepted only torch tensors).

The ``nnet`` engine runs the same loop in C against its compiled criterion
(specc/train/nnet_kernel.c), which cannot replay recorded values; the last
rows time R's sine fit (1436 iterations) both ways, criterion included: the C
loop, and the Python vmmin calling the same kernel (when it is built).
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from specc.train.bfgs import vmmin  # noqa: E402

SINE_CSV = ROOT / "examples" / "sine50.csv"


def sine_nnet_problem():
    """R's nnet(x, y, size = 4, linout = TRUE, Wts = seq(0, 1, by = 1/12)),
    as in benchmarks/sine_nnet.R: 13 weights in nnet's order (per hidden
    unit: bias, weight; then output bias and the 4 output weights), nnet's
    criterion (sum of squares) and its sigmoid (clamped beyond ±15).  Its
    sums run in NumPy's order, not nnet's, so the iteration count differs
    from R's (the fit is that sensitive); the cost per iteration does not."""
    data = np.loadtxt(SINE_CSV, delimiter=",", skiprows=1)
    x, y = data[:, 0], data[:, 1]

    def fn(w):
        b1, w1, b2, w2 = w[0:8:2], w[1:8:2], w[8], w[9:13]
        z = np.clip(np.outer(x, w1) + b1, -15.0, 15.0)
        h = 1.0 / (1.0 + np.exp(-z))
        h[z == -15.0], h[z == 15.0] = 0.0, 1.0
        r = h @ w2 + b2 - y
        dz = np.outer(2.0 * r, w2) * h * (1.0 - h)
        grad = np.empty(13)
        grad[0:8:2], grad[1:8:2] = dz.sum(0), x @ dz
        grad[8], grad[9:13] = 2.0 * r.sum(), 2.0 * (r @ h)
        return float(r @ r), grad

    kw = dict(max_iter=10000, abstol=1e-8, reltol=1e-9)
    return "sine 1-4-1 nnet", fn, np.arange(13) / 12.0, kw


def rosenbrock_problem():
    def fn(v):
        d, e = v[1] - v[0] * v[0], 1 - v[0]
        return 100 * (d * d) + e * e, np.array([-400 * v[0] * d - 2 * e, 200 * d])
    return "Rosenbrock 2-d", fn, np.array([-1.2, 1.0]), {}


def quadratic_problem(n=100):
    rng = np.random.default_rng(0)
    Q = rng.standard_normal((n, n))
    A = Q @ Q.T / n + np.diag(np.geomspace(1e-3, 1.0, n))  # ill-conditioned
    b = rng.standard_normal(n)

    def fn(v):
        r = A @ v - b
        return 0.5 * float(v @ (r - b)), r
    return f"quadratic {n}-d", fn, np.zeros(n), dict(max_iter=2000, reltol=1e-12)


def record(fn, x0, kw):
    calls = []

    def recording(v):
        f, g = fn(v)
        calls.append((float(f), np.array(g, dtype=np.float64)))
        return f, g
    result = vmmin(recording, x0, **kw)
    return result, calls


def replayer(calls, as_torch):
    values = [(f, torch.from_numpy(g) if as_torch else g) for f, g in calls]
    position = iter(values)

    def fn(_x):
        return next(position)  # StopIteration here means the path diverged
    return fn


def time_per_iteration(variants, calls, x0, kw, expected_iterations, repeats):
    """Best-of-``repeats`` µs per iteration of each variant, as (thread CPU time, wall time).

    CPU time of this thread is skewed less by other load on the machine;
    wall time also counts work torch might hand to other threads."""
    best = {label: [float("inf"), float("inf")] for label, _, _ in variants}
    for _ in range(repeats):
        for label, minimiser, as_torch in variants:
            fn = replayer(calls, as_torch)
            start_point = torch.from_numpy(x0.copy()) if as_torch else x0.copy()
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            result = minimiser(fn, start_point, **kw)
            cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
            if result.iterations != expected_iterations:
                raise RuntimeError(f"{label}: replay diverged from the recorded run")
            best[label] = [min(best[label][0], cpu), min(best[label][1], wall)]
    return {label: (cpu / expected_iterations * 1e6, wall / expected_iterations * 1e6)
            for label, (cpu, wall) in best.items()}


def nnet_engine_rows(repeats):
    """µs per iteration (thread CPU, wall) of R's sine fit on the nnet engine's kernel, criterion included:
    the C loop (NnetObjective.vmmin) and the Python vmmin on the same criterion; None without the kernel."""
    from specc.train.nnet import KERNEL, NnetObjective, nnet_layout
    if KERNEL is None:
        return None
    import specc
    data = np.loadtxt(SINE_CSV, delimiter=",", skiprows=1)
    objective = NnetObjective(nnet_layout(specc.load(ROOT / "specs" / "sine_nnet.spec")), data[:, :1], data[:, 1:])
    x0, kw = np.arange(13) * (1 / 12), dict(max_iter=10000, abstol=1e-8, reltol=1e-9)  # R's seq(0, 1, by=1/12)
    variants = {"C loop, in the kernel": lambda: objective.vmmin(x0, **kw),
                "Python vmmin": lambda: vmmin(objective.value, x0, gradient=objective.gradient, **kw)}
    best = {label: [float("inf"), float("inf")] for label in variants}
    for _ in range(repeats):
        for label, run in variants.items():
            cpu0, wall0 = time.thread_time(), time.perf_counter()
            result = run()
            cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
            if result.iterations != 1436:
                raise RuntimeError(f"{label}: {result.iterations} iterations, not R's 1436")
            best[label] = [min(best[label][0], cpu), min(best[label][1], wall)]
    return result, {label: (cpu / result.iterations * 1e6, wall / result.iterations * 1e6)
                    for label, (cpu, wall) in best.items()}


def load_baseline(path):
    spec = importlib.util.spec_from_file_location("bfgs_baseline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module.vmmin


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--baseline", type=Path,
                        help="an older bfgs.py to time alongside")
    parser.add_argument("--baseline-torch-only", action="store_true",
                        help="the baseline accepts torch tensors only")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    variants = [("numpy x0", vmmin, False), ("torch x0", vmmin, True)]
    if args.baseline:
        old = load_baseline(args.baseline)
        kinds = [("torch x0", True)] if args.baseline_torch_only else [("numpy x0", False), ("torch x0", True)]
        variants = [(f"baseline, {kind}", old, as_torch) for kind, as_torch in kinds] + variants

    print(f"{'problem':16s} {'iters':>6s} {'evals':>6s}  {'variant':22s}"
          f" {'µs/iter CPU':>11s} {'µs/iter wall':>12s}")
    for name, fn, x0, kw in (sine_nnet_problem(), rosenbrock_problem(),
                             quadratic_problem()):
        result, calls = record(fn, x0, kw)
        timings = time_per_iteration(variants, calls, x0, kw, result.iterations, args.repeats)
        for label, (cpu, wall) in timings.items():
            print(f"{name:16s} {result.iterations:6d} {result.fn_evals:6d}  "
                  f"{label:22s} {cpu:11.1f} {wall:12.1f}")
    nnet = nnet_engine_rows(args.repeats)
    if nnet is None:
        print("(the nnet kernel is not built: no rows for the nnet engine's C loop)")
        return
    result, timings = nnet
    for label, (cpu, wall) in timings.items():
        print(f"{'sine nnet kernel':16s} {result.iterations:6d} {result.fn_evals:6d}  "
              f"{label:22s} {cpu:11.1f} {wall:12.1f}")


if __name__ == "__main__":
    main()
