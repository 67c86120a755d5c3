"""Does the trial's fine-tuning damage a converged model? The default learning rate, measured.

    python benchmarks/fine_tune_damage.py

A strided conv autoencoder with batch norm, trained to convergence (3,000 Adam steps at 1e-3, batch 64, on 1,000
real digits), then fine-tuned by the trial's default fit (``AdamFit``) for 10 and 100 steps at learning rates
1e-3, 3e-4 and 1e-4 and batch 32 and 64, 3 seeds each; prints the change of test MSE (200 digits) against the
model before fine-tuning. A fine-tune that makes ``none`` worse than the given model makes every verdict about a
damaged model (``TrialReport.warnings``).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from uae_plugin.experiments.data import mnist_split
from uae_plugin.trial import AdamFit, reconstruction_error


def batch_norm_autoencoder() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 3, 2, 1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.ConvTranspose2d(32, 16, 4, 2, 1), nn.BatchNorm2d(16), nn.ReLU(),
        nn.ConvTranspose2d(16, 1, 4, 2, 1), nn.Sigmoid(),
    )  # fmt: skip


def main() -> None:
    split = mnist_split(n_train=1000, n_test=200, seed=0)
    torch.manual_seed(0)
    model = AdamFit(lr=1e-3, batch_size=64)(batch_norm_autoencoder(), split["x_train"], steps=3000, seed=0)
    base = reconstruction_error(model, split["x_test"])
    print(f"batch-norm conv autoencoder, converged: test MSE {base:.4g}\n")
    print("| lr | steps | batch | change of test MSE, seeds 0, 1, 2 |\n|---|---|---|---|")
    for lr in (1e-3, 3e-4, 1e-4):
        for steps in (10, 100):
            for batch in (32, 64):
                fit = AdamFit(lr=lr, batch_size=batch)
                errors = [
                    reconstruction_error(
                        fit(copy.deepcopy(model), split["x_train"], steps=steps, seed=s), split["x_test"]
                    )
                    for s in range(3)
                ]
                print(f"| {lr:g} | {steps} | {batch} | {', '.join(f'{100 * (e / base - 1):+.1f}%' for e in errors)} |")


if __name__ == "__main__":
    main()
