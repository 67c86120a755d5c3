"""Command line and output files shared by the scripts that regenerate a README table.

Each such script takes ``--quick`` (tiny sizes, one seed, for CI), ``--out`` (a folder) and ``--threads``, and writes
``results.md`` (the table), ``metrics.json`` (settings, summary, every run, seconds) and ``accuracy.png`` to it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch


def parse_arguments(
    argv: Sequence[str] | None,
    doc: str,
    prog: str,
    out: str,
    threads: int,
    jobs: int | None = None,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """``--quick``, ``--out``, ``--threads`` (applied to torch), given a default ``jobs`` ``--jobs`` (worker
    processes), and the script's own options added by ``extra(parser)``; a bad value: one line on stderr, status 2."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and one seed, for a smoke run")
    parser.add_argument("--out", type=Path, default=Path(out), help="output folder")
    parser.add_argument("--threads", type=int, default=threads, help=f"torch CPU threads (default {threads})")
    if jobs is not None:
        parser.add_argument("--jobs", type=int, default=jobs, help=f"worker processes (default {jobs})")
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    problem = None
    if args.threads < 1:
        problem = f"--threads must be >= 1, got {args.threads}"
    elif getattr(args, "jobs", 1) < 1:
        problem = f"--jobs must be >= 1, got {args.jobs}"
    elif args.out.exists() and not args.out.is_dir():
        problem = f"--out {args.out} exists and is not a folder; pass a folder"
    if problem:
        print(f"{prog}: error: {problem}", file=sys.stderr)
        sys.exit(2)
    torch.set_num_threads(args.threads)
    return args


def write_outputs(out: Path, table: str, metrics: dict, plot: Callable[[Path], None]) -> None:
    """``results.md``, ``metrics.json`` and ``accuracy.png`` (drawn by ``plot(path)``) in ``out``; prints the table."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.md").write_text(table + "\n")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    plot(out / "accuracy.png")
    print(table)
    print(f"\nwrote {out}/results.md, metrics.json, accuracy.png in {metrics['seconds']:.0f} s")
