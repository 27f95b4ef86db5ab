#!/usr/bin/env python
"""Time per restart: R restarts run by the compiled criterion's C loop (what specc.fit runs), batched on the
NumPy tape (specc.train.multistart, one computation), the same restarts one at a time, and the one-start
path (vmmin on the NumPy tape, R separate fits).

    python benchmarks/bench_restarts.py [--restarts 10] [--repeat 5] [--stories 5] [--json out.json]

For each problem, R starting points are drawn once (the spec's initialisers, seed 0). Variants:

- ``compiled``: the ``compiled`` engine's ``minimize``: the same method, criterion and loop in C, one
  restart after another (what ``specc.fit`` runs by default);
- ``batched``: ``multistart.minimize`` on all R rows at once on the NumPy tape (the ``numpy`` engine);
- ``one at a time``: the same minimiser and tape, called R times on one row each. Each restart takes
  the same path as in the batch (tests/test_multistart.py checks this), so only the time differs;
- ``vmmin, R fits``: ``specc.fit(optimizer="bfgs", engine="numpy")`` from each start, the one-start
  path before restarts existed, on the criterion the batched path minimises (sse for a smooth spec,
  mse for a kinked one) and with the same tolerances. Another implementation (specc.train.bfgs): its
  iteration counts differ, so compare its time per restart-iteration too.

The variants run interleaved (ABC ABC …, the order rotating), so that a change in the machine's load
hits all of them; the table gives the median and the spread (min–max) of ``--repeat`` runs, per
restart and per restart-iteration, and the load average before and after. ``--stories N`` also fits
every bundled story with no options from seeds 0 … N-1 (as ``specc train SPEC --data FILE --seed S``)
and reports the loss reached and the time.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import specc  # noqa: E402
from specc.train import multistart  # noqa: E402
from specc.train.data import tensors_for  # noqa: E402
from specc.lower import spec_graph  # noqa: E402
from specc.train.engines import ENGINES  # noqa: E402
from specc.train.losses import LOSSES, Criterion  # noqa: E402
from specc.train.tape import Tape  # noqa: E402

PROBLEMS = [("sine_nnet", "sine50"), ("curve_tanh", "curve100"), ("two_io", "two_io"), ("xor", "xor")]
STORIES = [("sine_nnet", "sine50", 1e-6), ("cubic", "cubic2000", 8.817168 / 2000),
           ("legendre", "cubic2000", 8.817169 / 2000), ("xor", "xor", 0.00474796),
           ("two_io", "two_io", 0.000628), ("curve_tanh", "curve100", 0.003355)]


def problem(spec: str, data: str, restarts: int):
    """(evaluate, starting points [R, n], settings, model) as specc.fit's default path builds them."""
    torch.manual_seed(0)
    model = specc.load(ROOT / "specs" / f"{spec}.spec").double()
    tensors = tensors_for(model, ROOT / "examples" / f"{data}.csv", dtype=torch.float64)
    as_numpy = lambda names: {n: tensors[n].numpy() for n in names}  # noqa: E731
    objective = Tape(spec_graph(model), as_numpy(model.spec_inputs), as_numpy(model.spec_outputs), "mse")
    compiled = ENGINES["compiled"](model, Criterion(model, tensors, LOSSES["mse"], 0.0))
    rows = len(tensors[model.spec_inputs[0]])
    scale = multistart.criterion_scale(spec_graph(model), "mean", rows)

    def evaluate(X):
        f, G = objective.evaluate(X)
        return scale * f, scale * G
    points = multistart.starting_points(model, multistart.restart_seeds(restarts, 0))
    settings = dict(multistart.DEFAULT_BFGS)
    loss = "mse" if scale == 1.0 else "sse"  # what the batched path minimises (up to the factor)
    return evaluate, points, settings, model, (ROOT / "examples" / f"{data}.csv", loss, compiled, scale)


def compiled_loop(evaluate, points, settings, model, data):
    engine, scale = data[2], data[3]
    return int(engine.minimize(points, scale=scale, **settings).iterations.sum())


def batched(evaluate, points, settings, model, data):
    batch = multistart.minimize(evaluate, points, **settings)
    return int(batch.iterations.sum())


def one_at_a_time(evaluate, points, settings, model, data):
    return sum(int(multistart.minimize(evaluate, row[None], **settings).iterations[0]) for row in points)


def vmmin_fits(evaluate, points, settings, model, data):
    iterations = 0
    for row in points:
        torch.nn.utils.vector_to_parameters(torch.from_numpy(row.copy()), model.parameters())
        result = specc.fit(model, data[0], loss=data[1], optimizer="bfgs", engine="numpy",
                           max_iter=settings["max_iter"], abstol=settings["abstol"], reltol=settings["reltol"],
                           progress=False)
        iterations += result.iterations
    return iterations


VARIANTS = {"compiled": compiled_loop, "batched": batched, "one at a time": one_at_a_time,
            "vmmin, R fits": vmmin_fits}


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):8.2f} ({min(values):.2f}–{max(values):.2f})"


def bench(restarts: int, repeat: int) -> dict:
    results = {}
    print(f"time per restart, {restarts} restarts; median (min–max) of {repeat} interleaved runs; "
          f"load average {os.getloadavg()[0]:.2f} before")
    print(f"{'problem':12} {'variant':15} {'ms per restart':>26} {'µs per restart-iteration':>30} "
          f"{'iterations':>9}")
    for spec, data in PROBLEMS:
        args = problem(spec, data, restarts)
        times = {name: [] for name in VARIANTS}
        counts = {}
        for r in range(repeat + 1):  # the first round warms up and is not counted
            names = list(VARIANTS)
            for name in names[r % len(names):] + names[:r % len(names)]:
                start = time.perf_counter()
                counts[name] = VARIANTS[name](*args)
                if r:
                    times[name].append(time.perf_counter() - start)
        results[spec] = {}
        for name in VARIANTS:
            per_restart = [1e3 * t / restarts for t in times[name]]
            per_iteration = [1e6 * t / counts[name] for t in times[name]]
            results[spec][name] = {"ms_per_restart": per_restart, "us_per_iteration": per_iteration,
                                   "iterations": counts[name]}
            print(f"{spec:12} {name:15} {spread(per_restart):>26} {spread(per_iteration):>30} "
                  f"{counts[name] / restarts:8.0f}")
        ratio = statistics.median(times["one at a time"]) / statistics.median(times["batched"])
        print(f"{'':12} one at a time / batched: {ratio:.1f}×; batched / compiled: "
              f"{statistics.median(times['batched']) / statistics.median(times['compiled']):.1f}×")
        results[spec]["ratio"] = ratio
    print(f"load average {os.getloadavg()[0]:.2f} after")
    return results


def stories(seeds: int) -> dict:
    print(f"\nevery bundled story with no options, seeds 0 … {seeds - 1} (loss: the default mse)")
    print(f"{'story':11} {'bound':>10} {'worst':>10} {'median':>10} {'best':>10} {'reached':>8} {'seconds':>22}")
    results = {}
    for spec, data, bound in STORIES:
        losses, seconds = [], []
        for seed in range(seeds):
            torch.manual_seed(seed)  # what `specc train … --seed S` does
            result = specc.fit(specc.load(ROOT / "specs" / f"{spec}.spec"), ROOT / "examples" / f"{data}.csv",
                               seed=seed, progress=False)
            losses.append(result.loss)
            seconds.append(result.seconds)
        reached = sum(loss <= bound * (1 + 1e-6) for loss in losses)
        results[spec] = {"losses": losses, "seconds": seconds, "bound": bound}
        print(f"{spec:11} {bound:10.3g} {max(losses):10.3g} {statistics.median(losses):10.3g} {min(losses):10.3g} "
              f"{reached:>5}/{seeds} {spread(seconds):>22}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--restarts", type=int, default=multistart.DEFAULT_RESTARTS)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--stories", type=int, default=0, metavar="N", help="also fit the stories from N seeds")
    parser.add_argument("--json", help="write the measurements here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    np.seterr(all="ignore")
    out = {"restarts": bench(args.restarts, args.repeat)}
    if args.stories:
        out["stories"] = stories(args.stories)
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
