"""Does ``torch.compile`` of the user's model speed the attack? Seconds per attack, eager vs compiled (inductor).

    OMP_NUM_THREADS=1 python benchmarks/compiled_model.py

A ConvAutoencoder (untrained: the time does not depend on the weights) attacked by ``MinMaxAttack`` on MNIST
digits (batch 64, T = 40); the compiled model's first attack (compilation included) is reported apart, then the
best of 3.
"""

from __future__ import annotations

import time

import torch

from uae_plugin import MinMaxAttack, Reconstruction
from uae_plugin.experiments.data import mnist_split
from uae_plugin.experiments.models import ConvAutoencoder


def _seconds(model: torch.nn.Module, x: torch.Tensor, steps: int) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    adv = MinMaxAttack(Reconstruction(model), steps=steps, seed=0)(x).adv
    return time.perf_counter() - start, adv


BATCH, STEPS, REPEATS = 64, 40, 3


def main() -> None:
    torch.manual_seed(0)
    x = mnist_split()["x_test"][:BATCH]
    model = ConvAutoencoder().eval()
    compiled = torch.compile(model)
    first, _ = _seconds(compiled, x, STEPS)
    eager = min(_seconds(model, x, STEPS)[0] for _ in range(REPEATS))
    fast = min(_seconds(compiled, x, STEPS)[0] for _ in range(REPEATS))
    gap = float((_seconds(model, x, STEPS)[1] - _seconds(compiled, x, STEPS)[1]).abs().max())
    print(f"batch {BATCH}, T = {STEPS}, {torch.get_num_threads()} thread(s)")
    print(f"eager model:    {eager:.3f} s per attack")
    print(f"compiled model: {fast:.3f} s per attack ({eager / fast:.2f}x), first call {first:.1f} s (compiling)")
    print(f"largest |adv_eager - adv_compiled|: {gap:.2e}")


if __name__ == "__main__":
    main()
