"""Peak RSS of ``uae generate --limit 256`` on CIFAR-sized uint8 data of 10k, 80k and 320k rows, and throughput.

    python benchmarks/generate_memory.py [--sizes 10000 80000 320000] [--folder /tmp/uae-bench]

Memory must not grow with the data set: for each size, a ``.pt`` file of ``[N, 3, 32, 32]`` uint8 images and
a folder of ``N`` PNG files (10 class subfolders) are written under ``--folder`` (deleted at the end), and
``uae generate`` (a tiny TorchScript conv autoencoder, ``--steps 1 --mine-steps 1``) attacks their first 256
rows in its own child process, which prints its peak resident set size (``VmHWM`` of ``/proc/self/status``,
Linux) and, at its end, the anonymous and file-backed parts of its RSS.

Throughput: ``generate_dataset`` on the same 2,048 rows, once from the float tensor in memory and once from
the Dataset ``uae generate`` reads (the ``.pt`` file, and the image folder), samples/s of each.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from uae_plugin import MinMaxAttack, Reconstruction, generate_dataset
from uae_plugin.cli.loading import load_dataset

LIMIT, SHAPE = 256, (3, 32, 32)

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


def tiny_autoencoder() -> nn.Module:
    """A conv autoencoder for ``[B, 3, 32, 32]`` (about 5k weights)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(16, 3, 4, stride=2, padding=1),
        nn.Sigmoid(),
    ).eval()


def images(n: int, seed: int = 0) -> torch.Tensor:
    """``[n, 3, 32, 32]`` uint8: smooth random colour images (noise at 8x8, upsampled), cheap to write as PNG."""
    gen = torch.Generator().manual_seed(seed)
    small = torch.randint(0, 256, (n, 3, 8, 8), generator=gen, dtype=torch.uint8)
    return small.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)


def write_folder(x: torch.Tensor, folder: Path) -> None:
    """One PNG per row, in 10 class subfolders."""
    for c in range(10):
        (folder / f"class{c}").mkdir(parents=True, exist_ok=True)
    for i, row in enumerate(x.permute(0, 2, 3, 1).numpy()):
        Image.fromarray(np.ascontiguousarray(row)).save(folder / f"class{i % 10}" / f"{i:07d}.png", compress_level=1)


def peak_rss_mib(model: Path, data: Path, out: Path) -> tuple[float, float, float]:
    """``uae generate --limit 256`` in a child process: its peak RSS, and at exit anonymous and file-backed RSS."""
    command = [sys.executable, "-c", _CHILD, "generate", "--model", str(model), "--data", str(data), "--out", str(out)]
    command += ["--limit", str(LIMIT), "--steps", "1", "--mine-steps", "1", "--no-progress"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"uae generate failed: {done.stderr[-2000:]}")
    peak, anon, file = (int(v) / 1024 for v in done.stderr.split()[-3:])  # /proc reports kB
    return peak, anon, file


def samples_per_s(data: object, out: Path, attack: MinMaxAttack) -> float:
    start = time.perf_counter()
    n = generate_dataset(attack, data, out, chunk_size=LIMIT, progress=False)["n"]
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 80_000, 320_000])
    parser.add_argument("--folder", type=Path, default=Path("/tmp/uae-bench"), help="scratch folder (deleted)")
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=False)
    try:
        model = args.folder / "tiny.ts"
        torch.jit.script(tiny_autoencoder()).save(str(model))
        print("| rows | source | input on disk (MiB) | peak RSS (MiB) | at exit: anonymous | at exit: file-backed |")
        print("|---|---|---|---|---|---|")
        for n in args.sizes:
            x = images(n)
            sources = {".pt": args.folder / f"x{n}.pt", "image folder": args.folder / f"png{n}"}
            torch.save(x, sources[".pt"])
            write_folder(x, sources["image folder"])
            del x
            for name, path in sources.items():
                size = sum(p.stat().st_size for p in path.rglob("*")) if path.is_dir() else path.stat().st_size
                peak, anon, file = peak_rss_mib(model, path, args.folder / f"out-{name}-{n}")
                print(f"| {n} | {name} | {size / 2**20:.0f} | {peak:.0f} | {anon:.0f} | {file:.0f} |", flush=True)
            shutil.rmtree(sources["image folder"])
        print_throughput(args.folder, min(args.sizes))
    finally:
        shutil.rmtree(args.folder, ignore_errors=True)


def print_throughput(folder: Path, n_file: int) -> None:
    """samples/s of generate_dataset on 2,048 rows: tensor in memory against the Datasets uae generate reads."""
    n = 2048
    x = images(n_file)[:n]
    write_folder(x, folder / "png-throughput")
    attack = MinMaxAttack(Reconstruction(tiny_autoencoder()), steps=1, mine_steps=1, seed=0)
    sources = {
        "tensor in memory": x.float() / 255,
        ".pt Dataset": load_dataset(str(folder / f"x{n_file}.pt"), limit=n),
        "image folder Dataset": load_dataset(str(folder / "png-throughput"), limit=n),
    }
    print("\n| source (2,048 rows, --steps 1) | samples/s | vs tensor |\n|---|---|---|")
    rates = {}
    for name, data in sources.items():
        rates[name] = samples_per_s(data, folder / f"rate-{name}", attack)
        print(f"| {name} | {rates[name]:.0f} | {rates[name] / rates['tensor in memory']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
