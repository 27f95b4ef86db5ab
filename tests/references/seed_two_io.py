"""Seed 002: the answer's own custom layer and network, as posted (re-indented).

h = g(W1·input1 + V1·input2 + b); output1 = f(W2·h + b_w); output2 = f(V2·h + b_v),
with f = g = ReLU. Its named parameters are input.W1, input.V1, input.bias,
W2.weight, W2.bias, V2.weight, V2.bias.
"""
import torch
import torch.nn as nn


class MyLinearLayer(nn.Module):
    def __init__(self, size_in1, size_out1):
        super().__init__()
        self.size_in1, self.size_out1 = size_in1, size_out1
        W_1 = torch.Tensor(size_out1, size_in1)
        V_1 = torch.Tensor(size_out1, size_in1)
        self.W1 = nn.Parameter(W_1)
        self.V1 = nn.Parameter(V_1)
        bias = torch.Tensor(size_out1)
        self.bias = nn.Parameter(bias)

    def forward(self, x):
        w_times_x = torch.mm(x[0], self.W1.t())
        v_times_x = torch.mm(x[1], self.V1.t())
        weight_times_x = torch.add(w_times_x, v_times_x)
        return torch.add(weight_times_x, self.bias)  # w times x + w times v + b


class NN(nn.Module):
    def __init__(self, in_ch, h_ch, out_ch):
        super().__init__()
        self.input = MyLinearLayer(in_ch, h_ch)
        self.W2 = nn.Linear(h_ch, out_ch)
        self.V2 = nn.Linear(h_ch, out_ch)
        self.act = nn.ReLU()

    def forward(self, i1, i2):
        # I pass in stacked input
        inp = torch.stack([i1, i2])
        h = self.act(self.input(inp))
        o1 = self.act(self.W2(h))
        o2 = self.act(self.V2(h))
        return o1, o2


# two_io.spec name → the seed module's parameter name
SPEC_TO_SEED = {"W1": "input.W1", "V1": "input.V1", "b": "input.bias", "W2": "W2.weight", "b_w": "W2.bias",
                "V2": "V2.weight", "b_v": "V2.bias"}
