"""The attack's cost against torchattacks PGD with the same steps, interleaved, in one process.

    python benchmarks/cost_ratio.py [--repeats 5] [--batch 256]

On a ConvAutoencoder trained on the embedded MNIST digits (3 epochs), times ``--repeats`` rounds of,
in turn: torchattacks ``PGD`` on the reconstruction loss with T = 40 steps (``pgd_floor.time_pgd``),
the default ``MinMaxAttack`` (closed-form Gaussian MI) with T = 40, and the same attack with
``estimator="mine"``. Alternating the three in every round keeps a busy machine from favouring one;
the best time of each is kept. Prints seconds and the ratios to PGD (goal for the default: <= 1.2x).
"""

from __future__ import annotations

import argparse

import torch
from pgd_floor import best_time, time_pgd
from trained_models import trained_autoencoders

from uae_plugin import MinMaxAttack, Reconstruction
from uae_plugin.experiments.data import mnist_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()
    data = mnist_split(seed=0)
    model = trained_autoencoders(data["x_train"], ("conv AE",))["conv AE"]
    x = data["x_test"][: args.batch]
    attacks = {
        "default (gaussian)": MinMaxAttack(Reconstruction(model), steps=40, seed=0),
        "estimator='mine'": MinMaxAttack(Reconstruction(model), steps=40, seed=0, estimator="mine"),
    }
    for attack in attacks.values():
        attack(x[:2])  # warm-up
    times: dict[str, list[float]] = {"torchattacks PGD": [], **{name: [] for name in attacks}}
    for _ in range(args.repeats):
        times["torchattacks PGD"].append(time_pgd(Reconstruction(model), x, 40, repeats=1))
        for name, attack in attacks.items():
            times[name].append(best_time(lambda a=attack: a(x), 1))
    best = {name: min(t) for name, t in times.items()}
    print(f"ConvAutoencoder, batch {args.batch}, T = 40, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("\n| run | best s | x PGD |\n|---|---|---|")
    for name, t in best.items():
        print(f"| {name} | {t:.3f} | {t / best['torchattacks PGD']:.2f} |")


if __name__ == "__main__":
    main()
