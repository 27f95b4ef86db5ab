"""Reporting a fit: the progress bar, the one-line summary, the weights file's metadata, the loss curve."""
from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path

from typing import TYPE_CHECKING

from ..files import check_output, require, write_file

if TYPE_CHECKING:
    from .fit import FitResult


class Progress:
    """A tqdm bar with the current loss, on a terminal only (never in tests, pipes or with --quiet)."""

    def __init__(self, total: int, enabled: bool, unit: str):
        self.bar = None
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True)
        self.shown, self.last = 0, 0.0

    def __call__(self, step: int, loss: float) -> None:
        if self.bar is None:
            return
        now = time.monotonic()
        if now - self.last > 0.1:  # refreshing costs far more than a small model's step
            self.bar.update(step - self.shown)
            self.bar.set_postfix(loss=f"{loss:.6g}", refresh=True)
            self.shown, self.last = step, now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()



def training_metadata(result: FitResult, data: str | None = None) -> dict[str, str]:
    """String metadata for the weights file: the settings and the outcome, as JSON."""
    summary = {**result.summary(), "data": data}
    return {"specc.training": json.dumps(summary, default=str)}


def format_result(result: FitResult) -> str:
    s = result.settings
    steps = f"{result.iterations} iterations" if s["max_iter"] is not None else \
        f"{len(result.history)} epochs ({result.iterations} steps)"
    if len(result.restarts) > 1:
        kept = next(i for i, r in enumerate(result.restarts) if r.get("kept"))
        steps += f" (restart {kept + 1} of {len(result.restarts)}, the best)"
    return (f"{s.get('method') or s['optimizer']}, loss {s['loss']}, {s['dtype']}: {s['loss']} {result.loss:.6g} "
            f"after {steps}, {result.evaluations} evaluations, {result.seconds:.3g} s, "
            f"{'converged' if result.converged else 'not converged'}" + _validated(result))


def _validated(result: FitResult) -> str:
    """The validation loss, the accuracies and early stopping, when the fit had them."""
    parts = [f"accuracy {result.accuracy:.4g}"] if result.accuracy is not None else []
    if result.val_loss is not None:
        parts.append(f"validation {result.settings['loss']} {result.val_loss:.6g}")
    if result.val_accuracy is not None:
        parts.append(f"validation accuracy {result.val_accuracy:.4g}")
    if result.best_at is not None:
        unit = "iteration" if result.settings.get("max_iter") is not None else "epoch"
        parts.append(("stopped early, " if result.stopped_early else "") + f"best at {unit} {result.best_at}")
    return "; " + ", ".join(parts) if parts else ""



def plot_history(history: list[float], path: str | os.PathLike, title: str = "",
                 validation: tuple[list[int], list[float]] = ((), ())) -> Path:
    """The loss curve (log scale when positive) as a picture, written via a temporary file and a rename;
    with ``validation`` (epochs / iterations after which each was taken, values), the validation
    loss too: after k epochs is where the training curve's point k (taken before epoch k+1) is."""
    require("matplotlib", "plotting the loss curve").use("Agg")
    import matplotlib.pyplot as plt

    path = check_output(path, formats=plot_formats(), writer="matplotlib writes")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(range(len(history)), history, label="training")
    at, values = validation
    if values:
        ax.plot(at, values, marker="." if len(values) < 30 else None, label="validation")
        ax.legend()
    if history and min(history) > 0 and min(values, default=1) > 0:
        ax.set_yscale("log")
    ax.set_xlabel("epoch / iteration")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    picture = io.BytesIO()  # drawn in memory, then written through specc's one temporary file
    try:
        fig.savefig(picture, format=path.suffix[1:].lower() or "png")
    finally:
        plt.close(fig)
    return write_file(path, picture.getvalue())


def plot_formats() -> set[str]:
    """The suffixes :func:`plot_history` writes: matplotlib's own list (``""``: no suffix, PNG)."""
    require("matplotlib", "plotting the loss curve").use("Agg")
    from matplotlib.figure import Figure
    return {"." + kind for kind in Figure().canvas.get_supported_filetypes()} | {""}


