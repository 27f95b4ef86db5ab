"""The built-in functions of the language: one table, one row per function.

A row says how many arguments the function takes, how it is written in the
generated PyTorch source, the same function as a callable (the code generator
computes a call on numbers alone, such as ``sqrt(2)``, once at compile time),
and two facts the other stages need: whether it needs a vector (softmax of one
number is meaningless) and whether it acts on each unit alone (the neuron
view draws one edge per unit only then).
Adding a function is one row here plus one row in tests/test_functions.py,
which checks that the template and the callable agree.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable

import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class Function:
    name: str
    template: str  # Python expression; {0}, {1} … are the arguments' code
    apply: Callable[..., torch.Tensor]  # what the template computes, for tensors in hand
    arity: int | None = 1  # None: any number ≥ 1
    needs_vector: bool = False
    elementwise: bool = True

    def code(self, args: list[str]) -> str:
        return self.template.format(*args)


def _rows(*functions: Function) -> dict[str, Function]:
    return {f.name: f for f in functions}


FUNCTIONS: dict[str, Function] = _rows(
    Function("identity", "{0}", lambda v: v),
    Function("linear", "{0}", lambda v: v),
    Function("relu", "torch.relu({0})", torch.relu),
    Function("tanh", "torch.tanh({0})", torch.tanh),
    Function("sigmoid", "torch.sigmoid({0})", torch.sigmoid),
    Function("logistic", "torch.sigmoid({0})", torch.sigmoid),
    Function("softmax", "torch.softmax({0}, dim=-1)", lambda v: torch.softmax(v, dim=-1),
             needs_vector=True, elementwise=False),
    Function("log_softmax", "torch.log_softmax({0}, dim=-1)", lambda v: torch.log_softmax(v, dim=-1),
             needs_vector=True, elementwise=False),
    Function("softplus", "F.softplus({0})", F.softplus),
    Function("elu", "F.elu({0})", F.elu),
    Function("gelu", "F.gelu({0})", F.gelu),
    Function("silu", "F.silu({0})", F.silu),
    Function("leaky_relu", "F.leaky_relu({0})", F.leaky_relu),
    Function("exp", "torch.exp({0})", torch.exp),
    Function("log", "torch.log({0})", torch.log),
    Function("sin", "torch.sin({0})", torch.sin),
    Function("cos", "torch.cos({0})", torch.cos),
    Function("abs", "torch.abs({0})", torch.abs),
    Function("sqrt", "torch.sqrt({0})", torch.sqrt),
    Function("square", "torch.square({0})", torch.square),
    # concat has its own shape rule (sizes add up) and code (graph.py, compile.py).
    Function("concat", "torch.cat([{0}], dim=-1)", lambda *parts: torch.cat(parts, dim=-1), arity=None,
             elementwise=False),
)


ARITHMETIC = {"add": operator.add, "sub": operator.sub, "mul": operator.mul, "div": operator.truediv,
               "pow": operator.pow, "neg": operator.neg}


def evaluate(op: str, *values: float) -> float | None:
    """An operation of the language on plain numbers, computed as PyTorch computes it in float64
    (``1/0`` is inf, ``log(-1)`` nan); None for an operation that is not elementwise (concat, softmax …)."""
    if op in ARITHMETIC:
        apply = ARITHMETIC[op]
    elif op in FUNCTIONS and FUNCTIONS[op].elementwise:
        apply = FUNCTIONS[op].apply
    else:
        return None
    return float(apply(*(torch.tensor(float(v), dtype=torch.float64) for v in values)))
