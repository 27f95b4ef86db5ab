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
