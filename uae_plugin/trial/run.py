"""``run_trial``: does UAE augmentation help *this* model? A controlled trial on the user's own model and data.

For every arm ``a`` (:mod:`.arms`) and seed ``s``: a copy of the trained model continues training on the arm's
data ``train ∪ aug_a`` for the same budget (:mod:`.budget`), then is scored on the test set; the per-seed
differences against ``none`` give each arm's verdict (:mod:`.verdict`). The augmentations are made once per ε
from the given model and shared by every seed; the seeds vary the fine-tuning (batch order, the model's own
random draws), so the verdict is about this model and this data.

Cost: one generation per ε (UAE, no-MI ablation, PGD: three attacks of T steps on the augmented rows) plus
arms × seeds fine-tunes and their scores, plus one score of the given model; nothing else.
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..criteria import Contrastive, Reconstruction
from ..generation import tensor_digest
from ..minmax import MinMaxAttack
from .arms import DEFAULT_ARMS, DEFAULT_EPS, Arm, plan_arms
from .augment import augmentations, augmented_rows
from .budget import DEFAULT_BATCH_SIZE, DEFAULT_LR, AdamFit, default_steps, reconstruction_error
from .checks import (
    check_labels,
    check_model_takes,
    check_seeds,
    checked_score,
    describe_callable,
    digest_rows,
)
from .report import TrialReport, examples_of
from .rows import Data, check_data, count, join, on_device_of, take
from .store import TrialFolder

TASKS = ("reconstruction", "contrastive")
RESERVED_OPTIONS = ("eps", "seed")  # set by the trial per arm


def _defaults(task: str, fit: Any, score: Any, x_train: Data, y_train: Any, y_test: Any, n_test: int, lr, batch):
    """The fit and score to use: the user's, or the task's defaults (contrastive ones need lightly and labels)."""
    if task == "reconstruction":
        return fit or AdamFit(lr=lr, batch_size=batch), score or reconstruction_error
    from .contrastive import KNNError, SimCLRLoss  # needs the [lightly] extra only for its defaults

    if score is None:
        if y_train is None or y_test is None:
            raise ValueError(
                "task='contrastive' scores by kNN error, which needs labels: pass y_train and y_test, "
                "or a score(model, x_test) -> float (lower is better)"
            )
        score = KNNError(
            x_train, check_labels(y_train, count(x_train), "y_train"), check_labels(y_test, n_test, "y_test")
        )
    return fit or AdamFit(lr=lr, batch_size=batch, loss=SimCLRLoss()), score


def run_trial(
    model: nn.Module,
    x_train: Data,
    x_test: Data,
    *,
    task: str = "reconstruction",
    fit: Callable[..., nn.Module] | None = None,
    score: Callable[[nn.Module, Data], float] | None = None,
    arms: Sequence[str] = DEFAULT_ARMS,
    eps: Sequence[float] = DEFAULT_EPS,
    seeds: Sequence[int] = (0, 1, 2),
    out: str | os.PathLike | None = None,
    progress: bool = True,
    steps: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    n_augment: int | None = None,
    attack_options: dict[str, Any] | None = None,
    attack_seed: int = 0,
    y_train: torch.Tensor | None = None,
    y_test: torch.Tensor | None = None,
) -> TrialReport:
    """Does augmenting with UAEs help ``model``? Every arm fine-tunes a copy of it; the report says, with controls.

    Args:
        model: the user's *trained* model (an autoencoder for ``"reconstruction"``, an encoder for
            ``"contrastive"``); never modified: each arm trains a deep copy.
        x_train, x_test: tensors ``[N, ...]`` in [0, 1], or map-style Datasets of rows ``x`` or ``(x, ...)``.
        task: ``"reconstruction"`` or ``"contrastive"``; sets the attack's criterion and the default fit and score.
        fit: ``fit(model, data, *, steps, seed) -> model`` continues training on the arm's data (a tensor or
            Dataset of rows). Default: :class:`~uae_plugin.trial.budget.AdamFit` (Adam, ``lr``, ``batch_size``) on
            the reconstruction loss, or on NT-Xent between SimCLR views (contrastive, needs ``[lightly]``).
        score: ``score(model, x_test) -> float``, lower is better. Default: test MSE per element, or kNN error
            (contrastive, needs ``y_train`` and ``y_test``).
        arms: from ``none, copy, noise, nomi, pgd, uae`` (``none`` always runs: it is the reference).
        eps: the L-inf budgets; each gives its own uae, noise, nomi and pgd arms.
        seeds: at least 2 fine-tuning seeds (a verdict compares per-seed differences).
        out: a folder for the generated sets, the scores so far (a rerun resumes) and the report
            (``report.json``, ``report.md``, ``change_vs_none.png``, ``examples.png``).
        steps: fine-tuning steps of every arm (default: two passes over ``x_train`` at ``batch_size``, >= 100).
        n_augment: how many training rows get an augmentation (default all; a seeded subset otherwise).
        attack_options: keyword arguments of :class:`~uae_plugin.MinMaxAttack` (``steps``, ``c0``, ``preset``,
            ``mi_weight``, ...) for the UAE arms; the no-MI arm sets ``mi_weight=0``, PGD takes the same ε and steps.
        attack_seed: the seed of the attacks and of the noise.

    Returns:
        :class:`~uae_plugin.trial.report.TrialReport`: ``.scores``, ``.verdict``, ``.controls``, ``.table()``,
        ``.to_json(path)``, ``.plot(path)``, ``.recommendation``.

    Example:
        >>> report = run_trial(autoencoder, x_train, x_test, seeds=(0, 1, 2), out="trial/")
        >>> print(report.table()); report.verdict["uae@0.3"]
    """
    start = time.perf_counter()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    seeds = check_seeds(seeds)
    plan = plan_arms(arms, eps)
    check_data(x_train, "x_train")
    check_data(x_test, "x_test")
    for name, f in (("fit", fit), ("score", score)):
        if f is not None and not callable(f):
            raise TypeError(f"{name} must be callable, got {type(f).__name__}")
    options = dict(attack_options or {})
    reserved = [k for k in RESERVED_OPTIONS if k in options]
    if reserved:
        raise ValueError(f"attack_options must not set {reserved[0]!r}: the trial sets it (use eps= and attack_seed=)")
    n_train = count(x_train)
    steps = default_steps(n_train, batch_size) if steps is None else steps
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    if n_augment is not None and (isinstance(n_augment, bool) or not isinstance(n_augment, int) or n_augment < 1):
        raise ValueError(f"n_augment must be None or an int >= 1, got {n_augment!r}")
    fit, score = _defaults(task, fit, score, x_train, y_train, y_test, count(x_test), lr, batch_size)
    criterion = Contrastive(model) if task == "contrastive" else Reconstruction(model)
    check_model_takes(criterion, x_train, "x_train")
    check_model_takes(criterion, x_test, "x_test")
    for e in {a.eps for a in plan if a.eps is not None}:
        MinMaxAttack(criterion, **{**options, "eps": e, "seed": attack_seed})  # refuses bad options before any work

    config = {
        "task": task,
        "model": type(model).__name__,
        "n_train": n_train,
        "n_test": count(x_test),
        "n_augment": n_augment,
        "steps": steps,
        "fit": describe_callable(fit),
        "score": describe_callable(score),
        "attack_options": options,
        "attack_seed": attack_seed,
    }
    identity = {
        **config,
        "model_sha256": tensor_digest(model.state_dict().values()),
        "x_train_sha256": digest_rows(x_train),
        "x_test_sha256": digest_rows(x_test),
    }
    store = TrialFolder(None if out is None else Path(out), identity)
    timings = {"generate_s": 0.0, "fit_s": 0.0, "score_s": 0.0}

    if store.baseline is None:
        store.baseline = checked_score(score(copy.deepcopy(model), x_test))
        store.save()

    rows = augmented_rows(n_train, n_augment)
    todo = [(arm, s) for arm in plan for s in seeds if not store.done(arm.key, s)]
    src: torch.Tensor | None = None
    made: dict[float, dict[str, torch.Tensor]] = {}
    examples: dict[str, torch.Tensor] = {}

    def data_of(arm: Arm) -> Data:
        nonlocal src
        if arm.kind == "none":
            return x_train
        if src is None:
            src = take(x_train, rows)
        if arm.kind == "copy":
            return join(x_train, src)
        if arm.eps not in made:
            t0 = time.perf_counter()
            kinds = {a.kind for a in plan if a.eps == arm.eps}
            if progress:
                bar.write(f"uae trial: {', '.join(sorted(kinds | {'uae'}))} at eps {arm.eps:g} for {src.shape[0]} rows")
            folder = store.uae_folder(arm.eps)
            rows_here = on_device_of(model, src)
            aug, stats = augmentations(criterion, rows_here, arm.eps, kinds, options, attack_seed, folder)
            made[arm.eps] = {k: v.cpu() for k, v in aug.items()}
            store.stats[f"{arm.eps:g}"] = stats
            store.save()
            examples.update(examples_of(src, {f"{k}@{arm.eps:g}": v for k, v in made[arm.eps].items()}))
            timings["generate_s"] += time.perf_counter() - t0
        return join(x_train, made[arm.eps][arm.kind])

    bar = tqdm(total=len(todo), unit="fine-tune", desc="uae trial (arm x seed)", disable=not progress or not todo)
    for i, (arm, seed) in enumerate(todo):
        data = data_of(arm)
        bar.set_postfix_str(f"{arm.key} seed {seed}")
        t0 = time.perf_counter()
        trained = fit(copy.deepcopy(model), data, steps=steps, seed=seed)
        if not isinstance(trained, nn.Module):
            raise TypeError(f"fit must return the trained model (an nn.Module), got {type(trained).__name__}")
        t1 = time.perf_counter()
        store.record(arm.key, seed, checked_score(score(trained, x_test)))
        timings["fit_s"] += t1 - t0
        timings["score_s"] += time.perf_counter() - t1
        bar.update(1)
        if i == 0 and progress and len(todo) > 1:
            left = (time.perf_counter() - t0) * (len(todo) - 1)
            bar.write(
                f"uae trial: {len(todo)} fine-tunes of {steps} steps; about {left / 60:.1f} min more "
                "(plus one generation per ε)"
            )
    bar.close()
    timings["total_s"] = time.perf_counter() - start
    config.update(eps=sorted({a.eps for a in plan if a.eps}), seeds=seeds, arms=[a.key for a in plan])
    scores = {a.key: [store.scores[a.key][str(s)] for s in seeds] for a in plan}
    stats = {f"{e:g}": store.stats[f"{e:g}"] for e in config["eps"]}
    report = TrialReport.compare(scores, seeds, float(store.baseline), stats, config, timings, examples)
    if out is not None:
        write_report(report, Path(out))
    return report


def write_report(report: TrialReport, out: Path) -> None:
    """``report.json``, ``report.md`` and, where matplotlib is installed, ``change_vs_none.png`` and
    ``examples.png`` (image rows only) in ``out``."""
    report.to_json(out / "report.json")
    (out / "report.md").write_text(report.table() + "\n")
    try:
        report.plot(out / "change_vs_none.png")
        if report.examples:
            report.plot_examples(out / "examples.png")
    except ImportError as err:
        warnings.warn(f"no pictures written: {err}", stacklevel=3)
