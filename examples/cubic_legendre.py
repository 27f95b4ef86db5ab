"""PyTorch's "Learning PyTorch with Examples" (seed 001): a cubic and a Legendre P3 model fitted to
sin(x) on 2000 points of [-pi, pi] by SGD on the summed squared error.

specs/cubic.spec is the tutorial's custom module (a, b, c, d drawn like torch.randn(()) in order of
appearance), so from torch.manual_seed(0) specc's SGD (lr 1e-6, loss 'sse' = MSELoss(reduction='sum'))
gives the tutorial loop's numbers exactly, step for step; the loop is run here too to show it.
The quasi-Newton optimizers reach the same 8.8172 in a few dozen iterations instead of 10,000 steps.

Run:  python examples/cubic_legendre.py
"""
import math
from pathlib import Path

import torch

import specc

ROOT = Path(__file__).resolve().parent.parent
STEPS = 10_000


def data():
    x = torch.linspace(-math.pi, math.pi, 2000)
    return {"x": x, "y": torch.sin(x)}


def tutorial_loop(lr: float) -> list[float]:
    """The tutorial's Polynomial3 with torch.optim.SGD, as the seed runs it (losses before each update)."""
    d = data()
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(())) for _ in range(4)]
    a, b, c, dd = params
    optimizer = torch.optim.SGD(params, lr=lr)
    losses = []
    for _ in range(STEPS + 1):
        loss = torch.nn.MSELoss(reduction="sum")(a + b * d["x"] + c * d["x"] ** 2 + dd * d["x"] ** 3, d["y"])
        losses.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return losses


def fit(spec: str, optimizer: str, **settings):
    torch.manual_seed(0)
    model = specc.load(ROOT / "specs" / spec)
    return model, specc.fit(model, data(), loss="sse", optimizer=optimizer, **settings)


def show(label, model, result):
    values = ", ".join(f"{name}={p.item():.6g}" for name, p in model.named_parameters())
    print(f"  {label:<28} loss {result.loss:.10g} after {result.iterations:>5} iterations "
          f"({result.seconds:.2f} s): {values}")


def main() -> None:
    print("cubic y = a + b x + c x^2 + d x^3 (specs/cubic.spec), torch.manual_seed(0):")
    model, sgd = fit("cubic.spec", "sgd", lr=1e-6, epochs=STEPS)
    loop = tutorial_loop(1e-6)
    for t in range(0, STEPS + 1, 1000):
        ours = sgd.history[t] if t < STEPS else sgd.loss
        print(f"  step {t:>5}: tutorial loop {loop[t]:<20.10g} specc {ours:<20.10g} {'same' if ours == loop[t] else 'DIFFERENT'}")
    show("sgd lr 1e-6", model, sgd)
    show("lbfgs", *fit("cubic.spec", "lbfgs", max_iter=100))
    show("bfgs (float64)", *fit("cubic.spec", "bfgs", max_iter=100))

    print("Legendre y = a + b P3(c + d x) (specs/legendre.spec), from a=0, b=-1, c=0, d=0.3:")
    show("sgd lr 5e-6", *fit("legendre.spec", "sgd", lr=5e-6, epochs=STEPS))
    show("lbfgs", *fit("legendre.spec", "lbfgs", max_iter=100))
    show("bfgs (float64)", *fit("legendre.spec", "bfgs", max_iter=100))
    print("The tutorial prints 8.817167282104492 (cubic) and 8.817169189453125 (Legendre) after 10,000 steps;\n"
          "float32 rounding differs from machine to machine in the last digits, the same machine gives the\n"
          "same numbers to the tutorial loop and to specc.")


if __name__ == "__main__":
    main()
