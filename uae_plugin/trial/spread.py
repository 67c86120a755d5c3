"""``run_trial`` on a torch.distributed process group: who does what, and how the ranks agree.

A trial is arms × seeds independent fine-tunes; on ``N`` ranks (the caller's default group, used, never replaced):

- **Planned by every rank**, and checked to be the same trial on every rank (model, data, settings, arms, seeds,
  metrics, ``out``) before any work.
- **Rank 0 alone** opens ``out`` (checks ``trial.json``, reads ``scores.json``) and shares what it holds, scores
  the given model (the baseline) and shares the scores, writes ``trial.json``, ``scores.json`` and the report.
- **The offline augmentations are made once**: without ``out`` rank 0 makes them in memory and broadcasts them;
  with ``out`` rank 0 makes PGD, and the UAE and no-MI attacks go through ``generate_dataset`` on the group (its
  chunk ``k`` on rank ``k % N``), every rank reading the finished sets back from the folder (the matched noise,
  a draw, is made by each rank from them).
- **The fine-tunes are spread by cost** (:func:`assign`): an online arm's costs ``online_cost(...)`` plain ones.
  Each rank fine-tunes copies of the model on its device (:func:`local_model`), scores them and records them
  (rank ``r > 0`` in ``scores.rank-<r>.json``, so a killed run loses none); the scores are then gathered, folded
  into ``scores.json`` by rank 0, and every rank builds the same full report.
- **Errors**: every step that can fail on some ranks only is followed by :meth:`~uae_plugin.distributed.Ranks.agree`
  (a rank that fails a fine-tune stops; the others finish their shares, then all raise the same error).

Only torch.distributed's object collectives are used (``all_gather_object``, ``broadcast_object_list``), so a
gloo group works for models on CUDA too. A rank that is done waits in a collective (for the others' shares, for
rank 0's PGD): the group's timeout must outlast that wait. One process (``Ranks()``) runs every step itself.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..distributed import Ranks
from ..generation.fingerprint import rank_mismatch
from ..minmax import MinMaxAttack
from .augment import augmentations, pgd_rows
from .metrics import Measured
from .plan import Plan
from .store import TrialFolder


def assign(costs: list[float], world: int) -> list[int]:
    """The rank of each job: longest first (ties by position), each to the least loaded rank (ties: the lowest).

    Deterministic given ``costs``; with ``world == 1`` every job is rank 0's. The busiest rank's load is at most
    4/3 of the best possible (Graham's bound for longest-processing-time-first)."""
    loads = [0.0] * world
    owner = [0] * len(costs)
    for job in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        rank = min(range(world), key=lambda r: (loads[r], r))
        owner[job] = rank
        loads[rank] += costs[job]
    return owner


def same_trial(ranks: Ranks, plan: Plan, identity: dict[str, Any], out: Any) -> ValueError | None:
    """An error naming the first rank whose trial (identity, arms, seeds, metrics, out) differs from rank 0's."""
    if ranks.world == 1:
        return None
    mine = {
        "identity": identity,
        "arms": [a.key for a in plan.arms],
        "seeds": plan.seeds,
        "metrics": plan.metric_names,
        "out": None if out is None else str(out),
    }
    return rank_mismatch(ranks, mine, "run_trial with the same model, data and settings")


def open_folder(ranks: Ranks, out: Path | None, identity: dict[str, Any]) -> TrialFolder:
    """The trial's folder on this rank: opened and checked by rank 0 (the only writer of ``trial.json`` and
    ``scores.json``), its state shared with the others (a collective when ``world > 1``)."""
    if ranks.world == 1:
        return TrialFolder(out, identity)
    store = ranks.each(lambda: TrialFolder(out, identity, rank=ranks.rank))
    store.load(ranks.share(store.state()))
    return store


def local_model(ranks: Ranks, model: nn.Module) -> nn.Module:
    """The model this rank attacks and fine-tunes copies of: ``model`` itself in one process or without CUDA; on a
    group with CUDA, a copy on ``cuda:LOCAL_RANK`` (the given model is never moved; ``LOCAL_RANK`` modulo the
    number of GPUs, so more processes than GPUs share them; the global rank where ``LOCAL_RANK`` is not set)."""
    if ranks.world == 1 or not torch.cuda.is_available():
        return model
    index = int(os.environ.get("LOCAL_RANK", ranks.rank)) % torch.cuda.device_count()
    return copy.deepcopy(model).to(torch.device("cuda", index))


def plain(scores: dict[str, Any]) -> dict[str, tuple[float, Any, Any]]:
    """``{metric: (value, resolution, detail)}``: a model's scores, ready to send to other ranks."""
    return {m: (float(v), getattr(v, "resolution", None), getattr(v, "detail", None)) for m, v in scores.items()}


def measured(scores: dict[str, tuple[float, Any, Any]]) -> dict[str, Measured]:
    """The inverse of :func:`plain`."""
    return {m: Measured(*v) for m, v in scores.items()}


def augmentations_once(
    ranks: Ranks,
    criterion: Any,
    src: torch.Tensor,
    eps: float,
    kinds: set[str],
    options: dict[str, Any],
    seed: int,
    folder: Path | None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """:func:`~.augment.augmentations` of one ε, made once for the whole group (module docstring), on every rank
    (on the CPU when broadcast)."""
    if ranks.world == 1:
        return augmentations(criterion, src, eps, kinds, options, seed, folder)
    if folder is None:

        def made_here() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
            aug, stats = augmentations(criterion, src, eps, kinds, options, seed, None)
            return {k: v.cpu() for k, v in aug.items()}, stats

        return ranks.on_leader(made_here)
    if "pgd" in kinds:  # made by rank 0 into pgd.pt, which augmentations() reads back on every rank
        ranks.on_leader(lambda: _pgd_file(criterion, src, eps, options, seed, folder))
    # generate_dataset is itself a collective on the group: it spreads the UAE and no-MI attacks over the ranks
    return ranks.each(lambda: augmentations(criterion, src, eps, kinds, options, seed, folder))


def _pgd_file(criterion: Any, src: torch.Tensor, eps: float, options: dict[str, Any], seed: int, folder: Path) -> None:
    """``folder/pgd.pt``: PGD at ``eps`` with the UAE attack's steps, as :func:`~.augment.augmentations` makes it."""
    if (folder / "pgd.pt").exists():
        return
    folder.mkdir(parents=True, exist_ok=True)
    steps = MinMaxAttack(criterion, **{**options, "eps": eps, "seed": seed}).settings.steps
    pgd_rows(criterion, src, eps, steps, seed, folder / "pgd.pt")


def gather_scores(ranks: Ranks, store: TrialFolder) -> None:
    """Every rank's fine-tune scores into rank 0's ``scores.json`` (its part files deleted), and the full state on
    every rank (a collective when ``world > 1``)."""
    if ranks.world == 1:
        return
    parts = ranks.gather(store.own)
    store.fold_parts(parts[1:])  # rank 0 only
    store.load(ranks.share(store.state()))


def merged_timings(ranks: Ranks, timings: dict[str, float]) -> dict[str, float]:
    """The same timings on every rank: generation and the whole trial the longest rank's wall time, fine-tuning
    and scoring summed over the ranks (process-seconds)."""
    if ranks.world == 1:
        return timings
    everyone = ranks.gather(timings)
    longest = ("generate_s", "total_s")
    return {k: (max if k in longest else sum)(t[k] for t in everyone) for k in timings}
