"""The NumPy loss-and-gradient tape agrees with torch autograd on the compiled module."""
from pathlib import Path

import numpy as np
import pytest
import torch

import specc
from specc.objective import Objective, supported

SPECS = sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.spec"))
EXTRA = {
    "scalar_broadcast": "input x, u[3]\ny = relu(a*u + x) * c + concat(x, s)\n",
    "dot_and_functions": "input v[4]\nparam w[4]\ny = softplus(w·v) + exp(-square(w·v)) + abs(k)\n"
                         "z = log_softmax(M·concat(sin(v), cos(v), elu(v), silu(v), leaky_relu(v)))\noutput y, z[3]\n",
    "pow_param_exponent": "input x\ny = sqrt(1 + x^2) ^ p + tanh(q / (1 + x*x))\n",
    "gelu_and_friends": "input x[3]\ny[2] = gelu(W·x) + relu(V·x) * sigmoid(U·x) - tanh(T·x)\n",
    "per_model_output": "input x[2]\ny[2] = W·x\nz = a * b\n",
    "scalar_parameter_product": "input x\nparam s\ny[2] = W·s + x\n",
}


def _data(graph, batch=7, seed=0):
    rng = np.random.default_rng(seed)
    inputs = {n: rng.normal(size=(batch,) + graph.nodes[n]["shape"]) for n in graph.graph["inputs"]}
    targets = {n: rng.normal(size=(batch,) + graph.nodes[n]["shape"]) for n in graph.graph["outputs"]}
    return inputs, targets


def _torch_loss(model, graph, inputs, targets, loss, decay):
    out = model(*(torch.tensor(inputs[n]) for n in graph.graph["inputs"]))
    outs = out if isinstance(out, tuple) else (out,)
    total = 0
    for value, name in zip(outs, graph.graph["outputs"]):
        target = torch.tensor(targets[name])
        value = value.expand_as(target)
        total = total + (((value - target) ** 2).sum() if loss == "sse" else ((value - target) ** 2).mean())
    theta = torch.nn.utils.parameters_to_vector(model.parameters())
    return total + decay * (theta * theta).sum()


CASES = [(p.stem, p.read_text()) for p in SPECS] + list(EXTRA.items())


@pytest.mark.parametrize("loss,decay", [("sse", 0.0), ("mse", 0.01)])
@pytest.mark.parametrize("name,spec", CASES, ids=[c[0] for c in CASES])
def test_value_and_gradient_match_autograd(name, spec, loss, decay):
    graph = specc.graph(spec)
    torch.manual_seed(1)
    model = specc.load(spec).double()
    with torch.no_grad():  # move log/sqrt/pow arguments away from their edges
        for p in model.parameters():
            p.copy_(0.5 * torch.rand_like(p) + 0.2)
    inputs, targets = _data(graph)
    if "pow_param_exponent" == name or "log" in spec:
        inputs = {k: np.abs(v) + 0.1 for k, v in inputs.items()}
    expected = _torch_loss(model, graph, inputs, targets, loss, decay)
    expected.backward()
    theta = torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy()
    value, gradient = Objective(graph, inputs, targets, loss=loss, decay=decay)(theta)
    assert value == pytest.approx(expected.item(), rel=1e-12, abs=1e-12)
    expected_grad = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).numpy()
    np.testing.assert_allclose(gradient, expected_grad, rtol=1e-10, atol=1e-12)


def test_every_operation_of_the_table_has_a_numpy_rule():
    from specc.ops import OPS
    text = "input x[2]\ny[2] = " + " + ".join(f"{name}(W·x)" for name, op in OPS.items()
                                               if op.called and op.arity == 1) + "\n"
    assert supported(specc.graph(text))


def test_unknown_loss_is_refused():
    graph = specc.graph("input x\ny = a*x\n")
    with pytest.raises(ValueError):
        Objective(graph, {"x": np.zeros(3)}, {"y": np.zeros(3)}, loss="bce")
