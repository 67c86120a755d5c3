"""``uae trial``: the controlled augmentation trial (:func:`uae_plugin.run_trial`) for a model file and data files.

Order: every option that can be checked alone is checked first (:func:`check_options`), before the model or any
data is read and before anything is printed; then the model, then the data (an array file's values checked whole
when it is opened); then the header, which states the rows actually trained on and scored; then the trial.

The data are read as ``uae generate`` reads them (:func:`~uae_plugin.cli.loading.load_dataset`). When their
decoded rows fit :func:`~uae_plugin.cli.loading.memory_limit` (1 GiB, or an eighth of the machine's memory), they
are decoded once into tensors (labels too) and the trial runs on those, as fast as on tensors passed in Python;
larger data stay lazy Datasets, every fine-tuning step reading its rows from the files (slower; the header says so).
Without ``--test-data``, ``--data mnist`` is scored on the built-in test split, and any other data holds out
``--test-fraction`` of its rows (a permutation seeded with 0) as the test set.
"""

from __future__ import annotations

import argparse
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from ..criteria import Contrastive, Reconstruction
from ..distributed import Ranks, process_group, wants_distributed
from ..settings import resolve_settings
from ..trial import run_trial
from ..trial.online import online_cost, views_per_row
from ..trial.plan import check_settings, criterion_for
from ..trial.run import write_report
from .loading import decoded_bytes, load_dataset, load_model, memory_limit, rows_in_memory
from .options import as_option, attack_options, image_options, model_options

QUICK = {"seeds": 2, "eps": 1, "fit_steps": 10, "attack_steps": 5, "train_rows": 128, "test_rows": 64}
QUICK_SIZES = (
    f"the first {QUICK['train_rows']} training and {QUICK['test_rows']} test rows, the first {QUICK['seeds']} "
    f"--seeds, the first --eps, {QUICK['fit_steps']} fine-tuning and {QUICK['attack_steps']} attack steps"
)


# --- the options, checked before anything is read ------------------------------------------------------------


OPTION_NAMES = {  # run_trial's argument -> the option that sets it, for errors that name the option
    "seeds": "--seeds", "arms": "--arms", "eps": "--eps", "metrics": "--metrics", "test_eps": "--test-eps",
    "target": "--target", "task": "--task", "robust_rows": "--robust-rows", "steps": "--fit-steps",
    "n_augment": "--augment", "batch_size": "--batch-size", "lr": "--lr", "online_steps": "--online-steps",
    "online_fraction": "--online-fraction", "test_attack": "--test-attack",
}  # fmt: skip


def check_options(args: argparse.Namespace) -> None:
    """Refuse every option that can be checked without the model or the data, before either is read and before
    anything is printed; each error names the option, what was expected and why (the trial's own
    :func:`~uae_plugin.trial.plan.check_settings`, reworded to name the options, and the command's own)."""
    if len(args.seeds) == 1:
        raise ValueError(
            "--seeds takes a list: seeds must hold at least 2 distinct seeds (a verdict compares per-seed "
            f"differences), e.g. --seeds 0 1 2; got one: {args.seeds[0]}"
        )
    as_option(lambda: check_settings(**_settings(args), fit=None, score=None), OPTION_NAMES)
    if not 0 < args.test_fraction < 1:
        raise ValueError(
            "--test-fraction must be in (0, 1) (the share of --data held out as the test set), "
            f"got {args.test_fraction}"
        )
    if args.image_size is not None and min(args.image_size) < 1:
        raise ValueError(f"--image-size must be two ints H W >= 1, got {' '.join(map(str, args.image_size))}")
    _check_attack(args)


def _check_attack(args: argparse.Namespace) -> None:
    """The attack's settings (``--steps``, ``--mine-steps``, ``--mi-weight``, ``--estimator``) on the preset."""
    given = {"steps": args.steps, "mine_steps": args.mine_steps, "mi_weight": args.mi_weight}
    settings = {k: v for k, v in {**given, "estimator": args.estimator}.items() if v is not None}
    maximize = (Contrastive if args.task == "contrastive" else Reconstruction).maximize_mi
    names = {"steps": "--steps", "mine_steps": "--mine-steps", "mi_weight": "--mi-weight", "estimator": "--estimator"}
    as_option(lambda: resolve_settings(args.preset, {**settings, "eps": args.eps[0]}, maximize), names)


# --- the data ------------------------------------------------------------------------------------------------


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
            f"{name} holds no labels: a contrastive trial scores a linear probe and kNN on the encoder's features, "
            "which need class labels; "
            "save them beside the data (torch.save({'x': x, 'y': y}, path), numpy.savez(path, x=x, y=y)) "
            "or use an image folder with class subfolders"
        )
    return y.long()


def _first(data: Dataset, n: int) -> Dataset:
    """The first ``n`` rows of ``data`` (all of them when it has fewer)."""
    return data if len(data) <= n else Subset(data, range(n))


def _test_words(args: argparse.Namespace, scored: int, held: int) -> str:
    """How the test set was made, stating the rows scored: ``scored`` of its ``held`` (--quick keeps the first)."""
    trimmed = scored < held
    if args.test_data is not None:
        rows = f"the first {scored} of its {held} rows: --quick" if trimmed else f"{held} rows"
        return f"test set {args.test_data} ({rows})"
    if args.data == "mnist":
        rows = f"the first {scored} of its {held} digits: --quick" if trimmed else f"{held} digits"
        return f"the built-in MNIST test split ({rows})"
    rows = f"the first {scored} of {held} rows" if trimmed else f"{held} rows"
    return (
        f"{rows} ({args.test_fraction:.0%}) of --data held out as the test set (seed 0{'; --quick' if trimmed else ''})"
    )


def read_rows(args: argparse.Namespace) -> tuple[Dataset, Dataset, str]:
    """``(train, test, how)``: the rows trained on and scored (after ``--quick``), as lazy Datasets, and how the
    test set was made; an array file's values are checked whole as it is opened."""
    read = {"image_size": tuple(args.image_size) if args.image_size else None, "channels": args.channels}
    train = load_dataset(args.data, "train", check_range=True, **read)
    if args.test_data is not None:
        test = load_dataset(args.test_data, "train", check_range=True, **read)
    elif args.data == "mnist":
        test = load_dataset("mnist", "test")
    else:
        keep, held = split_rows(len(train), args.test_fraction)
        train, test = Subset(train, keep.tolist()), Subset(train, held.tolist())
    held = len(test)
    if args.quick:
        train, test = _first(train, QUICK["train_rows"]), _first(test, QUICK["test_rows"])
    return train, test, _test_words(args, len(test), held)


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:.2f} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.1f} MiB"


def trial_data(args: argparse.Namespace) -> dict[str, Any]:
    """``{"x_train", "x_test", "y_train", "y_test", "how", "lazy"}``: tensors decoded once when the rows fit
    :func:`memory_limit`, else the lazy Datasets (``lazy`` then says why, for the header); labels only for a
    contrastive trial."""
    train, test, how = read_rows(args)
    labels = args.task == "contrastive"
    y_train = _need_labels(train, "--data") if labels else None
    y_test = _need_labels(test, "--test-data" if args.test_data else "--data") if labels else None
    need, limit = decoded_bytes(train) + decoded_bytes(test), memory_limit()
    lazy = None
    if need <= limit:
        train, test = rows_in_memory(train)[0], rows_in_memory(test)[0]
    else:
        lazy = (
            f"the rows are read from the files at every fine-tuning step (slower): decoded they take {_size(need)}, "
            f"over the in-memory limit of {_size(limit)}"
        )
    return {"x_train": train, "x_test": test, "y_train": y_train, "y_test": y_test, "how": how, "lazy": lazy}


# --- the trial -----------------------------------------------------------------------------------------------


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``run_trial`` the options give (``--quick`` cuts seeds, eps and steps)."""
    attack = {
        "steps": QUICK["attack_steps"] if args.quick else args.steps,
        "mine_steps": args.mine_steps,
        "similarity": args.similarity,
        "estimator": args.estimator,
        "mi_weight": args.mi_weight,
        "preset": args.preset,
    }
    return {
        "task": args.task,
        "arms": args.arms,
        "eps": args.eps[: QUICK["eps"]] if args.quick else args.eps,
        "seeds": args.seeds[: QUICK["seeds"]] if args.quick else args.seeds,
        "steps": QUICK["fit_steps"] if args.quick else args.fit_steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "n_augment": args.augment,
        "attack_options": {k: v for k, v in attack.items() if v is not None},
        "attack_seed": args.attack_seed,
        "metrics": args.metrics,
        "test_eps": args.test_eps,
        "test_attack": args.test_attack,
        "robust_rows": args.robust_rows,
        "target": args.target,
        "online_steps": args.online_steps,
        "online_fraction": args.online_fraction,
    }


def _header(model: torch.nn.Module, data: dict[str, Any], settings: dict[str, Any], quick: bool, progress: bool) -> str:
    """The plan, as run: the rows trained on and scored, seeds, eps, metrics, the online arms' cost (which
    ``run_trial`` states itself when it shows progress), --quick."""
    name = model.original_name if isinstance(model, torch.jit.ScriptModule) else type(model).__name__
    n_test = len(data["x_test"])
    parts = [
        f"uae trial: {name} on {len(data['x_train'])} training rows",
        data["how"],
        f"seeds {settings['seeds']}",
        f"eps {settings['eps']}",
        f"metrics {' '.join(settings['metrics'])}",
    ]
    robust = [m for m in settings["metrics"] if m in ("adversarial", "corruption")]
    if robust and settings["robust_rows"] is not None and settings["robust_rows"] < n_test:
        parts.append(f"{' and '.join(robust)} on {settings['robust_rows']} of the {n_test} test rows")
    online = [a for a in settings["arms"] if a.startswith("online-")]
    if online and not progress:
        fraction, steps = settings["online_fraction"], settings["online_steps"]
        views = views_per_row(criterion_for(settings["task"], model))
        cost = max(online_cost(a, steps, fraction, views) for a in online)
        parts.append(
            f"the online arms attack {fraction:.0%} of every batch for {steps} steps "
            f"(each of their fine-tunes costs about {cost:.1f}x a plain one)"
        )
    if data["lazy"]:
        parts.append(data["lazy"])
    if quick:
        parts.append(f"a smoke run (--quick: {QUICK_SIZES}): its numbers mean nothing")
    return "; ".join(parts)


def trial(args: argparse.Namespace) -> None:
    """``uae trial``: check the options, read the model and data, print the plan, run the trial, print the table
    and the verdict, write the report to ``--out``. Under ``torchrun`` with several processes, the fine-tunes
    are spread over them (:mod:`uae_plugin.trial.spread`) and rank 0 alone prints and writes."""
    distributed = wants_distributed(False)  # torchrun started several processes
    check_options(args)
    out = Path(args.out)
    model = load_model(args.model, args.model_class, args.model_kwargs)
    data = trial_data(args)
    settings = _settings(args)
    with process_group("cpu") if distributed else nullcontext(Ranks()) as ranks:
        if ranks.leader:
            print(_header(model, data, settings, args.quick, not args.no_progress), flush=True)
        report = run_trial(
            model, data["x_train"], data["x_test"], out=out, progress=not args.no_progress,
            y_train=data["y_train"], y_test=data["y_test"], **settings,
        )  # fmt: skip
    if not ranks.leader:
        return
    report.config["data"] = f"--data {args.data}; {data['how']}"  # report.md names the files
    if args.quick:  # the sizes of a smoke run decide nothing
        report.warnings.append(f"a smoke run (--quick: {QUICK_SIZES}): its numbers mean nothing")
        report.withheld = "a smoke run (--quick) decides nothing; rerun without --quick"
    write_report(report, out)
    print(report.table())
    written = [
        p.name
        for p in (out / n for n in ("report.json", "report.md", "change_vs_none.png", "examples.png"))
        if p.exists()
    ]
    print(f"\nreport in {out}: {', '.join(written)}; rerun the same command to resume or extend it")


def add_parser(sub: argparse._SubParsersAction) -> None:
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
    _data_options(p.add_argument_group("data"))
    _metric_options(p.add_argument_group("what every fine-tuned model is scored on"))
    _arm_options(p.add_argument_group("arms"))
    _fit_options(p.add_argument_group("fine-tuning"))
    image_options(p)
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run ({QUICK_SIZES}): checks the set-up; its numbers mean nothing",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    attack_options(p, "attack (the UAE arms; no-MI and PGD take the same steps)", budget=False)
    p.add_argument("--attack-seed", type=int, default=0, help="seed of the attacks and the noise (0)")
    p.set_defaults(func=trial)


def _data_options(p: argparse._ArgumentGroup) -> None:
    p.add_argument(
        "--data",
        default="mnist",
        help="training data: 'mnist' (built in), a .pt/.npy/.npz file or an image folder (class subfolders); "
        "decoded once into memory when it fits (1 GiB, or an eighth of this machine's memory), else read from the "
        "files at every fine-tuning step (slower)",
    )
    p.add_argument("--test-data", default=None, help="test data (default: hold out --test-fraction of --data)")
    p.add_argument(
        "--test-fraction", type=float, default=0.2, help="share of --data held out without --test-data (0.2)"
    )
    p.add_argument("--out", required=True, help="report folder (created; reused to resume)")


def _metric_options(p: argparse._ArgumentGroup) -> None:
    from ..trial import DEFAULT_METRICS, DEFAULT_TEST_EPS, METRICS

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


def _arm_options(p: argparse._ArgumentGroup) -> None:
    from ..trial import ARMS, DEFAULT_ARMS, DEFAULT_EPS
    from ..trial.online import DEFAULT_ONLINE_FRACTION, DEFAULT_ONLINE_STEPS

    p.add_argument(
        "--arms",
        nargs="+",
        default=list(DEFAULT_ARMS),
        metavar="ARM",
        help=f"arms to run, from {', '.join(ARMS)} ({' '.join(DEFAULT_ARMS)}; none always runs; the online arms "
        "attack part of every training batch and cost more)",
    )
    _list_option(p, "--eps", float, DEFAULT_EPS, "L-inf budgets, one UAE arm and its controls each")
    p.add_argument(
        "--target",
        choices=("self", "clean"),
        default="self",
        help="an augmented row is trained to reconstruct itself (self: the paper's augmentation) or its clean "
        "source (clean: denoising); reconstruction only (self)",
    )
    p.add_argument("--augment", type=int, default=None, help="augment only this many training rows (default all)")
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


def _fit_options(p: argparse._ArgumentGroup) -> None:
    from ..trial import DEFAULT_SEEDS
    from ..trial.budget import DEFAULT_BATCH_SIZE, DEFAULT_LR

    _list_option(p, "--seeds", int, DEFAULT_SEEDS, "fine-tuning seeds, a list of at least 2")
    p.add_argument(
        "--fit-steps",
        type=int,
        default=None,
        help="fine-tuning Adam steps of every arm (default: two passes over the training rows, >= 100)",
    )
    p.add_argument(
        "--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help=f"fine-tuning batch size ({DEFAULT_BATCH_SIZE})"
    )
    p.add_argument("--lr", type=float, default=DEFAULT_LR, help=f"fine-tuning Adam learning rate ({DEFAULT_LR:g})")


def _list_option(p: argparse._ArgumentGroup, flag: str, kind: type, default: Any, text: str) -> None:
    """``flag`` takes one or more ``kind`` values; its help ends with the defaults."""
    p.add_argument(flag, type=kind, nargs="+", default=list(default), help=f"{text} ({' '.join(map(str, default))})")
