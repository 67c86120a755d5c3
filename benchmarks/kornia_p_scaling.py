"""Work of ``RandomUAE`` against ``p``: time and model evaluations per call, as ratios to ``p=1``.

    python benchmarks/kornia_p_scaling.py [--batch 256] [--steps 40] [--repeats 3]

ConvAutoencoder trained on the embedded MNIST digits; each ``p`` is called
``repeats`` times on the same batch (kornia's row draws seeded), all in one process.
"""

from __future__ import annotations

import argparse
import time

import torch

from uae_plugin.experiments.data import mnist_split
from uae_plugin.experiments.models import ConvAutoencoder, train_autoencoder
from uae_plugin.integrations.kornia import RandomUAE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    data = mnist_split()
    model = train_autoencoder(ConvAutoencoder(), data["x_train"], epochs=5, seed=0)
    x = data["x_test"][: args.batch]
    rows = []
    for p in (1.0, 0.5, 0.25):
        aug = RandomUAE(model, p=p, steps=args.steps, seed=0)
        torch.manual_seed(1)
        attacked, evals, start = 0, 0, time.perf_counter()
        for _ in range(args.repeats):
            aug(x)
            attacked += int(aug.last_rows.sum())
            evals += 0 if aug.last_result is None else aug.last_result.model_evaluations
        rows.append((p, attacked / args.repeats, evals / args.repeats, (time.perf_counter() - start) / args.repeats))
    base_evals, base_time = rows[0][2], rows[0][3]
    print(f"RandomUAE on a batch of {args.batch} MNIST digits, T={args.steps}, {torch.get_num_threads()} threads\n")
    print("| p | rows attacked | model evals | x p=1 | time per call (s) | x p=1 |")
    print("|---|---|---|---|---|---|")
    for p, attacked, evals, seconds in rows:
        print(
            f"| {p} | {attacked:.0f} | {evals:.0f} | {evals / base_evals:.2f} "
            f"| {seconds:.2f} | {seconds / base_time:.2f} |"
        )


if __name__ == "__main__":
    main()
