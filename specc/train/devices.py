"""Where a fit or a prediction runs: ``device`` of :func:`specc.fit` / :func:`specc.predict`,
``--device auto|cpu|cuda`` of ``specc train`` and ``specc predict``.

``auto`` is CUDA when torch sees a CUDA device, else the CPU. The device applies to the paths
that run the module under autograd: the first-order optimizers (sgd, adam, rmsprop, adagrad) and
lbfgs, and prediction. bfgs runs on the CPU whatever the device: its engines (the compiled C
criterion, the NumPy tape, nnet's kernel) and its minimiser work on one float64 vector in host
memory, so ``auto`` means the CPU for it and an explicit ``cuda`` is refused with that reason.
"""
from __future__ import annotations

import torch

from ..errors import SpecError

DEVICES = ("auto", "cpu", "cuda")


def resolve(name: str | torch.device | None) -> torch.device | None:
    """``name`` as a torch.device (None: leave the model where it is). ``cuda:1`` names one GPU."""
    if name is None or isinstance(name, torch.device):
        return name
    kind = str(name).split(":", 1)[0]
    if kind not in DEVICES or (":" in str(name) and kind != "cuda"):
        raise SpecError(f"unknown device '{name}' (known: {', '.join(DEVICES)}; cuda:N for one GPU)")
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise SpecError(f"device '{name}': torch sees no CUDA device (torch {torch.__version__}, "
                        f"torch.cuda.is_available() is False): use device 'cpu' or 'auto'")
    return torch.device(str(name))


def for_fit(name: str | torch.device | None, optimizer: str) -> torch.device | None:
    """The device a fit with ``optimizer`` runs on (None: the model's own): bfgs stays on the CPU."""
    if optimizer != "bfgs":
        return resolve(name)
    if name is None or str(name) in ("auto", "cpu"):
        return torch.device("cpu") if name is not None else None
    resolve(name)  # an unknown name is refused as such
    raise SpecError(f"device '{name}': bfgs runs on the CPU (its engines and its minimiser work on one float64 "
                    "vector in host memory); on a GPU use a first-order optimizer (adam, sgd, rmsprop, adagrad) "
                    "or lbfgs, or give device 'auto' or 'cpu'")


def model_device(model: torch.nn.Module) -> torch.device:
    return next((t.device for t in list(model.parameters()) + list(model.buffers())), torch.device("cpu"))
