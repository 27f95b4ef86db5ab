#!/usr/bin/env python
"""Training benchmarks: the seed stories' fits, specc against R's nnet and plain PyTorch loops.

    python benchmarks/run.py [--repeat 5] [--json results.json]

Each timed fit runs once untimed first (imports, caches), then ``--repeat`` times; the table shows
the median wall time of the whole fit call (data already in memory, as R's timing has it).
R's nnet is run through benchmarks/sine_nnet.R when ``Rscript`` is on the PATH; otherwise the
table says so and quotes the issue's figures. Timings vary with the machine and its load: the
ratio to R is measured in the same run, seconds apart.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import specc  # noqa: E402
from specc.train.data import tensors_for  # noqa: E402
from specc.train.bfgs import vmmin  # noqa: E402
from specc.train.nnet import NnetObjective, load_wts, nnet_layout, tensors_to_wts  # noqa: E402

SINE, SINE_DATA = ROOT / "specs" / "sine_nnet.spec", ROOT / "examples" / "sine50.csv"
WTS = [i * (1 / 12) for i in range(13)]  # R's seq(0, 1, by=1/12)
NNET = dict(loss="sse", optimizer="bfgs", max_iter=10000, abstol=1e-8, reltol=1e-9, progress=False)


def timed(run, repeat: int) -> tuple[dict, float]:
    """(the last run's facts, median seconds) of ``run() -> dict`` after one untimed warm-up."""
    run()
    times, facts = [], {}
    for _ in range(repeat):
        start = time.perf_counter()
        facts = run()
        times.append(time.perf_counter() - start)
    return facts, statistics.median(times)


# ---------------------------------------------------------------- sine (seed 000)
def r_nnet() -> dict | None:
    if shutil.which("Rscript") is None:
        return None
    done = subprocess.run(["Rscript", str(ROOT / "benchmarks" / "sine_nnet.R"), str(SINE_DATA)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        print(f"Rscript failed: {done.stderr.strip()[:300]}", file=sys.stderr)
        return None
    return json.loads(done.stdout)


def specc_default(data) -> dict:
    """``specc.fit`` with no options: the default method (bfgs from ten starts, batched), seed 0."""
    model = specc.load(SINE)
    result = specc.fit(model, data, seed=0, progress=False)
    return {"mse": result.loss, "iterations": result.iterations, "evaluations": result.evaluations}


def sine_tensors():
    return tensors_for(specc.load(SINE), SINE_DATA, dtype=torch.float64)


def specc_bfgs(engine: str, data, model=None) -> dict:
    """One fit from nnet's starting weights; with ``model``, that compiled module is reused (as R reuses
    its package), so the time is the fit's alone; without, it includes specc.load compiling the spec."""
    model = model or specc.load(SINE)
    load_wts(model, WTS)
    result = specc.fit(model, data, engine=engine, **NNET)
    return {"mse": result.loss / 50, "iterations": result.iterations, "evaluations": result.evaluations}


def nnet_numpy_port(data) -> dict:
    """The nnet engine's optimiser and criterion with the NumPy fallback in place of the C kernel."""
    model = specc.load(SINE)
    load_wts(model, WTS)
    layout = nnet_layout(model)
    objective = NnetObjective(layout, data["x"], data["y"], backend="numpy")
    result = vmmin(objective.value, tensors_to_wts(model, layout).numpy(), gradient=objective.gradient,
                   max_iter=NNET["max_iter"], abstol=NNET["abstol"], reltol=NNET["reltol"])
    return {"mse": result.fmin / 50, "iterations": result.iterations, "evaluations": result.fn_evals}


def plain_lbfgs(data, target_mse: float) -> dict:
    """torch.optim.LBFGS as usually written (one step() call, strong Wolfe), until R's MSE is reached."""
    model = specc.load(SINE)
    load_wts(model, WTS)
    x, y = data["x"], data["y"]
    opt = torch.optim.LBFGS(model.parameters(), lr=1, max_iter=50000, max_eval=60000, history_size=100,
                            tolerance_grad=0, tolerance_change=0, line_search_fn="strong_wolfe")
    state = opt.state[opt._params[0]]
    reached = {}

    def closure():
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x), y, reduction="sum")
        if loss.item() / 50 <= target_mse and not reached:
            reached.update(iterations=state["n_iter"], mse=loss.item() / 50)
            raise StopIteration
        loss.backward()
        return loss

    try:
        opt.step(closure)
    except StopIteration:
        pass
    return reached or {"iterations": state["n_iter"], "mse": closure().item() / 50}


def seed_adam() -> dict:
    """The seed's working PyTorch attempt: nn.Linear-tanh-nn.Linear, Adam lr 0.01, 1000 steps, 1000 points."""
    torch.manual_seed(0)
    x = torch.tensor([[a / 1000.0 * 10] for a in range(1000)])
    y = torch.sin(x)
    net = nn.Sequential(nn.Linear(1, 4), nn.Tanh(), nn.Linear(4, 1))
    optimizer = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(1000):
        loss = (net(x) - y).pow(2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return {"mse": (net(x) - y).pow(2).mean().item(), "iterations": 1000}


def specc_adam(data) -> dict:
    torch.manual_seed(0)
    model = specc.load(SINE)
    result = specc.fit(model, data, loss="sse", optimizer="adam", lr=0.01, epochs=1000, progress=False)
    return {"mse": result.loss / 50, "iterations": result.iterations}


# ---------------------------------------------------------------- cubic (seed 001)
def cubic_data():
    x = torch.linspace(-math.pi, math.pi, 2000)
    return {"x": x, "y": torch.sin(x)}


def tutorial_loop() -> dict:
    d = cubic_data()
    torch.manual_seed(0)
    a, b, c, e = (nn.Parameter(torch.randn(())) for _ in range(4))
    optimizer = torch.optim.SGD([a, b, c, e], lr=1e-6)
    criterion = nn.MSELoss(reduction="sum")
    for _ in range(10_000):
        loss = criterion(a + b * d["x"] + c * d["x"] ** 2 + e * d["x"] ** 3, d["y"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return {"loss": criterion(a + b * d["x"] + c * d["x"] ** 2 + e * d["x"] ** 3, d["y"]).item(),
            "iterations": 10_000}


def specc_cubic(optimizer: str, **settings) -> dict:
    torch.manual_seed(0)
    model = specc.load(ROOT / "specs" / "cubic.spec")
    result = specc.fit(model, cubic_data(), loss="sse", optimizer=optimizer, progress=False, **settings)
    return {"loss": result.loss, "iterations": result.iterations}


# ---------------------------------------------------------------- XOR (seed 003)
def xor_numpy(epochs=5000) -> dict:
    torch.manual_seed(0)
    w1, w2 = (p.detach().numpy().T.astype(np.float64) for p in
              nn.Sequential(nn.Linear(2, 5, bias=False), nn.Linear(5, 1, bias=False)).parameters())
    X, Y = np.array([[0, 0], [0, 1], [1, 0], [1, 1]]), np.array([[0, 1, 1, 0]]).T
    losses = []
    for _ in range(epochs):
        l1 = 1 / (1 + np.exp(-(X @ w1)))
        l2 = 1 / (1 + np.exp(-(l1 @ w2)))
        d2 = (l2 - Y) * l2 * (1 - l2)
        d1 = (d2 @ w2.T) * l1 * (1 - l1)
        w2 -= 0.3 * l1.T @ d2
        w1 -= 0.3 * X.T @ d1
        losses.append(np.mean((l2 - Y) ** 2))
    return {"history": losses, "iterations": epochs, "mse": losses[-1]}


def torch_xor(epochs=5000) -> dict:
    """The answer's PyTorch loop: bias-free nn.Sequential, MSELoss, SGD lr 0.6, full batch."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 5, bias=False), nn.Sigmoid(), nn.Linear(5, 1, bias=False), nn.Sigmoid())
    X = torch.tensor([[0, 0], [0, 1], [1, 0], [1, 1]]).float()
    Y = torch.tensor([[0], [1], [1], [0]]).float()
    optimizer, criterion, losses = torch.optim.SGD(model.parameters(), lr=0.6), nn.MSELoss(), []
    for _ in range(epochs):
        optimizer.zero_grad()
        loss = criterion(model(X), Y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return {"history": losses, "iterations": epochs, "mse": losses[-1]}


def specc_xor(epochs=5000) -> dict:
    torch.manual_seed(0)
    model = specc.load(ROOT / "specs" / "xor.spec")
    data = {"X": [[0, 0], [0, 1], [1, 0], [1, 1]], "y": [0, 1, 1, 0]}
    result = specc.fit(model, data, optimizer="sgd", lr=0.6, epochs=epochs, dtype="float64", progress=False)
    return {"history": result.history, "iterations": epochs, "mse": result.history[-1]}


# ---------------------------------------------------------------- report
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per fit (default 5)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    parser.add_argument("--only", choices=["sine", "cubic", "xor"], action="append",
                        help="run only this story (may be repeated)")
    args = parser.parse_args()
    stories = set(args.only or ["sine", "cubic", "xor"])
    rows = []

    def row(story, what, facts, seconds, note=""):
        rows.append({"story": story, "what": what, **{k: v for k, v in facts.items() if k != "history"},
                     "seconds": seconds, "note": note})
        print(f"  {what}: {facts.get('mse', facts.get('loss', ''))}, {facts.get('iterations')} it, "
              f"{seconds * 1e3:.1f} ms {note}", file=sys.stderr)

    if "sine" in stories:
        sine(args, row, rows)
    if "cubic" in stories:
        cubic(args, row)
    if "xor" in stories:
        xor(row)
    print(markdown(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


def sine(args, row, rows) -> None:
    print("sine (R nnet, seed 000)", file=sys.stderr)
    r = r_nnet()
    if r:
        row("sine", "R nnet (BFGS, Rscript benchmarks/sine_nnet.R)", {"mse": r["mse"], "iterations": r["iterations"]},
            r["seconds"])
    else:
        print("  Rscript (Debian: r-base-core, r-cran-nnet) is not installed: R's time is the issue's figure",
              file=sys.stderr)
        row("sine", "R nnet (not run here; the issue's figures)", {"mse": 3.1e-7, "iterations": 1400}, 0.011)
    r_seconds = rows[-1]["seconds"]
    data = sine_tensors()
    model = specc.load(SINE)
    facts, seconds = timed(lambda: specc_bfgs("nnet", data, model), args.repeat)
    row("sine", "specc bfgs, engine nnet (C kernel)", facts, seconds, f"({seconds / r_seconds:.1f}x R)")
    facts, seconds = timed(lambda: specc_bfgs("nnet", data), args.repeat)
    row("sine", "the same, specc.load (compiling the spec) included", facts, seconds,
        f"({seconds / r_seconds:.1f}x R)")
    facts, seconds = timed(lambda: nnet_numpy_port(data), args.repeat)
    row("sine", "the same, the kernel's NumPy fallback (vmmin called directly)", facts, seconds,
        f"({seconds / r_seconds:.1f}x R)")
    for engine in ("compiled", "numpy", "autograd"):
        facts, seconds = timed(lambda: specc_bfgs(engine, data, model), args.repeat if engine != "autograd" else 1)
        row("sine", f"specc bfgs, engine {engine}", facts, seconds, f"({seconds / r_seconds:.1f}x R)")
    facts, seconds = timed(lambda: plain_lbfgs(data, rows[0]["mse"]), 1)
    short = "" if facts["mse"] <= rows[0]["mse"] else ", stopped without reaching it"
    row("sine", "plain torch.optim.LBFGS (float64, strong Wolfe) until R's MSE", facts, seconds,
        f"({seconds / r_seconds:.0f}x R{short})")
    facts, seconds = timed(lambda: specc_default(data), 1)
    row("sine", "specc, no options (bfgs from 10 starts, batched; seed 0)", facts, seconds,
        f"({seconds / r_seconds:.0f}x R)")
    facts, seconds = timed(seed_adam, 1)
    row("sine", "the seed's PyTorch attempt (Adam, 1000 steps)", facts, seconds)
    facts, seconds = timed(lambda: specc_adam(data), 1)
    row("sine", "specc adam, 1000 epochs", facts, seconds)


def cubic(args, row) -> None:
    print("cubic (PyTorch tutorial, seed 001)", file=sys.stderr)
    facts, seconds = timed(tutorial_loop, max(1, args.repeat // 2))
    row("cubic", "tutorial loop (SGD lr 1e-6, 10,000 steps)", facts, seconds)
    loop_loss = facts["loss"]
    facts, seconds = timed(lambda: specc_cubic("sgd", lr=1e-6, epochs=10_000), max(1, args.repeat // 2))
    row("cubic", "specc sgd lr 1e-6, 10,000 epochs", facts, seconds,
        "(same numbers)" if facts["loss"] == loop_loss else "(DIFFERENT numbers)")
    for name in ("lbfgs", "bfgs"):
        facts, seconds = timed(lambda: specc_cubic(name, max_iter=100), args.repeat)
        row("cubic", f"specc {name}", facts, seconds)


def xor(row) -> None:
    print("XOR (seed 003)", file=sys.stderr)
    numpy_facts, seconds = timed(xor_numpy, 1)
    row("xor", "hand-rolled numpy, lr 0.3, 5000 epochs", numpy_facts, seconds)
    facts, seconds = timed(torch_xor, 1)
    row("xor", "the answer's PyTorch loop (float32, SGD lr 0.6)", facts, seconds)
    facts, seconds = timed(specc_xor, 1)
    gap = float(np.max(np.abs(np.array(facts["history"]) - numpy_facts["history"])))
    row("xor", "specc sgd lr 0.6, mse, float64", {**facts, "max_gap": gap}, seconds,
        f"(largest difference from numpy in any epoch: {gap:.1e})")


def markdown(rows) -> str:
    lines = ["| story | fit | result | iterations | time |", "|---|---|---|---|---|"]
    for r in rows:
        result = f"MSE {r['mse']:.3g}" if "mse" in r else f"SSE {r['loss']:.6g}"
        time_text = f"{r['seconds'] * 1e3:.1f} ms" if r["seconds"] < 1 else f"{r['seconds']:.2f} s"
        lines.append(f"| {r['story']} | {r['what']} | {result} | {r['iterations']:,} | {time_text} {r['note']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
