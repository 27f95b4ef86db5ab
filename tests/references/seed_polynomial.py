"""Seed 001, PyTorch's "Learning PyTorch with Examples": the cubic and Legendre models.

``Polynomial3`` is the tutorial's custom Module as posted (re-indented);
``LegendrePolynomial3`` is its custom autograd Function, and ``legendre_model``
the tutorial's forward pass ``y_pred = a + b * P3(c + d * x)``.
"""
import torch


class Polynomial3(torch.nn.Module):
    def __init__(self):
        """
        In the constructor we instantiate four parameters and assign them as
        member parameters.
        """
        super().__init__()
        self.a = torch.nn.Parameter(torch.randn(()))
        self.b = torch.nn.Parameter(torch.randn(()))
        self.c = torch.nn.Parameter(torch.randn(()))
        self.d = torch.nn.Parameter(torch.randn(()))

    def forward(self, x):
        return self.a + self.b * x + self.c * x ** 2 + self.d * x ** 3


class LegendrePolynomial3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return 0.5 * (5 * input ** 3 - 3 * input)

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors
        return grad_output * 1.5 * (5 * input ** 2 - 1)


def legendre_model(x, a, b, c, d):
    P3 = LegendrePolynomial3.apply
    return a + b * P3(c + d * x)


# The tutorial's starting values for the Legendre version.
LEGENDRE_START = {"a": 0.0, "b": -1.0, "c": 0.0, "d": 0.3}
