"""Validation rows, early stopping and accuracy (specc.train.validation): fit(val_split=,
val_data=, early_stopping=), the CLI's --val-split, --val-data, --early-stopping, and what --json,
the summary line and the plot show."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import specc
from specc.cli import main
from specc.errors import SpecError
from specc.train import fit

LINE = "input x\ny = w*x + c\n"
CLASSES = "input x[2]\nh[6] = tanh(W·x + b)\np[3] = softmax(V·h + c)\noutput p\n"


def line_data(rows: int, slope: float = 2.0, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, generator=g)
    return {"x": x, "y": slope * x + 1 + 0.1 * torch.randn(rows, generator=g)}


def class_data(rows: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, 2, generator=g)
    label = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return {"x": x, "p": F.one_hot(label, 3).float()}


def model_of(text: str, seed: int = 0):
    torch.manual_seed(seed)
    return specc.load(text)


def test_val_split_holds_rows_out_and_scores_them_each_epoch():
    data = line_data(100)
    model = model_of(LINE)
    result = fit(model, data, optimizer="adam", lr=0.05, epochs=4, batch_size=16, val_split=0.2, seed=5,
                 progress=False)
    assert result.val_at == [1, 2, 3, 4] and len(result.val_history) == 4 == len(result.history)
    held = torch.randperm(100, generator=torch.Generator().manual_seed(5))[:20].sort().values
    with torch.no_grad():
        expected = F.mse_loss(model(data["x"][held]), data["y"][held]).item()
    assert result.val_loss == pytest.approx(expected, rel=1e-6) == pytest.approx(result.val_history[-1], rel=1e-6)
    assert result.iterations == 4 * 5  # 80 training rows in batches of 16
    assert result.accuracy is None and "accuracy" not in result.summary()
    assert result.summary()["val_history"] == result.val_history


def test_val_data_is_a_second_file(tmp_path):
    train, val = line_data(60), line_data(30, seed=1)
    csv = tmp_path / "val.csv"
    np.savetxt(csv, torch.stack([val["x"], val["y"]], 1).numpy(), delimiter=",", header="x,y", comments="")
    model = model_of(LINE)
    result = fit(model, train, optimizer="lbfgs", max_iter=5, val_data=str(csv), progress=False)
    assert result.val_at == list(range(1, len(result.history) + 1))  # lbfgs: once per iteration
    with torch.no_grad():
        expected = F.mse_loss(model(val["x"].double()), val["y"].double()).item()
    assert result.val_loss == pytest.approx(expected, rel=1e-5)


def test_bfgs_is_validated_once_at_its_end():
    model = model_of(LINE)
    result = fit(model, line_data(40), optimizer="bfgs", max_iter=20, val_split=0.25, seed=0, progress=False)
    assert result.val_at == [result.iterations] and len(result.val_history) == 1


def test_early_stopping_restores_the_best_epoch():
    # the validation rows follow another slope: fitting the training rows moves away from them
    train, val = line_data(64, slope=2.0), line_data(64, slope=-2.0, seed=1)
    start = {"w": torch.tensor(-2.0), "c": torch.tensor(1.0)}

    def fitted(epochs, **validation):
        model = model_of(LINE)
        with torch.no_grad():
            model.w.copy_(start["w"])
            model.c.copy_(start["c"])
        return model, fit(model, train, optimizer="sgd", lr=0.05, epochs=epochs, progress=False, **validation)

    model, result = fitted(50, val_data=val, early_stopping=2)
    assert result.stopped_early and result.best_at == 1
    assert len(result.history) == 3 and result.val_at == [1, 2, 3]
    assert result.val_history[1] >= result.val_history[0] and result.val_history[2] >= result.val_history[0]
    one, one_result = fitted(1)
    assert torch.equal(model.w, one.w) and torch.equal(model.c, one.c)
    assert result.loss == pytest.approx(F.mse_loss(one(train["x"]), train["y"]).item())
    assert result.val_loss == result.val_history[0]
    assert result.summary()["stopped_early"] is True and result.summary()["best_at"] == 1


def test_accuracy_is_reported_for_classification():
    data, val = class_data(200), class_data(100, seed=1)
    model = model_of(CLASSES)
    result = fit(model, data, loss="cross_entropy", optimizer="adam", lr=0.05, epochs=5, val_data=val,
                 progress=False)
    with torch.no_grad():
        right = (model(data["x"]).argmax(1) == data["p"].argmax(1)).double().mean().item()
        val_right = (model(val["x"]).argmax(1) == val["p"].argmax(1)).double().mean().item()
    assert result.accuracy == pytest.approx(right) and result.val_accuracy == pytest.approx(val_right)
    assert len(result.val_accuracy_history) == 5
    labels = {"x": data["x"], "p": data["p"].argmax(1)}  # class labels become one-hot rows
    assert fit(model_of(CLASSES), labels, loss="cross_entropy", optimizer="adam", epochs=1,
               progress=False).accuracy is not None


@pytest.mark.parametrize("arguments, message", [
    (dict(val_split=0.2, val_data={"x": [1.0], "y": [1.0]}), "give either val_split"),
    (dict(early_stopping=3), "early_stopping 3 needs validation rows: give val_split or val_data"),
    (dict(optimizer="bfgs", val_split=0.2, early_stopping=3), "'bfgs' runs its whole loop at once"),
    (dict(val_split=1.0), "val_split must be a number greater than 0 and less than 1, not 1"),
    (dict(val_split=0.001), "val_split 0.001 of 20 rows holds out 0"),
    (dict(early_stopping=0, val_split=0.5), "early_stopping must be a whole number from 1"),
])
def test_what_validation_refuses(arguments, message):
    arguments = {"optimizer": "adam", "epochs": 2, **arguments}
    with pytest.raises(SpecError, match=message.replace("(", r"\(")):
        fit(model_of(LINE), line_data(20), progress=False, **arguments)


def test_sequences_are_split_as_whole_sequences():
    elman = "input x[T, 2]\nh[4] = tanh(W·x + U·prev(h) + b)\ny[1] = V·h + c\noutput y\n"
    g = torch.Generator().manual_seed(0)
    data = {"x": torch.randn(10, 5, 2, generator=g), "y": torch.randn(10, 5, 1, generator=g)}
    result = fit(model_of(elman), data, optimizer="adam", epochs=3, val_split=0.3, seed=0, progress=False)
    assert len(result.val_history) == 3 and all(np.isfinite(result.val_history))


def test_the_cli_reports_validation(tmp_path, capsys):
    data = line_data(40)
    csv = tmp_path / "d.csv"
    np.savetxt(csv, torch.stack([data["x"], data["y"]], 1).numpy(), delimiter=",", header="x,y", comments="")
    spec = tmp_path / "line.spec"
    spec.write_text(LINE)
    args = ["train", str(spec), "--data", str(csv), "--optimizer", "adam", "--epochs", "4", "--quiet"]
    assert main(args + ["--val-split", "0.25", "--json", "--seed", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["val_at"] == [1, 2, 3, 4] and len(summary["val_history"]) == 4
    assert main(args + ["--val-data", str(csv), "--early-stopping", "10"]) == 0
    assert "; validation mse " in capsys.readouterr().out
    assert main(args + ["--early-stopping", "3"]) == 1
    err = capsys.readouterr().err
    assert "--early-stopping 3 needs validation rows: give --val-split or --val-data" in err
    assert main(args + ["--val-split", "2"]) == 1
    assert "--val-split must be a number greater than 0 and less than 1, not 2" in capsys.readouterr().err


def test_the_plot_shows_the_validation_curve(tmp_path):
    pytest.importorskip("matplotlib")
    from specc.train.report import plot_history
    path = plot_history([3.0, 2.0, 1.0], tmp_path / "loss.png", validation=([1, 2], [2.5, 1.5]))
    assert path.stat().st_size > 0
