"""What ``uae trial`` pays for reading the data from files: ``run_trial`` on what the CLI's readers give it against
``run_trial`` on tensors of the same rows, in one process.

    OMP_NUM_THREADS=1 python benchmarks/trial_dataset_cost.py

Two data files, written to a temporary folder: a ``.npy`` of 600 grey 16x16 rows and a ``.npz`` of 2,000 colour
32x32 rows with labels (8-bit, random values: the cost does not depend on them). For each, ``--test-fraction 0.2``
holds out the test rows, and three ways of running the same trial (arm ``none``, seeds 0 and 1: two fine-tunes of
100 Adam steps, batch 64, scored on clean error) are timed:

- ``cli``: what ``uae trial`` does: read the files (:func:`uae_plugin.cli.trial.trial_data`: the data decoded once into
  tensors when they fit the in-memory limit), then ``run_trial`` on its output; the read is counted;
- ``lazy``: ``run_trial`` on the lazy Datasets of :func:`~uae_plugin.cli.loading.load_dataset` (what the CLI
  passed before, and still passes for data over the in-memory limit);
- ``tensors``: ``run_trial`` on tensors of the same rows, read beforehand (not counted).

Rounds alternate the three; the best of 5 of each is kept. Prints a markdown table and the ratios against
``tensors`` (goal for ``cli``: at most 1.15x).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from uae_plugin import run_trial
from uae_plugin.cli import build_parser
from uae_plugin.cli.trial import read_rows, trial_data

REPEATS = 5
TRIAL = {"arms": ("none",), "seeds": (0, 1), "steps": 100, "metrics": ("clean",), "progress": False}


class TinyAE(nn.Module):
    """A small conv autoencoder for ``channels``-channel images."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(channels, 16, 3, stride=2, padding=1), nn.ReLU())
        self.dec = nn.Sequential(nn.ConvTranspose2d(16, channels, 4, stride=2, padding=1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dec(self.enc(x))


def write_data(folder: Path) -> dict[str, tuple[Path, int]]:
    """The two data files: ``{name: (path, channels)}``."""
    rng = np.random.default_rng(0)
    grey, colour = folder / "grey.npy", folder / "colour.npz"
    np.save(grey, rng.integers(0, 256, (600, 1, 16, 16), dtype=np.uint8))
    np.savez(colour, x=rng.integers(0, 256, (2000, 3, 32, 32), dtype=np.uint8), y=rng.integers(0, 10, 2000))
    return {"600 grey 16x16 rows (.npy)": (grey, 1), "2,000 colour 32x32 rows (.npz)": (colour, 3)}


def timed(f) -> float:
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def compare(path: Path, channels: int) -> dict[str, float]:
    """Best-of-``REPEATS`` seconds of the three ways (module docstring) on one file."""
    args = build_parser().parse_args(["trial", "--model", "unused", "--data", str(path), "--out", "unused"])
    torch.manual_seed(0)
    model = TinyAE(channels).eval()
    ready = trial_data(args)
    x_train, x_test = ready["x_train"].clone(), ready["x_test"].clone()
    assert torch.is_tensor(ready["x_train"]), "the data should fit the in-memory limit"

    def cli() -> None:
        data = trial_data(args)
        run_trial(model, data["x_train"], data["x_test"], **TRIAL)

    def lazy() -> None:
        train, test, _ = read_rows(args)
        run_trial(model, train, test, **TRIAL)

    ways = {"cli": cli, "lazy": lazy, "tensors": lambda: run_trial(model, x_train, x_test, **TRIAL)}
    best = dict.fromkeys(ways, float("inf"))
    for _ in range(REPEATS):
        for name, way in ways.items():
            best[name] = min(best[name], timed(way))
    return best


def main() -> None:
    torch.set_num_threads(1)
    print(f"run_trial: arm none, seeds 0 1 (2 fine-tunes of {TRIAL['steps']} steps), clean error; best of {REPEATS}; "
          f"torch {torch.__version__}, 1 thread\n")  # fmt: skip
    print("| data | tensors (s) | cli (s) | cli / tensors | lazy Dataset (s) | lazy / tensors |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (path, channels) in write_data(Path(tmp)).items():
            t = compare(path, channels)
            print(
                f"| {name} | {t['tensors']:.3f} | {t['cli']:.3f} | {t['cli'] / t['tensors']:.2f}x | "
                f"{t['lazy']:.3f} | {t['lazy'] / t['tensors']:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    main()
