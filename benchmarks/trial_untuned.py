"""``uae trial`` on models and data the project did not tune, run as a user runs it (the command line).

    python benchmarks/trial_untuned.py [--out trial-untuned] [--n 2000]

Two set-ups, each a model class in a user's module (``untuned_models.py``) trained by the user's own loop
(Adam 1e-3, batch 64, 5 epochs), saved as a state dict, and a data file:

- ``silhouettes``: ``SilhouetteAE`` on ``--n`` Animal-MNIST silhouettes (the shipped copy; 8-bit ``.npz``);
- ``colour``: ``ColourAE`` on colour images made from other silhouettes: each animal drawn in a random colour
  on a random background colour (seeded), ``[N, 3, 28, 28]`` 8-bit.

Then ``uae trial --model ... --model-class untuned_models:... --data ... --out ...`` with the defaults (ε 0.1 and
0.3, seeds 0 1 2, 20% of the rows held out as the test set). Prints each trial's table.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from untuned_models import ColourAE, SilhouetteAE

from uae_plugin.experiments.data import load_animal_mnist

HERE = Path(__file__).resolve().parent


def colour_images(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """``[N, 3, H, W]``: silhouette ``x [N, 1, H, W]`` as a mask between a random foreground and background colour."""
    gen = torch.Generator().manual_seed(seed)
    fg, bg = torch.rand(x.shape[0], 3, 1, 1, generator=gen), torch.rand(x.shape[0], 3, 1, 1, generator=gen)
    return x * fg + (1 - x) * bg


def train(model: torch.nn.Module, x: torch.Tensor, epochs: int = 5) -> torch.nn.Module:
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(epochs):
        for idx in torch.randperm(x.shape[0]).split(64):
            loss = F.mse_loss(model(x[idx]), x[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="trial-untuned")
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    x, _ = load_animal_mnist()
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(0))
    setups = {
        "silhouettes": (SilhouetteAE, x[order[: args.n]]),
        "colour": (ColourAE, colour_images(x[order[args.n : 2 * args.n]])),
    }
    for name, (cls, data) in setups.items():
        torch.save(train(cls(), data).state_dict(), out / f"{name}.pt")
        np.savez(out / f"{name}.npz", x=(data * 255).round().to(torch.uint8).numpy())
        command = [sys.executable, "-m", "uae_plugin.cli", "trial", "--model", str(out / f"{name}.pt"),
                   "--model-class", f"untuned_models:{cls.__name__}", "--data", str(out / f"{name}.npz"),
                   "--out", str(out / name), "--no-progress"]  # fmt: skip
        print(f"\n### {name}: {' '.join(command[2:])}\n", flush=True)
        subprocess.run(command, cwd=HERE, check=True)


if __name__ == "__main__":
    main()
