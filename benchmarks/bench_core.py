#!/usr/bin/env python
"""Issue 8's targets: start-up of the front end, compile time and its growth, speed of the compiled forward.

    python benchmarks/bench_core.py [--repeat 21] [--only check|load|forward] [--json FILE]
                                    [--budget 30] [--profile]

On this shared, noisy machine every figure is a median with its spread (IQR, min–max) over many
repeats, measured against a reference in the same process, interleaved (A, B, A, B …, the order
rotating each round), with the load average printed at start and end. In-process timings read the
CPU time of this thread (time.thread_time: other processes do not inflate it) and wall time; targets
are judged on the former, except the whole ``specc check`` process, judged on wall time. Output: one
Markdown table per section on stdout; ``--json FILE`` also writes every number.

check    ``specc check specs/two_io.spec`` as a whole process (this interpreter's console script, else
         ``python -m specc``), interleaved with ``python -c pass``. Target ≤ 0.15 s. Then one
         ``python -X importtime -m specc check …``: are torch, networkx, numpy, matplotlib imported,
         and the 8 largest cumulative imports.
load     ``specc.load(text)`` and the front end alone (``specc.graph`` if the package has it, else
         ``specc.parse``) on generated specs of 100 … 10,000 statements: a tanh chain, and a mix of
         elementwise ops, a shared ``def`` and skip connections. Sizes interleave round by round; a run
         predicted (power law over the smaller sizes) to exceed ``--budget`` seconds is skipped, and
         repeats are cut to the budget; each text is unique, so no cache can answer, and each run's
         garbage collections see only its own objects (gc.freeze), as in a fresh process. Targets:
         1,000 statements ≤ 0.3 s; per-statement cost at 10,000 ≤ 1.5× that at 100 (paired by round).
         ``--profile``: cProfile's top 15 (cumulative) of one 1,000-statement load.
forward  specs/two_io.spec compiled vs the hand-written module of seed 002 (tests/references) and vs the
         raw-op limit (the fastest of a few plain-torch functions over the same weights, all checked
         to agree). One thread; forward+backward (grads to None, forward, sum of the outputs, backward)
         at batch 64 and 4096, forward alone under no_grad at batch 1, 64, 4096; ≥ 30 interleaved
         samples of ~20 ms, ratios taken per sample. Targets: hand-written / compiled ≥ 1.25,
         compiled / raw limit ≤ 1.05.
"""
from __future__ import annotations

import argparse
import cProfile
import functools
import gc
import json
import math
import os
import pstats
import re
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import specc  # noqa: E402
from tests.references.seed_two_io import NN, SPEC_TO_SEED  # noqa: E402

CHECK_SPEC = "specs/two_io.spec"
HEAVY = ("torch", "networkx", "numpy", "matplotlib")
SIZES = (100, 300, 1000, 3000, 10_000)
# Subprocesses import the specc of this checkout, not whatever the environment has installed.
# Bytecode caching stays on, as on a user's machine (this sandbox sets PYTHONDONTWRITEBYTECODE, which
# would recompile every module of specc at every start).
ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
       "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
IMPORT_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s*(\S+)\s*$")


# ---------------------------------------------------------------- statistics and tables
def summary(values: list[float]) -> dict:
    v = sorted(values)
    q1, med, q3 = statistics.quantiles(v, n=4, method="inclusive") if len(v) > 1 else (v[0],) * 3
    return {"median": med, "q1": q1, "q3": q3, "min": v[0], "max": v[-1], "n": len(v)}


def secs(s: float) -> str:
    unit, scale = next((u, k) for u, k in (("s", 1), ("ms", 1e-3), ("µs", 1e-6)) if abs(s) >= k or u == "µs")
    return f"{s / scale:.3g} {unit}"


def cells(st: dict, fmt=secs) -> list[str]:
    """median, IQR, min–max of a summary."""
    return [fmt(st["median"]), f"{fmt(st['q1'])} – {fmt(st['q3'])}", f"{fmt(st['min'])} – {fmt(st['max'])}"]


def table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


def rotated(items: list, i: int) -> list:
    """items starting at position i (mod len): A B C, B C A, C A B …"""
    k = i % len(items)
    return items[k:] + items[:k]


def clocks() -> tuple[float, float]:
    return time.thread_time(), time.perf_counter()


def since(start: tuple[float, float], divide: int = 1) -> dict:
    """CPU time of this thread and wall time since ``start``, divided by ``divide``."""
    cpu, wall = clocks()
    return {"cpu": (cpu - start[0]) / divide, "wall": (wall - start[1]) / divide}


def collect(samples: list[dict]) -> dict:
    """{"cpu": [...], "wall": [...]} of a list of {"cpu": x, "wall": y}."""
    return {clock: [x[clock] for x in samples] for clock in ("cpu", "wall")}


# ---------------------------------------------------------------- check: a whole process
def specc_command() -> list[str]:
    """This interpreter's own console script (a PATH shim such as pyenv's adds its own start-up)."""
    found = shutil.which("specc", path=sysconfig.get_path("scripts")) or shutil.which("specc")
    return [found] if found else [sys.executable, "-m", "specc"]


def run_process(cmd: list[str]) -> dict:
    """Wall seconds of the process, and its CPU seconds (user + sys)."""
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=ENV, capture_output=True, text=True)
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return {"wall": wall, "cpu": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime}


def import_report() -> dict:
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "specc", "check", CHECK_SPEC],
                          cwd=ROOT, env=ENV, capture_output=True, text=True)
    rows = [(int(m[2]), m[3]) for m in map(IMPORT_LINE.match, done.stderr.splitlines()) if m]
    heavy = {mod: any(n == mod or n.startswith(mod + ".") for _, n in rows) for mod in HEAVY}
    top = [{"module": n, "cumulative_s": us / 1e6} for us, n in sorted(rows, reverse=True)[:8]]
    return {"heavy": heavy, "top": top, "modules": len(rows)}


def bench_check(args) -> dict:
    commands = {"python -c pass (reference)": [sys.executable, "-c", "pass"],
                "specc check": specc_command() + ["check", CHECK_SPEC]}
    for cmd in commands.values():
        run_process(cmd)  # warm-up: page cache, .pyc files
    runs = {name: [] for name in commands}
    for i in range(args.repeat):
        for name, cmd in rotated(list(commands.items()), i):
            runs[name].append(run_process(cmd))
    times = {name: collect(r) for name, r in runs.items()}
    ref, check = times["python -c pass (reference)"], times["specc check"]
    times["difference (specc check − reference, per round)"] = {
        clock: [c - r for c, r in zip(check[clock], ref[clock])] for clock in ("cpu", "wall")}
    stats = {name: {clock: summary(t[clock]) for clock in t} for name, t in times.items()}
    imports = import_report()
    print(f"command: `{' '.join(commands['specc check'])}`, {args.repeat} interleaved rounds\n")
    print(table(["process", "median wall", "IQR", "min – max", "median CPU (user+sys)"],
                [[k, *cells(s["wall"]), secs(s["cpu"]["median"])] for k, s in stats.items()]))
    wall = stats["specc check"]["wall"]["median"]
    print(f"\ntarget: specc check ≤ 0.15 s (wall): {'met' if wall <= 0.15 else 'NOT met'} ({secs(wall)})\n")
    print(f"`python -X importtime -m specc check {CHECK_SPEC}`: {imports['modules']} modules imported\n")
    print(table(["heavy module", "imported"], [[m, "yes" if v else "no"] for m, v in imports["heavy"].items()]))
    print()
    print(table(["largest cumulative imports", "cumulative"], [[t["module"], secs(t["cumulative_s"])]
                                                                for t in imports["top"]]))
    return {"command": commands["specc check"], "times": times, "stats": stats, "imports": imports}


# ---------------------------------------------------------------- load: compile time and its growth
def chain_spec(n: int) -> str:
    """``input x[4]`` then n statements ``hI[4] = tanh(WI·h(I-1) + bI)``."""
    lines = ["input x[4]"]
    for i in range(1, n + 1):
        lines.append(f"h{i}[4] = tanh(W{i}·{'x' if i == 1 else f'h{i - 1}'} + b{i})")
    return "\n".join(lines) + "\n"


def mixed_spec(n: int) -> str:
    """n statements of three forms in turn: a shared ``def``, elementwise ops, skip connections."""
    forms = ("h{i} = gate(A{i}·{p} + c{i}, {p}) + {p}",
             "h{i} = {p} * s{i} - {q} / 2",
             "h{i} = elu(W{i}·{p}) * 0.5 + square({q})")
    lines = ["input x[4]", "def gate(a, c) = sigmoid(a) * c"]
    for i in range(1, n + 1):
        p, q = (f"h{j}" if j >= 1 else "x" for j in (i - 1, i - 2))
        lines.append(forms[i % 3].format(i=i, p=p, q=q))
    return "\n".join(lines) + "\n"


SHAPES = {"chain": chain_spec, "mixed": mixed_spec}
_unique = iter(range(10**9))


def time_once(fn, text: str) -> dict:
    text += f"# run {next(_unique)}\n"  # unique text: a cache keyed by content cannot answer
    gc.collect()  # the last run's garbage; then its survivors join the frozen rest, so that this run's
    gc.freeze()  # collections (and the next gc.collect) walk this run's objects only, as in a fresh process
    start = clocks()
    fn(text)
    return since(start)


def predict(history: list[tuple[int, float]], n: int) -> float:
    """One run's seconds at size n, by a power law through the last two sizes (n² from one)."""
    if len(history) < 2:
        return history[-1][1] * (n / history[-1][0]) ** 2 if history else 0.0
    (n0, t0), (n1, t1) = history[-2:]
    return t1 * (n / n1) ** min(3.0, max(1.0, math.log(t1 / t0) / math.log(n1 / n0)))


def bench_load(args) -> dict:
    graph = getattr(specc, "graph", None)  # the front end alone; today specc.graph is the submodule
    kinds = {"specc.load": specc.load}
    kinds.update({"specc.graph": graph} if callable(graph) else {"specc.parse": specc.parse})
    for fn in kinds.values():  # warm-up: imports, grammar tables
        time_once(fn, chain_spec(3)), time_once(fn, mixed_spec(3))
    samples, reps, skipped = {}, {}, {}
    for shape, gen in SHAPES.items():  # one pilot run per size, smallest first
        for kind, fn in kinds.items():
            history = []
            for n in SIZES:
                key, guess = (shape, kind, n), predict(history, n)
                if guess > args.budget:
                    skipped[key] = f"skipped: one run predicted {secs(guess)}"
                    continue
                try:
                    samples[key] = [time_once(fn, gen(n))]
                except specc.SpecError as err:  # e.g. a limit on the spec's size: larger sizes are refused too
                    skipped.update({(shape, kind, m): f"refused: {err}" for m in SIZES if m >= n})
                    break
                history.append((n, samples[key][0]["wall"]))
                wanted = args.repeat if n < 10_000 else min(args.repeat, 3)
                reps[key] = max(1, min(wanted, int(args.budget / history[-1][1])))
    for r in range(1, max(reps.values(), default=1)):  # then rounds over every (shape, kind, size): interleaved
        gc.unfreeze()  # so that what a cache let go of since the last round is freed
        for (shape, kind, n), times in samples.items():
            if reps[shape, kind, n] > r:
                times.append(time_once(kinds[kind], SHAPES[shape](n)))
    gc.unfreeze()
    return report_load({k: collect(v) for k, v in samples.items()}, skipped, kinds, args)


def report_load(samples: dict, skipped: dict, kinds: dict, args) -> dict:
    out = {"budget_s": args.budget, "rows": [], "targets": {}, "skipped": {"/".join(map(str, k)): v
                                                                        for k, v in skipped.items()}}
    for shape in SHAPES:
        for kind in kinds:
            rows, per = [], {}
            for n in SIZES:
                if (shape, kind, n) in skipped:
                    rows.append([f"{n:,}", skipped[shape, kind, n].splitlines()[0], "", "", "", "", 0])
                    continue
                times = samples[shape, kind, n]
                st, wall = summary(times["cpu"]), statistics.median(times["wall"])
                per[n] = st["median"] / n
                rows.append([f"{n:,}", *cells(st), secs(wall), f"{per[n] * 1e6:,.1f} µs", st["n"]])
                out["rows"].append({"shape": shape, "kind": kind, "statements": n, "cpu": st,
                                    "wall": summary(times["wall"]), "times": times})
            if not per:
                continue
            print(f"\n{kind}, {shape} specs ({SHAPES[shape].__doc__.strip()})\n")
            print(table(["statements", "median CPU", "IQR", "min – max", "median wall", "per statement (CPU)",
                         "runs"], rows))
            largest, at_1000 = max(per), per.get(1000, math.inf) * 1000
            big, small = samples[shape, kind, largest]["cpu"], samples[shape, kind, SIZES[0]]["cpu"]
            growth = summary([b / largest / (s / SIZES[0]) for b, s in zip(big, small)])  # paired by round
            out["targets"][f"{shape}/{kind}"] = {"per_statement_ratio": growth, "largest": largest,
                                                  "at_1000_s": at_1000}
            if kind == "specc.load":
                verdict = {True: "met", False: "NOT met"}
                print(f"\ntargets: 1,000 statements ≤ 0.3 s: {secs(at_1000)} ({verdict[at_1000 <= 0.3]}); "
                      f"per statement at {largest:,} / at 100 ≤ 1.5×: {growth['median']:.2f}× (median of "
                      f"{growth['n']} rounds, {growth['min']:.2f}–{growth['max']:.2f}×; "
                      f"{verdict[growth['median'] <= 1.5 and largest == SIZES[-1]]})")
    return out


def profile_load() -> None:
    print("\ncProfile of specc.load on a 1,000-statement chain (top 15, cumulative)\n\n```")
    profile = cProfile.Profile()
    profile.runcall(specc.load, chain_spec(1000) + "# profiled\n")
    pstats.Stats(profile, stream=sys.stdout).sort_stats("cumulative").print_stats(15)
    print("```")


# ---------------------------------------------------------------- forward: compiled, hand-written, raw ops
def raw_linear(p, in1, in2):
    h = torch.relu(F.linear(in1, p["W1"], p["b"]) + F.linear(in2, p["V1"]))
    return torch.relu(F.linear(h, p["W2"], p["b_w"])), torch.relu(F.linear(h, p["V2"], p["b_v"]))


def raw_addmm(p, in1, in2):
    h = torch.relu(torch.addmm(torch.addmm(p["b"], in1, p["W1"].T), in2, p["V1"].T))
    return torch.relu(torch.addmm(p["b_w"], h, p["W2"].T)), torch.relu(torch.addmm(p["b_v"], h, p["V2"].T))


def raw_cat(p, in1, in2):
    h = torch.relu(torch.addmm(p["b"], torch.cat([in1, in2], 1), torch.cat([p["W1"], p["V1"]], 1).T))
    return torch.relu(torch.addmm(p["b_w"], h, p["W2"].T)), torch.relu(torch.addmm(p["b_v"], h, p["V2"].T))


def raw_cat_heads(p, in1, in2):
    h = torch.relu(torch.addmm(p["b"], torch.cat([in1, in2], 1), torch.cat([p["W1"], p["V1"]], 1).T))
    both = torch.relu(torch.addmm(torch.cat([p["b_w"], p["b_v"]]), h, torch.cat([p["W2"], p["V2"]]).T))
    return both[:, :p["b_w"].shape[0]], both[:, p["b_w"].shape[0]:]


RAW = {"raw: F.linear ×4": raw_linear, "raw: addmm chain": raw_addmm, "raw: cat hidden GEMM": raw_cat,
       "raw: cat hidden + heads": raw_cat_heads}


def variants() -> dict:
    """name → (forward(in1, in2) → (out1, out2), {name: parameter}), all with the compiled module's weights."""
    torch.manual_seed(0)
    compiled = specc.load(ROOT / CHECK_SPEC)
    weights = {k: v.detach().clone() for k, v in compiled.state_dict().items()}  # the spec's names
    hand = NN(5, 10, 3)
    hand.load_state_dict({SPEC_TO_SEED[k]: v for k, v in weights.items()})
    found = {"compiled (specc.load)": (compiled, dict(compiled.named_parameters())),
             "hand-written (seed 002)": (hand, {k: hand.get_parameter(v) for k, v in SPEC_TO_SEED.items()})}
    for name, fn in RAW.items():
        leaves = {k: v.clone().requires_grad_() for k, v in weights.items()}
        found[name] = (functools.partial(fn, leaves), leaves)
    return found


def train_step(forward, params, in1, in2):
    for p in params.values():
        p.grad = None
    out1, out2 = forward(in1, in2)
    (out1.sum() + out2.sum()).backward()
    return out1, out2


def infer_step(forward, params, in1, in2):
    with torch.no_grad():
        return forward(in1, in2)


def check_agreement(found: dict, in1, in2) -> None:
    """Every variant computes the hand-written module's outputs and gradients (float32, atol 1e-5)."""
    results = {}
    for name, (forward, params) in found.items():
        outs = train_step(forward, params, in1, in2)
        grads = {k: p.grad.clone() for k, p in params.items()}
        results[name] = {"out1": outs[0].detach(), "out2": outs[1].detach(), **grads}
    reference = results["hand-written (seed 002)"]
    for name, values in results.items():
        for key in values.keys() & reference.keys():
            a, b = values[key], reference[key]
            assert torch.allclose(a, b, atol=1e-5, rtol=1e-5), f"{name}: {key} differs by {(a - b).abs().max()}"


def time_variant(step, forward, params, in1, in2, iterations: int) -> dict:
    start = clocks()
    for _ in range(iterations):
        step(forward, params, in1, in2)
    return since(start, iterations)


def bench_one(step, found: dict, batch: int, samples: int) -> dict:
    gen = torch.Generator().manual_seed(batch)
    in1, in2 = torch.randn(batch, 5, generator=gen), torch.randn(batch, 5, generator=gen)
    check_agreement(found, in1, in2)
    compiled = found["compiled (specc.load)"]
    for forward, params in found.values():
        time_variant(step, forward, params, in1, in2, 20)  # warm-up
    one = time_variant(step, *compiled, in1, in2, 20)["cpu"]
    iterations = max(1, int(0.02 / one))  # about 20 ms a sample
    runs = {name: [] for name in found}
    for i in range(samples):
        for name, (forward, params) in rotated(list(found.items()), i):
            runs[name].append(time_variant(step, forward, params, in1, in2, iterations))
    times = {name: collect(r) for name, r in runs.items()}
    medians = {name: statistics.median(t["cpu"]) for name, t in times.items() if name in RAW}
    limit = min(medians, key=medians.get)
    c, h, r = times["compiled (specc.load)"], times["hand-written (seed 002)"], times[limit]
    ratios = {f"hand-written / compiled ({clock})": summary([a / b for a, b in zip(h[clock], c[clock])])
              for clock in ("cpu", "wall")}
    ratios.update({f"compiled / raw limit, {limit} ({clock})": summary([a / b for a, b in zip(c[clock], r[clock])])
                   for clock in ("cpu", "wall")})
    return {"batch": batch, "iterations": iterations, "limit": limit, "times": times, "ratios": ratios,
            "stats": {name: {clock: summary(t[clock]) for clock in t} for name, t in times.items()}}


def bench_forward(args) -> dict:
    torch.set_num_threads(1)
    found, samples, out = variants(), max(30, args.repeat), {}
    for label, step, batches in (("forward+backward", train_step, (64, 4096)),
                                 ("forward only (no_grad)", infer_step, (1, 64, 4096))):
        for batch in batches:
            res = bench_one(step, found, batch, samples)
            out[f"{label}, batch {batch}"] = res
            print(f"\n{label}, batch {batch}: {samples} interleaved samples of {res['iterations']} iterations, "
                  f"1 thread\n")
            rows = [[name, *cells(st["cpu"]), secs(st["wall"]["median"])] for name, st in res["stats"].items()]
            rows += [[name, *cells(st, lambda x: f"{x:.3f}×"), ""] for name, st in res["ratios"].items()]
            print(table(["per iteration (CPU) / ratio", "median", "IQR", "min – max", "median wall"], rows))
            if step is train_step:
                hand, raw = (st["median"] for name, st in res["ratios"].items() if name.endswith("(cpu)"))
                print(f"\ntargets: hand-written / compiled ≥ 1.25: {'met' if hand >= 1.25 else 'NOT met'}; "
                      f"compiled / raw limit ≤ 1.05: {'met' if raw <= 1.05 else 'NOT met'}")
    return out


# ---------------------------------------------------------------- main
SECTIONS = {"check": bench_check, "load": bench_load, "forward": bench_forward}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=list(SECTIONS), action="append",
                        help="run only this section (repeatable)")
    parser.add_argument("--repeat", type=int, default=21, help="rounds for check and load (default 21); "
                        "forward takes max(30, N) samples")
    parser.add_argument("--budget", type=float, default=30.0,
                        help="load: seconds one (shape, function, size) may take in all (default 30)")
    parser.add_argument("--json", metavar="FILE", help="also write every result as JSON")
    parser.add_argument("--profile", action="store_true", help="cProfile one 1,000-statement load")
    args = parser.parse_args()
    loadavg = lambda: [round(x, 2) for x in os.getloadavg()]  # noqa: E731
    results = {"loadavg_start": loadavg(), "torch": torch.__version__, "python": sys.version.split()[0]}
    print(f"load average at start: {results['loadavg_start']} ({os.cpu_count()} CPUs), "
          f"Python {results['python']}, torch {results['torch']}")
    for name in args.only or list(SECTIONS):
        print(f"\n## {name}\n")
        results[name] = SECTIONS[name](args)
    if args.profile:
        profile_load()
    results["loadavg_end"] = loadavg()
    print(f"\nload average at end: {results['loadavg_end']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
