"""dropout(h, p): active in training mode only; fit trains in train mode and reports the eval-mode loss;
predict runs in eval mode; quasi-Newton optimizers are refused; p must be a number in [0, 1)."""
import pytest
import torch

import specc
from conftest import ROOT, assert_spec_error
from specc.cli import main
from specc.errors import ArgumentError, SpecError
from specc.train.losses import LOSSES, Criterion

SPEC = ROOT / "specs" / "dropout_mlp.spec"


def _data(rows=200, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, 4, generator=generator)
    labels = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    return {"x": x, "y": torch.nn.functional.one_hot(labels, 3).double()}


def test_the_generated_forward_passes_the_modules_mode():
    assert "F.dropout(torch.relu(F.linear(x, self.W1, self.b1)), 0.2, self.training)" in specc.to_source(SPEC)


def test_fit_chooses_adam_trains_in_train_mode_and_reports_the_eval_loss():
    torch.manual_seed(0)
    model = specc.load(SPEC).eval()
    seen = []
    model.register_forward_hook(lambda module, args, out: seen.append(module.training))
    result = specc.fit(model, _data(), loss="mse", progress=False)
    assert result.settings["optimizer"] == "adam" and "dropout: random in training" in result.settings["method"]
    # the start's check in eval mode (no random numbers drawn), every step in train mode, the last pass in eval
    assert seen[0] is False and seen[1:-1] and all(seen[1:-1]) and seen[-1] is False
    assert model.training is False  # the model keeps the mode it had
    tensors = {k: v.to(model.W1.dtype) for k, v in _data().items()}
    with torch.no_grad():
        assert Criterion(model, tensors, LOSSES["mse"], 0.0)().item() == pytest.approx(result.loss, rel=1e-12)


@pytest.mark.parametrize("optimizer", ["bfgs", "lbfgs"])
def test_quasi_newton_optimizers_are_refused(optimizer):
    with pytest.raises(SpecError, match=f"uses dropout, which is random in training: '{optimizer}' needs a "
                                        "criterion that does not change"):
        specc.fit(specc.load(SPEC), _data(), optimizer=optimizer, progress=False)


def test_predict_runs_in_eval_mode_and_keeps_the_mode():
    model = specc.load(SPEC).train()
    first, second = specc.predict(model, {"x": _data()["x"]}), specc.predict(model, {"x": _data()["x"]})
    assert torch.equal(first["y"], second["y"]) and model.training


def test_the_cli_fits_a_dropout_spec_with_adam(tmp_path, capsys):
    data = _data(rows=64)
    lines = ["x[1],x[2],x[3],x[4],y[1],y[2],y[3]"] + [
        ",".join(f"{v:.6f}" for v in [*x.tolist(), *y.tolist()]) for x, y in zip(data["x"], data["y"])]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    assert main(["train", str(SPEC), "--data", str(tmp_path / "d.csv"), "--seed", "0", "--quiet"]) == 0
    assert "adam, full batch, 1000 epochs (dropout: random in training: 64 rows × 243 parameters)" in \
        capsys.readouterr().out


@pytest.mark.parametrize("rate,column,message", [
    ("1", 16, "'dropout' needs a number from 0 up to (not including) 1 here, not '1'"),
    ("1.5", 16, "not '1.5'"),
    ("-0.1", 16, "not '-0.1'"),
    ("p", 16, "not 'p'"),
    ("0.1 * 2", 16, "not '0.1 * 2'"),
])
def test_the_rate_must_be_a_number_in_range(rate, column, message):
    assert_spec_error(f"input x[4]\nh = dropout(x, {rate})\n", ArgumentError, 2, column, message)


def test_a_rate_of_zero_is_the_identity_in_both_modes():
    model = specc.load("input x[3]\ny[3] = dropout(x, 0)\n")
    x = torch.randn(5, 3)
    assert torch.equal(model.train()(x), x) and torch.equal(model.eval()(x), x)
