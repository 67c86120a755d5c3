"""Does ``torch.compile`` of the user's model speed the attack? Seconds per attack, eager vs compiled (inductor).

    OMP_NUM_THREADS=1 python benchmarks/compiled_model.py [--batch 64] [--steps 40] [--repeats 3]

A ConvAutoencoder (untrained: the time does not depend on the weights) attacked by ``MinMaxAttack`` on MNIST
digits; the compiled model's first attack (compilation included) is reported apart, then the best of ``repeats``.
"""

from __future__ import annotations

import argparse
import time

import torch

from uae_plugin import MinMaxAttack, Reconstruction
from uae_plugin.experiments.data import mnist_split
from uae_plugin.experiments.models import ConvAutoencoder


def _seconds(model: torch.nn.Module, x: torch.Tensor, steps: int) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    adv = MinMaxAttack(Reconstruction(model), steps=steps, seed=0)(x).adv
    return time.perf_counter() - start, adv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    x = mnist_split()["x_test"][: args.batch]
    model = ConvAutoencoder().eval()
    compiled = torch.compile(model)
    first, _ = _seconds(compiled, x, args.steps)
    eager = min(_seconds(model, x, args.steps)[0] for _ in range(args.repeats))
    fast = min(_seconds(compiled, x, args.steps)[0] for _ in range(args.repeats))
    gap = float((_seconds(model, x, args.steps)[1] - _seconds(compiled, x, args.steps)[1]).abs().max())
    print(f"batch {args.batch}, T = {args.steps}, {torch.get_num_threads()} thread(s)")
    print(f"eager model:    {eager:.3f} s per attack")
    print(f"compiled model: {fast:.3f} s per attack ({eager / fast:.2f}x), first call {first:.1f} s (compiling)")
    print(f"largest |adv_eager - adv_compiled|: {gap:.2e}")


if __name__ == "__main__":
    main()
