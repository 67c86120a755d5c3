"""Peak RSS of ``uae generate`` on 1,000 and on 5,000 MNIST digits: memory must not grow with the data set.

    python benchmarks/generate_memory.py [--steps 40]

Writes the digits to ``.pt`` files in a temporary folder, runs ``uae generate`` (default attack settings)
on each in its own child process and prints that process's peak resident set size, ``VmHWM`` of
``/proc/self/status`` read at its end (Linux). ``getrusage`` would also count the parent's pages the child
held between fork and exec, i.e. whatever this benchmark had loaded.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from uae_plugin.data import load_mnist
from uae_plugin.models import ConvAutoencoder

# Runs the uae command line, then reports this process's own high-water RSS on stderr's last line.
_CHILD = """
import sys
from uae_plugin.cli import main
code = main(sys.argv[1:])
peak = next(line for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(peak.split()[1], file=sys.stderr)
sys.exit(code)
"""


def peak_rss_mib(x: torch.Tensor, folder: Path, steps: int | None = None) -> float:
    """Generate UAEs for all of ``x`` with ``uae generate`` in a child process; its peak RSS in MiB."""
    n = x.shape[0]
    torch.save(ConvAutoencoder().state_dict(), folder / "model.pt")
    torch.save(x.clone(), folder / f"data{n}.pt")
    command = [sys.executable, "-c", _CHILD, "generate", "--model", str(folder / "model.pt")]
    command += ["--model-class", "conv", "--data", str(folder / f"data{n}.pt"), "--out", str(folder / f"out{n}")]
    command += ["--no-progress"] + (["--steps", str(steps)] if steps is not None else [])
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"uae generate failed: {done.stderr[-2000:]}")
    return int(done.stderr.split()[-1]) / 1024  # VmHWM is in kB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="outer steps T (default: the attack's)")
    args = parser.parse_args()
    x, _ = load_mnist()
    print("| digits | peak RSS of uae generate (MiB) |\n|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1000, 5000):
            print(f"| {n} | {peak_rss_mib(x[:n], Path(tmp), args.steps):.0f} |", flush=True)


if __name__ == "__main__":
    main()
