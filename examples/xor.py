"""XOR: a hand-rolled numpy MLP against PyTorch (seed 003), and specs/xor.spec trained by specc.

The question: the same 2-5-1 sigmoid network, trained by hand in numpy and with PyTorch, gives very
different loss curves. The answer finds four differences; with all four removed the curves agree:

1. The loss reported. The numpy code logs layer2_error.mean() = mean(dot(pred - Y, mse)), a number
   that is not the loss; PyTorch logs the mean squared error. Log np.mean((pred - Y)**2) instead.
2. The initial weights. numpy draws np.random.random (uniform [0, 1)); nn.Linear draws
   kaiming_uniform(a=sqrt(5)), i.e. uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)). Start from the same numbers.
3. Biases. nn.Linear adds a bias per unit; the numpy net has none. xor.spec has none either
   ('h[5] = sigmoid(W1·X)', 'y[1] = sigmoid(W2·h)').
4. A factor in the learning rate. The gradient of the mean squared error is (2/N)·(pred - Y)·…;
   the numpy code back-propagates (pred - Y) summed over the rows. With N = 4 rows that is a factor
   2/4 = 1/2, so PyTorch's lr 0.6 takes the numpy code's steps of lr 0.3.

specc: from torch.manual_seed(0), specs/xor.spec starts from exactly the weights of the seed's
nn.Sequential(Linear(2, 5, bias=False), Sigmoid(), Linear(5, 1, bias=False), Sigmoid()) (W1 then W2,
each drawn like nn.Linear.weight), and SGD at lr 0.6 on the mean squared error, full batch, retraces
the corrected numpy curve (lr 0.3) epoch by epoch.

Run:  python examples/xor.py      (writes docs/images/train_xor.png)
"""
from pathlib import Path

import numpy as np
import torch
from torch import nn

import specc

ROOT = Path(__file__).resolve().parent.parent
PICTURE = ROOT / "docs" / "images" / "train_xor.png"
X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
Y = np.array([[0, 1, 1, 0]]).T
EPOCHS = 5000


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def hand_rolled(W1, W2, lr=0.3, corrected=True):
    """The question's numpy loop; ``corrected`` logs the real MSE (difference 1)."""
    W1, W2 = W1.copy(), W2.copy()
    losses = []
    for _ in range(EPOCHS):
        layer1 = sigmoid(X @ W1)
        layer2 = sigmoid(layer1 @ W2)
        cost_error = np.mean(np.square(layer2 - Y)) * (1 if corrected else 0.5)  # the question's 0.5·mean
        cost_delta = layer2 - Y
        layer2_delta = cost_delta * layer2 * (1 - layer2)
        layer1_delta = (layer2_delta @ W2.T) * layer1 * (1 - layer1)
        W2 += -lr * layer1.T @ layer2_delta
        W1 += -lr * X.T @ layer1_delta
        losses.append(cost_error if corrected else np.dot(cost_delta, cost_error).mean())
    return np.array(losses)


def seed_torch_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 5, bias=False), nn.Sigmoid(), nn.Linear(5, 1, bias=False), nn.Sigmoid())
    return [p.detach().clone() for p in model.parameters()]


def main() -> None:
    w1, w2 = seed_torch_weights()
    torch.manual_seed(0)
    model = specc.load(ROOT / "specs" / "xor.spec")
    print("specc's initial W1, W2 equal the seed's nn.Linear weights:",
          torch.equal(model.W1, w1) and torch.equal(model.W2, w2))
    numpy_curve = hand_rolled(w1.numpy().T.astype(np.float64), w2.numpy().T.astype(np.float64))
    curves = {}
    for dtype in ("float64", "float32"):
        torch.manual_seed(0)
        model = specc.load(ROOT / "specs" / "xor.spec")
        result = specc.fit(model, {"X": X, "y": Y}, optimizer="sgd", lr=0.6, loss="mse", epochs=EPOCHS, dtype=dtype)
        curves[dtype] = np.array(result.history)
        gap = np.max(np.abs(curves[dtype] - numpy_curve))
        print(f"specc sgd lr 0.6, {dtype}: largest difference from the numpy curve (lr 0.3) over {EPOCHS} "
              f"epochs: {gap:.2g}; final loss {result.loss:.6g}")
    with torch.no_grad():
        print("predictions for 00, 01, 10, 11:", model(torch.tensor(X, dtype=torch.float32)).flatten().tolist())
    np.random.seed(0)
    original = hand_rolled(np.random.random((2, 5)), np.random.random((5, 1)), corrected=False)
    picture(original, numpy_curve, curves["float64"])


def picture(original, numpy_curve, specc_curve) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(original, color="grey", label="question's numpy code (its 'loss', np.random weights)")
    ax.plot(numpy_curve, lw=5, alpha=0.4, label="numpy, corrected (MSE, torch's weights, lr 0.3)")
    ax.plot(specc_curve, lw=1.5, label="specc: xor.spec, sgd lr 0.6, mse")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("XOR, 2-5-1 sigmoid net without biases")
    ax.legend(fontsize=8)
    fig.tight_layout()
    PICTURE.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PICTURE, dpi=110)
    print(f"wrote {PICTURE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
