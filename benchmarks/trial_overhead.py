"""What a trial costs beyond its parts: ``run_trial`` against the sum of the work it must do, in one process.

    python benchmarks/trial_overhead.py [--repeats 3] [--n-train 300]

The parts, timed by hand with the library's own pieces on the same model and data: per ε, the UAE attack, the
no-MI attack, PGD and the matched noise; then arms × seeds fine-tunes (``AdamFit``) and their test scores, plus
one score of the given model. The trial, ``run_trial`` without a folder, does exactly that work plus its
bookkeeping (model copies, the verdicts, the report). Rounds alternate trial and parts; the best time of each
is kept. Prints both and the ratio (goal: within 1.1x).
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from uae_plugin import MinMaxAttack, Reconstruction, UnsupervisedPGD, matched_gaussian_noise, run_trial
from uae_plugin.experiments.data import mnist_split
from uae_plugin.experiments.models import DenseAutoencoder, train_autoencoder
from uae_plugin.trial import AdamFit, reconstruction_error
from uae_plugin.trial.arms import plan_arms

EPS, SEEDS, STEPS = (0.1, 0.3), (0, 1, 2), 200


def parts(model, x, x_test) -> float:
    """The trial's work, done by hand: seconds."""
    start = time.perf_counter()
    criterion = Reconstruction(model)
    index = torch.arange(x.shape[0])
    aug = {}
    for eps in EPS:
        uae = MinMaxAttack(criterion, eps=eps, seed=0)(x, index=index).adv
        aug[f"uae@{eps:g}"] = uae
        aug[f"nomi@{eps:g}"] = MinMaxAttack(criterion, eps=eps, seed=0, mi_weight=0.0)(x, index=index).adv
        aug[f"noise@{eps:g}"] = matched_gaussian_noise(x, uae, seed=0)
        aug[f"pgd@{eps:g}"] = UnsupervisedPGD(criterion, eps=eps, steps=40, seed=0)(x)
    aug["copy"] = x
    reconstruction_error(model, x_test)
    fit = AdamFit()
    for arm in plan_arms(("none", "copy", "noise", "nomi", "pgd", "uae"), EPS):
        data = x if arm.key == "none" else torch.cat([x, aug[arm.key]])
        for seed in SEEDS:
            reconstruction_error(fit(copy.deepcopy(model), data, steps=STEPS, seed=seed), x_test)
    return time.perf_counter() - start


def trial(model, x, x_test) -> float:
    start = time.perf_counter()
    run_trial(model, x, x_test, eps=EPS, seeds=SEEDS, steps=STEPS, progress=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-train", type=int, default=300)
    args = parser.parse_args()
    data = mnist_split(n_train=args.n_train, n_test=1000, seed=0)
    torch.manual_seed(0)
    model = train_autoencoder(DenseAutoencoder(), data["x_train"], epochs=20, seed=0)
    best = {"parts": float("inf"), "trial": float("inf")}
    for _ in range(args.repeats):
        best["parts"] = min(best["parts"], parts(model, data["x_train"], data["x_test"]))
        best["trial"] = min(best["trial"], trial(model, data["x_train"], data["x_test"]))
    print(f"dense AE, {args.n_train} rows, eps {EPS}, {len(SEEDS)} seeds, {STEPS} fine-tuning steps, 10 arms")
    print(f"parts by hand: {best['parts']:.2f} s   run_trial: {best['trial']:.2f} s   "
          f"ratio {best['trial'] / best['parts']:.3f}x")  # fmt: skip


if __name__ == "__main__":
    main()
