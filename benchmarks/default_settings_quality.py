"""The quality side of the default settings: success and MI of candidate settings over three seeds.

    python benchmarks/default_settings_quality.py [--samples 256]

On a ConvAutoencoder and a DenseAutoencoder trained on the embedded MNIST digits, attacks the same
held-out digits with each candidate (``MinMaxAttack`` keyword overrides of the defaults) for seeds
0, 1, 2 and prints samples/s (best seed), success rate and MI(x, adv) from the fixed fresh yardstick
``mutual_information`` (mean ± std over seeds; lower is better). A cheaper default is justified when
its success and MI stay within the seed spread of the costlier one.
"""

from __future__ import annotations

import argparse
import time

import torch
from trained_models import trained_autoencoders

from uae_plugin import MinMaxAttack, Reconstruction, mutual_information
from uae_plugin.experiments.data import mnist_split

CANDIDATES = (
    {"mine_steps": 5, "pair_dim": 32},  # the earlier defaults: 5 MINE steps, 64 projections to 32 dims
    {"mine_steps": 2, "pair_dim": 32},
    {"mine_steps": 2, "pair_dim": 16},  # the defaults now
    {"mine_steps": 1, "pair_dim": 16},
    {"mine_steps": 0, "pair_dim": 16},  # an untrained statistics network: what MINE training adds
    {"mine_steps": 2, "pair_dim": 16, "n_pairs": 32},
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=256)
    args = parser.parse_args()
    data = mnist_split(seed=0)
    x = data["x_test"][: args.samples]
    models = trained_autoencoders(data["x_train"])
    print(f"{args.samples} held-out MNIST digits, T=40, torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("| model | settings | samples/s | success | MI(x, adv), fresh MINE (mean ± std, 3 seeds) |")
    print("|---|---|---|---|---|")
    for name, model in models.items():
        for overrides in CANDIDATES:
            rates, successes, mis = [], [], []
            for seed in (0, 1, 2):
                attack = MinMaxAttack(Reconstruction(model), seed=seed, **overrides)
                start = time.perf_counter()
                res = attack(x)
                rates.append(x.shape[0] / (time.perf_counter() - start))
                successes.append(res.success_rate)
                mis.append(float(mutual_information(x, res.adv, steps=300).mean()))
            mi = torch.tensor(mis)
            label = ", ".join(f"{k}={v}" for k, v in overrides.items())
            print(
                f"| {name} | {label} | {max(rates):.1f} | {sum(successes) / 3:.1%} "
                f"| {mi.mean():.3f} ± {mi.std():.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
