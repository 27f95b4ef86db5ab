"""specc export / specc.export: ONNX run in onnxruntime against torch, the .pt2 round trip through
torch.export.load, the spec's names and a dynamic batch axis, and one-line errors. Exporting is
slow (seconds per file), so few specs: two inputs and outputs, a scalar input, a log_softmax."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import specc
from specc.cli import main
from specc.exporting import opset_range

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"


def spec_inputs(name: str, batch: int, seed: int = 3, steps: int | None = None) -> dict[str, torch.Tensor]:
    """Inputs named as the spec's, of a batch size other than the one the exporter traces with (3)."""
    ir = specc.graph(SPECS / f"{name}.spec")
    generator = torch.Generator().manual_seed(seed)
    return {n: torch.randn([batch, *([steps] if ir.nodes[n].get("sequence") else []), *ir.nodes[n]["shape"]],
                           generator=generator) for n in ir.graph["inputs"]}


def outputs_of(module, inputs: dict) -> list[np.ndarray]:
    with torch.no_grad():
        values = module(*inputs.values())
    return [v.numpy() for v in ([values] if isinstance(values, torch.Tensor) else values)]


def trained_weights(name: str, folder: Path) -> Path:
    """Weights other than the spec's initial draw, in a file, as `specc train --out` writes them."""
    torch.manual_seed(11)
    module = specc.load(SPECS / f"{name}.spec")
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return specc.save_weights(module, folder / f"{name}.safetensors")


@pytest.fixture(scope="module")
def onnxruntime():
    pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    runtime = pytest.importorskip("onnxruntime")
    with pytest.MonkeyPatch.context() as patch:
        _reuse_torchlib(patch)
        yield runtime


def _reuse_torchlib(patch) -> None:
    """Speed only: torch's ONNX exporter rebuilds onnxscript's table of ~500 functions (reading each
    one's source) on every export, ~3 s; the tests read it once. Where torch keeps it elsewhere, no
    change."""
    import functools
    try:
        from torch.onnx._internal.exporter import _registration
        apis = _registration.onnxscript_apis
        table = apis.get_torchlib_ops
    except (ImportError, AttributeError):
        return
    patch.setattr(apis, "get_torchlib_ops", functools.cache(table))


# ---------------------------------------------------------------- ONNX
@pytest.mark.parametrize("name, opset", [("two_io", None), ("sine_nnet", 18), ("residual", None)])
def test_onnx_runs_in_onnxruntime_as_in_torch(tmp_path, onnxruntime, name, opset):
    import onnx
    weights = trained_weights(name, tmp_path)
    path = specc.export(SPECS / f"{name}.spec", tmp_path / f"{name}.onnx", weights=weights, opset=opset)
    proto = onnx.load(str(path))
    ir = specc.graph(SPECS / f"{name}.spec")
    assert [i.name for i in proto.graph.input] == ir.graph["inputs"]
    assert [o.name for o in proto.graph.output] == ir.graph["outputs"]
    assert {v.type.tensor_type.shape.dim[0].dim_param for v in (*proto.graph.input, *proto.graph.output)} == {"batch"}
    assert [o.version for o in proto.opset_import if o.domain == ""] == [opset or opset_range()[2]]
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    module = specc.load(SPECS / f"{name}.spec", weights=weights).eval()
    for batch in (1, 7):  # the file was traced with 3
        inputs = spec_inputs(name, batch)
        got = session.run(None, {n: x.numpy() for n, x in inputs.items()})
        for ours, theirs in zip(outputs_of(module, inputs), got, strict=True):
            assert theirs.shape == ours.shape and theirs.dtype == np.float32
            assert np.abs(ours).max() < 20  # modest values: 1e-6 is a few float32 steps
            np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-6)


def test_cli_writes_and_says_so(tmp_path, capsys):
    target = tmp_path / "model.pt2"
    assert main(["export", str(SPECS / "xor.spec"), "-o", str(target)]) == 0
    assert capsys.readouterr().err == f"wrote {target}\n"
    program = torch.export.load(str(target))
    assert program.module()(torch.ones(2, 2)).shape == (2, 1)
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt2"]  # no temporary file left


# ---------------------------------------------------------------- torch.export
@pytest.mark.parametrize("name", ["two_io", "sine_nnet"])
def test_pt2_round_trip(tmp_path, name):
    weights = trained_weights(name, tmp_path)
    state = torch.random.get_rng_state()
    path = specc.export(SPECS / f"{name}.spec", tmp_path / f"{name}.pt2", weights=weights)
    assert torch.equal(torch.random.get_rng_state(), state)  # exporting draws from its own generator
    program = torch.export.load(str(path))
    ir = specc.graph(SPECS / f"{name}.spec")
    assert list(program.graph_signature.user_inputs) == ir.graph["inputs"]  # lower-case names: as written
    module = specc.load(SPECS / f"{name}.spec", weights=weights).eval()
    inputs = spec_inputs(name, 6)
    got = program.module()(*inputs.values())
    if len(ir.graph["outputs"]) > 1:  # several outputs: a dict under the spec's names
        assert list(got) == ir.graph["outputs"]
        got = list(got.values())
    else:
        got = [got]
    for ours, theirs in zip(outputs_of(module, inputs), got, strict=True):
        np.testing.assert_allclose(theirs.detach().numpy(), ours, rtol=0, atol=1e-6)  # one GEMM for two


def test_a_failed_check_writes_nothing(tmp_path, monkeypatch):
    from specc import exporting
    target = tmp_path / "model.pt2"
    target.write_bytes(b"old")

    def disagree(module, steps, run):
        raise specc.SpecError("the exported program's output 'y' differs")
    monkeypatch.setattr(exporting, "_check", disagree)
    with pytest.raises(specc.SpecError, match="differs"):
        specc.export(SPECS / "sine_nnet.spec", target)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["model.pt2"]


def test_the_module_is_left_as_it_was():
    from specc.exporting import exportable
    module = specc.load(SPECS / "two_io.spec")
    space = type(module).forward.__globals__
    helper = space["linear_sum"]
    with exportable(module):
        assert not module.check_inputs and space["linear_sum"] is not helper
        assert isinstance(module(*spec_inputs("two_io", 2).values()), dict)
    assert module.check_inputs and "check_inputs" not in vars(module) and space["linear_sum"] is helper
    assert type(module).__name__ == "TwoIo" and not isinstance(module(*spec_inputs("two_io", 2).values()), dict)


# ---------------------------------------------------------------- refusals
def _one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    return err


def test_cli_refusals_are_one_line(tmp_path, capsys):
    spec = str(SPECS / "sine_nnet.spec")
    low, high, _ = opset_range()
    cases = [
        (["-o", str(tmp_path / "m.txt")], "unsupported format '.txt' (specc export writes .onnx or .pt2)"),
        (["-o", str(tmp_path / "model")], "no format suffix (specc export writes .onnx or .pt2)"),
        (["-o", str(tmp_path / "no" / "m.onnx")], "does not exist (specc makes no folders)"),
        (["-o", str(tmp_path / "m.onnx"), "--opset", str(low - 1)],
         f"--opset must be a whole number from {low} to {high} (the ONNX opsets this torch exports), not {low - 1}"),
        (["-o", str(tmp_path / "m.onnx"), "--opset", "99"], "not 99"),
        (["-o", str(tmp_path / "m.pt2"), "--opset", "18"], "--opset applies to .onnx files only, not to m.pt2"),
        (["-o", str(tmp_path / "m.pt2"), "--weights", str(tmp_path / "w.safetensors")],
         f"weights file {tmp_path / 'w.safetensors'} does not exist"),
        (["-o", str(tmp_path / "m.pt2"), "--steps", "0"], "--steps must be a whole number from 1 to"),
        (["-o", str(tmp_path / "m.pt2"), "--steps", "4"], "--steps applies to specs with sequence inputs"),
        (["-o", str(tmp_path / "m.pt2"), "--max-size", "0"], "--max-size must be"),
    ]
    for extra, message in cases:
        assert message in _one_line_error(capsys, ["export", spec, *extra])
    assert list(tmp_path.iterdir()) == []


def test_weights_that_do_not_fit_are_refused(tmp_path, capsys):
    weights = trained_weights("sine_nnet", tmp_path)
    err = _one_line_error(capsys, ["export", str(SPECS / "xor.spec"), "--weights", str(weights),
                                   "-o", str(tmp_path / "m.pt2")])
    assert str(weights) in err and not (tmp_path / "m.pt2").exists()


def test_an_exporter_failure_is_one_line(tmp_path, capsys, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("no translation for aten::mystery\n  a long explanation")
    monkeypatch.setattr(torch.export, "export", refuse)
    err = _one_line_error(capsys, ["export", str(SPECS / "xor.spec"), "-o", str(tmp_path / "m.pt2")])
    assert err == "error: torch.export cannot trace the module: RuntimeError: no translation for aten::mystery\n"
    assert list(tmp_path.iterdir()) == []


def test_api_names_its_arguments(tmp_path):
    with pytest.raises(specc.SpecError, match=r"^opset must be a whole number .*, not 2\.5$"):
        specc.export(SPECS / "xor.spec", tmp_path / "m.onnx", opset=2.5)
    with pytest.raises(specc.SpecError, match="^opset applies to .onnx files only"):
        specc.export(SPECS / "xor.spec", tmp_path / "m.pt2", opset=True)


def test_a_missing_onnxruntime_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now fails
    err = _one_line_error(capsys, ["export", str(SPECS / "xor.spec"), "-o", str(tmp_path / "m.onnx")])
    assert err == ("error: exporting to ONNX needs onnxruntime, which is not installed: install specc[onnx] "
                   "(pip install 'specc[onnx]')\n")


def test_import_specc_stays_light():
    code = "import sys, specc; specc.export; assert 'torch' not in sys.modules and 'onnx' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# ---------------------------------------------------------------- sequences and blocks, where bundled
@pytest.mark.skipif(not (SPECS / "elman.spec").is_file(), reason="no bundled sequence spec yet")
def test_a_sequence_spec_exports_with_a_fixed_length(tmp_path, onnxruntime, capsys):
    name = "elman"
    err = _one_line_error(capsys, ["export", str(SPECS / "elman.spec"), "-o", str(tmp_path / "m.onnx")])
    assert "--steps is needed" in err
    path = specc.export(SPECS / "elman.spec", tmp_path / "m.onnx", steps=5)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.shape for i in session.get_inputs()] == [["batch", 5, 3]]  # T fixed, the batch free
    module = specc.load(SPECS / "elman.spec").eval()
    inputs = spec_inputs(name, 4, steps=5)
    got = session.run(None, {n: x.numpy() for n, x in inputs.items()})
    for ours, theirs in zip(outputs_of(module, inputs), got, strict=True):
        np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-6)


@pytest.mark.skipif(not (SPECS / "residual_blocks.spec").is_file(), reason="no bundled block spec yet")
def test_a_spec_with_blocks_exports(tmp_path):
    """Blocks are submodules: their parameters travel under their state_dict names (.pt2 here, the
    fastest; the ONNX path traces the same program)."""
    path = specc.export(SPECS / "residual_blocks.spec", tmp_path / "m.pt2")
    program = torch.export.load(str(path))
    assert {"r1.W1", "r3.b2"} <= set(program.state_dict)
    module = specc.load(SPECS / "residual_blocks.spec").eval()
    inputs = spec_inputs("residual_blocks", 4)
    got = program.module()(*inputs.values())
    np.testing.assert_allclose(got.detach().numpy(), outputs_of(module, inputs)[0], rtol=0, atol=1e-6)
