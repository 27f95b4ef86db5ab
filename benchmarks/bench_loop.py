#!/usr/bin/env python
"""Issue 13's loop target: one epoch of mini-batch Adam (batch 4096) over 1,000,000 in-memory rows of
specs/two_io.spec, as ratios measured in one run.

    python benchmarks/bench_loop.py [--rows 1000000] [--repeat 5] [--dataloader-repeat 3] [--threads 1]
                                    [--json FILE]

Three ways to run that epoch, on the same module (specc.load of the spec) and the same tensors:

specc        ``specc.fit(model, data, optimizer="adam", epochs=1, batch_size=4096)``: the whole call
             (data checks, start check, the epoch, the final loss).
lean         a hand-written loop: ``torch.randperm``, index tensors, torch.optim.Adam.
DataLoader   ``DataLoader(TensorDataset(...), batch_size=4096, shuffle=True)`` and torch.optim.Adam.

Each contender runs once in a warm-up (so that imports land nowhere), then the rounds interleave
(the order rotating each round) so that a change in the machine's load hits all of them; each
round's ratios are taken within the round. Each run reads wall time and the CPU time of this thread
(one torch thread, no DataLoader workers: all the work is in this thread, and other processes on a
shared machine cannot inflate it). The tables give medians with the spread (min–max), and the load
average before and after. Targets: specc / lean ≤ 1.2, DataLoader / specc ≥ 10.

Then the first-use cost, each in a fresh interpreter: ``import torch`` + ``import specc`` + the fit
(wall time from start to the fit's end), against the same for the lean loop with torch.optim.Adam,
and whether ``torch._dynamo`` or ``sympy`` were imported (torch.optim's classes import them at
their first use; specc's first-order optimizers do not, see specc/train/steppers.py).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "specs" / "two_io.spec"
BATCH = 4096
# Bytecode caching stays on in the fresh interpreters, as on a user's machine (this sandbox sets
# PYTHONDONTWRITEBYTECODE, which would recompile every module of specc at every start).
ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
       "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.thread_time()


def elapsed(start: tuple[float, float]) -> tuple[float, float]:
    """(wall, CPU of this thread) seconds since ``start``: the CPU time is what other processes on a
    shared machine cannot inflate (one torch thread, a DataLoader without workers: all in this thread)."""
    wall, cpu = clocks()
    return wall - start[0], cpu - start[1]


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def make_data(rows: int, seed: int = 0) -> dict:
    import torch
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(rows, size, generator=g) for name, size in
            (("in1", 5), ("in2", 5), ("out1", 3), ("out2", 3))}


def run_specc(data: dict, seed: int) -> float:
    import torch
    import specc
    torch.manual_seed(seed)
    model = specc.load(SPEC)
    start = clocks()
    specc.fit(model, data, optimizer="adam", epochs=1, batch_size=BATCH, progress=False, seed=seed)
    return elapsed(start)


def run_lean(data: dict, seed: int) -> float:
    import torch
    import torch.nn.functional as F
    import specc
    torch.manual_seed(seed)
    model = specc.load(SPEC)
    start = clocks()
    in1, in2, out1, out2 = data["in1"], data["in2"], data["out1"], data["out2"]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for idx in torch.randperm(len(in1)).split(BATCH):
        opt.zero_grad()
        p1, p2 = model(in1[idx], in2[idx])
        loss = F.mse_loss(p1, out1[idx]) + F.mse_loss(p2, out2[idx])
        loss.backward()
        opt.step()
    return elapsed(start)


def run_dataloader(data: dict, seed: int) -> float:
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader, TensorDataset
    import specc
    torch.manual_seed(seed)
    model = specc.load(SPEC)
    start = clocks()
    loader = DataLoader(TensorDataset(data["in1"], data["in2"], data["out1"], data["out2"]),
                        batch_size=BATCH, shuffle=True)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for in1, in2, out1, out2 in loader:
        opt.zero_grad()
        p1, p2 = model(in1, in2)
        loss = F.mse_loss(p1, out1) + F.mse_loss(p2, out2)
        loss.backward()
        opt.step()
    return elapsed(start)


RUNS = {"specc": run_specc, "lean": run_lean, "DataLoader": run_dataloader}

# The first use in a fresh interpreter: everything from `import torch` on.
FIRST_USE = {
    "specc": "import specc\nm = specc.load(SPEC)\n"
             "specc.fit(m, data, optimizer='adam', epochs=1, batch_size=4096, progress=False)\n",
    "lean": "import specc\nimport torch.nn.functional as F\nm = specc.load(SPEC)\n"
            "opt = torch.optim.Adam(m.parameters(), lr=1e-3)\n"
            "for idx in torch.randperm(len(data['in1'])).split(4096):\n"
            "    opt.zero_grad()\n"
            "    p1, p2 = m(data['in1'][idx], data['in2'][idx])\n"
            "    (F.mse_loss(p1, data['out1'][idx]) + F.mse_loss(p2, data['out2'][idx])).backward()\n"
            "    opt.step()\n",
}
FIRST_USE_PROLOGUE = """
import sys, time, json
start = time.perf_counter()
import torch
torch.set_num_threads({threads})
sys.path.insert(0, {bench!r})
from bench_loop import make_data
SPEC = {spec!r}
data = make_data({rows})
made = time.perf_counter()
"""
FIRST_USE_EPILOGUE = """
end = time.perf_counter()
print(json.dumps({{"seconds": end - start - (made - start) + imported, "dynamo": "torch._dynamo" in sys.modules,
                  "sympy": "sympy" in sys.modules}}))
"""


def first_use(name: str, rows: int, threads: int) -> dict:
    # the data's making is not counted; `import torch` is (imported: measured before the data)
    prologue = FIRST_USE_PROLOGUE.format(threads=threads, bench=str(Path(__file__).parent), spec=str(SPEC),
                                         rows=rows)
    prologue = prologue.replace("import torch\n", "import torch\nimported = time.perf_counter() - start\n", 1)
    code = prologue + FIRST_USE[name] + FIRST_USE_EPILOGUE.format()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3g} ({min(values):.3g}–{max(values):.3g})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="rounds of specc and lean")
    parser.add_argument("--dataloader-repeat", type=int, default=3,
                        help="rounds that also run the DataLoader idiom (it is ~20× slower)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: a shared machine)")
    parser.add_argument("--first-use", type=int, default=3, help="fresh interpreters per contender")
    parser.add_argument("--json", metavar="FILE", help="write every figure")
    args = parser.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    sys.path.insert(0, str(ROOT))
    data = make_data(args.rows)
    warm = make_data(2 * BATCH, seed=1)
    for run in RUNS.values():
        run(warm, 0)  # imports and first-call costs land here
    before = load_average()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in RUNS}
    ratios: dict[str, list[tuple[float, float]]] = {"specc / lean": [], "DataLoader / specc": []}
    for k in range(args.repeat):
        names = [n for n in RUNS if n != "DataLoader" or k < args.dataloader_repeat]
        names = names[k % len(names):] + names[:k % len(names)]  # rotate the order
        seconds = {name: RUNS[name](data, k) for name in names}
        for name, value in seconds.items():
            times[name].append(value)
        ratio = lambda a, b: tuple(x / y for x, y in zip(seconds[a], seconds[b]))  # noqa: E731
        ratios["specc / lean"].append(ratio("specc", "lean"))
        if "DataLoader" in seconds:
            ratios["DataLoader / specc"].append(ratio("DataLoader", "specc"))
        print(f"  round {k}: " + ", ".join(f"{n} {v[0]:.3f} s ({v[1]:.3f} s CPU)" for n, v in seconds.items()),
              file=sys.stderr)
    after = load_average()
    fresh = {name: [first_use(name, args.rows, args.threads) for _ in range(args.first_use)] for name in FIRST_USE}
    final = load_average()
    print(f"one epoch of Adam, batch {BATCH}, {args.rows:,} rows of {SPEC.name}; torch {torch.__version__}, "
          f"{args.threads} thread(s); load average {before} before, {after} after the rounds, {final} at the end")
    print()
    print("| | CPU seconds (this thread), median (min–max) | wall seconds, median (min–max) | rounds |")
    print("|---|---|---|---|")
    for name, values in times.items():
        if values:
            cpu, wall = spread([v[1] for v in values]), spread([v[0] for v in values])
            print(f"| {name} | {cpu} | {wall} | {len(values)} |")
    print()
    print("| ratio (per round) | of CPU times, median (min–max) | of wall times | target |")
    print("|---|---|---|---|")
    for name, target in (("specc / lean", "≤ 1.2"), ("DataLoader / specc", "≥ 10")):
        if ratios[name]:
            print(f"| {name} | {spread([r[1] for r in ratios[name]])} | {spread([r[0] for r in ratios[name]])} "
                  f"| {target} |")
    print()
    print("| first use, fresh interpreter (import torch … fit) | seconds, median (min–max) "
          "| imports torch._dynamo | imports sympy |")
    print("|---|---|---|---|")
    for name, rows in fresh.items():
        if rows:
            seconds = spread([r["seconds"] for r in rows])
            print(f"| {name} | {seconds} | {rows[0]['dynamo']} | {rows[0]['sympy']} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"times": times, "ratios": ratios, "first_use": fresh,
                                               "load": [before, after, final], "rows": args.rows,
                                               "threads": args.threads, "torch": torch.__version__}, indent=1))


if __name__ == "__main__":
    main()
