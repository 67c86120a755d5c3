"""What each ``uae`` subcommand does, given its parsed arguments."""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import nullcontext
from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..criteria import Contrastive, Reconstruction
from ..distributed import Ranks, process_group, wants_distributed
from ..generation import atomic_write, generate_dataset
from ..generation.chunks import finished_run, read_chunk
from ..generation.sources import Rows
from ..minmax import MinMaxAttack
from ..validation import check_count, check_images
from .images import ImageFolderRows
from .loading import load_dataset, load_model


def _writable_folder(path: str) -> Path:
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"--out {folder} exists and is not a folder")
    parent = folder if folder.exists() else next((p for p in folder.parents if p.exists()), Path("."))
    if not parent.is_dir():
        raise NotADirectoryError(f"--out {folder} cannot be created: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"--out {folder} is not writable; choose a folder you can write to")
    return folder


def generate(args: argparse.Namespace) -> None:
    """``uae generate``: UAEs for a data set, chunked and resumable (see :func:`generate_dataset`).

    Under torchrun with several processes, or with ``--distributed``, every process loads the same model and
    data, joins the process group and attacks its share of the chunks; only rank 0 prints the summary.
    """
    distributed = wants_distributed(args.distributed)
    check_count(args.chunk_size, "--chunk-size")
    if args.limit is not None:
        check_count(args.limit, "--limit")
    check_count(args.workers, "--workers", minimum=0)
    out = _writable_folder(args.out)
    model = load_model(args.model, args.model_class, args.model_kwargs)
    image_size = tuple(args.image_size) if args.image_size is not None else None
    options = {"image_size": image_size, "channels": args.channels, "skip_bad": args.skip_bad}
    data = load_dataset(args.data, args.split, **options, limit=args.limit)
    rows = Rows(data)
    x, _ = rows.read(range(min(args.chunk_size, rows.n)))  # the first chunk: its values are checked before any work
    check_images(x, "--data")
    criterion = Contrastive(model) if args.task == "contrastive" else Reconstruction(model)
    optional = {"mi_weight": args.mi_weight} if args.mi_weight is not None else {}
    attack = MinMaxAttack(
        criterion,
        eps=args.eps,
        steps=args.steps,
        mine_steps=args.mine_steps,
        similarity=args.similarity,
        seed=args.seed,
        preset=args.preset,
        estimator=args.estimator,
        **optional,
    )
    # The first clean pass checks the model fits the data before any chunk is written; a model error becomes a
    # ValueError (Criterion._forward) naming the data's shape, which check_input records, not the probe's.
    criterion.check_input(x)
    with torch.no_grad():
        criterion.prepare(x[:2], None, args.seed)  # two rows: a missing channel axis cannot pass as one image
    _say_skipped(data, out)
    with process_group(x.device) if distributed else nullcontext(Ranks()) as ranks:
        generate_dataset(
            attack,
            data,
            out,
            chunk_size=args.chunk_size,
            progress=not args.no_progress,
            distributed=distributed,
            num_workers=args.workers,
        )
    if ranks.leader:
        _record_inputs(data, out)
        print(_summary(out))


def _say_skipped(data: Dataset, out: Path) -> None:
    """``--skip-bad``: one line on stderr naming the images left out (all of them in ``out/skipped.txt``)."""
    skipped = getattr(data, "skipped", [])
    if skipped:
        names = ", ".join(str(path) for path, _ in skipped[:3]) + (", ..." if len(skipped) > 3 else "")
        print(
            f"uae generate: skipped {len(skipped)} unreadable images ({out / 'skipped.txt'}): {names}", file=sys.stderr
        )


def _record_inputs(data: Dataset, out: Path) -> None:
    """For an image folder: ``files.txt`` (row, label, path of every row, in order) and ``skipped.txt``."""
    if not isinstance(data, ImageFolderRows):
        return
    labels = data.labels or [""] * len(data.files)
    lines = "".join(f"{i}\t{label}\t{path}\n" for i, (label, path) in enumerate(zip(labels, data.files, strict=True)))
    atomic_write(out / "files.txt", lambda fh: fh.write(lines.encode()))
    if data.skipped:
        skipped = "".join(f"{path}\t{reason}\n" for path, reason in data.skipped)
        atomic_write(out / "skipped.txt", lambda fh: fh.write(skipped.encode()))


def _summary(out: Path) -> str:
    """Success rate, mean MI and mean gap of a finished run, read chunk by chunk (just verified)."""
    _, entries = finished_run(out)
    n, hits, mi, gap = 0, 0, 0.0, 0.0
    for entry in entries:
        record = read_chunk(out, entry, check=False, mmap=True)
        n, hits = n + record["success"].numel(), hits + int(record["success"].sum())
        mi, gap = mi + float(record["mi"].double().sum()), gap + float(record["gap"].double().sum())
    return f"{n} UAEs in {out}: success rate {hits / n:.1%}, mean MI {mi / n:.3f}, mean gap {gap / n:.3f}"


def demo(args: argparse.Namespace) -> None:
    """``uae demo``: the trial on the bundled digits and reference autoencoders, with a report folder."""
    from ..experiments.demo import DEFAULT, QUICK, format_reports, run_demo

    out = _writable_folder(args.out)
    config = QUICK if args.quick else DEFAULT
    size = (
        "a smoke run at tiny sizes (about 10 s): the numbers below mean nothing"
        if args.quick
        else (
            f"a trial of {len(config.models)} autoencoders x {len(config.seeds)} seeds on {config.n_train} training "
            "digits (about 3.5 minutes on 2 CPU cores)"
        )
    )
    print(f"uae demo: {size}; report in {out}", flush=True)
    reports = run_demo(config, out_dir=out, progress=not args.no_progress)
    if args.quick:
        print("smoke run (--quick): barely trained models; run without --quick for the real comparison")
    print(format_reports(reports))
    print(f"\nreport: {out / 'report.md'}, {out / 'metrics.json'}, and per model {out}/<model>/ (pictures, UAEs)")
