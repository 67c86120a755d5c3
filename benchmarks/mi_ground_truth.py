"""Every MI estimator against the truth, on pairs whose per-sample MI is known.

    python benchmarks/mi_ground_truth.py [--samples 32]

Pairs: Gaussian images with per-pixel correlation rho (``uae_plugin.experiments.ground_truth``; truth
``-(m/2) log(1 - rho^2)`` for a linear feature of m values), real MNIST digits against independent
uniform noise (truth 0), against themselves and against an affine brightness change of themselves
(``0.5 x + 0.3``: the same information, truth infinite). Estimators: the closed-form Gaussian on
projection pairs (m = k = 16) and on conv maps (m = 1, per map value); MINE (the yardstick: 64
centred projections to 16 dimensions, 300 steps; and 16 centred conv maps pooled to 8x8, m = 64);
and the authors' reference (MINE on 500 uncentred, row-standardised projections to 128
dimensions, m = 128, 512 hidden units; trained 100 steps at learning rate 1e-3 on the first 8 samples only, as its
networks are 60x the yardstick's). Prints mean ± std over the samples next to the truth and
log N, the ceiling of a DV bound from N pairs.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from dataclasses import replace

import torch
from torch import nn

from uae_plugin import REFERENCE, mutual_information
from uae_plugin.experiments.data import mnist_split
from uae_plugin.experiments.ground_truth import correlated_images, true_mi
from uae_plugin.measure import YARDSTICK, SaturationWarning

RHOS = (0.0, 0.3, 0.6, 0.9, 0.99)


def estimators(conv: nn.Module) -> dict[str, tuple[dict, float, float]]:
    """name -> (mutual_information keywords, m of the truth, log N of its pairs or nan)."""
    return {
        "gaussian, projection": ({"estimator": "gaussian"}, YARDSTICK.pair_dim, math.nan),
        "gaussian, conv maps": ({"estimator": "gaussian", "similarity": "conv", "model": conv}, 1, math.nan),
        "mine, projection": ({"estimator": "mine"}, YARDSTICK.pair_dim, math.log(YARDSTICK.n_pairs)),
        "mine, conv maps": ({"estimator": "mine", "similarity": "conv", "model": conv}, 64, math.log(16)),
        "mine, reference": (
            {"estimator": "mine", "settings": replace(REFERENCE, mine_lr=1e-3), "steps": 100, "rows": 8},
            REFERENCE.pair_dim,
            math.log(500),
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=32)
    args = parser.parse_args()
    torch.manual_seed(0)
    conv = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1))
    digits = mnist_split(seed=0)["x_test"][: args.samples]
    noise = torch.rand(digits.shape, generator=torch.Generator().manual_seed(1))
    cases = [(f"Gaussian images, rho = {rho}", *correlated_images(args.samples, rho, seed=7), rho) for rho in RHOS]
    cases += [
        ("digit vs independent uniform noise", digits, noise, 0.0),
        ("digit vs itself", digits, digits, 1.0),
        ("digit vs 0.5 digit + 0.3", digits, 0.5 * digits + 0.3, 1.0),
    ]
    print(f"{args.samples} samples per row, torch {torch.__version__}; nats, mean ± std over samples\n")
    print("| pairs | estimator | truth | estimate | log N | flagged saturated |")
    print("|---|---|---|---|---|---|")
    for label, x, other, rho in cases:
        for name, (kwargs, m, log_n) in estimators(conv).items():
            start = time.perf_counter()
            kwargs = dict(kwargs)
            rows = kwargs.pop("rows", x.shape[0])
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", SaturationWarning)
                mi = mutual_information(x[:rows], other[:rows], **kwargs)
            flagged = "yes" if any(issubclass(w.category, SaturationWarning) for w in caught) else ""
            truth = true_mi(rho, m)
            truth_text = "inf" if math.isinf(truth) else f"{truth:.3f}"
            ceiling = "" if math.isnan(log_n) else f"{log_n:.2f}"
            print(
                f"| {label} | {name} | {truth_text} | {float(mi.mean()):.3f} ± {float(mi.std()):.3f} "
                f"| {ceiling} | {flagged} |  <!-- {time.perf_counter() - start:.1f} s -->",
                flush=True,
            )


if __name__ == "__main__":
    main()
