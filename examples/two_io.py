"""Two inputs, two outputs (seed 002): h = g(W1·in1 + V1·in2 + b), out1 = f(W2·h + b_w), out2 = f(V2·h + b_v).

The question needed a custom layer; specs/two_io.spec writes the equations as they are, and
specc.fit trains both heads at once: the criterion is the sum of the two outputs' losses.
The data are synthetic: a "teacher" copy of the same spec with other random weights labels
random inputs, and a freshly initialised "student" learns to reproduce both of its outputs.

Run:  python examples/two_io.py
"""
from pathlib import Path

import torch
import torch.nn.functional as F

import specc

SPEC = Path(__file__).resolve().parent.parent / "specs" / "two_io.spec"
ROWS = 512


def head_losses(model, data) -> list[float]:
    with torch.no_grad():
        out1, out2 = model(data["in1"], data["in2"])
    return [F.mse_loss(out1, data["out1"]).item(), F.mse_loss(out2, data["out2"]).item()]


def teacher_data() -> dict[str, torch.Tensor]:
    """Random inputs labelled by a teacher: the same spec with the weights of torch.manual_seed(1)."""
    torch.manual_seed(1)
    teacher = specc.load(SPEC)
    inputs = {"in1": torch.randn(ROWS, 5), "in2": torch.randn(ROWS, 5)}
    with torch.no_grad():
        out1, out2 = teacher(inputs["in1"], inputs["in2"])
    return {**inputs, "out1": out1, "out2": out2}


def main() -> None:
    data = teacher_data()
    torch.manual_seed(2)
    student = specc.load(SPEC)
    print("parameters:", ", ".join(f"{n} {list(p.shape)}" for n, p in student.named_parameters()))
    before = head_losses(student, data)
    result = specc.fit(student, data, optimizer="adam", lr=0.01, epochs=300, batch_size=64, seed=0)
    after = head_losses(student, data)
    print(f"out1 MSE {before[0]:.4g} -> {after[0]:.4g}, out2 MSE {before[1]:.4g} -> {after[1]:.4g}")
    print(f"criterion = out1 MSE + out2 MSE: {sum(after):.6g} (fit reports {result.loss:.6g}) "
          f"after {len(result.history)} epochs, {result.iterations} mini-batch steps, {result.seconds:.2f} s")


if __name__ == "__main__":
    main()
