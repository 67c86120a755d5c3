"""Robustness trials through the public API (``uae_plugin.run_trial``): does UAE augmentation, or adversarial
training, change a model's clean, adversarial and corruption error? Two trials, run by hand (not in the tests):

    OMP_NUM_THREADS=1 python benchmarks/trial_robustness.py [--out DIR]

(a) ``colour``: a user's strided conv autoencoder with batch norm (``ColourBNAE`` below) for 3x32x32 images,
    trained by a plain user loop (Adam 1e-3, batch 64, 10 epochs) on 2,000 random 32x32 crops of scikit-learn's two
    colour photographs (``load_sample_images()``: china.jpg, flower.jpg; seeded). Training crops come from the left
    3/4 of each photograph and the 500 test crops from the right 1/4, so no test pixel was seen in training. Trial:
    metrics clean / adversarial (PGD-20 at 8/255) / corruption (9 kornia corruptions x 5 severities), arms none,
    copy, noise, uae, online-uae and online-pgd at eps 8/255, ``target="clean"``, 5 seeds.
(b) ``contrastive``: a small conv encoder (``DigitEncoder`` below) pre-trained briefly with SimCLR (the trial's own
    default fit, ``AdamFit(loss=SimCLRLoss())``) on MNIST digits (``mnist_split``), then ``run_trial(task=
    "contrastive")`` with metrics clean / adversarial (linear probe, PGD-20 at 0.1) / knn, arms none, copy, noise,
    uae and online-pgd at eps 0.1, 4 seeds.

Why these budgets. (a) Natural 8-bit images: 8/255 (~0.031) is the standard L-inf budget of the robust-SSL
literature (RobustSSL, AdvCL) and the trial's default ``test_eps``; the augmentations use the same budget as the
test attack, so online-pgd is adversarial training at the budget it is tested at. The package's default augmentation
eps, 0.3, is a digits budget: on photographs it is a visible wash of noise (mean L2 about 8 on 3x32x32 against about
1.7 at 8/255). (b) Digits: 0.1 for both the test attack and the augmentations (0.1-0.3 is usual on MNIST).

Why ``target="clean"`` in (a): the online arms always train the attacked rows to reconstruct their clean source
(denoising); with ``target="clean"`` the offline arms (noise, uae) do the same, so every arm but none and copy
trains the same objective and only the perturbations differ. (b) has no target (a contrastive fit).

Each trial's sizes were shrunk until it ran in under ~3 minutes on one CPU thread (both together ~6 minutes), so
the whole script stays under the ~5 minutes per trial asked. Prints each ``report.table()`` and writes both, with
the exact settings and wall times, to ``benchmarks/results/trial_robustness.md``; the trial folders (report.json,
report.md, pictures) go under ``--out`` (default ``trial-robustness``). A rerun with the same ``--out`` resumes the
trials (the wall time then covers only the remaining work, and the results file says so).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from trial_untuned import train  # the plain user loop (Adam 1e-3, batch 64, MSE, seed 0)

import uae_plugin
from uae_plugin import run_trial
from uae_plugin.experiments.data import mnist_split
from uae_plugin.trial import AdamFit
from uae_plugin.trial.contrastive import SimCLRLoss

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "trial_robustness.md"

# (a) colour autoencoder
COLOUR = {
    "n_train": 2000,
    "n_test": 500,
    "crop": 32,
    "train_share": 0.75,  # columns of each photograph the training crops come from (the rest: test crops)
    "data_seed": 0,
    "user_epochs": 10,
    "trial": {
        "lr": 1e-3,  # measured at this rate (the trial's default became 1e-4 after this run)
        "metrics": ("clean", "adversarial", "corruption"),
        "test_eps": 8 / 255,
        "robust_rows": 250,
        "target": "clean",
        "arms": ("none", "copy", "noise", "uae", "online-uae", "online-pgd"),
        "eps": (8 / 255,),
        "seeds": (0, 1, 2, 3, 4),
        "steps": None,  # the default: two passes over the training rows, >= 100 (here 100)
    },
}

# (b) contrastive encoder on digits
CONTRASTIVE = {
    "n_train": 1000,
    "n_test": 500,
    "split_seed": 0,
    "pretrain_steps": 1200,
    "trial": {
        "lr": 1e-3,  # measured at this rate (the trial's default became 1e-4 after this run)
        "task": "contrastive",
        "metrics": ("clean", "adversarial", "knn"),
        "test_eps": 0.1,
        "arms": ("none", "copy", "noise", "uae", "online-pgd"),
        "eps": (0.1,),
        "seeds": (0, 1, 2, 3),
        "steps": 50,
        "n_augment": 300,
    },
}


class ColourBNAE(nn.Module):
    """A user's strided conv autoencoder with batch norm for 3x32x32 images: Conv(3,16,s2)-BN-ReLU-Conv(16,32,s2)-
    BN-ReLU down to 32x8x8, ConvT(32,16,s2)-BN-ReLU-ConvT(16,3,s2)-Sigmoid back up."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.encoder = nn.Sequential(
            nn.Conv2d(3, w, 3, stride=2, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(),
        )  # fmt: skip
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * w, w, 4, stride=2, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
            nn.ConvTranspose2d(w, 3, 4, stride=2, padding=1), nn.Sigmoid(),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class DigitEncoder(nn.Module):
    """A small conv encoder for 1x28x28 digits: Conv(1,16,s2)-ReLU-Conv(16,32,s2), flattened (1,568 features).

    No ReLU after the last convolution: with one, SimCLR pre-training turned 1,282 of the 1,568 features constant
    (dead units) within 400 steps and the probe's clean error stayed near 17%; without it, 1,200 steps reach ~10%."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.Flatten(),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def photo_crops(n_train: int, n_test: int, size: int, train_share: float, seed: int) -> tuple[torch.Tensor, ...]:
    """``(x_train [n_train, 3, size, size], x_test [n_test, ...])`` float in [0, 1] (8-bit values / 255): random
    crops of china.jpg and flower.jpg (each crop's photograph and corner drawn from ``seed``); training crops lie in
    the left ``train_share`` of each photograph's columns, test crops in the rest."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images  # two uint8 [427, 640, 3]
    rng = np.random.default_rng(seed)

    def crops(n: int, left: int, right: int) -> torch.Tensor:
        out = np.empty((n, 3, size, size), np.uint8)
        for i in range(n):
            photo = photos[rng.integers(len(photos))]
            r, c = rng.integers(photo.shape[0] - size + 1), rng.integers(left, right - size + 1)
            out[i] = photo[r : r + size, c : c + size].transpose(2, 0, 1)
        return torch.from_numpy(out).float() / 255

    split = int(train_share * photos[0].shape[1])
    return crops(n_train, 0, split), crops(n_test, split, photos[0].shape[1])


def timed_trial(model: nn.Module, x_train: torch.Tensor, x_test: torch.Tensor, out: Path, **kw: Any) -> dict:
    """Run ``run_trial`` into ``out``; ``{"report", "wall_s", "resumed"}``."""
    resumed = (out / "scores.json").exists()
    t0 = time.perf_counter()
    report = run_trial(model, x_train, x_test, out=out, progress=False, **kw)
    return {"report": report, "wall_s": time.perf_counter() - t0, "resumed": resumed}


def colour_trial(out: Path) -> tuple[dict, list[str]]:
    c = COLOUR
    x_train, x_test = photo_crops(c["n_train"], c["n_test"], c["crop"], c["train_share"], c["data_seed"])
    t0 = time.perf_counter()
    torch.manual_seed(0)
    model = train(ColourBNAE(), x_train, c["user_epochs"])  # the user's loop of trial_untuned.py
    train_s = time.perf_counter() - t0
    with torch.no_grad():
        test_mse = float(F.mse_loss(model(x_test), x_test))
    result = timed_trial(model, x_train, x_test, out / "colour", **c["trial"])
    t = c["trial"]
    settings = [
        f"- data: {c['n_train']} training / {c['n_test']} test random {c['crop']}x{c['crop']} crops of "
        "sklearn.datasets.load_sample_images() (china.jpg, flower.jpg; photograph and corner drawn by "
        f"numpy default_rng({c['data_seed']})); training crops from the left {c['train_share']:.0%} of each "
        "photograph's columns, test crops from the rest; 8-bit values / 255",
        f"- model: ColourBNAE (Conv-BN-ReLU x2 down, ConvT-BN-ReLU, ConvT-Sigmoid up; "
        f"{sum(p.numel() for p in model.parameters())} parameters), trained by a plain loop (Adam 1e-3, batch 64, "
        f"MSE, {c['user_epochs']} epochs, seed 0) in {train_s:.1f} s; its test MSE {test_mse:.5f}",
        f"- run_trial(metrics={t['metrics']}, test_eps=8/255, robust_rows={t['robust_rows']}, "
        f"target={t['target']!r}, arms={t['arms']}, eps=(8/255,), seeds={t['seeds']}, steps=None "
        f"(default: {result['report'].config['steps']}), batch_size=64, lr=1e-3, online_steps=5, "
        "online_fraction=0.5, attack_options=None (preset default: T = 40, gaussian MI), attack_seed=0)",
    ]
    return result, settings


def contrastive_trial(out: Path) -> tuple[dict, list[str]]:
    c = CONTRASTIVE
    d = mnist_split(c["n_train"], c["n_test"], seed=c["split_seed"])
    torch.manual_seed(0)
    encoder = DigitEncoder()
    t0 = time.perf_counter()
    encoder = AdamFit(loss=SimCLRLoss())(encoder, d["x_train"], steps=c["pretrain_steps"], seed=0)
    pretrain_s = time.perf_counter() - t0
    kw = {**c["trial"], "y_train": d["y_train"], "y_test": d["y_test"]}
    result = timed_trial(encoder, d["x_train"], d["x_test"], out / "contrastive", **kw)
    t = c["trial"]
    settings = [
        f"- data: uae_plugin.experiments.data.mnist_split({c['n_train']}, {c['n_test']}, seed={c['split_seed']}) "
        "(MNIST digits 1x28x28, with labels for the probe and kNN only)",
        f"- model: DigitEncoder (Conv(1,16,s2)-ReLU-Conv(16,32,s2), flattened: 1,568 features), random init (seed 0), "
        f"pre-trained with AdamFit(loss=SimCLRLoss()) (Adam 1e-3, batch 64, NT-Xent 0.5 between two SimCLR views) "
        f"for {c['pretrain_steps']} steps, seed 0, in {pretrain_s:.1f} s",
        f"- run_trial(task='contrastive', metrics={t['metrics']}, test_eps={t['test_eps']}, arms={t['arms']}, "
        f"eps={t['eps']}, seeds={t['seeds']}, steps={t['steps']}, n_augment={t['n_augment']}, y_train=..., "
        "y_test=..., default fit AdamFit(loss=SimCLRLoss()), batch_size=64, lr=1e-3, online_steps=5, "
        "online_fraction=0.5, attack_options=None (preset default: T = 40), attack_seed=0); clean and adversarial "
        "are the error of one linear probe fitted on the frozen encoder's clean training features, knn is 1 - "
        "cosine 10-NN accuracy with the training rows as the bank",
    ]
    return result, settings


def _environment() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    import kornia

    return (
        f"uae_plugin {uae_plugin.__version__} (git {commit}), torch {torch.__version__}, kornia {kornia.__version__}, "
        f"Python {platform.python_version()}, {platform.processor() or platform.machine()}, CPU, "
        f"torch threads {torch.get_num_threads()} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="trial-robustness", help="folder of the two trial folders (resumed)")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    sections = []
    for title, run in (
        ("(a) colour autoencoder with batch norm, sklearn photographs", colour_trial),
        ("(b) contrastive encoder on MNIST digits, SimCLR pre-trained", contrastive_trial),
    ):
        result, settings = run(out)
        report = result["report"]
        how = "resumed from an earlier run: remaining work only" if result["resumed"] else "fresh run"
        timing = report.timings
        wall = (
            f"Wall time of run_trial: {result['wall_s']:.0f} s ({how}; generate {timing['generate_s']:.0f} s, "
            f"fine-tune {timing['fit_s']:.0f} s, score {timing['score_s']:.0f} s)."
        )
        table = report.table()
        print(f"\n## {title}\n\n" + "\n".join(settings) + f"\n\n{wall}\n\n{table}\n", flush=True)
        sections.append(f"## {title}\n\nSettings:\n\n" + "\n".join(settings) + f"\n\n{wall}\n\n{table}\n")
    header = (
        "# Trial robustness: UAE augmentation and adversarial training, scored clean, under attack and corrupted\n\n"
        "Made by `OMP_NUM_THREADS=1 python benchmarks/trial_robustness.py` (see its docstring for the reasons "
        f"behind each setting).\n\nEnvironment: {_environment()}.\n"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(header + "\n" + "\n".join(sections))
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
