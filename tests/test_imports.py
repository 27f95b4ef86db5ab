"""The front end starts fast: `specc check`, `inspect`, `compile` and `draw -o x.dot` never import torch,
networkx, numpy or matplotlib (issue 8; `benchmarks/bench_core.py` times them). Each command runs in a
fresh interpreter that records, for every heavy package imported, the line of specc that imported it."""
import json
import subprocess
import sys

import pytest

from conftest import ROOT

HEAVY = ("torch", "networkx", "numpy", "matplotlib")

_CHILD = r'''
import json, sys, traceback
from importlib.abc import MetaPathFinder

HEAVY, culprits = tuple(sys.argv[1].split(",")), {}


class Spy(MetaPathFinder):
    """Finds nothing; notes which line of specc first asked for a heavy package."""

    def find_spec(self, name, path=None, target=None):
        if name in HEAVY and name not in culprits:
            ours = [f for f in traceback.extract_stack()[:-1] if "/specc/" in f.filename.replace("\\", "/")]
            where = [f"specc/{f.filename.replace(chr(92), '/').rsplit('/specc/', 1)[1]}:{f.lineno}" for f in ours]
            culprits[name] = " < ".join(reversed(where[-3:])) or "outside specc"
        return None


sys.meta_path.insert(0, Spy())
from specc.cli import main
code = main(sys.argv[2:])
print(json.dumps({"code": code, "heavy": culprits}))
'''


@pytest.mark.parametrize("argv", [
    ["check", "specs/two_io.spec", "specs/residual.spec"],
    ["check", "--dump", "ir", "specs/legendre.spec"],
    ["inspect", "specs/two_io.spec"],
    ["explain", "specs/two_io.spec"],
    ["inspect", "specs/sine_nnet.spec", "--json"],
    ["compile", "specs/two_io.spec", "-o", "{tmp}/two_io.py"],
    ["draw", "specs/two_io.spec", "-o", "{tmp}/two_io.dot"],
    ["draw", "specs/residual.spec", "-o", "{tmp}/residual.dot", "--view", "graph"],
    ["draw", "specs/sine_nnet.spec", "-o", "{tmp}/sine.dot", "--view", "layers"],
], ids=lambda argv: " ".join(a for a in argv if not a.startswith("{")))
def test_front_end_commands_import_no_heavy_package(tmp_path, argv):
    argv = [a.format(tmp=tmp_path) for a in argv]
    result = subprocess.run([sys.executable, "-c", _CHILD, ",".join(HEAVY), *argv], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["code"] == 0, result.stderr
    assert report["heavy"] == {}, f"specc {' '.join(argv)} imported: " + ", ".join(
        f"{package} (from {where})" for package, where in report["heavy"].items())


def test_the_commands_that_need_torch_import_it():
    """The spy itself works: a command that compiles a module does see torch imported."""
    result = subprocess.run([sys.executable, "-c", _CHILD, "torch", "inspect", "specs/sine_nnet.spec", "--weights",
                             "examples/sine_nnet_wts.json"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["heavy"]["torch"].startswith("specc/")
