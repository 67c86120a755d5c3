"""Do the library defaults harm a user who retrains on train ∪ UAEs? Test error against no augmentation.

    python benchmarks/new_user_defaults.py [--seeds 0 1 2] [--variant NAME key=value ...]

The protocol a new user follows: train an autoencoder on 4,000 embedded MNIST digits (5 epochs, Adam
1e-3, batch 64), generate one augmentation for each of the first 2,000 training digits, then train 2
more epochs on train ∪ augmentations, every row reconstructing itself, and compare the test error on
1,000 held-out digits with 2 more epochs on train alone ("none"). Augmentations: ``uae`` is
``MinMaxAttack(Reconstruction(ae), seed=0, **variant)``; ``no-MI`` the same attack with
``mi_weight=0``; ``noise`` Gaussian noise of each UAE's L2 (``matched_gaussian_noise``); ``copy`` the
2,000 clean digits themselves, which isolates the 50% more gradient steps that 2 epochs of the larger
set take (the user's protocol counts epochs, not steps). Models: the
dense 784-128-784 autoencoder and a strided conv autoencoder with batch norm. Prints, per model and
variant, the mean test MSE change against "none" in % (± std over model seeds) and the UAEs' success
and exact MI (``mutual_information``, Gaussian estimator). Negative is better.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from uae_plugin import MinMaxAttack, Reconstruction, matched_gaussian_noise, mutual_information
from uae_plugin.experiments.data import mnist_split
from uae_plugin.experiments.models import (
    DenseAutoencoder,
    StridedConvAutoencoder,
    reconstruction_error,
    train_autoencoder,
)

MODELS = {"dense": DenseAutoencoder, "strided conv + BN": StridedConvAutoencoder}


def parse_variant(words: list[str]) -> tuple[str, dict]:
    """``NAME key=value ...`` -> (NAME, {key: value}) with values read as Python literals where they parse."""
    import ast

    name, settings = words[0], {}
    for word in words[1:]:
        key, _, value = word.partition("=")
        try:
            settings[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            settings[key] = value
    return name, settings


def fine_tune(base, inputs, seed):
    model = copy.deepcopy(base)
    return train_autoencoder(model, inputs, epochs=2, seed=seed + 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variant", nargs="+", action="append", help="NAME key=value ... (default: the defaults)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args()
    variants = [parse_variant(v) for v in args.variant] if args.variant else [("defaults", {})]
    data = mnist_split(4000, 1000, seed=0)
    x, x_test, src = data["x_train"], data["x_test"], data["x_train"][:2000]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, seeds {args.seeds}\n")
    print("| model | variant | success | MI uae / no-MI / noise | none MSE | copy % | uae % | no-MI % | noise % |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model_name in args.models:
        bases = {}
        for seed in args.seeds:
            torch.manual_seed(seed)
            bases[seed] = train_autoencoder(MODELS[model_name](), x, epochs=5, seed=seed)
        none = {s: reconstruction_error(fine_tune(b, x, s), x_test) for s, b in bases.items()}
        copy_change = torch.tensor(
            [
                100 * (reconstruction_error(fine_tune(b, torch.cat([x, src]), s), x_test) - none[s]) / none[s]
                for s, b in bases.items()
            ]
        )
        copy_cell = f"{float(copy_change.mean()):+.1f} ± {float(copy_change.std()) if len(bases) > 1 else 0.0:.1f}"
        for name, settings in variants:
            start = time.perf_counter()
            change = {"uae": [], "no-MI": [], "noise": []}
            success, mi = [], {"uae": [], "no-MI": [], "noise": []}
            for seed, base in bases.items():
                res = MinMaxAttack(Reconstruction(base), seed=0, **settings)(src)
                ablation = MinMaxAttack(Reconstruction(base), seed=0, **{**settings, "mi_weight": 0.0})(src)
                aug = {"uae": res.adv, "no-MI": ablation.adv, "noise": matched_gaussian_noise(src, res.adv)}
                success.append(res.success_rate)
                for method, adv in aug.items():
                    model = fine_tune(base, torch.cat([x, adv]), seed)
                    err = reconstruction_error(model, x_test)
                    change[method].append(100 * (err - none[seed]) / none[seed])
                    mi[method].append(float(mutual_information(src, adv).mean()))
            cells = []
            for method in change:
                t = torch.tensor(change[method])
                std = float(t.std()) if len(t) > 1 else 0.0
                cells.append(f"{float(t.mean()):+.1f} ± {std:.1f}")
            mis = " / ".join(f"{sum(v) / len(v):.2f}" for v in mi.values())
            seconds = time.perf_counter() - start
            print(
                f"| {model_name} | {name} {settings or ''} | {sum(success) / len(success):.2f} | {mis} "
                f"| {sum(none.values()) / len(none):.5f} | {copy_cell} | {' | '.join(cells)} | <!-- {seconds:.0f}s -->",
                flush=True,
            )


if __name__ == "__main__":
    main()
