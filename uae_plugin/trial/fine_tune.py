"""The fine-tune-and-score phase of a trial: every (arm, seed) still to run, spread over the ranks by cost
(:mod:`.spread`), fine-tunes a copy of the model on the arm's data (:func:`fit_inputs`: rows, clean targets, the
online arms' attack hook) and scores it on every metric; the scores are recorded in the trial's folder."""

from __future__ import annotations

import copy
import time
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ..distributed import Ranks
from .arms import Arm
from .online import OnlineAttack, online_cost, views_per_row
from .plan import Plan
from .rows import Data, join, take
from .spread import assign, gather_scores
from .store import TrialFolder


def fit_inputs(plan: Plan, arm: Arm, x_train: Data, made: dict[float, dict[str, torch.Tensor]]) -> dict[str, Any]:
    """The data and keyword arguments of ``fit`` for ``arm``: its rows, the clean targets (``target="clean"``),
    the online augmentation."""
    if arm.kind == "none":
        return {"data": x_train}
    if arm.online:
        attack = OnlineAttack(
            arm.kind, plan.criterion_of, arm.eps, plan.online_steps, plan.online_fraction, plan.attack_seed,
            plan.attack_options,
        )  # fmt: skip
        return {"data": x_train, "augment": attack}
    src = take(x_train, plan.rows)
    extra = src if arm.kind == "copy" else made[arm.eps][arm.kind]
    inputs = {"data": join(x_train, extra)}
    if plan.target == "clean":
        inputs["targets"] = join(x_train, src)
    return inputs


def _costs(plan: Plan, todo: list[tuple[Arm, int]]) -> list[float]:
    """Each fine-tune's cost in plain fine-tunes: 1, or an online arm's ``online_cost`` (its attacks)."""
    views = views_per_row(plan.criterion)
    return [online_cost(a.kind, plan.online_steps, plan.online_fraction, views) if a.online else 1.0 for a, _ in todo]


def _announce(plan: Plan, ranks: Ranks, todo: list[tuple[Arm, int]], costs: list[float], owner: list[int]) -> None:
    """Say (with progress) what the online arms cost and how the fine-tunes are spread over the processes."""
    if not plan.progress:
        return
    if any(a.online for a, _ in todo):
        print(
            f"uae trial: the online arms attack {plan.online_fraction:.0%} of every batch for {plan.online_steps} "
            f"steps: each of their fine-tunes costs about {max(costs):.1f}x a plain one",
            flush=True,
        )
    if ranks.world > 1 and todo:
        counts = [owner.count(r) for r in range(ranks.world)]
        loads = [sum(c for c, o in zip(costs, owner, strict=True) if o == r) for r in range(ranks.world)]
        print(
            f"uae trial: {len(todo)} fine-tunes spread over {ranks.world} processes by cost: "
            f"{', '.join(map(str, counts))} each (about {', '.join(f'{x:.1f}' for x in loads)} plain fine-tunes)",
            flush=True,
        )


def fine_tune_and_score(
    plan: Plan,
    ranks: Ranks,
    local: nn.Module,
    x_train: Data,
    x_test: Data,
    store: TrialFolder,
    made: dict[float, dict[str, torch.Tensor]],
    timings: dict[str, float],
) -> None:
    """Every (arm, seed) without all its scores, spread over the ranks by cost (:func:`.spread.assign`): this
    rank fine-tunes a copy of ``local`` for each of its share, scores it on every metric and records it; then the
    scores of every rank are gathered into ``store`` on every rank (and into ``scores.json`` by rank 0). A fine-tune
    that raises ends its rank's share; every rank raises that error once all have finished theirs."""
    todo = plan.todo(store)
    costs = _costs(plan, todo)
    owner = assign(costs, ranks.world)
    _announce(plan, ranks, todo, costs, owner)
    mine = [i for i, r in enumerate(owner) if r == ranks.rank]
    error = None
    try:
        share = [todo[i] for i in mine]
        _run_share(plan, local, x_train, x_test, store, made, timings, share, [costs[i] for i in mine])
    except Exception as err:  # shared with every rank by agree(), which re-raises it
        error = err
    gather_scores(ranks, store)
    ranks.agree(error)


def _run_share(
    plan: Plan,
    local: nn.Module,
    x_train: Data,
    x_test: Data,
    store: TrialFolder,
    made: dict[float, dict[str, torch.Tensor]],
    timings: dict[str, float],
    share: list[tuple[Arm, int]],
    costs: list[float],
) -> None:
    """Fine-tune a copy of ``local`` for every (arm, seed) of ``share``, score it on every metric, record it."""
    bar = tqdm(
        total=len(share), unit="fine-tune", desc="uae trial (arm x seed)", disable=not plan.progress or not share
    )
    try:
        for i, (arm, seed) in enumerate(share):
            bar.set_postfix_str(f"{arm.key} seed {seed}")
            inputs = fit_inputs(plan, arm, x_train, made)
            t0 = time.perf_counter()
            trained = plan.fit(copy.deepcopy(local), inputs.pop("data"), steps=plan.steps, seed=seed, **inputs)
            if not isinstance(trained, nn.Module):
                raise TypeError(f"fit must return the trained model (an nn.Module), got {type(trained).__name__}")
            t1 = time.perf_counter()
            store.record(arm.key, seed, plan.metrics(trained, x_test))
            timings["fit_s"] += t1 - t0
            timings["score_s"] += time.perf_counter() - t1
            bar.update(1)
            if i == 0 and plan.progress and len(share) > 1:
                left = (time.perf_counter() - t0) * sum(costs[1:]) / costs[0]
                bar.write(
                    f"uae trial: {len(share)} fine-tunes of {plan.steps} steps, each scored on "
                    f"{', '.join(plan.metric_names)}; about {left / 60:.1f} min more"
                )
    finally:
        bar.close()
