"""Seed 003: the hand-rolled numpy XOR net's forward pass, as posted.

Its weights are stored input-major (``W1`` is [input_dim, hidden_dim]) and
applied as ``np.dot(X, W1)``; a spec's ``W1·X`` is PyTorch's [out, in] layout,
so the spec's W1 is the transpose of this one.
"""
import numpy as np


def sigmoid(x):  # Returns values that sums to one.
    return 1 / (1 + np.exp(-x))


def forward(X, W1, W2):
    layer0 = X
    layer1 = sigmoid(np.dot(layer0, W1))
    layer2 = sigmoid(np.dot(layer1, W2))
    return layer2
