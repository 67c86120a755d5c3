"""What bounds the default attack's cost against torchattacks PGD with the same steps, model by model.

    OMP_NUM_THREADS=1 python benchmarks/attack_cost_bounds.py [--repeats 5] [--batches 256 64]
                                                              [--models conv dense strided]

For each model of ``cost_ratio.models`` and each batch, interleaved, best of ``--repeats`` rounds, per step of
T = 40 (milliseconds):

- ``PGD``: torchattacks PGD on the reconstruction loss (``pgd_floor.time_pgd``);
- ``UAE``: the default ``MinMaxAttack(Reconstruction(model))``;
- ``UAE, MI free``: the same with the closed-form MI replaced by a zero term (its forward, backward and
  float work gone; the iterates change, so this bounds rather than measures the MI's share);
- ``UAE, bookkeeping free``: also the keep-best rule and the dual ascent made no-ops;
- ``2 forwards``: two no-grad forward passes of the model over T: the clean reference ``g(x)`` and the score of
  the last iterate, which PGD does not make;
- ``model on PGD's / UAE's iterates``: forward and backward of the model alone on PGD's final examples and on
  the UAEs (the same shapes and code; a max-pool's branches make it depend on the values).

The zero terms are patched into this process only (``uae_plugin.estimators.GaussianEstimator.bound_and_gradient``
and friends); nothing here changes the library.
"""

from __future__ import annotations

import argparse
import contextlib

import torch
from cost_ratio import NAMES, models
from pgd_floor import best_time, pgd_on_task_loss, time_pgd

from uae_plugin import MinMaxAttack, Reconstruction, dual, estimators, keep_best
from uae_plugin.experiments.data import mnist_split

STEPS = 40


@contextlib.contextmanager
def free(mi: bool, bookkeeping: bool):
    """The MI term (and the keep-best rule and dual ascent) made free in this process, restored after."""
    saved = estimators.GaussianEstimator.bound_and_gradient, keep_best.KeepBest.update, dual.DualAscent.update
    if mi:
        estimators.GaussianEstimator.bound_and_gradient = lambda self, a, b, step=0, scale=None: (
            b.new_zeros(b.shape[0]),
            None,
        )
    if bookkeeping:
        keep_best.KeepBest.update = lambda self, *args, **kwargs: None
        dual.DualAscent.update = lambda self, c, gap, t: c
    try:
        yield
    finally:
        estimators.GaussianEstimator.bound_and_gradient, keep_best.KeepBest.update, dual.DualAscent.update = saved


def forward_backward(model: torch.nn.Module, x: torch.Tensor, inputs: torch.Tensor) -> float:
    """Seconds of T forward and backward passes of the model alone on ``inputs`` (gradient to the input)."""
    start = inputs.detach()

    def run() -> None:
        for _ in range(STEPS):
            d = start.clone().requires_grad_(True)
            torch.autograd.grad((model(d) - x).pow(2).sum(), d)

    return best_time(run, 1)


def two_forwards(model: torch.nn.Module, x: torch.Tensor) -> float:
    def run() -> None:
        with torch.no_grad():
            model(x)
            model(x)

    return best_time(run, 1)


def bounds(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> dict[str, float]:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    attack = MinMaxAttack(Reconstruction(model), steps=STEPS, seed=0)
    uae = attack(x).adv
    pgd_adv = pgd_on_task_loss(Reconstruction(model), x, STEPS)()
    times: dict[str, list[float]] = {}
    for _ in range(repeats):
        times.setdefault("PGD", []).append(time_pgd(Reconstruction(model), x, STEPS, repeats=1))
        times.setdefault("UAE", []).append(best_time(lambda: attack(x), 1))
        with free(mi=True, bookkeeping=False):
            times.setdefault("UAE, MI free", []).append(best_time(lambda: attack(x), 1))
        with free(mi=True, bookkeeping=True):
            times.setdefault("UAE, bookkeeping free", []).append(best_time(lambda: attack(x), 1))
        times.setdefault("2 forwards", []).append(two_forwards(model, x))
        times.setdefault("model on PGD's iterates", []).append(forward_backward(model, x, pgd_adv))
        times.setdefault("model on UAE's iterates", []).append(forward_backward(model, x, uae))
    return {name: min(t) / STEPS * 1000 for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 64])
    parser.add_argument("--models", nargs="+", choices=list(NAMES), default=list(NAMES))
    args = parser.parse_args()
    data = mnist_split(seed=0)
    nets = models(data["x_train"], args.models)
    columns = None
    for batch in args.batches:
        x = data["x_test"][:batch]
        for kind, model in nets.items():
            ms = bounds(model, x, args.repeats)
            if columns is None:
                columns = list(ms)
                print(f"ms per step, T = {STEPS}, best of {args.repeats} interleaved rounds\n")
                print("| model | batch | " + " | ".join(columns) + " |\n|" + "---|" * (len(columns) + 2))
            cells = [f"{ms[c]:.3f} ({ms[c] / ms['PGD']:.2f}x)" for c in columns]
            print(f"| {NAMES[kind]} | {batch} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
