"""What `pip install` gives: specc without a C compiler, the bundled specs and data inside the package,
matplotlib and onnx as extras, and `specc demo` working from any directory."""
import os
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

SHIPPED = [f"specc/specs/{p.name}" for p in sorted((ROOT / "specs").glob("*.spec"))] + [
    f"specc/examples/{p.name}" for p in sorted((ROOT / "examples").glob("*.csv"))] + [
    "specc/examples/sine_nnet_wts.json"]


def test_extras_hold_the_optional_dependencies():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    required = " ".join(project["dependencies"])
    assert not any(name in required for name in ("matplotlib", "onnx"))
    extras = project["optional-dependencies"]
    assert extras["plot"] == ["matplotlib>=3.7"] and any(d.startswith("onnx") for d in extras["onnx"])
    assert "specc[plot,onnx]" in extras["dev"]  # CI runs every test


def test_the_sdist_manifest_carries_what_the_build_copies():
    manifest = (ROOT / "MANIFEST.in").read_text(encoding="utf-8")
    for line in ("include specs/*.spec", "include examples/*.csv examples/sine_nnet_wts.json",
                 "include specc/train/nnet_kernel.c specc/train/criterion_runtime.c specc/grammar.lark"):
        assert line in manifest


def test_demo_runs_from_any_directory(tmp_path):
    result = subprocess.run([sys.executable, "-m", "specc", "demo", "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in (tmp_path / "out").glob("*.py"))
    assert written == sorted(p.stem + ".py" for p in (ROOT / "specs").glob("*.spec"))
    assert _demo_sine_mse(result.stdout) <= 1e-6  # the sine story with no options, on the bundled data


def _demo_sine_mse(stdout: str) -> float:
    """The training MSE the demo's sine fit reports (``… loss mse, float64: mse 1.09e-07 after …``)."""
    line = next(line for line in stdout.splitlines() if line.startswith("specc train sine_nnet.spec"))
    return float(line.split(": mse ")[1].split()[0])


def _sources(into: Path) -> Path:
    """A copy of what a clean clone builds from (no compiled kernel, no caches)."""
    for name in ("README.md", "setup.py", "pyproject.toml", "MANIFEST.in"):
        shutil.copy(ROOT / name, into / name)
    for folder in ("specc", "specs", "examples"):
        shutil.copytree(ROOT / folder, into / folder,
                        ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd", "*.egg-info"))
    return into


def test_a_wheel_built_without_a_compiler_works_anywhere(tmp_path):
    """CC=/bin/false: the kernel is skipped with a warning; the wheel still installs and runs the demo
    from another directory, with the specs and data it ships and the NumPy implementation of the kernel."""
    pytest.importorskip("setuptools")
    (tmp_path / "src").mkdir()
    source = _sources(tmp_path / "src")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
                            "--disable-pip-version-check", "-w", str(tmp_path / "wheel"), str(source)],
                           capture_output=True, text=True, env={**os.environ, "CC": "/bin/false"}, timeout=300)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert "skipped the optional C extension specc.train._nnet_kernel" in built.stdout + built.stderr
    (wheel,) = (tmp_path / "wheel").glob("specc-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert set(SHIPPED) <= names and "specc/grammar.lark" in names
    assert not [n for n in names if n.endswith((".so", ".pyd"))]

    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                                "--disable-pip-version-check", "--target", str(target), str(wheel)],
                               capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    # -S: no site-packages processing, so the development install of specc cannot be found; the
    # installed wheel comes first, then the environment's packages (torch, lark …).
    path = [str(target), *site.getsitepackages()]
    run = ("import os, sys; sys.path[:0] = sys.argv[1].split(os.pathsep); from specc.cli import main; "
           "raise SystemExit(main(sys.argv[2:]))")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    version = subprocess.run([sys.executable, "-S", "-c", run, os.pathsep.join(path), "--version"],
                             capture_output=True, text=True, cwd=elsewhere, timeout=120)
    assert version.stdout == "specc 0.1.0\nnnet C kernel: not built (its NumPy implementation runs)\n", version.stderr
    demo = subprocess.run([sys.executable, "-S", "-c", run, os.pathsep.join(path), "demo", "--out", "out"],
                          capture_output=True, text=True, cwd=elsewhere, timeout=300)
    assert demo.returncode == 0, demo.stderr
    assert _demo_sine_mse(demo.stdout) <= 1e-6
    assert len(list((elsewhere / "out").glob("*.py"))) == len(list((ROOT / "specs").glob("*.spec")))
