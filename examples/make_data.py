"""Write the stories' data as CSV files, so that each story is also one `specc train` command.

The numbers are those the story scripts make for themselves (their own `data()` functions, same
seeds), written so that they read back exactly: a float32 value goes through its float64 repr.
A vector node `h[n]` is the columns `h[1]` … `h[n]` (specc's CSV naming, docs/training.md).

    python examples/make_data.py [FOLDER]      (default: examples/)

writes cubic2000.csv (the polynomial tutorial), xor.csv, two_io.csv and curve100.csv (the
torch.nn tutorial's curve). The sine story's sine50.csv comes from R and is not made here.
README.md lists the command for each; tests/test_train.py checks the files are up to date.
"""
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import activations  # noqa: E402
import cubic_legendre  # noqa: E402
import two_io  # noqa: E402
import xor  # noqa: E402

from specc.train.data import columns_of, write_csv  # noqa: E402


def stories() -> dict[str, dict[str, torch.Tensor]]:
    """File name -> the story's named tensors (inputs and targets)."""
    return {
        "cubic2000.csv": cubic_legendre.data(),
        "xor.csv": {"X": torch.tensor(xor.X, dtype=torch.float64), "y": torch.tensor(xor.Y, dtype=torch.float64)},
        "two_io.csv": two_io.teacher_data(),
        "curve100.csv": activations.data(),
    }


def main(folder: Path) -> None:
    for name, tensors in stories().items():
        print(f"wrote {write_csv(folder / name, columns_of(tensors))}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
