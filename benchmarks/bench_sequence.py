#!/usr/bin/env python
"""The sequence story's comparison (examples/sine_sequence.py), repeated: `specc train` with no
options against the same Elman network by hand in PyTorch (nn.RNN + nn.Linear, Adam), both from
torch's initial weights of the same seed, scored by their MSE on the test sequences.

    python benchmarks/bench_sequence.py [--repeat 5] [--json out.json]

Repeat k uses seed k for both, and the two run interleaved (AB BA AB …), so that a change in the
machine's load hits both; the table gives the median and the spread (min–max) of the wall time and
of the test MSE, and the load average before and after (`/proc/loadavg`). One thread for torch.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
import sine_sequence as story  # noqa: E402


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", metavar="FILE", help="write every run's figures")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    story.write_data()
    runs = {"specc train": story.fit_specc, "PyTorch Adam": story.fit_torch}
    results = {name: [] for name in runs}
    before = load_average()
    for k in range(args.repeat):
        order = list(runs) if k % 2 == 0 else list(reversed(runs))
        for name in order:
            with contextlib.redirect_stdout(io.StringIO()):  # specc train's own summary line
                mse, seconds = runs[name](k)
            results[name].append({"seed": k, "test_mse": mse, "seconds": seconds})
            print(f"  seed {k} {name}: test MSE {mse:.5f}, {seconds:.2f} s", file=sys.stderr)
    after = load_average()
    print(f"{args.repeat} repeats, interleaved; load average {before} before, {after} after; "
          f"torch {torch.__version__}, 1 thread")
    print(f"{'':14} {'test MSE median (min–max)':>28} {'seconds median (min–max)':>28}")
    for name, rows in results.items():
        mse, sec = [r["test_mse"] for r in rows], [r["seconds"] for r in rows]
        print(f"{name:14} {statistics.median(mse):10.5f} ({min(mse):.5f}–{max(mse):.5f}) "
              f"{statistics.median(sec):10.2f} ({min(sec):.2f}–{max(sec):.2f})")
    print(f"next value = this value: test MSE {story.baseline():.5f}; the noise alone: {story.NOISE ** 2:g}")
    if args.json:
        Path(args.json).write_text(json.dumps({"load_before": before, "load_after": after, **results}, indent=1))


if __name__ == "__main__":
    main()
