"""Devices and the first-order loop: --device / fit(device=) / predict(device=), torch's functional
optimizer kernels against the torch.optim classes, the mini-batch order, the packed rows and the
fast path for data that is already the module's tensors. GPU tests skip without CUDA."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import specc
from specc.cli import main
from specc.errors import DataError, SpecError
from specc.train import fit, predict
from specc.train.batching import PackedRows, as_given, pack_rows
from specc.train.devices import for_fit, resolve
from specc.train.losses import LOSSES, Criterion
from specc.train.optimizers import batches
from specc.train.steppers import STEPPERS

from conftest import ROOT

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
TWO_IO = ROOT / "specs" / "two_io.spec"


def two_io_data(rows: int = 300, seed: int = 0, dtype=torch.float32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(rows, size, generator=g, dtype=dtype)
            for name, size in (("in1", 5), ("in2", 5), ("out1", 3), ("out2", 3))}


# ---------------------------------------------------------------- optimizers
CLASSES = {"adam": (torch.optim.Adam, {}), "sgd": (torch.optim.SGD, {"momentum": 0.9}),
           "rmsprop": (torch.optim.RMSprop, {"momentum": 0.5}), "adagrad": (torch.optim.Adagrad, {})}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", list(CLASSES) + ["sgd-plain", "rmsprop-plain"])
def test_a_stepper_steps_as_the_torch_optim_class_bit_for_bit(name, dtype):
    base = name.removesuffix("-plain")
    cls, extra = CLASSES[base]
    extra = {} if name.endswith("-plain") else extra

    def trained(make):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Tanh(), torch.nn.Linear(7, 2)).to(dtype)
        opt = make(model.parameters())
        x, y = torch.randn(64, 5, dtype=dtype), torch.randn(64, 2, dtype=dtype)
        for _ in range(15):
            opt.zero_grad()
            F.mse_loss(model(x), y).backward()
            opt.step()
        return [p.detach() for p in model.parameters()]

    ours = trained(lambda p: STEPPERS[base](p, 0.01, extra.get("momentum", 0.0)))
    theirs = trained(lambda p: cls(p, lr=0.01, **extra))
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs))


def test_a_first_order_fit_imports_neither_dynamo_nor_sympy():
    # torch.optim's classes import torch._dynamo (and with it sympy) at first use: seconds
    code = ("import sys, torch, specc\n"
            "m = specc.load('input x[2]\\ny[1] = W·x + c\\n')\n"
            "specc.fit(m, {'x': torch.randn(64, 2), 'y': torch.randn(64, 1)}, optimizer='adam', epochs=2,"
            " batch_size=16, progress=False)\n"
            "print(sorted(n for n in ('torch._dynamo', 'sympy') if n in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_a_mini_batch_fit_is_the_hand_written_loop():
    data, seed, batch = two_io_data(300), 3, 64
    torch.manual_seed(0)
    model = specc.load(TWO_IO)
    torch.manual_seed(0)
    hand = specc.load(TWO_IO)
    result = fit(model, data, optimizer="adam", epochs=3, batch_size=batch, seed=seed, progress=False)
    opt = torch.optim.Adam(hand.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(3):
        total = 0.0
        for idx in torch.randperm(300, generator=generator).split(batch):
            opt.zero_grad()
            p1, p2 = hand(data["in1"][idx], data["in2"][idx])
            loss = F.mse_loss(p1, data["out1"][idx]) + F.mse_loss(p2, data["out2"][idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        losses.append(total / 300)
    for (name, p), q in zip(model.named_parameters(), hand.parameters()):
        assert torch.allclose(p, q, rtol=0, atol=1e-6), name
    assert result.history == pytest.approx(losses, rel=1e-6)
    assert result.iterations == 3 * 5


# ---------------------------------------------------------------- the loop's pieces
def test_batches_deal_every_row_once_in_a_seeded_order():
    assert list(batches(10, None, None)) == [None]
    assert list(batches(10, 10, None)) == [None]
    chunks = list(batches(10, 4, torch.Generator().manual_seed(1)))
    assert [len(c) for c in chunks] == [4, 4, 2]
    assert sorted(torch.cat(chunks).tolist()) == list(range(10))
    again = list(batches(10, 4, torch.Generator().manual_seed(1)))
    assert all(torch.equal(a, b) for a, b in zip(chunks, again))


def test_packed_rows_give_the_same_batches_and_criterion():
    data = two_io_data(50)
    torch.manual_seed(0)
    model = specc.load(TWO_IO)
    plain = Criterion(model, data, LOSSES["mse"], 0.01)
    packed = Criterion(model, data, LOSSES["mse"], 0.01)
    pack_rows(packed)
    rows = torch.tensor([7, 3, 3, 49, 0])
    for a, b in zip(PackedRows(plain.inputs + plain.targets)(rows), plain.inputs + plain.targets):
        assert torch.equal(a, b[rows])
    assert torch.equal(packed(rows), plain(rows))
    assert torch.equal(packed(), plain())


def test_tensors_in_the_module_form_are_taken_as_they_are():
    torch.manual_seed(0)
    model = specc.load(TWO_IO)
    data = two_io_data(20)
    given = as_given(model, data, torch.float32)
    assert given is not None and all(given[n].data_ptr() == data[n].data_ptr() for n in data)
    assert as_given(model, data, torch.float64) is None  # another dtype: converted by tensors_for
    assert as_given(model, {**data, "out1": data["out1"][:, :2]}, torch.float32) is None
    assert as_given(model, {k: v for k, v in data.items() if k != "out2"}, torch.float32) is None
    bad = {**data, "in2": data["in2"].clone()}
    bad["in2"][4, 1] = float("nan")
    assert as_given(model, bad, torch.float32) is None
    with pytest.raises(DataError, match=r"in2\[2\]"):  # the long way names the column
        fit(model, bad, optimizer="adam", epochs=1, progress=False)


# ---------------------------------------------------------------- devices
def test_auto_is_cuda_exactly_when_torch_sees_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve("auto") == torch.device("cuda")
    assert resolve("cuda:1") == torch.device("cuda:1")
    assert resolve(None) is None and resolve("cpu") == torch.device("cpu")


@pytest.mark.parametrize("name, optimizer, message", [
    ("tpu", "adam", "unknown device 'tpu' (known: auto, cpu, cuda"),
    ("cpu:0", "adam", "unknown device 'cpu:0'"),
    ("cuda", "bfgs", "bfgs runs on the CPU"),
])
def test_bad_devices_are_refused(name, optimizer, message, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(SpecError, match=message.replace("(", r"\(")):
        for_fit(name, optimizer)


def test_bfgs_runs_on_the_cpu_under_auto(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert for_fit("auto", "bfgs") == torch.device("cpu")
    assert for_fit(None, "bfgs") is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_a_gpu_is_one_line(tmp_path, capsys):
    csv = tmp_path / "d.csv"
    csv.write_text("x,y\n0,0\n1,2\n2,4\n")
    spec = tmp_path / "line.spec"
    spec.write_text("input x\ny = w*x + c\n")
    assert main(["train", str(spec), "--data", str(csv), "--optimizer", "adam", "--epochs", "2",
                 "--device", "cuda", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "device 'cuda': torch sees no CUDA device" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_fit_and_predict_on_the_cpu_by_name(tmp_path, capsys):
    torch.manual_seed(0)
    model = specc.load(TWO_IO)
    result = fit(model, two_io_data(64), optimizer="adam", epochs=2, batch_size=16, device="cpu", progress=False)
    assert result.settings["device"] == "cpu"
    out = predict(model, {k: v for k, v in two_io_data(8).items() if k.startswith("in")}, device="auto")
    assert out["out1"].device.type == "cpu" and out["out1"].shape == (8, 3)


def test_the_cli_trains_and_predicts_with_a_device(tmp_path, capsys):
    csv = tmp_path / "d.csv"
    csv.write_text("x,y\n" + "".join(f"{i / 10},{i / 5 + 1}\n" for i in range(20)))
    spec = tmp_path / "line.spec"
    spec.write_text("input x\ny = w*x + c\n")
    weights = tmp_path / "w.safetensors"
    assert main(["train", str(spec), "--data", str(csv), "--optimizer", "adam", "--epochs", "3", "--device", "cpu",
                 "--json", "--quiet", "--out", str(weights)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["settings"]["device"] == "cpu"
    assert main(["predict", str(spec), "--weights", str(weights), "--data", str(csv), "--device", "auto"]) == 0
    assert capsys.readouterr().out.startswith("x,y")


# ---------------------------------------------------------------- on a GPU (skipped without one)
@CUDA
def test_a_cuda_fit_matches_the_cpu_fit():
    data = two_io_data(512)
    fitted = {}
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        model = specc.load(TWO_IO)
        result = fit(model, data, optimizer="adam", epochs=3, batch_size=128, seed=1, device=device, progress=False)
        assert result.settings["device"].startswith(device)
        assert next(model.parameters()).device.type == device
        fitted[device] = (result, [p.detach().cpu() for p in model.parameters()])
    assert fitted["cuda"][0].history == pytest.approx(fitted["cpu"][0].history, rel=1e-4)
    for a, b in zip(fitted["cpu"][1], fitted["cuda"][1]):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


@CUDA
def test_predict_on_cuda_returns_cpu_tensors():
    torch.manual_seed(0)
    model = specc.load(TWO_IO)
    inputs = {k: v for k, v in two_io_data(8).items() if k.startswith("in")}
    expected = predict(model, inputs, device="cpu")
    out = predict(model, inputs, device="cuda")
    assert next(model.parameters()).device.type == "cuda" and out["out1"].device.type == "cpu"
    assert torch.allclose(out["out2"], expected["out2"], atol=1e-5)


@CUDA
def test_the_cli_trains_on_cuda_and_writes_the_weights(tmp_path, capsys):
    csv = tmp_path / "d.csv"
    csv.write_text("x,y\n" + "".join(f"{i / 10},{i / 5 + 1}\n" for i in range(20)))
    spec = tmp_path / "line.spec"
    spec.write_text("input x\ny = w*x + c\n")
    weights = tmp_path / "w.safetensors"
    assert main(["train", str(spec), "--data", str(csv), "--optimizer", "lbfgs", "--device", "cuda", "--json",
                 "--quiet", "--out", str(weights)]) == 0
    assert json.loads(capsys.readouterr().out)["settings"]["device"].startswith("cuda")
    assert specc.load(spec, weights=weights).w.device.type == "cpu"
