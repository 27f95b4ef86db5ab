"""specc.train.multistart: the batched BFGS (each restart as if alone), starting points from the spec's
initialisers, keeping the best, the default method's rule, and refusals. No timings here
(benchmarks/bench_restarts.py measures time per restart)."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import specc
import specc.train.data
import specc.train.nnet
from specc.train import multistart
from specc.errors import SpecError
from specc.train.multistart import choose, minimize, restart_seeds, starting_points

ROOT = Path(__file__).resolve().parent.parent
SINE, SINE_DATA = ROOT / "specs" / "sine_nnet.spec", ROOT / "examples" / "sine50.csv"


def rosenbrock(X):
    """The n-dimensional Rosenbrock function and its gradient, one row per restart."""
    a, b = X[:, :-1], X[:, 1:]
    f = (100 * (b - a * a) ** 2 + (1 - a) ** 2).sum(1)
    g = np.zeros_like(X)
    g[:, :-1] += -400 * a * (b - a * a) - 2 * (1 - a)
    g[:, 1:] += 200 * (b - a * a)
    return f, g


def test_each_restart_runs_as_if_alone():
    x0 = np.random.default_rng(0).normal(size=(5, 4)) * 1.5
    batch = minimize(rosenbrock, x0, max_iter=500, reltol=1e-12)
    for k in range(len(x0)):  # its own line search, resets and stopping: the same numbers as alone
        alone = minimize(rosenbrock, x0[k:k + 1], max_iter=500, reltol=1e-12)
        assert (batch.iterations[k], batch.evaluations[k]) == (alone.iterations[0], alone.evaluations[0])
        assert np.array_equal(batch.x[k], alone.x[0]) and batch.status[k] == alone.status[0]
        assert len(batch.histories[k]) == batch.iterations[k] + 1 and batch.histories[k][-1] == batch.f[k]
    assert batch.converged.all() and np.nanmin(batch.f) < 1e-20  # 4-d Rosenbrock: 1 and a local minimum


def test_a_quadratic_is_solved_from_every_start():
    rng = np.random.default_rng(1)
    Q = rng.normal(size=(6, 6))
    A, b = Q @ Q.T + 0.1 * np.eye(6), rng.normal(size=6)

    def quadratic(X):
        return 0.5 * np.einsum("ri,ij,rj->r", X, A, X) - X @ b, X @ A - b
    batch = minimize(quadratic, rng.normal(size=(4, 6)) * 10, max_iter=200, reltol=0.0)
    np.testing.assert_allclose(batch.x, np.tile(np.linalg.solve(A, b), (4, 1)), rtol=1e-7, atol=1e-9)
    assert batch.converged.all()


def test_non_finite_starts_and_trial_points():
    def barrier(X):  # finite for x > 0 only: far trial points are NaN, and must be stepped back from
        with np.errstate(invalid="ignore", divide="ignore"):
            return (X - np.log(X)).sum(1), 1 - 1 / X
    x0 = np.array([[5.0, 0.01], [-1.0, 2.0], [40.0, 3.0]])  # the second restart is NaN at its start
    batch = minimize(barrier, x0, max_iter=100, reltol=1e-14)
    assert batch.status == ["converged", "not finite at its start", "converged"]
    assert math.isnan(batch.f[1]) and batch.iterations[1] == 0 and not batch.converged[1]
    np.testing.assert_allclose(batch.x[[0, 2]], 1.0, rtol=1e-6)


def test_max_iter_ends_a_restart_unconverged():
    batch = minimize(rosenbrock, np.array([[-1.2, 1.0], [0.9, 0.8]]), max_iter=5, reltol=0.0)
    assert list(batch.iterations) == [5, 5] and batch.status == ["max_iter", "max_iter"]
    assert not batch.converged.any()


# ---------------------------------------------------------------- starting points
def test_starting_points_come_from_the_initialisers_and_leave_model_and_generator_alone():
    torch.manual_seed(0)
    model = specc.load(SINE)
    before = [p.detach().clone() for p in model.parameters()]
    state = torch.random.get_rng_state()
    seeds = restart_seeds(4, seed=7)
    points = starting_points(model, seeds)
    assert seeds[0] is None and seeds == restart_seeds(4, seed=7) and seeds != restart_seeds(4, seed=8)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    own = torch.nn.utils.parameters_to_vector(before).double().numpy()
    assert np.array_equal(points[0], own) and len(np.unique(points, axis=0)) == 4
    torch.manual_seed(seeds[2])  # a restart's start is torch.manual_seed(its seed) + reset_parameters()
    model.reset_parameters()
    assert np.array_equal(points[2], torch.nn.utils.parameters_to_vector(model.parameters()).detach().double().numpy())


# ---------------------------------------------------------------- fit with restarts
def test_fit_keeps_the_best_restart():
    torch.manual_seed(0)
    model = specc.load(SINE)
    result = specc.fit(model, SINE_DATA, optimizer="bfgs", restarts=4, seed=3, max_iter=200, progress=False)
    losses = [r["loss"] for r in result.restarts]
    assert len(losses) == 4 and result.loss == min(losses)
    assert [r["kept"] for r in result.restarts] == [loss == min(losses) for loss in losses]
    assert {"loss", "iterations", "evaluations", "converged", "status", "seed"} <= set(result.restarts[0])
    assert result.settings["engine"] == "compiled" and result.settings["method"] == "bfgs ×4 restarts"
    kept = result.restarts[losses.index(min(losses))]
    assert result.iterations == kept["iterations"] and len(result.history) == kept["iterations"] + 1
    data = specc.train.data.tensors_for(model, SINE_DATA, dtype=torch.float64)
    with torch.no_grad():  # the model holds the kept restart's parameters
        assert torch.nn.functional.mse_loss(model(data["x"]), data["y"]).item() == pytest.approx(result.loss,
                                                                                                  rel=1e-12)


def test_restarts_are_reproducible_from_the_seed():
    def losses(seed, **kw):
        torch.manual_seed(0)
        result = specc.fit(specc.load(SINE), SINE_DATA, restarts=3, seed=seed, max_iter=30, progress=False, **kw)
        return [r["loss"] for r in result.restarts]
    assert losses(1) == losses(1)
    assert losses(1)[0] == losses(2)[0] and losses(1)[1:] != losses(2)[1:]  # the first: the model's own
    torch.manual_seed(5)  # without a seed, torch's generator draws them
    first = specc.fit(specc.load(SINE), SINE_DATA, restarts=3, max_iter=30, progress=False).restarts
    torch.manual_seed(5)
    assert specc.fit(specc.load(SINE), SINE_DATA, restarts=3, max_iter=30, progress=False).restarts == first


def test_the_first_restart_starts_at_the_model_values():
    model = specc.load(SINE)
    specc.train.nnet.load_wts(model, [i * (1 / 12) for i in range(13)])  # as --init-from sine_nnet_wts.json does
    data = specc.train.data.tensors_for(model, SINE_DATA, dtype=torch.float64)
    with torch.no_grad():
        at_wts = torch.nn.functional.mse_loss(model(data["x"]), data["y"]).item()
    result = specc.fit(model, SINE_DATA, restarts=3, seed=0, max_iter=0, progress=False)
    assert result.restarts[0]["loss"] == pytest.approx(at_wts, rel=1e-13)
    assert result.restarts[1]["loss"] != result.restarts[0]["loss"]


def test_restarts_that_start_at_nan_are_left_out_and_all_nan_is_an_error():
    data = {"x": np.linspace(0.5, 2, 20), "y": np.linspace(0, 1, 20)}
    result = specc.fit(specc.load("input x\ny = log(a) * x + c\n"), data, restarts=8, seed=0, progress=False)
    statuses = [r["status"] for r in result.restarts]  # a ~ randn: log(a) is NaN for about half the starts
    assert "not finite at its start" in statuses and "converged" in statuses and math.isfinite(result.loss)
    assert all(r["loss"] is None for r in result.restarts if r["status"] == "not finite at its start")
    with pytest.raises(SpecError, match=r"not finite at any of the 3 starting points"):
        specc.fit(specc.load("input x\ny = log(-square(a)) * x\n"), data, restarts=3, progress=False)


# ---------------------------------------------------------------- the default method
def test_the_rule():
    assert choose(50, 13, {})["method"] == "bfgs ×10 restarts (small data: 50 rows × 13 parameters)"
    small = choose(50, 13, {})
    assert (small["optimizer"], small["engine"], small["restarts"]) == ("bfgs", "compiled", 10)
    assert (small["max_iter"], small["abstol"], small["reltol"]) == (5000, None, 1e-10)
    large = choose(10_000, 31, {})  # 310,000 > 100,000
    assert large["method"] == "adam, mini-batches of 64, 128 epochs (large data: 10000 rows × 31 parameters)"
    assert choose(50, 600, {})["optimizer"] == "adam"  # H would be 600 × 600 per restart
    assert choose(50, 13, {"lr": 0.01}) == {"optimizer": "adam", "method": "adam (lr given)"}  # as before
    assert choose(50, 13, {"engine": "nnet"})["method"] == "bfgs, one start (small data: 50 rows × 13 parameters)"
    assert choose(10_000, 31, {"restarts": 3})["method"] == "bfgs ×3 restarts (restarts given)"
    assert choose(50, 13, {"max_iter": 50, "reltol": 1e-6})["max_iter"] == 50
    with pytest.raises(SpecError, match="epochs is an option of the first-order optimizers and max_iter of bfgs"):
        choose(50, 13, {"epochs": 5, "max_iter": 5})


@pytest.mark.parametrize("restarts, words", [
    (0, "restarts must be a whole number from 1 to 10000, not 0"), (-2, "not -2"), (2.5, "not 2.5"),
    (True, "not True")])
def test_restarts_below_one_are_refused(restarts, words):
    with pytest.raises(SpecError, match=words):
        specc.fit(specc.load(SINE), SINE_DATA, restarts=restarts)


def test_restarts_run_on_bfgs_and_the_tape_only():
    with pytest.raises(SpecError, match="restarts are run by bfgs .*'adam' fits from one start"):
        specc.fit(specc.load(SINE), SINE_DATA, optimizer="adam", restarts=3)
    with pytest.raises(SpecError, match="engine 'nnet' fits one start at a time"):
        specc.fit(specc.load(SINE), SINE_DATA, optimizer="bfgs", loss="sse", engine="nnet", restarts=3)


def test_a_diverging_fit_is_an_error_and_the_model_keeps_its_start():
    torch.manual_seed(0)
    model = specc.load(SINE)
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(SpecError, match=r"the fit diverged: the criterion \(mse\) became (nan|inf) at epoch \d+ "
                                        r"\(sgd\); the model keeps its starting values: try a smaller learning rate"):
        specc.fit(model, SINE_DATA, optimizer="sgd", lr=1e6, epochs=100, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_multistart_is_its_own_module():
    assert multistart.DEFAULT_RESTARTS == 10 and multistart.STEP_SHRINK == 0.2 and multistart.ACCTOL == 1e-4


def test_a_restart_redone_alone_gives_the_same_numbers():
    torch.manual_seed(0)
    batch = specc.fit(specc.load(SINE), SINE_DATA, restarts=3, seed=4, max_iter=60, progress=False)
    model = specc.load(SINE).double()  # as docs/training.md says: the restarts are drawn in float64
    torch.manual_seed(batch.restarts[2]["seed"])
    model.reset_parameters()
    alone = specc.fit(model, SINE_DATA, restarts=1, max_iter=60, progress=False)
    assert (alone.loss, alone.iterations) == (batch.restarts[2]["loss"], batch.restarts[2]["iterations"])


def test_a_bfgs_fit_from_a_nan_start_is_refused_in_one_line():
    data = {"x": np.linspace(0.5, 2, 20), "y": np.linspace(0, 1, 20)}
    for engine in ("autograd", "numpy"):
        with pytest.raises(SpecError, match=r"^the criterion is not finite at the start: 'log\(-square\(a\)\)' "
                                            r"\(line 2, col 5\) is nan for every row$"):
            specc.fit(specc.load("input x\ny = log(-square(a)) * x\n"), data, optimizer="bfgs", engine=engine)


def test_large_data_takes_mini_batch_adam(monkeypatch):
    monkeypatch.setattr(multistart, "SMALL_DATA", 100)  # the sine's 50 rows × 13 parameters count as large
    monkeypatch.setattr(multistart, "ADAM_BATCH", 16)
    monkeypatch.setattr(multistart, "ADAM_STEPS", 40)
    torch.manual_seed(0)
    result = specc.fit(specc.load(SINE), SINE_DATA, seed=0, progress=False)
    assert result.settings["method"] == "adam, mini-batches of 16, 10 epochs (large data: 50 rows × 13 parameters)"
    assert (result.settings["optimizer"], result.settings["batch_size"], result.settings["epochs"]) == ("adam", 16, 10)
    assert result.settings["dtype"] == "float32" and result.iterations == 40 and result.restarts == []


def test_restarts_whose_inverse_hessians_do_not_fit_are_refused(monkeypatch):
    monkeypatch.setattr(multistart, "MAX_HESSIAN_BYTES", 10_000)  # 13 parameters: 4 × 13² × 8 = 5408 bytes
    specc.fit(specc.load(SINE), SINE_DATA, restarts=4, max_iter=1, progress=False)
    with pytest.raises(SpecError, match=r"^20 restarts of bfgs on 13 parameters need 0.0 GB .* use fewer restarts"):
        specc.fit(specc.load(SINE), SINE_DATA, restarts=20, max_iter=1, progress=False)
