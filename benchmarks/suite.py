#!/usr/bin/env python
"""A suite of small regression problems, fitted by specc and by R's nnet in the same run (issue 9).

    python benchmarks/suite.py [--rounds 5] [--only NAME] [--json FILE]

Each problem is a function from the literature (the PROBLEMS table, with citations), sampled
deterministically (numpy Generator, fixed seed) with a little Gaussian noise; every column,
inputs and target, is z-scored, and the data set is written to a CSV in a temporary directory
so that both sides fit the same numbers. The network is nnet's: one hidden layer of H logistic
units and a linear output, ``nnet(x, y, size=H, linout=TRUE)``. Both sides fit it from 10
random starts, 200 iterations each, on the sum of squared errors, no decay:

- R: ``nnet(..., maxit=200, trace=FALSE)`` ten times after ``set.seed(seed)`` (benchmarks/suite.R,
  one Rscript process serving every round, timed inside R: start-up and reading are not timed);
- specc: ``specc.fit(model, data, loss="sse", optimizer="bfgs", restarts=10, max_iter=200)``,
  the ten restarts batched in one call, with whatever engine specc chooses for that; the time
  per fit is the call's wall time / 10 (one untimed warm-up call per problem first).

The machine is shared, so per problem the two sides alternate (R, specc, R, specc, ...) for
``--rounds`` rounds; the table shows the medians, and for the ratio specc/nnet (per round,
paired) the median with the min-max spread. The fits themselves are deterministic: the RMSEs
(training data, z-scored target) are the same every round. The footer counts the problems where
specc's best RMSE is at most nnet's (relative slack 1e-6) and gives the geometric mean of the
time ratios and the load averages. Without Rscript or nnet, only specc's side is shown.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import specc  # noqa: E402

STARTS, MAX_ITER = 10, 200
R_MIN_SECONDS = 0.2  # R repeats its ten fits until this much wall time has passed
SLACK = 1e-6  # relative slack when comparing best RMSEs


# ---------------------------------------------------------------- the problems
@dataclass(frozen=True)
class Problem:
    """One row of the suite: ``function`` maps ``x [rows, k]`` (in ``domain``, one ``(lo, hi)`` per
    input) to ``y [rows]``; ``grid``: a 1-D problem's x is evenly spaced, else uniform random."""
    name: str
    function: Callable[[np.ndarray], np.ndarray]
    rows: int
    domain: tuple[tuple[float, float], ...]
    hidden: int
    noise: float  # sd of the Gaussian noise added to y, before z-scoring
    seed: int
    citation: str
    grid: bool = False

    @property
    def inputs(self) -> int:
        return len(self.domain)

    @property
    def parameters(self) -> int:
        return self.hidden * (self.inputs + 1) + self.hidden + 1


def two_peaks(b1, b2, b3, b4, b5, b6, b7, b8):
    """NIST StRD Gauss1-3's model form: an exponential baseline and two Gaussian peaks."""
    return lambda x: (b1 * np.exp(-b2 * x[:, 0]) + b3 * np.exp(-(x[:, 0] - b4) ** 2 / b5 ** 2)
                      + b6 * np.exp(-(x[:, 0] - b7) ** 2 / b8 ** 2))


def friedman1(x):
    return 10 * np.sin(np.pi * x[:, 0] * x[:, 1]) + 20 * (x[:, 2] - 0.5) ** 2 + 10 * x[:, 3] + 5 * x[:, 4]


def friedman3(x):
    return np.arctan((x[:, 1] * x[:, 2] - 1 / (x[:, 1] * x[:, 3])) / x[:, 0])


def ishigami(x, a=7.0, b=0.1):
    return np.sin(x[:, 0]) + a * np.sin(x[:, 1]) ** 2 + b * x[:, 2] ** 4 * np.sin(x[:, 0])


def dette_curved(x):
    x1, x2, x3 = x.T
    return 4 * (x1 - 2 + 8 * x2 - 8 * x2 ** 2) ** 2 + (3 - 4 * x2) ** 2 + 16 * np.sqrt(x3 + 1) * (2 * x3 - 1) ** 2


def branin(x, a=1.0, b=5.1 / (4 * np.pi ** 2), c=5 / np.pi, r=6.0, s=10.0, t=1 / (8 * np.pi)):
    x1, x2 = x.T
    return a * (x2 - b * x1 ** 2 + c * x1 - r) ** 2 + s * (1 - t) * np.cos(x1) + s


def lim_nonpolynomial(x):
    x1, x2 = x.T
    return ((30 + 5 * x1 * np.sin(5 * x1)) * (4 + np.exp(-5 * x2)) - 100) / 6


def peaks(x):
    u, v = x.T
    return (3 * (1 - u) ** 2 * np.exp(-u ** 2 - (v + 1) ** 2)
            - 10 * (u / 5 - u ** 3 - v ** 5) * np.exp(-u ** 2 - v ** 2) - np.exp(-(u + 1) ** 2 - v ** 2) / 3)


PI = (-np.pi, np.pi)
PROBLEMS = [
    Problem("friedman1", friedman1, 500, ((0, 1),) * 5, 7, 1.0, 101,
            "Friedman (1991), Multivariate adaptive regression splines, Ann. Statist. 19: test function #1"),
    Problem("friedman3", friedman3, 250, ((0, 100), (40 * np.pi, 560 * np.pi), (0, 1), (1, 11)), 5, 0.05, 103,
            "Friedman (1991), Multivariate adaptive regression splines, Ann. Statist. 19: #3 (arctan of an impedance)"),
    Problem("ishigami", ishigami, 300, (PI,) * 3, 10, 0.1, 107,
            "Ishigami & Homma (1990), uncertainty-analysis test function, a=7, b=0.1 (ISUMA '90)"),
    Problem("dette_curved", dette_curved, 200, ((0, 1),) * 3, 6, 0.2, 109,
            "Dette & Pepelyshev (2010), Generalized Latin hypercube design, Technometrics 52: curved function"),
    Problem("gauss_apart", two_peaks(80, 0.008, 100, 75, 20, 60, 170, 25), 250, ((1, 250),), 8, 2.5, 113,
            "NIST StRD Gauss1-3 model form (Rust, NIST 1996), our parameters: two well separated peaks", grid=True),
    Problem("gauss_overlap", two_peaks(90, 0.012, 85, 110, 20, 75, 150, 18), 250, ((1, 250),), 8, 2.5, 127,
            "NIST StRD Gauss1-3 model form (Rust, NIST 1996), our parameters: two overlapping peaks (as Gauss3)",
            grid=True),
    Problem("damped_sine", lambda x: np.exp(-0.3 * x[:, 0]) * np.sin(2 * x[:, 0]), 150, ((0, 3 * np.pi),), 10,
            0.02, 131, "damped sinusoid exp(-0.3x) sin(2x), free response of an underdamped oscillator"
            " (textbook curve, no single source)", grid=True),
    Problem("higdon", lambda x: np.sin(2 * np.pi * x[:, 0] / 10) + 0.2 * np.sin(2 * np.pi * x[:, 0] / 2.5), 51,
            ((0, 10),), 5, 0.05, 137, "Higdon (2002), Space and space-time modeling using process convolutions:"
            " 1-D test curve", grid=True),
    Problem("forrester", lambda x: (6 * x[:, 0] - 2) ** 2 * np.sin(12 * x[:, 0] - 4), 60, ((0, 1),), 3, 0.1, 139,
            "Forrester, Sobester & Keane (2008), Engineering Design via Surrogate Modelling: 1-D function",
            grid=True),
    Problem("branin", branin, 150, ((-5, 10), (0, 15)), 6, 1.0, 149,
            "Branin (1972), IBM J. Res. Dev. 16, in Dixon & Szego's (1978) form: the Branin-Hoo function"),
    Problem("lim", lim_nonpolynomial, 100, ((0, 1), (0, 1)), 3, 0.05, 151,
            "Lim, Sacks, Studden & Welch (2002), Canadian J. Statist. 30: non-polynomial function"),
    Problem("peaks", peaks, 400, ((-3, 3), (-3, 3)), 10, 0.1, 157,
            "MATLAB's peaks (The MathWorks): translated and scaled Gaussians in 2-D"),
]


def dataset(p: Problem) -> tuple[np.ndarray, np.ndarray]:
    """``p``'s data, z-scored: x ``[rows, k]``, y ``[rows]``."""
    rng = np.random.default_rng(p.seed)
    lo, hi = np.array(p.domain, dtype=np.float64).T
    if p.grid:
        x = np.linspace(lo, hi, p.rows)
    else:
        x = lo + (hi - lo) * rng.random((p.rows, p.inputs))
    y = p.function(x) + p.noise * rng.standard_normal(p.rows)

    def z(v):
        return (v - v.mean(axis=0)) / v.std(axis=0)
    return z(x), z(y)


def write_files(p: Problem, x: np.ndarray, y: np.ndarray, directory: Path) -> Path:
    """Write ``p``'s CSV (for R) and spec; return the spec's path."""
    header = ",".join([f"x{i + 1}" for i in range(p.inputs)] + ["y"])
    np.savetxt(directory / f"{p.name}.csv", np.column_stack([x, y]), delimiter=",", fmt="%.17g",
               header=header, comments="")
    x_decl = "x" if p.inputs == 1 else f"x[{p.inputs}]"
    spec = directory / f"{p.name}.spec"
    spec.write_text(f"# {p.name}: {p.citation}\ninput {x_decl}\nparam w2[{p.hidden}]\n"
                    f"h[{p.hidden}] = logistic(W1·x + b1)\ny = w2·h + b2\n", encoding="utf-8")
    return spec


# ---------------------------------------------------------------- the two sides
class RNnet:
    """benchmarks/suite.R as one long-running process; None from :meth:`start` when R or nnet is missing."""

    def __init__(self, proc: subprocess.Popen, version: str):
        self.proc, self.version = proc, version

    @classmethod
    def start(cls, directory: Path) -> tuple[RNnet | None, str]:
        if shutil.which("Rscript") is None:
            return None, "Rscript is not on the PATH"
        proc = subprocess.Popen(["Rscript", str(ROOT / "benchmarks" / "suite.R"), str(directory)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = proc.stdout.readline()
        if not line.startswith("{"):
            proc.stdin.close()
            why = proc.stderr.read().strip().splitlines()
            proc.wait()
            return None, f"R could not start nnet ({why[-1] if why else 'no output'})"
        ready = json.loads(line)
        return cls(proc, f"{ready['r']}, nnet {ready['nnet']}"), ""

    def fit(self, p: Problem) -> dict:
        self.proc.stdin.write(f"{p.name} {p.hidden} {p.seed} {STARTS} {MAX_ITER} {R_MIN_SECONDS}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"suite.R stopped: {self.proc.stderr.read().strip()[-300:]}")
        return json.loads(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def specc_fit(p: Problem, spec: Path, x: np.ndarray, y: np.ndarray) -> dict:
    """One specc.fit of ``p`` from a freshly loaded model (loading is not timed)."""
    torch.manual_seed(p.seed)  # the first restart starts from the model's own values
    model = specc.load(spec)
    data = {"x": x[:, 0] if p.inputs == 1 else x, "y": y}
    start = time.perf_counter()
    result = specc.fit(model, data, loss="sse", optimizer="bfgs", restarts=STARTS, max_iter=MAX_ITER,
                       seed=p.seed, progress=False)
    seconds = time.perf_counter() - start
    losses = [r["loss"] for r in result.restarts]
    return {"rmse": [math.nan if v is None else math.sqrt(v / p.rows) for v in losses],
            "iterations": [r["iterations"] for r in result.restarts],
            "seconds_per_fit": seconds / STARTS, "engine": result.settings.get("engine")}


def run_problem(p: Problem, directory: Path, r: RNnet | None, rounds: int) -> dict:
    x, y = dataset(p)
    spec = write_files(p, x, y, directory)
    specc_fit(p, spec, x, y)  # warm-up, untimed
    nnet_runs, specc_runs = [], []
    for _ in range(rounds):
        if r is not None:
            nnet_runs.append(r.fit(p))
        specc_runs.append(specc_fit(p, spec, x, y))
    row = {"name": p.name, "rows": p.rows, "inputs": p.inputs, "hidden": p.hidden,
           "parameters": p.parameters, "noise": p.noise, "seed": p.seed, "citation": p.citation,
           "specc": summary(specc_runs), "nnet": summary(nnet_runs) if nnet_runs else None}
    if nnet_runs:
        ratios = [s["seconds_per_fit"] / n["seconds_per_fit"] for s, n in zip(specc_runs, nnet_runs)]
        row["ratio"] = {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios),
                        "rounds": ratios}
    return row


def summary(runs: list[dict]) -> dict:
    """Best and median RMSE of the (deterministic) starts, and the per-fit times of every round."""
    rmse = [v for v in runs[0]["rmse"] if math.isfinite(v)]
    times = [run["seconds_per_fit"] for run in runs]
    return {"rmse": runs[0]["rmse"], "best_rmse": min(rmse, default=math.nan),
            "median_rmse": statistics.median(rmse) if rmse else math.nan,
            "same_every_round": all(run["rmse"] == runs[0]["rmse"] for run in runs),
            "seconds_per_fit": statistics.median(times), "seconds_per_fit_rounds": times,
            **{k: runs[0][k] for k in ("iterations", "engine", "sse") if k in runs[0]}}


# ---------------------------------------------------------------- the report
def table(rows: list[dict]) -> str:
    head = (f"{'problem':<14}{'rows':>5}{'in':>3}{'H':>3}{'par':>4} │ {'best RMSE':^17} │ {'median RMSE':^17} │"
            f" {'ms per fit':^15} │ specc/nnet time")
    sub = (f"{'':<29} │ {'nnet':>8}{'specc':>9} │ {'nnet':>8}{'specc':>9} │ {'nnet':>7}{'specc':>8} │"
           f" median (min–max)")
    lines = [head, sub, "─" * len(head)]

    def g(side, key, fmt, scale=1.0):  # nnet's column: a dash without R
        return format(scale * side[key], fmt) if side else "–".rjust(int(fmt.split(".")[0]))
    for row in rows:
        n, s = row["nnet"], row["specc"]
        ratio = row.get("ratio")
        ratio_text = f"{ratio['median']:5.2f} ({ratio['min']:.2f}–{ratio['max']:.2f})" if ratio else "–"
        lines.append(f"{row['name']:<14}{row['rows']:>5}{row['inputs']:>3}{row['hidden']:>3}{row['parameters']:>4} │"
                     f" {g(n, 'best_rmse', '8.5f')}{s['best_rmse']:9.5f} │"
                     f" {g(n, 'median_rmse', '8.5f')}{s['median_rmse']:9.5f} │"
                     f" {g(n, 'seconds_per_fit', '7.2f', 1e3)}{1e3 * s['seconds_per_fit']:8.2f} │"
                     f" {ratio_text}")
    return "\n".join(lines)


def footer(rows: list[dict], loads: dict, wall: float) -> str:
    paired = [row for row in rows if row["nnet"]]
    out = []
    if paired:
        ok = sum(row["specc"]["best_rmse"] <= row["nnet"]["best_rmse"] * (1 + SLACK) for row in paired)
        worse = [f"{row['name']} (+{row['specc']['best_rmse'] / row['nnet']['best_rmse'] - 1:.1%})"
                 for row in paired if row["specc"]["best_rmse"] > row["nnet"]["best_rmse"] * (1 + SLACK)]
        geo = math.exp(statistics.fmean(math.log(row["ratio"]["median"]) for row in paired))
        out += [f"specc's best RMSE ≤ nnet's (relative slack {SLACK:g}): {ok} of {len(paired)} problems"
                + (f"; worse: {', '.join(worse)}" if worse else ""),
                f"time per fit, specc/nnet: geometric mean of the medians {geo:.2f}"
                f" ({'specc faster' if geo < 1 else 'nnet faster'})"]
    fmt = ", ".join
    out.append(f"load average (1, 5, 15 min): start {fmt(f'{v:.2f}' for v in loads['start'])};"
               f" end {fmt(f'{v:.2f}' for v in loads['end'])}; suite wall time {wall:.0f} s")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="R/specc alternations per problem (default 5)")
    ap.add_argument("--only", metavar="NAME", help="run one problem: " + ", ".join(p.name for p in PROBLEMS))
    ap.add_argument("--json", metavar="FILE", help="write every number to FILE")
    args = ap.parse_args(argv)
    problems = [p for p in PROBLEMS if args.only in (None, p.name)]
    if not problems:
        ap.error(f"no problem named {args.only!r}")

    torch.set_num_threads(1)
    began, loads = time.perf_counter(), {"start": os.getloadavg()}
    rows = []
    with tempfile.TemporaryDirectory(prefix="specc-suite-") as tmp:
        r, why = RNnet.start(Path(tmp))
        print(f"R: {r.version}" if r else f"R's nnet is not available ({why}): specc's side only.")
        print(f"{STARTS} starts × {MAX_ITER} iterations, SSE, no decay; {args.rounds} round{'s' * (args.rounds != 1)}; "
              f"RMSE on the z-scored training data\n", flush=True)
        try:
            for p in problems:
                rows.append(run_problem(p, Path(tmp), r, args.rounds))
        finally:
            if r:
                r.close()
    loads["end"] = os.getloadavg()
    wall = time.perf_counter() - began
    print(table(rows))
    print(footer(rows, loads, wall))
    engines = sorted({str(row["specc"].get("engine")) for row in rows})
    print(f"specc engine: {', '.join(engines)}")
    if args.json:
        Path(args.json).write_text(json.dumps({"problems": rows, "load_average": loads, "wall_seconds": wall,
                                               "r": r.version if r else None, "rounds": args.rounds,
                                               "starts": STARTS, "max_iter": MAX_ITER}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
