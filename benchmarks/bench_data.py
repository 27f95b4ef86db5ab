"""Reading a 1,000,000-row, 16-column CSV: specc's reader against numpy.loadtxt (issue 13, "Data at scale").

Each read runs in a fresh subprocess, so that its peak RSS is its own: the subprocess imports what
it needs, notes its RSS, reads the file, and reports the time of the read and its peak RSS
(getrusage's ru_maxrss). The contestants run interleaved (A, B, C, A, B, C, …) so that a change
in the machine's load falls on all of them; the medians and the spread (min–max) are printed with
the load average. "+MB" is the peak over the RSS after imports: what reading the file cost.

    python benchmarks/bench_data.py [--rows 1000000] [--repeats 3] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
COLUMNS = 16

# What each subprocess runs: imports, RSS, one timed read, a checksum so that results can be compared.
CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {root!r})
import numpy as np
def rss_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
who, path = sys.argv[1], sys.argv[2]
if who == "loadtxt":
    read = lambda: np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
else:
    from specc.train import csv_reader, data
    csv_reader.ENGINE = who.removeprefix("specc-")
    if csv_reader.ENGINE == "pyarrow":
        import pyarrow.csv
    read = lambda: data.read_table(path)
before = rss_mb()
start = time.perf_counter()
result = read()
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
import hashlib
columns = list(result.T) if who == "loadtxt" else list(result.arrays.values())
digest = hashlib.sha1(b"".join(hashlib.sha1(np.ascontiguousarray(c).tobytes()).digest() for c in columns))
print(json.dumps(dict(seconds=seconds, before=before, peak=peak, checksum=digest.hexdigest())))
"""


def generate(path: Path, rows: int) -> None:
    """Random normal numbers written as Python writes them (shortest repr: ~18 characters a cell)."""
    rng = np.random.default_rng(0)
    names = [f"x[{i}]" for i in range(1, 9)] + [f"y[{i}]" for i in range(1, 9)]
    with open(path, "w") as out:
        out.write(",".join(names) + "\n")
        for start in range(0, rows, 50_000):
            block = rng.standard_normal((min(50_000, rows - start), COLUMNS))
            out.write("\n".join(",".join(map(repr, row)) for row in block.tolist()) + "\n")


def run(who: str, path: Path) -> dict:
    child = CHILD.format(root=str(ROOT))
    done = subprocess.run([sys.executable, "-c", child, who, str(path)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", help="a folder to keep (and reuse) the generated CSV in")
    parser.add_argument("--who", default="specc-auto,specc-numpy,loadtxt",
                        help="contestants: specc-auto (pyarrow where installed), specc-pyarrow, specc-numpy, loadtxt")
    args = parser.parse_args()
    contestants = args.who.split(",")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(args.keep or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"bench_{args.rows}x{COLUMNS}.csv"
        if not path.exists():
            generate(path, args.rows)
        try:
            import pyarrow
            engine = f"pyarrow {pyarrow.__version__}"
        except ImportError:
            engine = "no pyarrow: specc-auto is the numpy engine"
        load_before = os.getloadavg()
        results: dict[str, list[dict]] = {who: [] for who in contestants}
        for _ in range(args.repeats):
            for who in contestants:  # interleaved: A, B, C, A, B, C, …
                results[who].append(run(who, path))
        load_after = os.getloadavg()
        data_mb = args.rows * COLUMNS * 8 / 2 ** 20
        print(f"file: {args.rows:,} rows × {COLUMNS} columns, {path.stat().st_size / 2 ** 20:.0f} MiB of text, "
              f"{data_mb:.0f} MiB as float64; {args.repeats} interleaved runs each, fresh process per run; "
              f"numpy {np.__version__}, {engine}")
        print(f"load average (1, 5, 15 min): before {_load(load_before)}, after {_load(load_after)}; "
              f"{os.cpu_count()} CPUs")
        print(f"{'reader':<14} {'time (median, min–max)':<26} {'peak RSS':>9} {'+MB (read)':>11} {'× data':>7}")
        sums = {who: runs[0]["checksum"] for who, runs in results.items()}
        for who, runs in results.items():
            times = [r["seconds"] for r in runs]
            extra = statistics.median(r["peak"] - r["before"] for r in runs)
            print(f"{who:<14} {statistics.median(times):6.2f} s ({min(times):.2f}–{max(times):.2f})"
                  f"{'':<9} {statistics.median(r['peak'] for r in runs):6.0f} MB {extra:8.0f} MB "
                  f"{extra / data_mb:6.2f}")
        if "loadtxt" in results:
            base = statistics.median(r["seconds"] for r in results["loadtxt"])
            for who in contestants:
                if who != "loadtxt":
                    print(f"{who}: {base / statistics.median(r['seconds'] for r in results[who]):.2f}× "
                          "loadtxt's speed")
        if len(set(sums.values())) != 1:
            raise SystemExit(f"the readers disagree: checksums {sums}")


def _load(triple) -> str:
    return ", ".join(f"{x:.2f}" for x in triple)


if __name__ == "__main__":
    main()
