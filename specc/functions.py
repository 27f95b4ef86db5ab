"""The built-in functions of the language: one table, one row per function.

A row says how many arguments the function takes, how it is written in the
generated PyTorch source, and two facts the other stages need: whether it
needs a vector (softmax of one number is meaningless) and whether it acts on
each unit alone (the neuron view draws one edge per unit only then).
Adding a function is one row here plus one row in tests/test_functions.py.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Function:
    name: str
    template: str  # Python expression; {0}, {1} … are the arguments' code
    arity: int | None = 1  # None: any number ≥ 1
    needs_vector: bool = False
    elementwise: bool = True

    def code(self, args: list[str]) -> str:
        return self.template.format(*args)


def _rows(*functions: Function) -> dict[str, Function]:
    return {f.name: f for f in functions}


FUNCTIONS: dict[str, Function] = _rows(
    Function("identity", "{0}"),
    Function("linear", "{0}"),
    Function("relu", "torch.relu({0})"),
    Function("tanh", "torch.tanh({0})"),
    Function("sigmoid", "torch.sigmoid({0})"),
    Function("logistic", "torch.sigmoid({0})"),
    Function("softmax", "torch.softmax({0}, dim=-1)", needs_vector=True, elementwise=False),
    Function("log_softmax", "torch.log_softmax({0}, dim=-1)", needs_vector=True, elementwise=False),
    Function("softplus", "F.softplus({0})"),
    Function("elu", "F.elu({0})"),
    Function("gelu", "F.gelu({0})"),
    Function("silu", "F.silu({0})"),
    Function("leaky_relu", "F.leaky_relu({0})"),
    Function("exp", "torch.exp({0})"),
    Function("log", "torch.log({0})"),
    Function("sin", "torch.sin({0})"),
    Function("cos", "torch.cos({0})"),
    Function("abs", "torch.abs({0})"),
    Function("sqrt", "torch.sqrt({0})"),
    Function("square", "torch.square({0})"),
    # concat has its own shape rule (sizes add up) and code (graph.py, compile.py).
    Function("concat", "torch.cat([{0}], dim=-1)", arity=None, elementwise=False),
)
