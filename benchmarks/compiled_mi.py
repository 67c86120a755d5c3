"""Would ``torch.compile`` of the closed-form MI term make the attack cheaper? Eager against compiled, in one process.

    OMP_NUM_THREADS=1 python benchmarks/compiled_mi.py [--repeats 5] [--batches 64 256] [--models dense conv]

The MI term is the attack's largest cost besides the model on the dense autoencoder (docs/performance.md). Here
:class:`uae_plugin.unexplained.Unexplained` (``1 - rho^2`` from the part of ``x'`` orthogonal to ``x``, and its
gradient) is replaced, in this process only, by the same arithmetic written as two pure functions compiled with
``torch.compile(dynamic=True)`` (inductor; needs a C++ compiler). For each model of ``cost_ratio.models`` and
each batch: torchattacks PGD, the default attack as it is, and the default attack with the compiled MI term,
T = 40, interleaved, best of ``--repeats`` rounds; the compile time (first calls, two batch sizes) is printed.
"""

from __future__ import annotations

import argparse
import time

import torch
from cost_ratio import NAMES, models
from pgd_floor import best_time, time_pgd

from uae_plugin import MinMaxAttack, Reconstruction, unexplained
from uae_plugin.experiments.data import mnist_split

_NO_VARIANCE = 1e-30


def share(b: torch.Tensor, unit: torch.Tensor, floor: float):
    """``v, t, E, u, inner`` of :class:`~uae_plugin.unexplained.Unexplained`, out of place."""
    centred = b - b.mean(dim=2, keepdim=True)
    along = (centred * unit).sum(dim=2, keepdim=True)
    orthogonal = centred - unit * along
    residual = (orthogonal * orthogonal).sum(dim=2, keepdim=True) + _NO_VARIANCE
    energy = along * along + residual
    u = residual / energy
    return orthogonal, along, energy, u, u * (1.0 - floor) + floor


def gradient(orthogonal, along, energy, u, inner, unit, out, scale: float, m: float, floor: float, n: int):
    """``out + scale dI/db`` (:meth:`~uae_plugin.unexplained.Unexplained.gradient`), out of place."""
    k = (scale * -m * (1.0 - floor) / n) / (energy * inner)
    return out + orthogonal * (k * (1.0 - u)) - unit * (k * u * along)


class CompiledUnexplained(unexplained.Unexplained):
    """:class:`~uae_plugin.unexplained.Unexplained` with its two passes compiled."""

    share = None
    gradient_fn = None

    def __init__(self, b: torch.Tensor, unit: torch.Tensor, floor: float) -> None:
        self.unit, self.floor, self.n = unit, floor, b.shape[1]
        self.orthogonal, self.along, self.energy, self.u, self.inner = self.share(b.to(unit.dtype), unit, floor)

    def gradient(self, g, m: float, out: torch.Tensor | None = None) -> torch.Tensor:
        target = torch.zeros_like(self.orthogonal) if out is None else out
        parts = (self.orthogonal, self.along, self.energy, self.u, self.inner, self.unit)
        return target.copy_(self.gradient_fn(*parts, target, float(g), m, self.floor, self.n))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--models", nargs="+", choices=list(NAMES), default=["dense", "conv"])
    args = parser.parse_args()
    data = mnist_split(seed=0)
    nets = models(data["x_train"], args.models)
    CompiledUnexplained.share = staticmethod(torch.compile(share, dynamic=True))
    CompiledUnexplained.gradient_fn = staticmethod(torch.compile(gradient, dynamic=True))
    eager = unexplained.Unexplained
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, T = 40, best of {args.repeats} rounds\n")
    print("| model | batch | PGD s | default s | x PGD | compiled MI s | x PGD | compile s |")
    print("|---|---|---|---|---|---|---|---|")
    for batch in args.batches:
        x = data["x_test"][:batch]
        for kind, model in nets.items():
            attack = MinMaxAttack(Reconstruction(model), steps=40, seed=0)
            attack(x[:2])
            time_pgd(Reconstruction(model), x[:2], 2, repeats=1)
            unexplained.Unexplained = CompiledUnexplained
            start = time.perf_counter()
            attack(x), attack(x[:3])  # the first calls compile (dynamic shapes: one compile for both sizes)
            compile_s = time.perf_counter() - start
            times: dict[str, list[float]] = {"pgd": [], "eager": [], "compiled": []}
            try:
                for _ in range(args.repeats):
                    times["pgd"].append(time_pgd(Reconstruction(model), x, 40, repeats=1))
                    unexplained.Unexplained = eager
                    times["eager"].append(best_time(lambda a=attack, x=x: a(x), 1))
                    unexplained.Unexplained = CompiledUnexplained
                    times["compiled"].append(best_time(lambda a=attack, x=x: a(x), 1))
            finally:
                unexplained.Unexplained = eager
            pgd, e, c = (min(times[k]) for k in ("pgd", "eager", "compiled"))
            print(
                f"| {NAMES[kind]} | {batch} | {pgd:.3f} | {e:.3f} | {e / pgd:.2f} | {c:.3f} | {c / pgd:.2f} | "
                f"{compile_s:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
