"""Would ``torch.compile`` of the closed-form MI term make the attack cheaper? Eager against compiled, in one process.

    OMP_NUM_THREADS=1 python benchmarks/compiled_mi.py [--repeats 5] [--batches 64 256] [--models dense conv]

The MI term is the attack's largest cost besides the model on the dense autoencoder (docs/performance.md). Here
:class:`uae_plugin.unexplained.Unexplained` (``1 - rho^2`` from the part of ``x'`` orthogonal to ``x``, and its
gradient) is replaced, in this process only, by its own two methods compiled with
``torch.compile(dynamic=True)`` (inductor; needs a C++ compiler). For each model of ``cost_ratio.models`` and
each batch: torchattacks PGD, the default attack as it is, and the default attack with the compiled MI term,
T = 40, interleaved, best of ``--repeats`` rounds; the compile time (first calls, two batch sizes) is printed,
and the compiled term's UAEs are checked against the eager ones (success flags equal, pixels within 0.01, a tenth of
ε: rounding differences grow over 40 Adam steps; measured up to 1.8e-3).
"""

from __future__ import annotations

import argparse
import time

import torch
from cost_ratio import NAMES, models
from pgd_floor import best_time, time_pgd

from uae_plugin import MinMaxAttack, Reconstruction, unexplained
from uae_plugin.experiments.data import mnist_split

EAGER = unexplained.Unexplained


def share(b: torch.Tensor, unit: torch.Tensor, floor: float):
    """``v, t, E, u, inner``: the library's own :class:`~uae_plugin.unexplained.Unexplained`, for compiling."""
    parts = EAGER(b, unit, floor)
    return parts.orthogonal, parts.along, parts.energy, parts.u, parts.inner


def gradient(orthogonal, along, energy, u, inner, unit, out, scale: float, m: float, floor: float):
    """:meth:`~uae_plugin.unexplained.Unexplained.gradient` on those parts, for compiling."""
    parts = EAGER.__new__(EAGER)
    parts.orthogonal, parts.along, parts.energy, parts.u, parts.inner = orthogonal, along, energy, u, inner
    parts.unit, parts.floor, parts.n = unit, floor, orthogonal.shape[1]
    return EAGER.gradient(parts, scale, m, out)


class CompiledUnexplained(EAGER):
    """:class:`~uae_plugin.unexplained.Unexplained` with its two passes compiled."""

    share = None
    gradient_fn = None

    def __init__(self, b: torch.Tensor, unit: torch.Tensor, floor: float) -> None:
        self.unit, self.floor, self.n = unit, floor, b.shape[1]
        self.orthogonal, self.along, self.energy, self.u, self.inner = self.share(b, unit, floor)

    def gradient(self, g, m: float, out: torch.Tensor | None = None) -> torch.Tensor:
        parts = (self.orthogonal, self.along, self.energy, self.u, self.inner, self.unit)
        return self.gradient_fn(*parts, out, float(g), m, self.floor)


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
    eager = EAGER
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
            compiled, _ = attack(x), attack(x[:3])  # the first calls compile (dynamic shapes: one for both sizes)
            compile_s = time.perf_counter() - start
            unexplained.Unexplained = eager
            same = attack(x)  # the compiled term gives the same UAEs to rounding
            assert torch.equal(compiled.success, same.success) and float((compiled.adv - same.adv).abs().max()) < 1e-2
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
