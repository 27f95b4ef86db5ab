"""The NumPy loss-and-gradient tape agrees with torch autograd on the compiled module, one parameter
vector at a time and batched (a leading restart axis), for every loss."""
from pathlib import Path

import numpy as np
import pytest
import torch

import specc
from specc.ops import OPS
from specc.train.tape import Tape, supported
from conftest import bundled_text



def _deterministic(path: Path) -> bool:
    """No operation that is random in training (dropout): such a spec has no criterion to compare; and
    no loop over time (prev, last): the tape and the C criterion leave those to autograd
    (tests/test_train_sequences.py)."""
    graph = specc.graph(path)
    rows = [OPS[graph.nodes[n]["op"]] for n in graph.nodes if graph.nodes[n]["kind"] == "op"]
    return not any(row.random or row.timed for row in rows)


SPECS = [p for p in sorted((Path(__file__).resolve().parent.parent / "specs").glob("*.spec")) if _deterministic(p)]
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


CASES = [(p.stem, bundled_text(p)) for p in SPECS] + list(EXTRA.items())


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
    value, gradient = Tape(graph, inputs, targets, loss=loss, decay=decay)(theta)
    assert value == pytest.approx(expected.item(), rel=1e-12, abs=1e-12)
    expected_grad = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).numpy()
    np.testing.assert_allclose(gradient, expected_grad, rtol=1e-10, atol=1e-12)


def test_every_operation_of_the_table_has_a_numpy_rule():
    from specc.ops import OPS
    text = "input x[2]\ny[2] = " + " + ".join(f"{name}(W·x)" for name, op in OPS.items()
                                               if op.called and op.arity == 1 and not op.timed) + "\n"
    assert supported(specc.graph(text))


def test_unknown_loss_is_refused():
    graph = specc.graph("input x\ny = a*x\n")
    with pytest.raises(ValueError):
        Tape(graph, {"x": np.zeros(3)}, {"y": np.zeros(3)}, loss="huber")
    with pytest.raises(ValueError, match="vector outputs"):  # class scores are a vector
        Tape(graph, {"x": np.zeros(3)}, {"y": np.zeros(3)}, loss="cross_entropy")


# ---------------------------------------------------------------- batched: R parameter vectors at once
TORCH_LOSSES = {"sse": lambda p, t: ((p - t) ** 2).sum(), "mse": lambda p, t: ((p - t) ** 2).mean(),
                "bce": torch.nn.functional.binary_cross_entropy, "cross_entropy": torch.nn.functional.cross_entropy}
BATCHED = CASES + [("sigmoid_heads", "input x[3]\nparam u[4]\nh[4] = tanh(W·x + b)\np[2] = sigmoid(V·h + c)\n"
                                      "q = sigmoid(u·h)\noutput p, q\n")]


def _reference(spec, graph, thetas, inputs, targets, loss, decay):
    """(f [R], grad [R, n]) by torch autograd, one parameter vector at a time."""
    model = specc.load(spec).double()
    values, grads = [], []
    for theta in thetas:
        torch.nn.utils.vector_to_parameters(torch.tensor(theta), model.parameters())
        model.zero_grad()
        out = model(*(torch.tensor(inputs[n]) for n in graph.graph["inputs"]))
        outs = out if isinstance(out, tuple) else (out,)
        total = sum(TORCH_LOSSES[loss](value.expand_as(torch.tensor(targets[name])), torch.tensor(targets[name]))
                    for value, name in zip(outs, graph.graph["outputs"]))
        vector = torch.nn.utils.parameters_to_vector(model.parameters())
        total = total + decay * (vector * vector).sum()
        total.backward()
        values.append(total.item())
        grads.append(torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                                for p in model.parameters()]).numpy())
    return np.array(values), np.stack(grads)


def _losses_for(graph, spec):
    """The losses a spec's outputs make sense for: bce needs probabilities, cross_entropy vectors."""
    losses = ["sse", "mse"]
    if all(graph.nodes[n]["shape"] != () for n in graph.graph["outputs"]):
        losses.append("cross_entropy")
    if "sigmoid" in spec and all(graph.nodes[graph.nodes[f"output:{n}"]["args"][0]].get("op") == "sigmoid"
                                 for n in graph.graph["outputs"]):
        losses.append("bce")
    return losses


@pytest.mark.parametrize("name,spec", BATCHED, ids=[c[0] for c in BATCHED])
def test_batched_value_and_gradient_match_autograd(name, spec):
    graph = specc.graph(spec)
    inputs, targets = _data(graph, batch=5, seed=2)
    if name == "pow_param_exponent" or "log" in spec:
        inputs = {k: np.abs(v) + 0.1 for k, v in inputs.items()}
    rng = np.random.default_rng(3)
    size = sum(int(np.prod(graph.nodes[p]["shape"], dtype=np.int64)) for p in graph.graph["params"])
    thetas = 0.5 * rng.random((3, size)) + 0.2  # three restarts, away from log/sqrt/pow edges
    for loss in _losses_for(graph, spec):
        t = targets
        if loss in ("bce", "cross_entropy"):  # probabilities: in [0, 1], rows summing to 1 for classes
            t = {k: np.abs(v) / np.abs(v).sum(-1, keepdims=True) if v.ndim == 2 and loss == "cross_entropy"
                 else 1 / (1 + np.exp(-v)) for k, v in targets.items()}
        objective = Tape(graph, inputs, t, loss=loss, decay=0.01)
        values, grads = objective.evaluate(thetas)
        expected_values, expected_grads = _reference(spec, graph, thetas, inputs, t, loss, 0.01)
        np.testing.assert_allclose(values, expected_values, rtol=1e-12, atol=1e-12, err_msg=loss)
        np.testing.assert_allclose(grads, expected_grads, rtol=1e-10, atol=1e-12, err_msg=loss)
        for k, theta in enumerate(thetas):  # one at a time: the same numbers
            value, grad = objective(theta)
            assert value == pytest.approx(values[k], rel=1e-14, abs=1e-15)
            np.testing.assert_allclose(grad, grads[k], rtol=1e-13, atol=1e-15)


# ---------------------------------------------------------------- cross_entropy of a softmax output: probabilities
SOFTMAX_OUTPUTS = {
    "softmax_output": "input x[2]\nh[4] = tanh(W1·x + b1)\ny[3] = softmax(W2·h + b2)\n",
    "through_a_copy": "input x[2]\np[3] = softmax(W·x + b)\ny = p\n",
    "beside_scores": "input x[2]\nh[4] = tanh(A·x + a)\np[3] = softmax(B·h + c)\ns[2] = C·h + d\noutput p, s\n",
}


def _classification_data(graph, form, rows=9, seed=4):
    """Inputs and targets by name: each vector output's classes as labels or as one-hot rows."""
    rng = np.random.default_rng(seed)
    data = {n: rng.normal(size=(rows,) + graph.nodes[n]["shape"]) for n in graph.graph["inputs"]}
    for name in graph.graph["outputs"]:
        labels = np.arange(rows) % graph.nodes[name]["shape"][0]
        data[name] = labels if form == "labels" else np.eye(graph.nodes[name]["shape"][0])[labels]
    return data


@pytest.mark.parametrize("scale", [1.0, 300.0])  # 300: some probabilities underflow, and their logs are clamped
@pytest.mark.parametrize("form", ["labels", "one-hot"])
@pytest.mark.parametrize("name,spec", list(SOFTMAX_OUTPUTS.items()), ids=list(SOFTMAX_OUTPUTS))
def test_cross_entropy_of_a_softmax_output_matches_the_torch_criterion(name, spec, form, scale):
    from specc.train.data import tensors_for
    from specc.train.losses import LOSSES, Criterion
    graph = specc.graph(spec)
    torch.manual_seed(2)
    model = specc.load(spec).double()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    tensors = tensors_for(model, _classification_data(graph, form), labels=True, dtype=torch.float64)
    criterion = Criterion(model, tensors, LOSSES["cross_entropy"], 0.01)
    expected = criterion()
    expected.backward()
    theta = torch.nn.utils.parameters_to_vector(model.parameters()).detach().numpy()
    arrays = {k: v.numpy() for k, v in tensors.items()}
    value, gradient = Tape(graph, arrays, arrays, loss="cross_entropy", decay=0.01)(theta)
    assert value == pytest.approx(expected.item(), rel=1e-10)
    expected_grad = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).numpy()
    np.testing.assert_allclose(gradient, expected_grad, rtol=1e-10, atol=1e-12)
    if scale > 1:  # the clamp is reached: a true class of probability below e^-100 costs 100, not infinity
        with torch.no_grad():
            out = model(tensors["x"])
            probabilities = out[0] if isinstance(out, tuple) else out
        target = tensors[graph.graph["outputs"][0]]
        assert ((probabilities < np.exp(-100)) & (target > 0)).any()
        assert np.isfinite(value) and np.isfinite(gradient).all()


def test_cross_entropy_of_a_softmax_output_is_not_softmaxed_twice():
    graph = specc.graph(SOFTMAX_OUTPUTS["through_a_copy"])
    theta = np.array([1.0, -2.0, 0.5, 3.0, 0.0, -1.0, 0.1, 0.2, 0.3])  # W [3, 2] then b [3]
    x = np.array([[1.0, 2.0], [-1.0, 0.5]])
    t = np.eye(3)[[2, 0]]
    value, _ = Tape(graph, {"x": x}, {"y": t}, loss="cross_entropy")(theta)
    scores = x @ theta[:6].reshape(3, 2).T + theta[6:]
    p = np.exp(scores) / np.exp(scores).sum(1, keepdims=True)
    assert value == pytest.approx(-np.mean(np.log(p[[0, 1], [2, 0]])), rel=1e-14)
