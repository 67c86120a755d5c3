"""What each ``uae`` subcommand does, given its parsed arguments."""

from __future__ import annotations

import argparse
import os
from contextlib import nullcontext
from pathlib import Path

import torch

from ..criteria import Contrastive, Reconstruction
from ..distributed import Ranks, process_group, wants_distributed
from ..generation import generate_dataset, load_generated
from ..minmax import MinMaxAttack
from ..validation import check_count, check_images
from .loading import load_data, load_model


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
    out = _writable_folder(args.out)
    model = load_model(args.model, args.model_class)
    x = load_data(args.data, args.split)
    x = x[: args.limit] if args.limit is not None else x
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
    with process_group(x.device) if distributed else nullcontext(Ranks()) as ranks:
        generate_dataset(
            attack, x, out, chunk_size=args.chunk_size, progress=not args.no_progress, distributed=distributed
        )
    if ranks.leader:
        res = load_generated(out)
        print(
            f"{res['adv'].shape[0]} UAEs in {out}: success rate {res['success'].float().mean():.1%}, "
            f"mean MI {res['mi'].mean():.3f}, mean gap {res['gap'].mean():.3f}"
        )


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
            "digits (about 4 minutes on 2 CPU cores)"
        )
    )
    print(f"uae demo: {size}; report in {out}", flush=True)
    reports = run_demo(config, out_dir=out, progress=not args.no_progress)
    if args.quick:
        print("smoke run (--quick): barely trained models; run without --quick for the real comparison")
    print(format_reports(reports))
    print(f"\nreport: {out / 'report.md'}, {out / 'metrics.json'}, and per model {out}/<model>/ (pictures, UAEs)")
