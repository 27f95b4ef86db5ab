"""Fits that cannot start or that diverge (issue 11, items 2 and 3): nothing to fit, a non-finite
start named by its cause, and a NaN or infinite criterion during a fit, on every optimizer and engine
path; the CLI exits 1 with one line and leaves a previous --out file as it was."""
import math
import re
import warnings

import numpy as np
import pytest
import torch

import specc
import specc.train.multistart as multistart
from specc.cli import main
from specc.errors import SpecError
from specc.train import checks
from specc.train.engines import ENGINES
from specc.train.losses import LOSSES, Criterion
from specc.train.optimizers import Run

X = np.linspace(-1, 1, 20)
DATA = {"x": X, "y": 2 * X}
NNET = "input x[1]\nh[2] = logistic(W1·x + b1)\ny[1] = W2·h + b2\n"  # the nnet engine's form

# Every way a fit runs: first-order (full batch and mini-batches), lbfgs, bfgs on each engine,
# restarts, and the default method.
PATHS = {"adam": dict(optimizer="adam", epochs=5), "sgd-batches": dict(optimizer="sgd", epochs=5, batch_size=7),
         "lbfgs": dict(optimizer="lbfgs", max_iter=5), "bfgs-compiled": dict(optimizer="bfgs", engine="compiled"),
         "bfgs-numpy": dict(optimizer="bfgs", engine="numpy"),
         "bfgs-autograd": dict(optimizer="bfgs", engine="autograd"), "restarts": dict(restarts=3, seed=0), "default": {}}


def load(text):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a spec's typo warnings are not what these tests are about
        return specc.load(text)


def fit(text_or_model, data=DATA, **options):
    torch.manual_seed(0)
    model = load(text_or_model) if isinstance(text_or_model, str) else text_or_model
    return specc.fit(model, data, progress=False, **options)


def refused(message, text_or_model, data=DATA, **options):
    with pytest.raises(SpecError) as caught:
        fit(text_or_model, data, **options)
    assert str(caught.value) == message


# ---------------------------------------------------------------- nothing to fit
@pytest.mark.parametrize("path", PATHS)
def test_an_output_without_parameters_is_nothing_to_fit(path):
    refused("nothing to fit: the output y depends on no parameter", "input x\ny = x + 1\n", **PATHS[path])


@pytest.mark.parametrize("path", PATHS)
def test_outputs_that_depend_on_no_parameter_are_named(path):
    spec = "input x\noutput y, z\nh = a*x\ny = x + 1\nz = 2*x\n"  # 'a' exists, but no output uses it
    refused("nothing to fit: the outputs y, z depend on no parameter", spec, {**DATA, "z": 2 * X}, **PATHS[path])


def test_nothing_to_fit_is_said_before_the_data_is_read(tmp_path):
    refused("nothing to fit: the output y depends on no parameter", "param a\ninput x\ny = x + 1\n",
            tmp_path / "missing.csv")


@pytest.mark.parametrize("path", PATHS)
def test_an_output_without_parameters_beside_one_with_them_is_a_constant_term(path):
    result = fit("input x\ny = a*x\nz = x + 1\n", {**DATA, "z": X + 1}, **PATHS[path])
    assert math.isfinite(result.loss)


# ---------------------------------------------------------------- a start that is not finite
def _with_nan_weight(text=NNET):
    model = load(text)
    with torch.no_grad():
        model.W1[1, 0] = float("nan")
        model.b1[0] = float("inf")
    return model


@pytest.mark.parametrize("path", [*PATHS, "bfgs-nnet"])
def test_a_parameter_that_is_not_finite_is_named_with_its_index(path):
    options = dict(optimizer="bfgs", engine="nnet", loss="sse") if path == "bfgs-nnet" else PATHS[path]
    data = {"x": X[:, None], "y": 2 * X[:, None]}
    refused("the criterion is not finite at the start: parameter 'W1' is nan at [2, 1] (counted from 1)",
            _with_nan_weight(), data, **options)


def test_a_matrix_parameter_counts_its_bad_entries():
    model = load(NNET)
    with torch.no_grad():
        model.W1[1, 0] = model.W1[0, 0] = float("nan")
    refused("the criterion is not finite at the start: parameter 'W1' is nan at [1, 1] (counted from 1; 2 of its 2 "
            "entries are not finite)", model, {"x": X[:, None], "y": 2 * X[:, None]})


def test_a_fixed_value_that_is_not_finite_is_named():
    model = load("input x\nfixed mu\ny = a*(x - mu)\n")
    with torch.no_grad():
        model.mu.fill_(-math.inf)
    refused("the criterion is not finite at the start: fixed value 'mu' is -inf", model)


def test_a_column_that_is_not_finite_in_the_fits_dtype_is_named():
    # The data readers refuse such values first; this is the check behind them, on the tensors a fit uses.
    model = load("input x[2]\nparam w[2]\ny = w·x\n").float()
    x = torch.ones(4, 2)
    x[2, 1] = math.inf
    criterion = Criterion(model, {"x": x, "y": torch.zeros(4)}, LOSSES["mse"], 0.0)
    with pytest.raises(SpecError) as caught:
        checks.check_start(model, criterion)
    assert str(caught.value) == ("the criterion is not finite at the start: column 'x[2]' is inf at data row 3 as "
                                 "float32 (beyond ±3.4e+38)")


def test_a_dict_of_tensors_with_nan_is_refused():
    x = torch.tensor(X)
    x[3] = math.nan
    with pytest.raises(SpecError, match="column 'x'"):
        fit("input x\ny = a*x\n", {"x": x, "y": torch.tensor(2 * X)}, optimizer="adam")


@pytest.mark.parametrize("path", PATHS)
def test_the_spec_arithmetic_is_named_at_its_statement(path):
    refused("the criterion is not finite at the start: 'log(x - 5)' (line 2, col 11) is nan for every row",
            "input x\ny = a*x + log(x - 5)\n", **PATHS[path])


@pytest.mark.parametrize("path", PATHS)
def test_the_rows_where_the_arithmetic_is_not_finite_are_named(path):
    refused("the criterion is not finite at the start: 'log(x)' (line 2, col 11) is nan at data rows 1, 2, 3 and "
            "7 more (of 20)", "input x\ny = a*x + log(x)\n", **PATHS[path])


def test_a_float32_overflow_is_named_where_it_happens():
    refused("the criterion is not finite at the start: 'exp(100*x)' (line 2, col 5) is inf (beyond float32's "
            "±3.4e+38) at data rows 19, 20 (of 20)", "input x\nh = exp(100*x)\ny = a*h\n", optimizer="adam")


def test_an_expression_inside_a_def_says_so():
    refused("the criterion is not finite at the start: 'log(z - 5)' (line 2, col 12, in def f) is nan for every row",
            "input x\ndef f(z) = log(z - 5)\ny = a*f(x)\n", optimizer="adam")


def test_a_loss_that_overflows_is_named():
    refused("the criterion is not finite at the start: the mse of output 'y' is inf in float32 (its values and "
            "targets are finite)", "input x\ninit a = 1\ny = 1e30*a*x\n", optimizer="adam")


def test_a_decay_term_that_overflows_is_named():
    refused("the criterion is not finite at the start: the decay term (1e+10 · Σw²) is inf",
            "input x\ny = a*x + b\ninit b = 1e15\n", optimizer="adam", decay=1e10)


def test_the_start_check_draws_no_random_number():
    spec = "input x\nparam v[4]\nh[4] = dropout(tanh(W·x + c), 0.5)\ny = v·h\n"
    results = []
    for check in (True, False):
        torch.manual_seed(0)
        model = load(spec)
        with pytest.MonkeyPatch.context() as patch:
            if not check:
                patch.setattr(checks, "check_start", lambda *args, **kw: None)
            results.append(specc.fit(model, DATA, optimizer="adam", epochs=5, progress=False).history)
    assert results[0] == results[1]


def test_restarts_leave_a_parameters_nan_to_the_other_starts():
    result = fit("input x\ny = log(a) * x + c\n", {"x": X + 2, "y": X}, restarts=8, seed=0)
    assert math.isfinite(result.loss)
    refused("the criterion (mse) is not finite at any of the 3 starting points; at the first (the model's values): "
            "'log(-square(a))' (line 2, col 5) is nan for every row", "input x\ny = log(-square(a)) * x\n", restarts=3)


@pytest.mark.parametrize("engine", ["compiled", "numpy", "autograd", "nnet"])
def test_every_bfgs_engine_refuses_a_non_finite_start_with_the_same_error(engine, monkeypatch):
    # Behind fit's check (switched off here), each engine's own start check: a SpecError, never vmmin's ValueError.
    monkeypatch.setattr(checks, "check_start", lambda *args, **kw: None)
    with pytest.raises(SpecError, match=r"^the criterion is not finite at the start: "):
        fit(_with_nan_weight(), {"x": X[:, None], "y": 2 * X[:, None]}, optimizer="bfgs", engine=engine,
            loss="sse")


# ---------------------------------------------------------------- a fit that diverges
SINE = specc.files.bundled("specs") / "sine_nnet.spec"
SINE_DATA = specc.files.bundled("examples") / "sine50.csv"
DIVERGING = {  # path -> (spec, data, options, message; {v}: nan or inf, {n}: the epoch, as rounding decides)
    "sgd": (SINE, SINE_DATA, dict(optimizer="sgd", lr=1e6, epochs=50),
            "the fit diverged: the criterion (mse) became {v} at epoch {n} (sgd); the model keeps its starting "
            "values: try a smaller learning rate than 1e+06"),
    "sgd-batches": (SINE, SINE_DATA, dict(optimizer="sgd", lr=1e6, epochs=50, batch_size=10),
                    "the fit diverged: the criterion (mse) became {v} at epoch {n} (sgd); the model keeps its "
                    "starting values: try a smaller learning rate than 1e+06"),
    "adam": ("input x\ny = exp(a*x)\n", {"x": X, "y": np.exp(3 * X)}, dict(optimizer="adam", lr=1e3, epochs=50),
             "the fit diverged: the criterion (mse) became {v} at epoch {n} (adam); the model keeps its starting "
             "values: try a smaller learning rate than 1000"),
    "lbfgs": ("input x\ny = a*x\n", {"x": X, "y": 3 * X}, dict(optimizer="lbfgs", lr=1e20, max_iter=50),
              "the fit diverged: the criterion (mse) became {v} at iteration {n} (lbfgs); the model keeps its "
              "starting values: try a smaller learning rate than 1e+20"),
}


def pattern(message):
    return re.escape(message).replace(r"\{v\}", "(nan|inf)").replace(r"\{n\}", "[0-9]+")


@pytest.mark.parametrize("path", DIVERGING)
def test_a_diverging_fit_stops_with_an_error_and_keeps_the_start(path):
    spec, data, options, message = DIVERGING[path]
    torch.manual_seed(0)
    model = load(spec)
    start = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(SpecError) as caught:
        fit(model, data, **options)
    assert re.fullmatch(pattern(message), str(caught.value)), caught.value
    assert all(torch.equal(a, b) for a, b in zip(start, model.parameters()))


def _poison_the_end(monkeypatch, path, value=math.nan):
    """A bfgs path ends with a parameter at ``value``, as a float32 store of a far point would (the
    minimisers themselves reject non-finite trial points, so no real fit ends there in float64)."""
    def poison(model):
        with torch.no_grad():
            next(model.parameters()).view(-1)[0] = value
    if path == "restarts":
        run = multistart.run

        def poisoned_run(model, *args):
            result = run(model, *args)
            poison(model)
            return result
        monkeypatch.setattr(multistart, "run", poisoned_run)
        return
    engine = path.removeprefix("bfgs-")
    make = ENGINES[engine]

    def poisoned(model, criterion):
        objective = make(model, criterion)
        store = objective.store
        objective.store = lambda x: (store(x), poison(model))
        return objective
    monkeypatch.setitem(ENGINES, engine, poisoned)


BFGS_PATHS = {"bfgs-compiled": dict(optimizer="bfgs", engine="compiled"),
              "bfgs-numpy": dict(optimizer="bfgs", engine="numpy"),
              "bfgs-autograd": dict(optimizer="bfgs", engine="autograd"),
              "bfgs-nnet": dict(optimizer="bfgs", engine="nnet", loss="sse"), "restarts": dict(restarts=3, seed=0)}


@pytest.mark.parametrize("path", BFGS_PATHS)
def test_a_bfgs_fit_that_ends_at_a_non_finite_parameter_is_refused(path, monkeypatch):
    _poison_the_end(monkeypatch, path)
    model = load(NNET)
    start = [p.detach().clone() for p in model.parameters()]
    refused("the fit diverged: parameter 'W1' became nan (bfgs); the model keeps its starting values",
            model, {"x": X[:, None], "y": 2 * X[:, None]}, max_iter=20, **BFGS_PATHS[path])
    assert all(torch.equal(a, b) for a, b in zip(start, model.parameters()))


def test_a_bfgs_fit_whose_module_criterion_overflows_its_dtype_is_refused(monkeypatch):
    _poison_the_end(monkeypatch, "bfgs-compiled", 1e38)  # finite in float32, but (1e38·x)² is not
    refused("the fit diverged: the criterion (mse) is inf in float32 at the fitted values (bfgs); the model keeps "
            "its starting values: fit in float64", "input x\ny = a*x\n", optimizer="bfgs", dtype="float32")


def test_a_history_with_an_infinite_value_is_divergence_even_if_the_end_is_finite():
    model = load("input x\ny = a*x\n")
    settings = {"loss": "mse", "epochs": 3, "optimizer": "sgd", "lr": 0.5, "dtype": "float32"}
    with pytest.raises(SpecError) as caught:
        multistart.refuse_divergence(model, Run([1.0, math.inf], 2, False, 3, 0.5), settings,
                                     [p.detach().clone() for p in model.parameters()])
    assert str(caught.value) == ("the fit diverged: the criterion (mse) became inf at epoch 2 (sgd); the model "
                                 "keeps its starting values: try a smaller learning rate than 0.5")


# ---------------------------------------------------------------- the command line
def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


CLI = {  # case -> (spec text or path, train options, the error line)
    "nothing to fit": ("input x\ny = x + 1\n", [],
                       "error: nothing to fit: the output y depends on no parameter"),
    "arithmetic": ("input x\ny = a*x + log(x)\n", [],
                   "error: the criterion is not finite at the start: 'log(x)' (line 2, col 11) is nan at data rows "
                   "1, 2, 3 and 7 more (of 20)"),
    "sgd": ("input x\ny = exp(a*x)\n", ["--optimizer", "sgd", "--lr", "1e6", "--epochs", "50"],
            "error: " + DIVERGING["sgd"][3]),
    "sgd-batches": ("input x\ny = exp(a*x)\n", ["--optimizer", "sgd", "--lr", "1e6", "--epochs", "50",
                                                "--batch-size", "5"], "error: " + DIVERGING["sgd"][3]),
    "lbfgs": ("input x\ny = a*x\n", ["--optimizer", "lbfgs", "--lr", "1e20"],
              "error: the fit diverged: the criterion (mse) became nan at iteration 2 (lbfgs); the model keeps its "
              "starting values: try a smaller learning rate than 1e+20"),
    **{path: (NNET, [f"--{k.replace('_', '-')}={v}" for k, v in options.items()] + ["--max-iter", "20"],
              "error: the fit diverged: parameter 'W1' became nan (bfgs); the model keeps its starting values")
       for path, options in BFGS_PATHS.items()},
}


@pytest.mark.parametrize("case", CLI)
def test_the_command_line_exits_1_in_one_line_and_keeps_the_previous_weights(case, tmp_path, capsys, monkeypatch):
    text, options, line = CLI[case]
    spec, data, weights = tmp_path / "m.spec", tmp_path / "d.csv", tmp_path / "w.safetensors"
    spec.write_text(text)
    vector = text == NNET
    data.write_text(("x[1],y[1]\n" if vector else "x,y\n") + "".join(f"{x!r},{2 * x!r}\n" for x in X.tolist()))
    weights.write_bytes(b"a good weights file from an earlier run")
    before = sorted(p.name for p in tmp_path.iterdir())
    if case in BFGS_PATHS:
        _poison_the_end(monkeypatch, case)
    code, out, err = _run(capsys, "train", spec, "--data", data, "--out", weights, "--seed", 0, *options)
    assert code == 1 and out == "" and err.count("\n") == 1 and "Traceback" not in err, err
    assert re.fullmatch(pattern(line) + "\n", err), err
    assert weights.read_bytes() == b"a good weights file from an earlier run"
    assert sorted(p.name for p in tmp_path.iterdir()) == before


# ---------------------------------------------------------------- the evaluator behind the messages
SPECS = sorted(specc.files.bundled("specs").glob("*.spec")) + [
    "input x[4]\nparam w[3]\nh = concat(x[1:2], x[4])\ny = w·tanh(h) + sum(x[2:3])\n"]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: getattr(s, "stem", "concat"))
def test_the_expression_walk_finds_nothing_on_finite_values_and_the_first_node_on_a_nan_row(spec):
    model = load(spec).double()
    graph = model.spec_ir
    generator = torch.Generator().manual_seed(0)
    steps = lambda n: (4,) if graph.nodes[n].get("sequence") or graph.nodes[n].get("stepped") else ()  # noqa: E731
    tensors = {n: torch.rand(7, *steps(n), *graph.nodes[n]["shape"], dtype=torch.float64, generator=generator)
               for n in graph.graph["inputs"] + graph.graph["outputs"]}
    assert checks.expression_cause(model, Criterion(model, tensors, LOSSES["mse"], 0.0)) == (None, False)
    first = graph.graph["inputs"][0]
    tensors[first] = tensors[first].clone()
    tensors[first].view(-1)[-1] = math.nan
    cause = checks.expression_cause(model, Criterion(model, tensors, LOSSES["mse"], 0.0))[0]
    assert cause.endswith("is nan at data row 7 (of 7)" + (", step 4" if steps(first) else "")), cause
