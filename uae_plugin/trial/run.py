"""``run_trial``: does UAE augmentation help *this* model, on clean data and under attack? A controlled trial on
the user's own model and data.

For every arm ``a`` (:mod:`.arms`) and seed ``s``: a copy of the trained model continues training on the arm's
data for the same budget (:mod:`.budget`): ``train ∪ aug_a`` for the offline arms, the training rows with a fraction
of every batch attacked against the current model for the online ones (:mod:`.online`). Every fine-tuned model is
then scored on every metric (:mod:`.metrics`: clean, adversarial, corruption, ...), and the per-seed differences
against ``none`` give each arm's corrected verdict per metric (:mod:`.verdict`, :mod:`.report`).

The phases, a module each: plan and check (:mod:`.plan`: everything that can be refused is refused before any
work), generate (:mod:`.generate`: the offline augmentations, once per ε from the given model), fine-tune and
score (:mod:`.fine_tune`), report (here: :func:`write_report`; the report itself is :mod:`.report`). Under
torchrun the work of each phase is spread or shared by :mod:`.spread`.

Under an initialised torch.distributed process group (torchrun) the fine-tunes are spread over the ranks by their
cost, the augmentations and the baseline are still made once, rank 0 alone writes the folder, and every rank
returns the same report, with the scores of one process (:mod:`.spread`).

Cost: one generation per ε (three attacks of T steps on the augmented rows), arms × seeds fine-tunes (an online
arm's steps cost about ``1 + fraction (T_online + 2)`` plain ones), and per fine-tuned model its scores (the
adversarial metric is one attack of ``ADVERSARIAL_STEPS`` steps on the robustness rows); nothing else.
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

from ..distributed import Ranks
from .arms import DEFAULT_ARMS, DEFAULT_EPS
from .budget import DEFAULT_BATCH_SIZE, DEFAULT_LR
from .fine_tune import fine_tune_and_score
from .generate import generate
from .metrics import DEFAULT_TEST_EPS
from .online import DEFAULT_ONLINE_FRACTION, DEFAULT_ONLINE_STEPS
from .plan import DEFAULT_SEEDS, Plan, plan_trial
from .report import MetricResult, TrialReport
from .rows import Data
from .spread import (
    local_model,
    measured,
    merged_timings,
    open_folder,
    plain,
    same_trial,
)
from .store import TrialFolder


def run_trial(
    model: nn.Module,
    x_train: Data,
    x_test: Data,
    *,
    task: str = "reconstruction",
    fit: Callable[..., nn.Module] | None = None,
    score: Callable[[nn.Module, Data], float] | dict[str, Callable[[nn.Module, Data], float]] | None = None,
    metrics: Sequence[str] | None = None,
    test_eps: float = DEFAULT_TEST_EPS,
    test_attack: str = "pgd",
    robust_rows: int | None = None,
    target: str = "self",
    arms: Sequence[str] = DEFAULT_ARMS,
    eps: Sequence[float] = DEFAULT_EPS,
    seeds: Sequence[int] = DEFAULT_SEEDS,
    out: str | os.PathLike | None = None,
    progress: bool = True,
    steps: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lr: float = DEFAULT_LR,
    n_augment: int | None = None,
    attack_options: dict[str, Any] | None = None,
    attack_seed: int = 0,
    online_steps: int = DEFAULT_ONLINE_STEPS,
    online_fraction: float = DEFAULT_ONLINE_FRACTION,
    y_train: torch.Tensor | None = None,
    y_test: torch.Tensor | None = None,
    distributed: bool | None = None,
) -> TrialReport:
    """Does augmenting with UAEs help ``model``, on clean data and under attack? Every arm fine-tunes a copy of it;
    the report says, per metric, with controls and a correction for the many comparisons.

    Args:
        model: the user's *trained* model (an autoencoder for ``"reconstruction"``, an encoder for
            ``"contrastive"``); never modified: each arm trains a deep copy.
        x_train, x_test: tensors ``[N, ...]`` in [0, 1], or map-style Datasets of rows ``x`` or ``(x, ...)``.
        task: ``"reconstruction"`` or ``"contrastive"``; sets the attack's criterion and the default fit and scores.
        fit: ``fit(model, data, *, steps, seed) -> model`` continues training on the arm's data. It also gets
            ``targets=`` (with ``target="clean"``) and ``augment=`` (the online arms); a fit that cannot take them
            is refused for those. Default: :class:`~uae_plugin.trial.budget.AdamFit` on the reconstruction loss,
            or on NT-Xent between SimCLR views (contrastive, needs ``[lightly]``).
        score: ``score(model, x_test) -> float`` (lower is better): the ``"clean"`` metric; or a dict of named
            callables, whose names are the metrics (they replace built-ins of the same name).
        metrics: from ``clean, adversarial, corruption, knn`` (:mod:`uae_plugin.trial.metrics`); default
            ``("clean", "adversarial")``, or the names of a dict ``score``. Contrastive built-ins need labels.
        test_eps: the L-inf budget of the adversarial metric, in (0, 1] (default 8/255, the robust-SSL anchors').
        test_attack: ``"pgd"`` (the core's PGD-20, random start, seed ``attack_seed``) or ``"autoattack"``
            (torchattacks', contrastive only).
        robust_rows: score the adversarial and corruption metrics on this many test rows (a seeded subset).
        target: ``"self"`` (an augmented row is trained to reconstruct itself: the paper's augmentation) or
            ``"clean"`` (to reconstruct its clean source: denoising); reconstruction only. Online arms: clean.
        arms: from ``none, copy, noise, nomi, pgd, uae, online-uae, online-pgd`` (``none`` always runs).
        eps: the L-inf budgets of the augmentations; each gives its own per-ε arms.
        seeds: at least 2 fine-tuning seeds (a verdict compares per-seed differences).
        out: a folder for the generated sets, the scores so far (a rerun resumes) and the report
            (``report.json``, ``report.md``, ``change_vs_none.png``, ``examples.png``).
        steps: fine-tuning steps of every arm (default: two passes over ``x_train`` at ``batch_size``, >= 100).
        n_augment: how many training rows get an offline augmentation (default all; a seeded subset otherwise).
        attack_options: keyword arguments of :class:`~uae_plugin.MinMaxAttack` for the UAE arms; the no-MI arm
            sets ``mi_weight=0``, PGD takes the same ε and steps.
        attack_seed: the seed of the attacks, the noise and the robustness metrics.
        online_steps, online_fraction: the attack steps and the share of each batch of the online arms.
        distributed: ``None`` (default): spread the fine-tunes over the ranks of the default torch.distributed
            process group when one is initialised (every rank must then call ``run_trial`` with the same arguments;
            see :mod:`uae_plugin.trial.spread`), else run them all here; ``False``: this process alone; ``True``:
            the group, which must be initialised. The number of processes is in the report's ``config``
            (``"processes"``), not in the trial's identity: a trial resumes with any number of them.

    Returns:
        :class:`~uae_plugin.trial.report.TrialReport`: ``.metrics``, ``.for_metric(name)``, ``.scores``,
        ``.verdict``, ``.controls``, ``.table()``, ``.to_json(path)``, ``.plot(path)``, ``.recommendation``.

    Example:
        >>> report = run_trial(autoencoder, x_train, x_test, metrics=("clean", "adversarial"), out="trial/")
        >>> print(report.table()); report.for_metric("adversarial").verdict["uae@0.3"]
    """
    settings = {k: v for k, v in locals().items() if k not in ("model", "x_train", "x_test", "distributed")}
    start = time.perf_counter()
    ranks = Ranks.current(distributed)
    plan = ranks.each(lambda: plan_trial(model, x_train, x_test, **settings))  # refuses what it can first
    plan.progress = plan.progress and ranks.leader
    identity = plan.identity(model, x_train, x_test)
    ranks.agree(same_trial(ranks, plan, identity, out))
    store = open_folder(ranks, None if out is None else Path(out), identity)
    local = local_model(ranks, model)
    timings = {"generate_s": 0.0, "fit_s": 0.0, "score_s": 0.0}
    if not store.has_baseline(plan.metric_names):  # the given model's scores: once, by rank 0
        baseline = ranks.on_leader(lambda: plain(plan.metrics(copy.deepcopy(local), x_test)))
        store.record(None, None, measured(baseline))
    made, examples = generate(plan, ranks, model, local, x_train, store, timings)
    fine_tune_and_score(plan, ranks, local, x_train, x_test, store, made, timings)
    timings["total_s"] = time.perf_counter() - start
    report = _report(plan, store, merged_timings(ranks, timings), examples, ranks.world)
    if out is not None and ranks.world == 1:
        write_report(report, Path(out))
    elif out is not None:  # rank 0 writes; every rank returns once it has (or raises its error)
        ranks.on_leader(lambda: write_report(report, Path(out)))
    return report


def _report(
    plan: Plan, store: TrialFolder, timings: dict[str, float], examples: dict[str, torch.Tensor], processes: int
) -> TrialReport:
    """The report of the arms, seeds and metrics asked (the folder may hold more); ``processes`` is recorded in
    its config (not part of the trial's identity)."""
    results = {}
    for m in plan.metric_names:
        scores = {a.key: [store.scores[m][a.key][str(s)] for s in plan.seeds] for a in plan.arms}
        details = {
            a.key: [store.details[m][a.key][str(s)] for s in plan.seeds]
            for a in plan.arms
            if a.key in store.details.get(m, {})
        }
        results[m] = MetricResult.compare(m, scores, store.baseline.get(m), store.resolution.get(m), details)
    stats = {f"{e:g}": store.stats[f"{e:g}"] for e in plan.offline_eps if f"{e:g}" in store.stats}
    config = {**plan.config(), "processes": processes}
    more = store.holds_more([a.key for a in plan.arms], plan.seeds, plan.metric_names)
    if more:
        config["folder_holds"] = more
    return TrialReport(results, plan.seeds, stats, config, timings, examples)


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
