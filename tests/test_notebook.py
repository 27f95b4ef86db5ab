"""specc in notebooks (specc/notebook.py): the ``%%specc NAME`` cell magic run through IPython's own API
without a kernel, and a compiled module's rich display (layers diagram as SVG, parameter table)."""
import html
import subprocess
import sys
import types

import pytest
import torch

import specc
from conftest import ROOT, SPECS
from specc import cli
from specc.notebook import INSTALL_GRAPHVIZ, module_html

MLP = "input x[3]\nh[4] = tanh(W1·x + b1)\ny[2] = W2·h + b2\noutput y\n"
TYPO = "input x\ninput y\nh = sin(x)\nz = hh * y\noutput z\n"  # `hh`: a misspelt h (a free-name warning)


@pytest.fixture(scope="module")
def shell():
    """An IPython shell with ``%load_ext specc`` done; its own user module, so __main__ stays pytest's."""
    pytest.importorskip("IPython")
    from traitlets.config import Config
    from IPython.core.interactiveshell import InteractiveShell
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    user_module = types.ModuleType("specc_notebook_test")
    ipython = InteractiveShell(config=config, user_module=user_module)
    result = ipython.run_line_magic("load_ext", "specc")
    assert result is None and "specc" in ipython.magics_manager.magics["cell"]
    yield ipython
    sys.modules.pop(user_module.__name__, None)


def run(shell, capsys, cell: str):
    """Run one cell; its result and what it printed (stdout, stderr)."""
    capsys.readouterr()
    result = shell.run_cell(cell)
    out, err = capsys.readouterr()
    return result, out, err


def cli_report(tmp_path, capsys, text: str, name: str, *argv: str) -> str:
    """What `specc check` prints for ``text`` written to a file, the file's name read as the cell's."""
    path = tmp_path / "cell.spec"
    path.write_text(text, encoding="utf-8")
    capsys.readouterr()
    cli.main(["check", *argv, str(path)])
    return capsys.readouterr().err.replace(str(path), f"<cell {name}>")


# ---------------------------------------------------------------- the cell magic
def test_a_cell_becomes_a_module_bound_to_its_name(shell, capsys):
    result, out, err = run(shell, capsys, "%%specc mlp\n" + MLP)
    assert result.success and out == err == ""
    model = shell.user_ns["mlp"]
    assert isinstance(model, torch.nn.Module)
    assert [n for n, _ in model.named_parameters()] == ["W1", "b1", "W2", "b2"]
    assert model(torch.ones(5, 3)).shape == (5, 2) and model.W1.dtype == torch.get_default_dtype()
    assert repr(model).startswith("CellMlp(\n  <cell mlp>: x[3] -> y[2]\n")  # the plain repr, as specc.load's


def test_options_dtype_and_weights(shell, capsys, tmp_path):
    result, _, _ = run(shell, capsys, "%%specc wide --dtype float64\n" + MLP)
    assert result.success and shell.user_ns["wide"].W1.dtype == torch.float64
    weights = tmp_path / "w.safetensors"
    specc.save_weights(shell.user_ns["wide"], weights)
    result, _, _ = run(shell, capsys, f"%%specc again --weights {weights}\n" + MLP)
    assert result.success and torch.equal(shell.user_ns["again"].W1, shell.user_ns["wide"].W1)


@pytest.mark.parametrize("text", [
    "input x[3]\ny[2] = relu(W·x + b\n",               # a syntax error at the end of a line
    "input x[3]\ny = 2*x\ny = 3*x\n",                  # a redefinition, with a note
    "input x[3]\ny = frobnicate(x)\n",                  # an unknown function
    "input x[3]\nW[2, 4] = 0\ny = W·x\n",               # sizes that disagree
], ids=["syntax", "redefinition", "unknown-function", "sizes"])
def test_a_bad_cell_shows_the_cli_report_and_binds_nothing(shell, capsys, tmp_path, text):
    expected = cli_report(tmp_path, capsys, text, "broken")
    assert ": error: " in expected
    result, out, err = run(shell, capsys, "%%specc broken\n" + text)
    assert not result.success  # the cell failed: "Run all" stops here
    assert out.strip("\n") == expected.strip("\n")  # place, source line, caret, notes — nothing else
    assert "Traceback" not in out + err and "CellError" not in out + err
    assert "broken" not in shell.user_ns


def test_a_failed_cell_leaves_an_earlier_binding_alone(shell, capsys):
    run(shell, capsys, "%%specc kept\n" + MLP)
    before = shell.user_ns["kept"]
    result, _, _ = run(shell, capsys, "%%specc kept\ninput x[3]\ny = frobnicate(x)\n")
    assert not result.success and shell.user_ns["kept"] is before


def test_warnings_are_printed_as_the_cli_prints_them(shell, capsys, tmp_path):
    expected = cli_report(tmp_path, capsys, TYPO, "typo")
    assert ": warning: " in expected
    result, out, err = run(shell, capsys, "%%specc typo\n" + TYPO)
    assert result.success and isinstance(shell.user_ns["typo"], torch.nn.Module)
    assert err.strip("\n") == expected.strip("\n") and out == ""


def test_strict_makes_warnings_errors(shell, capsys, tmp_path):
    expected = cli_report(tmp_path, capsys, TYPO, "strict", "--strict")
    result, out, _ = run(shell, capsys, "%%specc strict --strict\n" + TYPO)
    assert not result.success and "strict" not in shell.user_ns
    assert ": error: " in out and out.strip("\n") == expected.strip("\n")


@pytest.mark.parametrize("line, message", [
    ("%%specc", "the following arguments are required: name"),
    ("%%specc 2x", "NAME must be a Python identifier, not '2x'"),
    ("%%specc m --dtype float16", "argument --dtype: invalid choice: 'float16'"),
    ("%%specc m --max-size 0", "--max-size must be"),
    ("%%specc m --colour red", "unrecognized arguments: --colour red"),
])
def test_bad_options_are_one_usage_message(shell, capsys, line, message):
    result, out, err = run(shell, capsys, line + "\n" + MLP)
    assert not result.success and "Traceback" not in out + err and "m" not in shell.user_ns
    assert message in out + err


def test_import_specc_does_not_import_ipython_or_torch():
    code = ("import sys, specc, specc.compile, specc.notebook; "
            "print(sorted(m for m in ('IPython', 'torch', 'graphviz') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# ---------------------------------------------------------------- the rich display
def _dot_installed() -> bool:
    try:
        return subprocess.run(["dot", "-V"], capture_output=True, timeout=30).returncode == 0
    except OSError:
        return False


def test_the_html_holds_the_diagram_and_the_parameter_table():
    model = specc.load("input x[3]\nparam s\nfixed mu[3]\ny[2] = tanh(W·(x - mu) + b) * s\n")
    with torch.no_grad():
        model.W.copy_(torch.tensor([[-1.5, 0, 0], [0, 0, 2.25]]))
    page = model._repr_html_()
    assert "<p><b>Spec</b> (&lt;spec&gt;): <code>x[3] -&gt; y[2]</code></p>" in page
    rows = page.split("<tbody>")[1]
    assert "<tr><td>W</td><td>[2, 3]</td><td>weight</td><td>linear_weight</td><td>-1.5 … 2.25</td></tr>" in rows
    assert "<tr><td>b</td><td>[2]</td><td>bias</td><td>linear_bias(3)</td>" in rows
    assert "<tr><td>s</td><td>[]</td><td>other</td><td>randn</td>" in rows
    assert "<tr><td>mu</td><td>[3]</td><td>fixed</td><td>zeros</td><td>0</td></tr>" in rows
    if _dot_installed():
        assert "<svg" in page and "<?xml" not in page and "<!DOCTYPE" not in page
    bundle = model._repr_mimebundle_()
    assert bundle == {"text/html": page, "text/plain": repr(model)}


def test_without_graphviz_the_table_shows_with_a_note(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` to be found
    page = specc.load(MLP)._repr_html_()
    assert "<svg" not in page and INSTALL_GRAPHVIZ in page
    assert "<tr><td>W1</td><td>[4, 3]</td><td>weight</td>" in page


def test_a_display_that_fails_says_why_and_never_raises(monkeypatch):
    import specc.diagram

    def broken(*args, **kwargs):
        raise specc.SpecError("no layers here")
    monkeypatch.setattr(specc.diagram, "draw", broken)
    model = specc.load(MLP)
    page = model._repr_html_()
    assert "<p><i>no diagram: no layers here</i></p>" in page and "<tr><td>W1</td>" in page
    model.spec_ir = types.SimpleNamespace(graph={"file": "x.spec", "inputs": ["x"], "outputs": []}, nodes={})
    assert model._repr_html_() == f"<pre>{html.escape(repr(model))}</pre>"  # an IR it cannot read: the repr


def test_the_generated_source_and_repr_are_unchanged():
    model = specc.load(ROOT / "specs/two_io.spec")
    assert "_repr_html_" not in specc.to_source(ROOT / "specs/two_io.spec")
    assert "_repr_html_" not in type(model).__dict__.get("__doc__", "")
    assert repr(model) == "TwoIo(\n  " + specc.describe(model.spec_ir).replace("\n", "\n  ") + "\n)"


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.stem)
def test_every_bundled_spec_displays(path):
    """Sequences, blocks, fixed values: each shows its table, and a diagram or a note, never an error."""
    model = specc.load(path)
    page = module_html(model)
    assert page.startswith('<div class="specc-module">') and page.endswith("</div>")
    for name in model.spec_ir.graph["params"]:
        assert f"<tr><td>{name}</td>" in page
    if _dot_installed():
        assert "<svg" in page, page[:500]


def test_a_module_without_an_ir_shows_its_repr():
    model = specc.load(MLP)
    del model.spec_ir
    assert module_html(model) == f"<pre>{html.escape(repr(model))}</pre>"


# ---------------------------------------------------------------- docs/notebooks.md
def test_the_docs_cells_do_what_the_docs_say(shell, capsys):
    """Every ``%%specc`` cell of docs/notebooks.md runs; the one the docs show failing prints the docs' text."""
    doc = (ROOT / "docs" / "notebooks.md").read_text(encoding="utf-8")
    blocks = [b.split("\n", 1) for b in doc.split("```")[1::2]]
    cells = [text for kind, text in blocks if kind == "python" and text.startswith("%%specc")]
    shown = [text for kind, text in blocks if kind == "text"]
    assert len(cells) == 2 and len(shown) == 1
    result, _, _ = run(shell, capsys, cells[0])
    assert result.success and isinstance(shell.user_ns["mlp"], torch.nn.Module)
    result, out, _ = run(shell, capsys, cells[1])
    assert not result.success and out == shown[0]
