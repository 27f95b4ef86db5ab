"""Data-parallel training (specc/train/distributed.py): `specc train --nproc 2` on this machine's CPU,
gloo on localhost, against one process; the launch options' refusals; a worker's failure reported by rank.

Each launched worker runs a test-only `sitecustomize` (put on its PYTHONPATH here, no hook in specc) that
wraps `specc.train.fit` and `specc.weights.save_weights`: every rank saves the parameters it holds after
training and logs each weights file it writes, so the test sees what rank 1 holds, not only rank 0's file.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import specc
from specc.cli import build_parser, main
from specc.train import distributed

ROOT = Path(__file__).resolve().parent.parent
SINE = ROOT / "specs" / "sine_nnet.spec"

needs_gloo = pytest.mark.skipif(not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
                                reason="torch.distributed with gloo is not available")

SITECUSTOMIZE = textwrap.dedent('''
    import os
    if os.environ.get("SPECC_TEST_RANKS") and "RANK" in os.environ:
        import torch
        import specc.train
        import specc.weights
        from specc.errors import SpecError
        folder, rank = os.environ["SPECC_TEST_RANKS"], os.environ["RANK"]
        fit, save = specc.train.fit, specc.weights.save_weights

        def held_fit(model, data, **kw):
            if os.environ.get("SPECC_TEST_FAIL_RANK") == rank:
                raise SpecError("a failure planted on this rank")
            result = fit(model, data, **kw)
            torch.save({n: p.detach().clone() for n, p in model.named_parameters()},
                       os.path.join(folder, f"rank{rank}.pt"))
            return result

        def logged_save(module, path, *args, **kw):
            with open(os.path.join(folder, "writes.txt"), "a") as log:
                log.write(f"{rank} {path}\\n")
            return save(module, path, *args, **kw)
        specc.train.fit, specc.weights.save_weights = held_fit, logged_save
''')

SGD = ["--optimizer", "sgd", "--dtype", "float64", "--epochs", "4", "--seed", "3", "--lr", "0.05"]


def launch(tmp_path: Path, *extra: str, fail_rank: str | None = None) -> subprocess.CompletedProcess:
    hooks = tmp_path / "hooks"
    hooks.mkdir(exist_ok=True)
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hooks), str(ROOT)]), "SPECC_TEST_RANKS": str(tmp_path),
           "OMP_NUM_THREADS": "1"}
    if fail_rank is not None:
        env["SPECC_TEST_FAIL_RANK"] = fail_rank
    return subprocess.run([sys.executable, "-m", "specc", "train", *extra], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def data(tmp_path) -> Path:
    """49 rows: with 2 × 8 rows per step, the last step has 1 row, so rank 1 has none in it."""
    lines = (ROOT / "examples" / "sine50.csv").read_text().splitlines()[:50]
    path = tmp_path / "sine49.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@needs_gloo
def test_two_processes_train_as_one_with_the_whole_batch(tmp_path, data):
    run = launch(tmp_path, str(SINE), "--data", data.name, *SGD, "--batch-size", "8", "--nproc", "2",
                 "--out", "w.safetensors", "--json")
    assert run.returncode == 0, run.stderr
    summaries = [line for line in run.stdout.splitlines() if line.strip()]
    assert len(summaries) == 1, run.stdout  # rank 0 alone prints
    settings = json.loads(summaries[0])["settings"]
    assert (settings["processes"], settings["batch_size"]) == (2, 16)
    assert run.stderr.count("wrote w.safetensors") == 1 and "Traceback" not in run.stderr, run.stderr
    # --out: written once, by rank 0
    assert (tmp_path / "writes.txt").read_text() == "0 w.safetensors\n"
    held = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert all(torch.equal(held[0][n], held[1][n]) for n in held[0])  # the ranks agree, bit for bit
    from safetensors.torch import load_file
    written = load_file(tmp_path / "w.safetensors")
    assert all(torch.equal(written[n], p) for n, p in held[0].items())
    # One process, batch 16 (= 2 × 8), same seed: the same updates to rounding
    torch.manual_seed(3)
    model = specc.load(SINE, dtype=torch.float64)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    one = specc.fit(model, data, optimizer="sgd", dtype="float64", epochs=4, seed=3, lr=0.05, batch_size=16,
                    progress=False)
    difference = max((p.detach() - held[0][n]).abs().max().item() for n, p in model.named_parameters())
    assert difference < 1e-12, difference  # measured: 1.4e-17 (README)
    moved = max((p.detach() - start[n]).abs().max().item() for n, p in model.named_parameters())
    assert moved > 1e-3  # the fit moved the parameters: the comparison is not of two starting points
    assert one.loss == pytest.approx(json.loads(summaries[0])["loss"], rel=1e-12)


@needs_gloo
def test_a_failing_worker_is_reported_by_rank(tmp_path, data):
    run = launch(tmp_path, str(SINE), "--data", data.name, *SGD, "--nproc", "2", "--out", "w.safetensors",
                 fail_rank="1")
    assert run.returncode == 1
    assert "specc: rank 1 failed: error: a failure planted on this rank" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "w.safetensors").exists(), run.stderr


def _train(capsys, *args: str) -> tuple[int, str]:
    code = main(["train", str(SINE), "--data", str(ROOT / "examples" / "sine50.csv"), *args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--optimizer", "bfgs", "--nproc", "2"], "'bfgs' is a full-batch method that runs in one process: "
                                              "data-parallel training (--nproc) needs a mini-batch optimizer, "
                                              "--optimizer adam or sgd"),
    (["--optimizer", "lbfgs", "--nproc", "2"], "'lbfgs' is a full-batch method"),
    (["--restarts", "3", "--nproc", "2"], "--restarts is an option of bfgs, which runs in one process"),
    (["--engine", "compiled", "--nproc", "2"], "--engine is an option of bfgs"),
    (["--nproc", "0"], "--nproc must be a whole number from 1 to 4096, not 0"),
    (["--nnodes", "2"], "--nnodes is an option of data-parallel training: give --nproc N too"),
    (["--nproc", "2", "--nnodes", "2"], "--nnodes 2 needs --rdzv-endpoint HOST:PORT"),
    (["--nproc", "2", "--nnodes", "2", "--node-rank", "2", "--rdzv-endpoint", "h:1"],
     "--node-rank must be below --nnodes (2): machines are numbered 0 to 1, not 2"),
    (["--nproc", "2", "--rdzv-endpoint", "localhost"], "--rdzv-endpoint must be HOST:PORT"),
])
def test_launch_refusals_are_one_line_before_any_process_starts(capsys, args, message):
    code, err = _train(capsys, *args)
    assert code == 1 and message in err and err.count("\n") == 1, err


def test_a_port_in_use_is_refused(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, err = _train(capsys, "--nproc", "2", "--rdzv-endpoint", f"127.0.0.1:{port}")
    assert code == 1 and f"port {port} is in use on this machine; choose a free port" in err, err


def test_full_batch_refused_in_a_process_group_of_the_api(monkeypatch):
    """specc.fit inside the user's own torchrun: the same refusal, from the fit."""
    from specc.errors import SpecError
    from specc.train.optimizers import OPTIMIZERS
    monkeypatch.setattr(distributed, "active", lambda: True)
    with pytest.raises(SpecError, match="'bfgs' is a full-batch method"):
        distributed.shard(None, OPTIMIZERS["bfgs"], {"method": "bfgs"})


@pytest.mark.parametrize("argv, kept", [
    (["train", "s.spec", "--nproc", "2", "--data", "d.csv"], ["train", "s.spec", "--data", "d.csv"]),
    (["train", "s.spec", "--nproc=2", "--nnodes", "2", "--node-rank=1", "--rdzv-endpoint", "h:29500"],
     ["train", "s.spec"]),
    (["train", "s.spec", "--npr", "2", "--rdzv", "h:1", "--out", "w.safetensors"],
     ["train", "s.spec", "--out", "w.safetensors"]),  # argparse's abbreviations
])
def test_workers_run_the_command_without_its_launch_options(argv, kept):
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    assert distributed.worker_argv(argv, train) == kept


def test_outside_a_process_group_nothing_changes(monkeypatch):
    for name in distributed.ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    criterion = object()
    assert distributed.shard(criterion, None, {}) is criterion
    assert distributed.join(type("Args", (), {})()) is True
    assert not (torch.distributed.is_available() and torch.distributed.is_initialized())


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL data-parallel needs two GPUs")
def test_two_gpus_train_with_nccl(tmp_path, data):
    device = ["--device", "cuda"] if "--device" in _train_help() else []
    run = launch(tmp_path, str(SINE), "--data", data.name, *SGD, "--batch-size", "8", "--nproc", "2", *device,
                 "--out", "w.safetensors", "--json")
    assert run.returncode == 0, run.stderr
    held = [torch.load(tmp_path / f"rank{r}.pt", map_location="cpu") for r in (0, 1)]
    assert all(torch.equal(held[0][n], held[1][n]) for n in held[0])
    assert (tmp_path / "writes.txt").read_text() == "0 w.safetensors\n"


def _train_help() -> str:
    return build_parser()._subparsers._group_actions[0].choices["train"].format_help()
