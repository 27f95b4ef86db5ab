"""Training on sequences (specc.train.sequences): NPZ arrays and long CSV rows, the default method
and the engines for a spec with step nodes, predictions written back in the data's form."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import specc
from specc.cli import main
from specc.errors import DataError, SpecError
from specc.lower import spec_graph
from specc.train import fit, predict
from specc.train.data import tensors_for
from specc.train.losses import LOSSES, loss_functions
from specc.train.sequences import STEP_ENGINES, long_columns, prediction_bytes

# A small Elman network with a readout at every step, and one that reads out the last step only.
STEPPED = """input x[T, 2]
h[4] = tanh(W·x + U·prev(h) + b)
y[1] = V·h + c
output y
"""
LAST = """input x[T, 2]
h[4] = tanh(W·x + U·prev(h) + b)
z = last(h)
y[1] = V·z + c
output y
"""
N, T = 6, 5


@pytest.fixture(scope="module")
def stepped():
    torch.manual_seed(0)
    return specc.load(STEPPED)


@pytest.fixture(scope="module")
def last():
    torch.manual_seed(0)
    return specc.load(LAST)


def arrays(n=N, steps=T, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, steps, 2))
    return x, 0.5 * np.cumsum(x[:, :, :1] - x[:, :, 1:], axis=1)  # a running sum: a recurrence fits it


def write_csv(path: Path, header: str, rows) -> Path:
    path.write_text(header + "\n" + "\n".join(",".join(map(str, row)) for row in rows) + "\n")
    return path


# ---------------------------------------------------------------- NPZ arrays and dicts
def test_npz_arrays_become_the_modules_tensors(tmp_path, stepped, last):
    x, y = arrays()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    tensors = tensors_for(stepped, tmp_path / "d.npz", dtype=torch.float64)
    assert tensors["x"].shape == (N, T, 2) and tensors["y"].shape == (N, T, 1)
    assert np.array_equal(tensors["y"].numpy(), y)
    # size 1 per step: [N, T] is taken as [N, T, 1]; a last(...) output is one row per sequence
    assert tensors_for(stepped, {"x": x, "y": y[:, :, 0]})["y"].shape == (N, T, 1)
    assert tensors_for(last, {"x": x, "y": y[:, -1]})["y"].shape == (N, 1)


@pytest.mark.parametrize("data, message", [
    (lambda x, y: {"x": x[0], "y": y}, "'x' has shape [5, 2], but input 'x' is a sequence of size 2 per step: "
                                       "wanted [N, T, 2]"),
    (lambda x, y: {"x": x[:, :, :1], "y": y}, "'x' has shape [6, 5, 1], but input 'x' is a sequence of size 2"),
    (lambda x, y: {"x": x, "y": y[:, :4]}, "'y' has shape [6, 4, 1] but 'x' has [6, 5, 2]: every sequence array "
                                           "has the same N (sequences) and T (steps), so 'y' needs [6, 5, 1]"),
    (lambda x, y: {"x": x, "y": y[:5]}, "'y' has shape [5, 5, 1] but 'x' has [6, 5, 2]"),
    (lambda x, y: {"x": x}, "no data for sequence output 'y' (size 1 per step; expected one array 'y' of shape "
                            "[N, T, 1]: N sequences of T steps)"),
    (lambda x, y: {"x[1]": x[:, :, 0], "x[2]": x[:, :, 1], "y": y}, "'x[1]' is a CSV column: arrays give one "
                                                                    "array 'x' of shape [N, T, 2]"),
    (lambda x, y: {"x": x, "y": y, "z": y}, "column 'z' is not an input or output of the spec (expected: x, y)"),
    (lambda x, y: {"x": np.where(np.arange(2) == 1, np.nan, x), "y": y},
     "'x' at sequence 1, step 1, unit 2: NaN is not a finite number"),
    (lambda x, y: {"x": x[:, :0], "y": y[:, :0]}, "'x' has shape [6, 0, 2]: no steps"),
])
def test_bad_arrays_are_one_line_errors(stepped, data, message):
    with pytest.raises(DataError) as caught:
        tensors_for(stepped, data(*arrays()))
    assert message in str(caught.value)
    assert "\n" not in caught.value.format()


def test_a_last_output_needs_one_row_per_sequence(last):
    x, y = arrays()
    with pytest.raises(DataError, match=r"'y' has 5 rows but 'x' has 6 sequences: one row per sequence"):
        tensors_for(last, {"x": x, "y": y[:5, -1]})


# ---------------------------------------------------------------- CSV long rows
HEADER = "sequence,x[1],x[2],y"


def test_long_rows_are_grouped_by_the_sequence_column(tmp_path, stepped, last):
    rows = [(7, 1, 2, 0.5), (7, 3, 4, 1.5), (3, 5, 6, 2.5), (3, 7, 8, 3.5)]  # ids need not be sorted
    tensors = tensors_for(stepped, write_csv(tmp_path / "d.csv", HEADER, rows), dtype=torch.float64)
    assert tensors["x"].tolist() == [[[1, 2], [3, 4]], [[5, 6], [7, 8]]]
    assert tensors["y"][:, :, 0].tolist() == [[0.5, 1.5], [2.5, 3.5]]
    equal = [(7, 1, 2, 0.5), (7, 3, 4, 0.5), (3, 5, 6, 2.5), (3, 7, 8, 2.5)]  # a last(...) target: one per sequence
    assert tensors_for(last, write_csv(tmp_path / "e.csv", HEADER, equal))["y"][:, 0].tolist() == [0.5, 2.5]


@pytest.mark.parametrize("model, rows, where, message", [
    ("stepped", [(1, 0, 0, 0), (1, 0, 0, 0), (2, 0, 0, 0)], ":4:1: ",  # the last sequence is short
     "sequence 2 has 1 step but sequence 1 has 2"),
    ("stepped", [(1, 0, 0, 0), (1, 0, 0, 0), (2, 0, 0, 0), (2, 0, 0, 0), (2, 0, 0, 0)], ":4:1: ",
     "sequence 2 has 3 steps but sequence 1 has 2: every sequence must have the same number of steps (rows) "
     "(data row 3)"),
    ("stepped", [(1, 0, 0, 0), (2, 0, 0, 0), (1, 0, 0, 0), (2, 0, 0, 0)], ":4:1: ",
     "sequence 1 starts again here after other sequences (it began at data row 1): the rows of a sequence must "
     "be consecutive (data row 3)"),
    ("last", [(1, 0, 0, 1), (1, 0, 0, 2)], ":3:7: ",
     "column 'y': 2 differs from 1 on the first row of sequence 1: 'y' is a non-stepped output (one value per "
     "sequence), equal on every row of its sequence (data row 2)"),
    ("stepped", [(1, 0, 0, 0), ("nan", 0, 0, 0)], ":3:1: ", "column 'sequence': NaN is not a finite number"),
])
def test_bad_long_rows_point_at_the_row(tmp_path, request, model, rows, where, message):
    path = write_csv(tmp_path / "bad.csv", HEADER, rows)
    with pytest.raises(DataError) as caught:
        tensors_for(request.getfixturevalue(model), path)
    report = caught.value.format()
    assert report.startswith(f"{path}{where}error: {message}"), report
    assert "Traceback" not in report


def test_a_csv_without_the_sequence_column_is_refused(tmp_path, stepped):
    path = write_csv(tmp_path / "flat.csv", "x[1],x[2],y", [(0, 0, 0)])
    with pytest.raises(DataError, match=r"no column 'sequence': the spec takes sequences, so each row is one "
                                        r"step and a column 'sequence' names its sequence"):
        tensors_for(stepped, path)


# ---------------------------------------------------------------- losses over steps
def test_losses_of_a_stepped_output_run_over_every_step(stepped):
    p, t = torch.randn(3, 4, 5), torch.softmax(torch.randn(3, 4, 5), -1)
    graph = spec_graph(stepped)
    mse = loss_functions(graph, LOSSES["mse"])[0]
    assert mse(p, t).item() == pytest.approx(F.mse_loss(p, t).item())  # the mean over N×T×m
    ce = loss_functions(graph, LOSSES["cross_entropy"])[0]
    assert ce(p, t).item() == pytest.approx(F.cross_entropy(p.reshape(12, 5), t.reshape(12, 5)).item())
    assert ce(p, t).item() != pytest.approx(F.cross_entropy(p, t).item())  # torch's would read dim 1 as classes


# ---------------------------------------------------------------- fitting
def test_fit_with_no_options_learns_a_recurrence():
    torch.manual_seed(0)
    model = specc.load(STEPPED)
    x, y = arrays(n=12, steps=6)
    result = fit(model, {"x": x, "y": y}, progress=False)
    assert result.settings["engine"] == "autograd" and result.settings["method"].startswith("bfgs, one start")
    assert (result.settings["max_iter"], result.settings["reltol"], result.settings["dtype"]) == (1000, 1e-8, "float64")
    assert result.loss < 0.01 * result.history[0]
    with torch.no_grad():
        assert F.mse_loss(model(torch.from_numpy(x)), torch.from_numpy(y)).item() == pytest.approx(result.loss)


def test_restarts_run_one_after_another_on_autograd(last):
    x, y = arrays()
    torch.manual_seed(1)
    model = specc.load(LAST)
    result = fit(model, {"x": x, "y": y[:, -1]}, restarts=3, max_iter=30, seed=0, progress=False)
    assert len(result.restarts) == 3 and result.settings["engine"] == "autograd"
    assert result.loss == min(r["loss"] for r in result.restarts)


def test_first_order_optimizers_take_mini_batches_of_sequences(stepped):
    x, y = arrays()
    result = fit(stepped, {"x": x, "y": y}, optimizer="adam", lr=0.05, epochs=40, batch_size=4, seed=0,
                 progress=False)
    assert result.history[-1] < result.history[0]


@pytest.mark.parametrize("engine", ["compiled", "numpy", "nnet"])
def test_engines_that_cannot_loop_over_time_are_refused(stepped, engine):
    x, y = arrays()
    with pytest.raises(SpecError) as caught:
        fit(stepped, {"x": x, "y": y}, engine=engine, progress=False)
    assert str(caught.value) == (f"engine '{engine}' cannot fit <spec>: it has step nodes (a sequence input, prev, "
                                 "last), which only the engine 'autograd' runs; leave the engine out to use it")
    assert STEP_ENGINES == ("autograd",)


# ---------------------------------------------------------------- predictions
def test_predictions_go_back_in_the_datas_form(tmp_path, stepped, last):
    rows = [(7, 1, 2, 0.5), (7, 3, 4, 0.5), (3, 5, 6, 2.5), (3, 7, 8, 2.5)]
    path = write_csv(tmp_path / "d.csv", HEADER, rows)
    for model in (stepped, last):
        table = specc.train.data.as_table(path)
        values = predict(model, table)
        text = prediction_bytes(model, table, values, ".csv").decode()
        assert text.splitlines()[0] == HEADER and [line.split(",")[0] for line in text.splitlines()[1:]] == \
            ["7.0", "7.0", "3.0", "3.0"]
        (tmp_path / "p.csv").write_text(text)  # reads back as data: the predictions are the targets
        back = tensors_for(model, tmp_path / "p.csv", dtype=torch.float64)
        assert torch.equal(back["y"], values["y"].double())
        npz = np.load(io.BytesIO(prediction_bytes(model, table, values, ".npz")))
        assert npz["y"].shape == ((2, 2, 1) if model is stepped else (2, 1))
    # arrays without ids: long rows number the sequences 1 … N
    columns = long_columns({"x": torch.zeros(2, 3, 2), "y": torch.zeros(2, 1)}, {"x"}, None)
    assert columns["sequence"].tolist() == [1, 1, 1, 2, 2, 2] and len(columns["y"]) == 6


# ---------------------------------------------------------------- the commands
def test_train_and_predict_commands_on_npz(tmp_path, capsys):
    spec = tmp_path / "elman.spec"
    spec.write_text(STEPPED)
    x, y = arrays()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    weights = tmp_path / "w.safetensors"
    code = main(["train", str(spec), "--data", str(tmp_path / "d.npz"), "--max-iter", "20", "--seed", "0",
                 "--out", str(weights), "--json", "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err, err
    assert json.loads(out)["settings"]["engine"] == "autograd"
    code = main(["predict", str(spec), "--weights", str(weights), "--data", str(tmp_path / "d.npz"),
                 "-o", str(tmp_path / "p.npz")])
    assert code == 0
    assert np.load(tmp_path / "p.npz")["y"].shape == (N, T, 1)
    code = main(["predict", str(spec), "--weights", str(weights), "--data", str(tmp_path / "d.npz")])
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == "sequence,x[1],x[2],y" and len(out.splitlines()) == 1 + N * T


def test_train_command_on_long_csv_rows(tmp_path, capsys):
    spec = tmp_path / "elman.spec"
    spec.write_text(LAST)
    x, y = arrays()
    rows = [(k + 1, *x[k, t], y[k, -1, 0]) for k in range(N) for t in range(T)]
    code = main(["train", str(spec), "--data", str(write_csv(tmp_path / "d.csv", HEADER, rows)), "--max-iter", "5",
                 "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0 and err == "" and out.startswith(f"{spec}: bfgs, one start (small data: 6 rows × 33 "
                                                      "parameters), loss mse, float64")


def test_train_command_refuses_an_engine_in_one_line(tmp_path, capsys):
    spec = tmp_path / "elman.spec"
    spec.write_text(STEPPED)
    x, y = arrays()
    np.savez(tmp_path / "d.npz", x=x, y=y)
    code = main(["train", str(spec), "--data", str(tmp_path / "d.npz"), "--engine", "compiled"])
    out, err = capsys.readouterr()
    assert code == 1 and err.strip().splitlines() == [
        f"error: engine 'compiled' cannot fit {spec}: it has step nodes (a sequence input, prev, last), which only "
        "the engine 'autograd' runs; leave the engine out to use it"], err


def test_a_bad_target_value_is_placed_by_sequence_and_step(tmp_path):
    model = specc.load(STEPPED.replace("y[1] = V·h + c", "y[1] = sigmoid(V·h + c)"))
    x, _ = arrays(n=4, steps=3)
    y = np.zeros((4, 3, 1))
    y[2, 1, 0] = 2
    with pytest.raises(DataError, match=r"^data: 'y' at sequence 3, step 2, unit 1: 2 is not in \[0, 1\]: the "
                                        r"targets of loss 'bce' are probabilities$"):
        fit(model, {"x": x, "y": y}, loss="bce", progress=False)
    rows = [(k, *x[k, t], y[k, t, 0]) for k in range(4) for t in range(3)]
    with pytest.raises(DataError) as caught:  # long rows: the row of sequence 3's second step
        fit(model, write_csv(tmp_path / "d.csv", HEADER, rows), loss="bce", progress=False)
    assert caught.value.line == 9 and "column 'y': 2 is not in [0, 1]" in caught.value.message


def test_the_story_data_are_what_the_story_makes():
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
    import sine_sequence as story
    for path, (count, seed) in ((story.TRAIN, (200, 0)), (story.TEST, (200, 1))):
        stored, made = np.load(path), story.data(count, seed)
        assert set(stored) == {"x", "y"} and all(np.array_equal(stored[k], made[k]) for k in made)
        assert stored["x"].shape == (count, story.STEPS, 1)
    assert np.array_equal(stored["x"][:, 1:], stored["y"][:, :-1])  # the target is the next input


@pytest.mark.parametrize("spec, target, cause", [
    (STEPPED.replace("tanh(W·x + U·prev(h) + b)", "log(W·x + U·prev(h) + b - 100)"), (N, T, 1),
     "'log(W·x + U·prev(h) + b - 100)' (line 2, col 8) is nan for every row, step 1"),
    (LAST.replace("V·z + c", "log(V·z + c - 100)"), (N, 1),
     "'log(V·z + c - 100)' (line 4, col 8) is nan for every row"),
])
def test_a_non_finite_start_is_traced_through_the_steps(spec, target, cause):
    x, _ = arrays()
    with pytest.raises(SpecError) as caught:
        fit(specc.load(spec), {"x": x, "y": np.zeros(target)}, progress=False)
    assert str(caught.value) == f"the criterion is not finite at the start: {cause}"


def test_a_plain_input_is_one_value_per_sequence(tmp_path):
    model = specc.load("input x[T, 2], s[2]\nh[4] = tanh(W·x + U·prev(h, tanh(A·s)) + b)\n"
                       "y[1] = V·h + c\noutput y\n")
    header = "sequence,x[1],x[2],s[1],s[2],y"
    good = write_csv(tmp_path / "d.csv", header, [(1, 0, 1, 5, 6, 1), (1, 1, 0, 5, 6, 2), (2, 0, 0, 7, 8, 3),
                                                  (2, 1, 1, 7, 8, 4)])
    tensors = tensors_for(model, good, dtype=torch.float64)
    assert tensors["s"].tolist() == [[5, 6], [7, 8]] and tensors["y"].shape == (2, 2, 1)
    bad = write_csv(tmp_path / "bad.csv", header, [(1, 0, 1, 5, 6, 1), (1, 1, 0, 5, 9, 2)])
    with pytest.raises(DataError) as caught:
        tensors_for(model, bad)
    assert caught.value.format().startswith(f"{bad}:3:9: error: column 's[2]': 9 differs from 6 on the first row of "
                                            "sequence 1: 's' is a plain input, equal on every row of its sequence")
    assert tensors_for(model, {"x": np.zeros((3, 4, 2)), "s": np.ones((3, 2)), "y": np.zeros((3, 4))})["s"].shape \
        == (3, 2)


def test_small_sequence_fits_run_on_one_thread(stepped):
    from specc.train.sequences import small_steps_on_one_thread
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        restore = small_steps_on_one_thread(stepped, rows=100)
        assert torch.get_num_threads() == 1
        restore()
        assert torch.get_num_threads() == 2
        for model, rows in ((stepped, 10 ** 6), (specc.load("input x[2]\ny[1] = W·x\n"), 100)):
            restore = small_steps_on_one_thread(model, rows)  # large data, or no steps: torch's own setting
            assert torch.get_num_threads() == 2
            restore()
    finally:
        torch.set_num_threads(before)
