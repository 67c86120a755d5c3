"""Peak RSS of ``uae generate`` on 1,000 and on 5,000 MNIST digits: memory must not grow with the data set.

    python benchmarks/generate_memory.py

Writes the digits to ``.pt`` files in a temporary folder, runs the installed ``uae generate`` on each in a
child process (few steps: memory, not quality, is measured) and prints each child's peak resident set size.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from uae_plugin.data import load_mnist
from uae_plugin.models import ConvAutoencoder


def main() -> None:
    x, _ = load_mnist()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        torch.save(ConvAutoencoder().state_dict(), folder / "model.pt")
        print("| samples | peak RSS of uae generate (MiB) |")
        print("|---|---|")
        for n in (1000, 5000):
            torch.save(x[:n].clone(), folder / f"data{n}.pt")
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            command = [
                sys.executable,
                "-m",
                "uae_plugin.cli",
                "generate",
                "--model",
                str(folder / "model.pt"),
                "--model-class",
                "conv",
                "--data",
                str(folder / f"data{n}.pt"),
                "--out",
                str(folder / f"out{n}"),
                "--steps",
                "3",
                "--mine-steps",
                "1",
                "--no-progress",
            ]
            subprocess.run(command, check=True, capture_output=True)
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # max over children so far, KiB
            print(f"| {n} | {peak / 1024:.0f}{'' if peak > before else ' (not above the previous run)'} |")


if __name__ == "__main__":
    main()
