"""A sequence story: predicting the next value of a noisy sine wave with an Elman network.

Each sequence is a window of T = 20 steps of sin(2πt/25 + φ) + 0.1·noise, with a random phase φ;
the target at step t is the input at step t + 1, so the network has to infer the phase from what
it has seen so far. examples/sine_sequence.spec is specs/elman.spec with a linear readout at every
step; the same model by hand in PyTorch is torch.nn.RNN(1, 8) followed by torch.nn.Linear(8, 1),
and its parameters map one to one (weight_ih_l0 → W_ih, bias_ih_l0 → b_ih, …, the Linear's
weight → W_out, bias → b_out), so both fits start from the same weights: torch's initialisation,
handed to `specc train --init-from`.

- specc: `specc train examples/sine_sequence.spec --data examples/sine_sequence.npz` with no
  options (a spec with step nodes: bfgs from one start on the autograd engine, float64);
- PyTorch: the usual loop, Adam (lr 0.01) on the full batch for 2000 epochs, float32.

Both are scored on 200 other sequences (examples/sine_sequence_test.npz). The noise alone costs
an MSE of 0.01: no model can go below it on average.

Run:  python examples/sine_sequence.py [--seed 0]     (writes the two NPZ files, then fits)
benchmarks/bench_sequence.py repeats the comparison (interleaved, median and spread).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import specc  # noqa: E402
from specc.cli import main as specc_main  # noqa: E402
from specc.weights import save_weights  # noqa: E402

SPEC = HERE / "sine_sequence.spec"
TRAIN, TEST = HERE / "sine_sequence.npz", HERE / "sine_sequence_test.npz"
STEPS, PERIOD, NOISE, HIDDEN = 20, 25.0, 0.1, 8
TORCH_EPOCHS, TORCH_LR = 2000, 0.01


def data(count: int, seed: int) -> dict[str, np.ndarray]:
    """``count`` windows of STEPS + 1 noisy sine values: x the first STEPS, y the next value at each."""
    rng = np.random.default_rng(seed)
    t = np.arange(STEPS + 1)
    phase = rng.uniform(0, 2 * np.pi, size=(count, 1))
    wave = np.sin(2 * np.pi * t / PERIOD + phase) + NOISE * rng.normal(size=(count, STEPS + 1))
    return {"x": wave[:, :-1, None], "y": wave[:, 1:, None]}  # [N, T, 1] each


def write_data() -> None:
    np.savez(TRAIN, **data(200, seed=0))
    np.savez(TEST, **data(200, seed=1))


class Reference(nn.Module):
    """The same model by hand: an Elman layer, then a linear readout at every step."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(1, HIDDEN, batch_first=True)  # tanh, h0 = 0
        self.out = nn.Linear(HIDDEN, 1)

    def forward(self, x):
        return self.out(self.rnn(x)[0])


NAMES = {"rnn.weight_ih_l0": "W_ih", "rnn.bias_ih_l0": "b_ih", "rnn.weight_hh_l0": "W_hh",
         "rnn.bias_hh_l0": "b_hh", "out.weight": "W_out", "out.bias": "b_out"}


def start(seed: int) -> Reference:
    torch.manual_seed(seed)
    return Reference()


def test_mse(model: nn.Module, dtype: torch.dtype) -> float:
    test = np.load(TEST)
    with torch.no_grad():
        x, y = (torch.tensor(test[k], dtype=dtype) for k in ("x", "y"))
        return nn.functional.mse_loss(model(x), y).item()


def fit_torch(seed: int) -> tuple[float, float]:
    """(test MSE, seconds) of the PyTorch loop from torch's initial weights of ``seed``."""
    model = start(seed)
    train = np.load(TRAIN)
    x, y = (torch.tensor(train[k], dtype=torch.float32) for k in ("x", "y"))
    began = time.perf_counter()
    optimizer = torch.optim.Adam(model.parameters(), lr=TORCH_LR)
    for _ in range(TORCH_EPOCHS):
        optimizer.zero_grad()
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - began
    return test_mse(model, torch.float32), seconds


def fit_specc(seed: int) -> tuple[float, float]:
    """(test MSE, seconds) of `specc train` (run in this process, as the command runs it) from the
    same initial weights; the time is the whole command's: reading, compiling, fitting, saving."""
    with tempfile.TemporaryDirectory() as folder:
        initial, fitted = Path(folder) / "start.safetensors", Path(folder) / "fitted.safetensors"
        reference = start(seed)
        mapped = specc.load(SPEC)
        mapped.load_state_dict({NAMES[k]: v for k, v in reference.state_dict().items()})
        save_weights(mapped, initial)
        began = time.perf_counter()
        code = specc_main(["train", str(SPEC), "--data", str(TRAIN), "--init-from", str(initial),
                           "--out", str(fitted), "--quiet"])
        seconds = time.perf_counter() - began
        if code != 0:
            raise SystemExit(code)
        return test_mse(specc.load(SPEC, weights=fitted), torch.float64), seconds


def baseline() -> float:
    """The test MSE of predicting each next value by the current one."""
    test = np.load(TEST)
    return float(np.mean((test["x"] - test["y"]) ** 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="torch seed of the shared initial weights")
    seed = parser.parse_args().seed
    torch.set_num_threads(1)
    write_data()
    print(f"data: {TRAIN.name} (200 sequences × {STEPS} steps), {TEST.name} (200 more); noise MSE {NOISE ** 2:g}")
    specc_mse, specc_seconds = fit_specc(seed)
    torch_mse, torch_seconds = fit_torch(seed)
    print(f"{'':38} {'test MSE':>9} {'seconds':>8}")
    print(f"{'next value = this value':38} {baseline():9.5f} {'':>8}")
    print(f"{'specc train (bfgs, autograd, float64)':38} {specc_mse:9.5f} {specc_seconds:8.2f}")
    print(f"{f'PyTorch (Adam, {TORCH_EPOCHS} epochs, float32)':38} {torch_mse:9.5f} {torch_seconds:8.2f}")


if __name__ == "__main__":
    main()
