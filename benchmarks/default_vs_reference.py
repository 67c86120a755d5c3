"""Why the defaults differ from the authors' settings: same or better examples for far less work.

    python benchmarks/default_vs_reference.py [--samples 8]

Attacks the same held-out MNIST digits with ``preset="reference"`` (one
sample at a time, the authors' regime) and with the defaults (one batch),
on a ConvAutoencoder (projection and conv similarity) and a DenseAutoencoder
(projection). Prints success rate, mean gap, MI from an independent fresh
estimator (same for both), L2 size and samples/s, with the speed ratio.
"""

from __future__ import annotations

import argparse
import time

import torch

from uae_plugin import MinMaxAttack, Reconstruction, mutual_information
from uae_plugin.experiments.data import mnist_split
from uae_plugin.experiments.models import ConvAutoencoder, DenseAutoencoder, train_autoencoder


def _run(attack: MinMaxAttack, x: torch.Tensor, one_at_a_time: bool):
    t0 = time.perf_counter()
    if one_at_a_time:
        parts = [attack(x[i : i + 1]) for i in range(x.shape[0])]
        adv = torch.cat([p.adv for p in parts])
        success = torch.cat([p.success for p in parts])
        gap = torch.cat([p.gap for p in parts])
    else:
        res = attack(x)
        adv, success, gap = res.adv, res.success, res.gap
    return adv, success, gap, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    data = mnist_split(seed=args.seed)
    x = data["x_test"][: args.samples]
    models = {
        "conv AE": train_autoencoder(ConvAutoencoder(), data["x_train"], epochs=5, seed=args.seed),
        "dense AE": train_autoencoder(DenseAutoencoder(), data["x_train"], epochs=10, seed=args.seed),
    }
    cases = [("conv AE", "projection"), ("conv AE", "conv"), ("dense AE", "projection")]
    print(f"{args.samples} MNIST test digits, torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| model | similarity | settings | success | mean f_x | MI(x, adv), fresh MINE | L2 | samples/s | speed-up |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model_name, similarity in cases:
        model = models[model_name]
        base_rate = None
        for preset, one_at_a_time in (("reference", True), ("default", False)):
            attack = MinMaxAttack(Reconstruction(model), similarity=similarity, preset=preset, seed=args.seed)
            adv, success, gap, elapsed = _run(attack, x, one_at_a_time)
            rate = args.samples / elapsed
            base_rate = base_rate or rate
            mi = float(mutual_information(x, adv, steps=200).mean())
            l2 = float((adv - x).flatten(1).norm(dim=1).mean())
            label = "reference, 1 at a time" if one_at_a_time else "default, batched"
            print(
                f"| {model_name} | {similarity} | {label} | {success.float().mean():.0%} | {gap.mean():.3f} "
                f"| {mi:.3f} | {l2:.2f} | {rate:.2f} | {rate / base_rate:.0f}x |"
            )


if __name__ == "__main__":
    main()
