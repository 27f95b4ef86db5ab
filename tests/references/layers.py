"""The other bundled specs written as a PyTorch user would write them by hand."""
import torch
from torch import nn


def sine_nnet() -> nn.Sequential:
    """sine_nnet.spec: nnet's 1-4-1 net, logistic hidden layer, linear output (x and y as [B, 1])."""
    return nn.Sequential(nn.Linear(1, 4), nn.Sigmoid(), nn.Linear(4, 1))


def curve_tanh() -> nn.Sequential:
    """curve_tanh.spec: the torch.nn tutorial's 1-10-1 tanh network."""
    return nn.Sequential(nn.Linear(1, 10), nn.Tanh(), nn.Linear(10, 1))


# spec name → nn.Sequential parameter name, for both of the above
SEQUENTIAL_NAMES = {"W1": "0.weight", "b1": "0.bias", "W2": "2.weight", "b2": "2.bias"}


class Residual(nn.Module):
    """residual.spec: r = relu(A u + c); s = sigmoid(G r) * r + r; out = log_softmax(P [s; u] + q)."""

    def __init__(self):
        super().__init__()
        self.inner = nn.Linear(4, 8)
        self.gate = nn.Linear(8, 8, bias=False)
        self.head = nn.Linear(12, 3)

    def forward(self, u):
        r = torch.relu(self.inner(u))
        s = torch.sigmoid(self.gate(r)) * r + r
        return torch.log_softmax(self.head(torch.cat([s, u], dim=1)), dim=1)


RESIDUAL_NAMES = {"A": "inner.weight", "c": "inner.bias", "G": "gate.weight", "P": "head.weight", "q": "head.bias"}


def dropout_mlp() -> nn.Sequential:
    """specs/dropout_mlp.spec as nn.Sequential: Linear, ReLU, Dropout(0.2) twice, then Linear."""
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 8), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(8, 3))


DROPOUT_NAMES = {"W1": "0.weight", "b1": "0.bias", "W2": "3.weight", "b2": "3.bias", "W3": "6.weight",
                 "b3": "6.bias"}


class TiedAutoencoder(nn.Module):
    """tied_autoencoder.spec: one W [3, 8] encodes x, and its transpose decodes the code."""

    def __init__(self):
        super().__init__()
        self.W = nn.Parameter(torch.empty(3, 8))
        self.b = nn.Parameter(torch.empty(3))
        self.c = nn.Parameter(torch.empty(8))

    def forward(self, x):
        code = torch.sigmoid(x @ self.W.T + self.b)
        return torch.sigmoid(code @ self.W + self.c)


class LayerNormResidual(nn.Module):
    """layer_norm_residual.spec: a post-LN feed-forward block, LayerNorm(x + lin2(relu(lin1(x))))."""

    def __init__(self):
        super().__init__()
        self.lin1, self.lin2, self.norm = nn.Linear(8, 16), nn.Linear(16, 8), nn.LayerNorm(8)

    def forward(self, x):
        return self.norm(x + self.lin2(torch.relu(self.lin1(x))))


LAYER_NORM_NAMES = {"W1": "lin1.weight", "b1": "lin1.bias", "W2": "lin2.weight", "b2": "lin2.bias",
                    "g": "norm.weight", "b": "norm.bias"}


class InputScaled(nn.Module):
    """input_scaled.spec by hand, as an nnet user scales inputs: the columns' means and scales as
    buffers (register_buffer: in state_dict, not trained), then Linear, tanh, Linear."""

    def __init__(self, mean=(0.5, -1.0, 2.0), scale=(2.0, 0.5, 4.0)):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean))
        self.register_buffer("scale", torch.tensor(scale))
        self.hidden, self.out = nn.Linear(3, 5), nn.Linear(5, 1)

    def forward(self, x):
        return self.out(torch.tanh(self.hidden((x - self.mean) / self.scale))).squeeze(-1)


INPUT_SCALED_NAMES = {"W1": "hidden.weight", "b1": "hidden.bias", "w2": "out.weight", "b2": "out.bias"}
