"""What a trial costs beyond its parts: ``run_trial`` against the sum of the work it must do, in one process.

    python benchmarks/trial_overhead.py [--repeats 3] [--n-train 300]

The parts, timed by hand with the library's own pieces on the same model and data: per ε, the UAE attack, the
no-MI attack, PGD and the matched noise; then arms × seeds fine-tunes (``AdamFit``; the online-pgd arm with
PGD in every training step, :class:`~uae_plugin.trial.online.OnlineAttack`), and every fine-tuned model's scores
on the three metrics (clean MSE; MSE under PGD-20 at ``TEST_EPS`` on ``ROBUST_ROWS`` test rows; MSE over the 9
corruptions × 5 severities on the same rows, corrupted once), plus the given model's scores. The trial,
``run_trial`` without a folder, does exactly that work plus its bookkeeping (model copies, the verdicts, the
report). Rounds alternate trial and parts; the best time of each is kept. Prints both and the ratio
(goal: within 1.05x).
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from uae_plugin import MinMaxAttack, Reconstruction, UnsupervisedPGD, matched_gaussian_noise, run_trial
from uae_plugin.experiments.data import mnist_split
from uae_plugin.experiments.models import DenseAutoencoder, train_autoencoder
from uae_plugin.trial import AdamFit
from uae_plugin.trial.arms import plan_arms
from uae_plugin.trial.corruptions import CORRUPTIONS, SEVERITIES, corrupt
from uae_plugin.trial.metrics import robust_subset
from uae_plugin.trial.online import OnlineAttack

EPS, SEEDS, STEPS = (0.3,), (0, 1, 2), 200
ARMS = ("none", "copy", "noise", "nomi", "pgd", "uae", "online-pgd")
TEST_EPS, ROBUST_ROWS = 0.1, 200


def mse_rows(model, x_in, x) -> torch.Tensor:
    with torch.no_grad():
        return (model.eval()(x_in) - x).pow(2).flatten(1).mean(1)


def scores(model, x_test, robust, corrupted) -> None:
    """The three metrics of one model, by hand (the corrupted rows made once, as the trial makes them)."""
    mse_rows(model, x_test, x_test).mean()
    adv = UnsupervisedPGD(Reconstruction(model), TEST_EPS, steps=20, seed=0)(robust)
    torch.maximum(mse_rows(model, adv, robust), mse_rows(model, robust, robust)).mean()
    for x_c in corrupted:
        mse_rows(model, x_c, robust).mean()


def parts(model, x, x_test) -> float:
    """The trial's work, done by hand: seconds."""
    start = time.perf_counter()
    robust = x_test[robust_subset(x_test.shape[0], ROBUST_ROWS)]
    corrupted = [
        corrupt(robust, name, severity, seed=c * 10 + severity)
        for c, name in enumerate(CORRUPTIONS)
        for severity in SEVERITIES
    ]
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
    scores(copy.deepcopy(model), x_test, robust, corrupted)
    fit = AdamFit()
    for arm in plan_arms(ARMS, EPS):
        for seed in SEEDS:
            if arm.online:
                augment = OnlineAttack(arm.kind, Reconstruction, arm.eps, 5, 0.5, 0, {})
                trained = fit(copy.deepcopy(model), x, steps=STEPS, seed=seed, augment=augment)
            else:
                data = x if arm.key == "none" else torch.cat([x, aug[arm.key]])
                trained = fit(copy.deepcopy(model), data, steps=STEPS, seed=seed)
            scores(trained, x_test, robust, corrupted)
    return time.perf_counter() - start


def trial(model, x, x_test) -> float:
    start = time.perf_counter()
    run_trial(
        model, x, x_test, arms=ARMS, eps=EPS, seeds=SEEDS, steps=STEPS, progress=False,
        metrics=("clean", "adversarial", "corruption"), test_eps=TEST_EPS, robust_rows=ROBUST_ROWS,
    )  # fmt: skip
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
    print(f"dense AE, {args.n_train} rows, eps {EPS}, {len(SEEDS)} seeds, {STEPS} fine-tuning steps, arms {ARMS}; "
          f"metrics clean, adversarial (PGD-20 at {TEST_EPS}), corruption, on {ROBUST_ROWS} test rows")  # fmt: skip
    print(f"parts by hand: {best['parts']:.2f} s   run_trial: {best['trial']:.2f} s   "
          f"ratio {best['trial'] / best['parts']:.3f}x")  # fmt: skip


if __name__ == "__main__":
    main()
