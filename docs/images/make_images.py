"""Regenerate the README's network pictures (run from anywhere; takes a few seconds):

    python docs/images/make_images.py

1. sine_nnet_untrained.png: the neuron view of specs/sine_nnet.spec with its
   default (nn.Linear-style) initial weights under torch.manual_seed(0);
2. sine_nnet_trained.png: the same network after ``specc.fit`` on
   examples/sine50.csv from those weights, with the story's nnet settings
   (sum of squares, BFGS = R's vmmin in float64, abstol 1e-8, reltol 1e-9).
   The weights are kept in sine_nnet_trained.safetensors, so
   ``specc draw specs/sine_nnet.spec --weights docs/images/sine_nnet_trained.safetensors -o net.png``
   draws the same picture and ``specc inspect … --weights …`` prints its numbers;
3. two_io_layers.png: the layers view of specs/two_io.spec;
4. sequences and blocks: elman_neurons.png (recurrent edges, t−1), residual_blocks_layers.png (a
   cluster per block call), residual_blocks_collapsed.png (``--collapse``: × 3) and
   autoencoder_neurons.png (units inside the encoder's and decoder's clusters).
"""
from __future__ import annotations

from pathlib import Path

import torch

import specc
from specc.diagram import write_drawing

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DPI = 110
TITLE = "sine_nnet.spec: 1-4-1, logistic hidden units"


def main() -> None:
    torch.manual_seed(0)
    model = specc.load(ROOT / "specs" / "sine_nnet.spec")
    write_drawing(specc.draw(model, title=TITLE + " (initial weights)"), HERE / "sine_nnet_untrained.png", dpi=DPI)
    data = ROOT / "examples" / "sine50.csv"
    result = specc.fit(model, data, loss="sse", optimizer="bfgs", max_iter=10000, abstol=1e-8, reltol=1e-9,
                       progress=False)
    mse = result.loss / 50
    print(f"sine_nnet: {result.iterations} BFGS iterations, training MSE {mse:.3g}")
    specc.save_weights(model, HERE / "sine_nnet_trained.safetensors",
                       {"data": "examples/sine50.csv", "fit": "bfgs, sse, abstol 1e-8, reltol 1e-9, from seed 0",
                        "mse": f"{mse:.6g}"})
    write_drawing(specc.draw(model, title=TITLE + f" (trained, MSE {mse:.1e})"), HERE / "sine_nnet_trained.png",
                  dpi=DPI)
    write_drawing(specc.draw(ROOT / "specs" / "two_io.spec", view="layers", title="two_io.spec"),
                  HERE / "two_io_layers.png", dpi=DPI)
    draw_sequences_and_blocks()
    for name in ("sine_nnet_untrained.png", "sine_nnet_trained.png", "sine_nnet_trained.safetensors",
                 "two_io_layers.png"):
        print(f"wrote docs/images/{name}")


def draw_sequences_and_blocks() -> None:
    """The README's pictures of sequences and blocks (no training: structure only)."""
    pictures = {"elman_neurons.png": ("elman.spec", {}),
                "residual_blocks_layers.png": ("residual_blocks.spec", {"view": "layers"}),
                "residual_blocks_collapsed.png": ("residual_blocks.spec", {"collapse": True}),
                "autoencoder_neurons.png": ("autoencoder.spec", {"view": "neurons"})}
    for name, (spec, options) in pictures.items():
        write_drawing(specc.draw(ROOT / "specs" / spec, title=spec, **options), HERE / name, dpi=80)
        print(f"wrote docs/images/{name}")


if __name__ == "__main__":
    main()
