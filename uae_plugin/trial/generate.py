"""The generate phase of a trial: the offline augmentations of every ε an arm still needs, made once from the
given model (:mod:`.augment`; once for the whole group under torchrun, :mod:`.spread`), and a few of them for the
pictures (made now, or read back from ``out`` on a resume)."""

from __future__ import annotations

import time

import torch
from torch import nn

from ..distributed import Ranks
from .augment import generation_estimate, stored_examples
from .plan import Plan
from .report import EXAMPLE_ROWS, examples_of
from .rows import Data, on_device_of, take
from .spread import augmentations_once
from .store import TrialFolder


def generate(
    plan: Plan,
    ranks: Ranks,
    model: nn.Module,
    local: nn.Module,
    x_train: Data,
    store: TrialFolder,
    timings: dict[str, float],
) -> tuple[dict[float, dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
    """``({ε: {kind: x' [n, ...]}}, examples)``: the offline augmentations of every ε that an arm still to run
    needs, made from the given model (read back from ``out`` when there; ``local``: its copy on this rank's
    device, made once for the whole group), and a few rows of every ε's augmentations for the pictures (read from
    ``out`` where no arm needs them)."""
    made: dict[float, dict[str, torch.Tensor]] = {}
    wanted = sorted({a.eps for a, s in plan.todo(store) if a.eps is not None and not a.online})
    src = take(x_train, plan.rows) if wanted else None
    fresh = [e for e in wanted if store.uae_folder(e) is None or not store.uae_folder(e).exists()]
    if fresh and plan.progress:
        estimate = generation_estimate(plan, model, src, fresh)
        print(f"uae trial: generating the augmentations of eps {', '.join(f'{e:g}' for e in fresh)} for "
              f"{src.shape[0]} rows: about {estimate / 60:.1f} min (timed on a probe)", flush=True)  # fmt: skip
    if len(fresh) < len(wanted) and plan.progress:
        kept = ", ".join(f"{e:g}" for e in wanted if e not in fresh)
        print(f"uae trial: reading the augmentations of eps {kept} back from out (finishing them if cut)", flush=True)
    criterion = plan.criterion if local is model else plan.criterion_of(local)
    for e in wanted:
        t0 = time.perf_counter()
        kinds = {a.kind for a in plan.arms if a.eps == e and not a.online}
        aug, stats = augmentations_once(
            ranks, criterion, on_device_of(local, src), e, kinds, plan.attack_options, plan.attack_seed,
            store.uae_folder(e),
        )  # fmt: skip
        made[e] = {k: v.cpu() for k, v in aug.items()}
        store.stats[f"{e:g}"] = stats
        store.save()
        timings["generate_s"] += time.perf_counter() - t0
    return made, examples(plan, x_train, store, made)


def examples(
    plan: Plan, x_train: Data, store: TrialFolder, made: dict[float, dict[str, torch.Tensor]]
) -> dict[str, torch.Tensor]:
    """The first rows of every offline ε's augmentations: those just made, or those kept in ``out`` (a resume)."""
    first = plan.rows[:EXAMPLE_ROWS]
    examples: dict[str, torch.Tensor] = {}
    for e in plan.offline_eps:
        kinds = [a.kind for a in plan.arms if a.eps == e and not a.online]
        rows = made.get(e) or stored_examples(store.uae_folder(e), kinds, take(x_train, first), plan.attack_seed)
        if rows:
            examples.update(examples_of(take(x_train, first), {f"{k}@{e:g}": v for k, v in rows.items()}))
    return examples
