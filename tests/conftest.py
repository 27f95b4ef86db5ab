"""Shared fixtures: the bundled specs, example inputs, running generated source without specc, and
:func:`assert_spec_error`, the one check of an error's class, place and message."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # child processes too: one thread, as torch runs below

import pytest
import torch

import specc
from specc.errors import SpecError

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.spec"))


def bundled_text(path: Path) -> str:
    """A bundled spec's text, for tests that pass spec text: text has no folder, so its `use "x.spec"`
    lines name the used files by absolute path."""
    import re
    return re.sub(r'use "([^"]+)"', lambda m: f'use "{(path.parent / m.group(1)).as_posix()}"', path.read_text())


def assert_spec_error(source, error_class: type, line: int, column: int, message_part: str | None = None,
                      file: str = "<spec>") -> SpecError:
    """Check that ``source`` fails with exactly ``error_class`` at ``file:line:column``.

    ``source`` is spec text (given to :func:`specc.graph`) or a callable that must raise. The
    message must contain ``message_part``; the report (``err.format()``) must start with the place
    and quote the source, never a traceback. Returns the error, for further checks.
    """
    with pytest.raises(SpecError) as caught:
        source() if callable(source) else specc.graph(source)
    err = caught.value
    assert type(err) is error_class, f"{type(err).__name__}, not {error_class.__name__}: {err}"
    assert (err.file, err.line, err.column) == (file, line, column), f"wrong place: {err}"
    if message_part is not None:
        assert message_part in err.message, err.message
    report = err.format()
    assert report.startswith(f"{file}:{line}:{column}: error: "), report
    assert err.source is not None and "Traceback" not in report, report
    return err

# Runs in a fresh `python -I` with `import specc` made impossible, so the
# generated files prove they need nothing but torch and the standard library.
_RUNNER = textwrap.dedent('''
    import importlib.util, sys
    sys.modules["specc"] = None  # `import specc` now raises ImportError
    import torch

    folder = sys.argv[1]
    cases = torch.load(folder + "/cases.pt")
    results = []
    for i, case in enumerate(cases):
        spec = importlib.util.spec_from_file_location(f"generated_{i}", f"{folder}/generated_{i}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        model = getattr(module, case["class"])().double().eval()  # dropout: the identity
        model.load_state_dict(case["state"])
        out = model(*case["args"], **case["kwargs"])
        results.append({"keys": list(model.state_dict()), "fields": getattr(type(out), "_fields", None),
                        "outputs": [o.detach() for o in (out if isinstance(out, tuple) else [out])],
                        "parameters": [n for n, _ in model.named_parameters()]})
    torch.save(results, folder + "/results.pt")
''')


def example_inputs(graph, batch: int = 6, seed: int = 0, steps: int = 5) -> list[torch.Tensor]:
    """Random float64 inputs for a spec's IR: [B, n] for vectors, [B] for scalars; a sequence input
    has ``steps`` time steps, [B, T, n]."""
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, *(steps,) * graph.nodes[name].get("sequence", False), *graph.nodes[name]["shape"],
                        generator=generator, dtype=torch.float64)
            for name in graph.graph["inputs"]]


def randomise(model, seed: int = 0):
    """Give every parameter random values, so that starting values (zeros, ones) cannot hide a mistake."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=p.dtype))
    return model


def as_list(out) -> list[torch.Tensor]:
    """A module's result as a list of tensors (one output is a tensor, several a NamedTuple)."""
    return list(out) if isinstance(out, tuple) else [out]


@pytest.fixture
def run_standalone(tmp_path):
    """Import generated sources in a separate ``python -I`` without specc and run them.

    ``cases`` is a list of dicts with ``source``, ``class``, ``state`` (a state_dict), ``args``
    and optionally ``kwargs``; returns one dict per case with the module's ``keys``,
    ``parameters``, output ``fields`` and ``outputs``.
    """
    def run(cases: list[dict]) -> list[dict]:
        folder = tmp_path / "standalone"
        folder.mkdir(exist_ok=True)
        for i, case in enumerate(cases):
            (folder / f"generated_{i}.py").write_text(case["source"], encoding="utf-8")
        torch.save([{"class": c["class"], "state": c["state"], "args": c["args"], "kwargs": c.get("kwargs", {})}
                    for c in cases], folder / "cases.pt")
        (folder / "runner.py").write_text(_RUNNER, encoding="utf-8")
        result = subprocess.run([sys.executable, "-I", str(folder / "runner.py"), str(folder)],
                                capture_output=True, text=True, cwd=folder, timeout=300)
        assert result.returncode == 0, result.stderr
        return torch.load(folder / "results.pt")
    return run
