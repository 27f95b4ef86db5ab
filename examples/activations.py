"""The torch.nn tutorial (seed 004): a nonlinear 1-D curve fitted by a small network with no
activation, with relu and with tanh, each trained by SGD, Adam and RMSprop.

The network is specs/curve_tanh.spec (one hidden layer of 10 units); the other two variants swap
its activation for relu or identity, as the spec's comment suggests. Without an activation the
network is linear and can only draw a straight line; relu draws a broken line; tanh a smooth curve.

Run:  python examples/activations.py      (writes docs/images/train_compare.png)
"""
from pathlib import Path

import torch

import specc

ROOT = Path(__file__).resolve().parent.parent
PICTURE = ROOT / "docs" / "images" / "train_compare.png"
ACTIVATIONS = ["identity", "relu", "tanh"]
OPTIMIZERS = {"sgd": 0.2, "adam": 0.01, "rmsprop": 0.01}  # name -> learning rate
EPOCHS = 2000


def data():
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 100)
    return {"x": x, "y": x ** 2 + 0.2 * torch.rand(100)}


def spec(activation: str) -> str:
    return (ROOT / "specs" / "curve_tanh.spec").read_text().replace("tanh(", f"{activation}(")


def main() -> None:
    d = data()
    runs = {}
    for activation in ACTIVATIONS:
        for optimizer, lr in OPTIMIZERS.items():
            torch.manual_seed(1)  # the same initial weights for every optimizer
            model = specc.load(spec(activation))
            result = specc.fit(model, d, optimizer=optimizer, lr=lr, epochs=EPOCHS)
            runs[activation, optimizer] = (model, result)
            print(f"{activation:>8} {optimizer:>7} lr {lr:<5}: MSE {result.loss:.5f} after {EPOCHS} epochs "
                  f"({result.seconds:.2f} s)")
    picture(d, runs)


def picture(d, runs) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(ACTIVATIONS), len(OPTIMIZERS) + 1, figsize=(13, 8.5))
    for row, activation in enumerate(ACTIVATIONS):
        for col, optimizer in enumerate(OPTIMIZERS):
            model, result = runs[activation, optimizer]
            ax = axes[row, col]
            ax.plot(d["x"], d["y"], ".", color="grey", markersize=4)
            with torch.no_grad():
                ax.plot(d["x"], model(d["x"]).flatten(), color="C3", lw=2)
            ax.set_title(f"{activation}, {optimizer}: MSE {result.loss:.4f}", fontsize=9)
            axes[row, -1].plot(result.history, label=optimizer)
        axes[row, -1].set_yscale("log")
        axes[row, -1].set_title(f"{activation}: loss per epoch", fontsize=9)
        axes[row, -1].legend(fontsize=8)
    fig.suptitle("specs/curve_tanh.spec with no activation, relu, tanh; SGD, Adam, RMSprop "
                 f"({EPOCHS} full-batch epochs)")
    fig.tight_layout()
    PICTURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PICTURE, dpi=100)
    print(f"wrote {PICTURE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
