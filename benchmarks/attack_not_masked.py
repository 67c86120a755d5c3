"""Is the adversarial metric's attack masked? Its error must grow with ε, and more steps must not lower it.

    python benchmarks/attack_not_masked.py

On the small conv autoencoder of ``tests/test_trial_robustness.py`` (16×16 digits, 300 Adam steps) and on a
linear probe of a random conv encoder (the contrastive protocol), prints the error of the trial's adversarial
metric (PGD with a random start, per row the worse of ``x'`` and ``x``) at several ε and 10, 20 and 40 steps; for
the probe also torchattacks' AutoAttack (``test_attack="autoattack"``), which does not rely on the cross entropy's
gradient alone (APGD-DLR, FAB, Square) and so exposes a PGD-CE that saturates.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from uae_plugin.experiments.data import mnist_split
from uae_plugin.trial import AdamFit
from uae_plugin.trial.metrics import Robustness, TrialMetrics

STEPS = (10, 20, 40)
EPS = {"reconstruction": (0.02, 0.05, 0.1, 0.2, 0.3), "contrastive": (0.002, 0.005, 0.01, 0.02, 0.3)}


def main() -> None:
    split = mnist_split(n_train=400, n_test=200, seed=0)
    small = {k: F.interpolate(split[k], size=16, mode="area") for k in ("x_train", "x_test")}
    torch.manual_seed(0)
    autoencoder = nn.Sequential(
        nn.Conv2d(1, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(),
        nn.ConvTranspose2d(16, 8, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(8, 1, 4, 2, 1), nn.Sigmoid(),
    )  # fmt: skip
    AdamFit(lr=3e-3)(autoencoder, small["x_train"], steps=300, seed=0)
    encoder = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2), nn.ReLU(), nn.Flatten())
    cases = {
        "reconstruction (MSE)": ("reconstruction", autoencoder, small, {}),
        "contrastive (probe error)": (
            "contrastive", encoder, split, {"x_train": split["x_train"], "y_train": split["y_train"],
                                            "y_test": split["y_test"]},
        ),
    }  # fmt: skip
    for title, (task, model, data, extra) in cases.items():
        x = data["x_test"]
        clean = float(TrialMetrics(task, ["clean"], {}, Robustness(), x.shape[0], **extra)(model, x)["clean"])
        print(f"\n{title}: clean {clean:.4g}")
        print("| attack | " + " | ".join(f"ε {e:g}" for e in EPS[task]) + " |")
        print("|---|" + "---|" * len(EPS[task]))
        attacks = [("pgd", steps) for steps in STEPS] + ([("autoattack", 20)] if task == "contrastive" else [])
        for attack, steps in attacks:
            row = []
            for e in EPS[task]:
                robust = Robustness(e, steps=steps, attack=attack)
                metric = TrialMetrics(task, ["adversarial"], {}, robust, x.shape[0], **extra)
                row.append(f"{float(metric(model, x)['adversarial']):.4g}")
            name = f"PGD-{steps}" if attack == "pgd" else "AutoAttack (standard)"
            print(f"| {name} | " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
