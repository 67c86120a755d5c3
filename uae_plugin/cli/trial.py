"""``uae trial``: the controlled augmentation trial (:func:`uae_plugin.run_trial`) for a model file and data files.

The model and data are read as ``uae generate`` reads them, lazily, as Datasets (rows are decoded when used).
Without ``--test-data``, ``--data mnist`` is scored on the built-in test split, and any other data holds out
``--test-fraction`` of its rows (a permutation seeded with 0) as the test set.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from ..trial import run_trial
from ..trial.online import online_cost
from .loading import load_dataset, load_model
from .options import attack_options, image_options, model_options

QUICK = {"seeds": 2, "fit_steps": 10, "attack_steps": 5, "rows": 64}  # --quick: a smoke size


def split_rows(n: int, fraction: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(train, test)`` row positions: ``round(fraction n)`` rows (at least 1) held out by a permutation seeded
    with 0; both keep their original order."""
    if not 0 < fraction < 1:
        raise ValueError(f"--test-fraction must be in (0, 1), got {fraction}")
    n_test = max(1, round(fraction * n))
    if n_test >= n:
        raise ValueError(f"--data has {n} rows: too few to hold out a test set; pass --test-data")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    return order[n_test:].sort().values, order[:n_test].sort().values


def labels_of(data: Dataset) -> torch.Tensor | None:
    """The class labels ``[N]`` carried by a Dataset of ``(x, label)`` items (None for items ``x``), read from
    what the reader already knows (a tensor, an image folder's classes) without decoding the rows."""
    if isinstance(data, Subset):
        inner = labels_of(data.dataset)
        return None if inner is None else inner[torch.as_tensor(list(data.indices))]
    if isinstance(data, TensorDataset):
        return data.tensors[1] if len(data.tensors) > 1 else None
    known = getattr(data, "labels", None)
    if known is not None:
        return torch.as_tensor(known)
    first = data[0]
    if not isinstance(first, (tuple, list)) or len(first) < 2:
        return None
    return torch.as_tensor([int(data[i][1]) for i in range(len(data))])


def _need_labels(data: Dataset, name: str) -> torch.Tensor:
    y = labels_of(data)
    if y is None:
        raise ValueError(
            f"{name} holds no labels: a contrastive trial scores by kNN error, which needs class labels; "
            "save them beside the data (torch.save({'x': x, 'y': y}, path), numpy.savez(path, x=x, y=y)) "
            "or use an image folder with class subfolders"
        )
    return y.long()


def _data(args: argparse.Namespace) -> dict:
    """``{"x_train", "x_test", "y_train", "y_test", "how"}``: Datasets read lazily (:func:`load_dataset`);
    labels only for a contrastive trial."""
    read = {"image_size": tuple(args.image_size) if args.image_size else None, "channels": args.channels}
    train = load_dataset(args.data, "train", **read)
    if args.test_data is not None:
        test = load_dataset(args.test_data, "train", **read)
        how = f"test set {args.test_data} ({len(test)} rows)"
    elif args.data == "mnist":
        test = load_dataset("mnist", "test")
        how = f"the built-in MNIST test split ({len(test)} digits)"
    else:
        keep, held = split_rows(len(train), args.test_fraction)
        train, test = Subset(train, keep.tolist()), Subset(train, held.tolist())
        how = f"{held.numel()} rows ({args.test_fraction:.0%}) of --data held out as the test set (seed 0)"
    if args.quick:
        train = Subset(train, range(min(len(train), 2 * QUICK["rows"])))
        test = Subset(test, range(min(len(test), QUICK["rows"])))
    labels = args.task == "contrastive"
    y_train = _need_labels(train, "--data") if labels else None
    y_test = _need_labels(test, "--test-data" if args.test_data else "--data") if labels else None
    return {"x_train": train, "x_test": test, "y_train": y_train, "y_test": y_test, "how": how}


def trial(args: argparse.Namespace) -> None:
    """``uae trial``: run the trial, print the table and the verdict, write the report to ``--out``."""
    out = Path(args.out)
    model = load_model(args.model, args.model_class, args.model_kwargs)
    data = _data(args)
    options = {
        k: v
        for k, v in {
            "steps": QUICK["attack_steps"] if args.quick else args.steps,
            "mine_steps": args.mine_steps,
            "similarity": args.similarity,
            "estimator": args.estimator,
            "mi_weight": args.mi_weight,
            "preset": args.preset,
        }.items()
        if v is not None
    }
    seeds = args.seeds[: QUICK["seeds"]] if args.quick else args.seeds
    eps = args.eps[:1] if args.quick else args.eps
    online = [a for a in args.arms if a.startswith("online-")]
    cost = max((online_cost(a, args.online_steps, args.online_fraction) for a in online), default=1.0)
    print(
        f"uae trial: {model.original_name if isinstance(model, torch.jit.ScriptModule) else type(model).__name__} "
        f"on {len(data['x_train'])} training rows; {data['how']}; seeds {seeds}; eps {eps}; "
        f"metrics {' '.join(args.metrics)}"
        + (
            f"; the online arms attack {args.online_fraction:.0%} of every batch for {args.online_steps} steps "
            f"(each of their fine-tunes costs about {cost:.1f}x a plain one)"
            if online
            else ""
        )
        + ("; a smoke run (--quick): its numbers mean nothing" if args.quick else ""),
        flush=True,
    )
    report = run_trial(
        model,
        data["x_train"],
        data["x_test"],
        task=args.task,
        arms=args.arms,
        eps=eps,
        seeds=seeds,
        out=out,
        progress=not args.no_progress,
        steps=QUICK["fit_steps"] if args.quick else args.fit_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        n_augment=args.augment,
        attack_options=options,
        attack_seed=args.attack_seed,
        metrics=args.metrics,
        test_eps=args.test_eps,
        test_attack=args.test_attack,
        robust_rows=args.robust_rows,
        target=args.target,
        online_steps=args.online_steps,
        online_fraction=args.online_fraction,
        y_train=data["y_train"],
        y_test=data["y_test"],
    )
    print(report.table())
    written = [
        p.name
        for p in (out / n for n in ("report.json", "report.md", "change_vs_none.png", "examples.png"))
        if p.exists()
    ]
    print(f"\nreport in {out}: {', '.join(written)}; rerun the same command to resume or extend it")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..trial import ARMS, DEFAULT_ARMS, DEFAULT_EPS, DEFAULT_METRICS, DEFAULT_SEEDS, DEFAULT_TEST_EPS, METRICS
    from ..trial.online import DEFAULT_ONLINE_FRACTION, DEFAULT_ONLINE_STEPS

    p = sub.add_parser(
        "trial",
        help="does UAE augmentation help my model? a controlled trial with noise, no-MI and PGD controls",
        description="Fine-tune copies of a trained model on train alone (none), train plus clean copies (copy), "
        "train plus each augmentation (matched noise, the no-MI ablation, PGD, UAEs at each --eps), and, when "
        "asked, with attacks made in every training step (online-uae, online-pgd: adversarial training), for the "
        "same number of steps and over several seeds; score each on every --metrics (clean error, error under a "
        "PGD attack at --test-eps, error on common corruptions); report each arm's paired change against none "
        "per metric, with a Holm-corrected verdict (helps, harms, no measurable change). Writes report.json, "
        "report.md and change_vs_none.png to --out, and resumes from it.",
    )
    model_options(p, "the trained model")
    p.add_argument(
        "--data",
        default="mnist",
        help="training data: 'mnist' (built in), a .pt/.npy/.npz file or an image folder (class subfolders)",
    )
    p.add_argument("--test-data", default=None, help="test data (default: hold out --test-fraction of --data)")
    p.add_argument(
        "--test-fraction", type=float, default=0.2, help="share of --data held out without --test-data (0.2)"
    )
    p.add_argument("--out", required=True, help="report folder (created; reused to resume)")
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=list(DEFAULT_SEEDS),
        help=f"fine-tuning seeds, a list of at least 2 ({' '.join(map(str, DEFAULT_SEEDS))})",
    )
    p.add_argument(
        "--metrics",
        nargs="+",
        default=list(DEFAULT_METRICS),
        metavar="METRIC",
        help=f"what every fine-tuned model is scored on, from {', '.join(METRICS)} "
        f"({' '.join(DEFAULT_METRICS)}; corruption needs image rows and kornia, knn a contrastive trial)",
    )
    p.add_argument(
        "--test-eps",
        type=float,
        default=DEFAULT_TEST_EPS,
        help=f"L-inf budget of the adversarial metric, in (0, 1] (8/255 = {DEFAULT_TEST_EPS:.4f}, the robust-SSL "
        "anchors' on natural images; 0.1-0.3 is usual for digits)",
    )
    p.add_argument(
        "--test-attack",
        choices=("pgd", "autoattack"),
        default="pgd",
        help="attack of the adversarial metric: pgd (PGD-20, random start) or autoattack (torchattacks', "
        "contrastive only)",
    )
    p.add_argument(
        "--robust-rows",
        type=int,
        default=None,
        help="score the adversarial and corruption metrics on this many test rows (a seeded subset; default all)",
    )
    p.add_argument(
        "--target",
        choices=("self", "clean"),
        default="self",
        help="an augmented row is trained to reconstruct itself (self: the paper's augmentation) or its clean "
        "source (clean: denoising); reconstruction only (self)",
    )
    p.add_argument(
        "--eps",
        type=float,
        nargs="+",
        default=list(DEFAULT_EPS),
        help=f"L-inf budgets, one UAE arm and its controls each ({' '.join(map(str, DEFAULT_EPS))})",
    )
    p.add_argument(
        "--arms",
        nargs="+",
        default=list(DEFAULT_ARMS),
        metavar="ARM",
        help=f"arms to run, from {', '.join(ARMS)} ({' '.join(DEFAULT_ARMS)}; none always runs; the online arms "
        "attack part of every training batch and cost more)",
    )
    p.add_argument(
        "--online-steps",
        type=int,
        default=DEFAULT_ONLINE_STEPS,
        help=f"attack steps of the online arms in every training step ({DEFAULT_ONLINE_STEPS})",
    )
    p.add_argument(
        "--online-fraction",
        type=float,
        default=DEFAULT_ONLINE_FRACTION,
        help=f"share of every training batch the online arms attack ({DEFAULT_ONLINE_FRACTION})",
    )
    p.add_argument(
        "--fit-steps",
        type=int,
        default=None,
        help="fine-tuning Adam steps of every arm (default: two passes over the training rows, >= 100)",
    )
    p.add_argument("--batch-size", type=int, default=64, help="fine-tuning batch size (64)")
    p.add_argument("--lr", type=float, default=1e-3, help="fine-tuning Adam learning rate (1e-3)")
    image_options(p)
    p.add_argument("--augment", type=int, default=None, help="augment only this many training rows (default all)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run (2 seeds, one eps, 10 fine-tuning steps, 128 rows): checks the set-up",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    attack_options(p, "attack (the UAE arms; no-MI and PGD take the same steps)", budget=False)
    p.add_argument("--attack-seed", type=int, default=0, help="seed of the attacks and the noise (0)")
    p.set_defaults(func=trial)
