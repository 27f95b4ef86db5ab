#!/usr/bin/env python
"""The big fuzzer (issue 11): the generators of tests/test_fuzz.py on 100,000 cases, plain random, no shrinking.

    python benchmarks/fuzz.py [--cases 100000] [--seconds 900] [--workers 2] [--seed 0]
                              [--grammar-share 0.3] [--timeout 20] [--save DIR] [--case K] [--stages …]

Case k is a derivation of specc's grammar (a ``--grammar-share`` of the cases) or a mutated seed spec
(the bundled specs and docs/language.md's spec blocks), drawn by ``random.Random(f"{seed}:{k}")``:
the same k gives the same text whatever the number of workers, and ``--case K`` reruns one case and
prints its text and how it ended. Every case runs through every stage (tests/fuzzing.py, ``examine``):
``specc.graph``, ``to_source``, ``draw``, ``load`` and the module's forward on random inputs, and the
CLI's ``check``, ``check --dump ast``, ``inspect`` and ``explain``.

Printed: the cases run, valid specs, valid but too large to build here (over tests/fuzzing.py's
LOAD_BUDGET elements), SpecErrors by class (and stage, when refused after the graph was built), and
every other ending by stage and exception type (a crash: a non-SpecError exception, a wrong output
shape, a traceback or an exit status other than 0/1 from the CLI, a case over ``--timeout`` seconds),
with one reproducer each, written to ``--save DIR`` as ``STAGE-ERROR.spec`` (the exact text) and
``STAGE-ERROR.txt`` (case number, traceback); then the wall time. Exit status 1 when anything crashed.

The run stops at ``--cases`` or after ``--seconds``, whichever comes first; it says which.
"""
from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import random
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests import fuzzing  # noqa: E402

CHUNK = 100  # cases a worker runs between reports


class CaseTimeout(BaseException):
    """A case over --timeout: a BaseException, so that no ``except Exception`` in specc swallows it."""


def _alarm(signum, frame):
    raise CaseTimeout()


def text_of(seed: int, case: int, grammar_share: float) -> tuple[str, str]:
    """(generator, text) of case ``case``."""
    rng = random.Random(f"{seed}:{case}")
    if rng.random() < grammar_share:
        return "grammar", fuzzing.derive(rng)
    return "mutant", fuzzing.mutant(rng)


_STATE: dict = {}


def _start_worker(options: dict) -> None:
    import warnings
    warnings.simplefilter("ignore")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    torch.set_num_threads(1)
    signal.signal(signal.SIGALRM, _alarm)
    _STATE.update(options, folder=Path(tempfile.mkdtemp(prefix="specc-fuzz-")))


def run_case(case: int) -> tuple[str, fuzzing.Outcome, str]:
    """(generator, outcome, text) of one case, within the time limit."""
    generator, text = text_of(_STATE["seed"], case, _STATE["grammar_share"])
    signal.setitimer(signal.ITIMER_REAL, _STATE["timeout"])
    started = time.monotonic()
    try:
        outcome = fuzzing.examine(text, _STATE["folder"], _STATE["stages"])
    except CaseTimeout:
        outcome = fuzzing.Outcome("crash", "any", "timeout", f"over {_STATE['timeout']} s")
    except RecursionError as err:  # escaped examine's own handlers (e.g. while formatting a report)
        outcome = fuzzing.Outcome("crash", "any", "RecursionError", str(err))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    outcome.seconds = time.monotonic() - started
    return generator, outcome, text


def run_chunk(args: tuple[int, int, float]) -> list[tuple[int, str, fuzzing.Outcome, str | None]]:
    """Cases first … first+count-1, until the deadline; the text is returned for crashes only."""
    first, count, deadline = args
    results = []
    for case in range(first, first + count):
        if time.time() > deadline:
            break
        generator, outcome, text = run_case(case)
        results.append((case, generator, outcome, text if outcome.kind == "crash" else None))
    return results


class Tally:
    def __init__(self):
        self.cases = 0
        self.by_generator = collections.Counter()
        self.kinds = collections.Counter()
        self.refused = collections.Counter()  # (stage, SpecError class)
        self.crashes = collections.Counter()  # (stage, exception type)
        self.examples: dict[tuple[str, str], tuple[int, str, str]] = {}  # first (case, text, detail)
        self.slowest = (0.0, -1)

    def add(self, case: int, generator: str, outcome: fuzzing.Outcome, text: str | None) -> None:
        self.cases += 1
        self.by_generator[generator, outcome.kind] += 1
        self.kinds[outcome.kind] += 1
        self.slowest = max(self.slowest, (getattr(outcome, "seconds", 0.0), case))
        if outcome.kind == "refused":
            self.refused[outcome.stage, outcome.error] += 1
        elif outcome.kind == "crash":
            key = (outcome.stage, outcome.error)
            self.crashes[key] += 1
            if key not in self.examples or case < self.examples[key][0]:
                self.examples[key] = (case, text or "", outcome.detail)


def report(tally: Tally, wall: float, stopped: str, options) -> str:
    lines = [f"specc fuzz: {tally.cases:,} cases in {wall:.1f} s ({tally.cases / max(wall, 1e-9):,.0f}/s, "
             f"{options.workers} workers, seed {options.seed}; {stopped})",
             "  generators: " + ", ".join(f"{g} {n:,} ({k})" for (g, k), n in sorted(tally.by_generator.items())),
             f"  valid specs: {tally.kinds['valid']:,}",
             f"  valid, too large to build here (> {fuzzing.LOAD_BUDGET:,} elements): {tally.kinds['large']:,}",
             f"  SpecErrors: {tally.kinds['refused']:,}"]
    for (stage, error), n in sorted(tally.refused.items(), key=lambda kv: (-kv[1], kv[0])):
        where = "" if stage == "graph" else f" (at {stage}, after the graph was built)"
        lines.append(f"    {n:>7,}  {error}{where}")
    lines.append(f"  non-SpecError endings: {tally.kinds['crash']:,}")
    for (stage, error), n in sorted(tally.crashes.items(), key=lambda kv: (-kv[1], kv[0])):
        case, text, _ = tally.examples[stage, error]
        shown = text if len(text) <= 120 else text[:100] + f"… ({len(text)} characters)"
        lines.append(f"    {n:>7,}  {stage}: {error}  e.g. case {case}: {shown!r}")
    lines.append(f"  slowest case: {tally.slowest[1]} ({tally.slowest[0]:.2f} s)")
    lines.append(f"  wall time: {wall:.1f} s")
    return "\n".join(lines)


def save(tally: Tally, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for (stage, error), (case, text, detail) in tally.examples.items():
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{stage}-{error}")
        with open(folder / f"{stem}.spec", "w", encoding="utf-8", newline="") as file:
            file.write(text)
        (folder / f"{stem}.txt").write_text(f"case {case} ({stage}: {error})\n\n{detail}\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="cases to run (default 100,000)")
    parser.add_argument("--seconds", type=float, default=900.0, help="stop after this long (default 900)")
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the cases (default 0)")
    parser.add_argument("--grammar-share", type=float, default=0.3,
                        help="share of the cases derived from the grammar; the rest are mutants (default 0.3)")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds one case may take (default 20)")
    parser.add_argument("--stages", help="comma-separated stages to run (default: all): source, draw, load, "
                                         "run, " + ", ".join(s for s, _ in fuzzing.CLI_RUNS))
    parser.add_argument("--save", metavar="DIR", help="write one reproducer per non-SpecError ending here")
    parser.add_argument("--case", type=int, metavar="K", help="run case K alone: print its text and ending")
    options = parser.parse_args(argv)
    stages = frozenset(options.stages.split(",")) if options.stages else None
    state = dict(seed=options.seed, grammar_share=options.grammar_share, timeout=options.timeout, stages=stages)
    if options.case is not None:
        _start_worker(state)
        generator, outcome, text = run_case(options.case)
        print(f"case {options.case} ({generator}): {text!r}\n{outcome.kind} {outcome.stage} {outcome.error}\n"
              f"{outcome.detail}")
        return 1 if outcome.kind == "crash" else 0

    started = time.time()
    deadline = started + options.seconds
    chunks = [(first, min(CHUNK, options.cases - first), deadline) for first in range(0, options.cases, CHUNK)]
    tally = Tally()
    context = multiprocessing.get_context("fork")
    with context.Pool(options.workers, initializer=_start_worker, initargs=(state,)) as pool:
        for results in pool.imap_unordered(run_chunk, chunks):
            for result in results:
                tally.add(*result)
    wall = time.time() - started
    stopped = "all cases run" if tally.cases == options.cases else f"stopped at --seconds {options.seconds:g}"
    print(report(tally, wall, stopped, options))
    if options.save:
        save(tally, Path(options.save))
        print(f"  reproducers: {options.save}/")
    return 1 if tally.kinds["crash"] else 0


if __name__ == "__main__":
    sys.exit(main())
