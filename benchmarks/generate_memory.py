"""Peak RSS of ``uae generate`` on 1,000 and on 5,000 MNIST digits: memory must not grow with the data set.

    python benchmarks/generate_memory.py [--steps 40] [--sizes 1000 5000 20000]

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

from uae_plugin.experiments.data import load_mnist
from uae_plugin.experiments.models import ConvAutoencoder

# Runs the uae command line, then reports this process's own high-water RSS on stderr's last line.
_CHILD = """
import sys
from uae_plugin.cli import main
code = main(sys.argv[1:])
lines = [line.split() for line in open("/proc/self/status")]
status = {words[0].rstrip(":"): words[1] for words in lines if len(words) > 1}
print(status["VmHWM"], status["RssAnon"], status["RssFile"], file=sys.stderr)
sys.exit(code)
"""


def peak_rss_mib(x: torch.Tensor, folder: Path, steps: int | None = None) -> tuple[float, float, float]:
    """Generate UAEs for all of ``x`` with ``uae generate`` in a child process.

    Returns its peak RSS, and at its end the anonymous and the file-backed parts of RSS, in MiB. The
    file-backed part includes the pages of the memory-mapped input that were read (4 bytes per value).
    """
    n = x.shape[0]
    torch.save(ConvAutoencoder().state_dict(), folder / "model.pt")
    torch.save(x.clone(), folder / f"data{n}.pt")
    command = [sys.executable, "-c", _CHILD, "generate", "--model", str(folder / "model.pt")]
    command += ["--model-class", "conv", "--data", str(folder / f"data{n}.pt"), "--out", str(folder / f"out{n}")]
    command += ["--no-progress"] + (["--steps", str(steps)] if steps is not None else [])
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"uae generate failed: {done.stderr[-2000:]}")
    peak, anon, file = (int(v) / 1024 for v in done.stderr.split()[-3:])  # /proc reports kB
    return peak, anon, file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="outer steps T (default: the attack's)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000], help="digits (tiled past 5,000)")
    args = parser.parse_args()
    x, _ = load_mnist()
    print_memory_table(x, tuple(args.sizes), args.steps)


def print_memory_table(x: torch.Tensor, sizes: tuple[int, ...], steps: int | None) -> None:
    """One row per data-set size: the first ``n`` rows of ``x`` (tiled when ``n`` exceeds them)."""
    print("| digits | input file (MiB) | peak RSS (MiB) | at exit: anonymous | at exit: file-backed |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            data = x.repeat(-(-n // x.shape[0]), *([1] * (x.dim() - 1)))[:n]
            peak, anon, file = peak_rss_mib(data, Path(tmp), steps)
            size = data.numel() * data.element_size() / 2**20
            print(f"| {n} | {size:.0f} | {peak:.0f} | {anon:.0f} | {file:.0f} |", flush=True)


if __name__ == "__main__":
    main()
