"""Does the MI term change the UAE? Exact MI of UAEs against matched noise and the no-MI ablation.

    python benchmarks/mi_shapes_uae.py [--samples 256] [--setting NAME key=value ...]

On a ConvAutoencoder and a DenseAutoencoder trained on 4,000 embedded MNIST digits (3 epochs), attacks
``--samples`` held-out digits with ``MinMaxAttack(Reconstruction(ae), seed=s, **setting)`` for seeds
0, 1, 2, and with the same attack at ``mi_weight=0`` (the no-MI ablation), and draws Gaussian noise of
each UAE's L2 (``matched_gaussian_noise``). Scores every candidate with the exact per-sample MI
(``mutual_information``: ``-(k/2) log(1 - rho^2)``, k = 16, rho the Pearson correlation of x and x').
Prints success, MI (mean ± std over seeds), L2, and the UAE's MI as a fraction of each control's; the
MI term earns its place where that fraction is below 0.8 at success >= 0.9.
"""

from __future__ import annotations

import argparse

import torch
from trained_models import trained_autoencoders

from uae_plugin import MinMaxAttack, Reconstruction, matched_gaussian_noise, mutual_information
from uae_plugin.experiments.data import mnist_split

SETTINGS = {
    "defaults": {},
    "paper's eps and c0": {"eps": 1.0, "c0": 1e-3},
    "paper's eps and c0, start 0.5": {"eps": 1.0, "c0": 1e-3, "init_scale": 0.5},
    "paper's eps and c0, start 0.5, T 100": {"eps": 1.0, "c0": 1e-3, "init_scale": 0.5, "steps": 100},
}


def _mean_std(values: list[float]) -> str:
    t = torch.tensor(values)
    return f"{float(t.mean()):.2f} ± {float(t.std()):.2f}"


def main() -> None:
    from new_user_defaults import parse_variant  # benchmarks/new_user_defaults.py

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--setting", nargs="+", action="append", help="NAME key=value ... (default: three settings)")
    args = parser.parse_args()
    settings = dict(parse_variant(v) for v in args.setting) if args.setting else SETTINGS
    data = mnist_split(seed=0)
    x = data["x_test"][: args.samples]
    models = trained_autoencoders(data["x_train"])
    print(f"{args.samples} held-out MNIST digits, seeds 0-2, torch {torch.__version__}; MI in nats\n")
    print("| model | setting | success | MI uae | MI no-MI | MI noise | L2 uae / no-MI | uae/no-MI | uae/noise |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model_name, model in models.items():
        for name, overrides in settings.items():
            rows = {"success": [], "uae": [], "nomi": [], "noise": [], "l2": [], "l2nomi": []}
            for seed in (0, 1, 2):
                res = MinMaxAttack(Reconstruction(model), seed=seed, **overrides)(x)
                ablation = MinMaxAttack(Reconstruction(model), seed=seed, **{**overrides, "mi_weight": 0.0})(x)
                noise = matched_gaussian_noise(x, res.adv, seed=seed)
                rows["success"].append(res.success_rate)
                rows["uae"].append(float(mutual_information(x, res.adv).mean()))
                rows["nomi"].append(float(mutual_information(x, ablation.adv).mean()))
                rows["noise"].append(float(mutual_information(x, noise).mean()))
                rows["l2"].append(float((res.adv - x).flatten(1).norm(dim=1).mean()))
                rows["l2nomi"].append(float((ablation.adv - x).flatten(1).norm(dim=1).mean()))
            mean = {k: sum(v) / len(v) for k, v in rows.items()}
            print(
                f"| {model_name} | {name} {overrides or ''} | {mean['success']:.3f} | {_mean_std(rows['uae'])} "
                f"| {_mean_std(rows['nomi'])} | {_mean_std(rows['noise'])} | {mean['l2']:.2f} / {mean['l2nomi']:.2f} "
                f"| {mean['uae'] / mean['nomi']:.2f} | {mean['uae'] / mean['noise']:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
