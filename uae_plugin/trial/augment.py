"""The augmentations of one ε: UAEs, the no-MI ablation, matched noise and PGD, made once from the user's model.

``src: [n, ...]`` are the augmented training rows; sample ``i`` of them has its random draws keyed by ``i``, so its
UAE does not depend on the other rows. With a folder, the two MinMax attacks are
written with :func:`~uae_plugin.generate_dataset` (resumable, checksummed) and PGD with one atomic file; a rerun
reads them back instead of attacking again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from ..baselines import UnsupervisedPGD, matched_gaussian_noise
from ..criteria import Criterion
from ..generation import atomic_write, generate_dataset, load_generated
from ..minmax import MinMaxAttack
from .rows import on_device_of

ATTACK_BATCH = 256
PROBE_ROWS = 8  # rows of the timed attack that estimates a generation


def _attack_rows(attack: MinMaxAttack, src: torch.Tensor, folder: Path | None):
    """``{"adv", "success", "mi"}`` for ``src``, sample ``i`` keyed by ``index=i`` (as :func:`generate_dataset`
    keys it, so a trial with a folder and one without make the same UAEs)."""
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        generate_dataset(attack, src, folder, chunk_size=ATTACK_BATCH, progress=False)
        return load_generated(folder)
    parts = []
    for start in range(0, src.shape[0], ATTACK_BATCH):
        chunk = src[start : start + ATTACK_BATCH]
        res = attack(chunk, index=torch.arange(start, start + chunk.shape[0]))
        parts.append({"adv": res.adv.detach(), "success": res.success, "mi": res.mi})
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def pgd_rows(
    criterion: Criterion, src: torch.Tensor, eps: float, steps: int, seed: int, file: Path | None
) -> torch.Tensor:
    if file is not None and file.exists():
        return torch.load(file, weights_only=True)
    pgd = UnsupervisedPGD(criterion, eps=eps, steps=steps, seed=seed)
    adv = torch.cat([pgd(b) for b in src.split(ATTACK_BATCH)])
    if file is not None:
        atomic_write(file, lambda fh: torch.save(adv, fh))
    return adv


def _l2(src: torch.Tensor, adv: torch.Tensor) -> float:
    return float((adv.float() - src.float()).reshape(src.shape[0], -1).norm(dim=1).mean())


def augmentations(
    criterion: Criterion,
    src: torch.Tensor,
    eps: float,
    kinds: set[str],
    attack_options: dict[str, Any],
    seed: int,
    folder: Path | None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``({kind: x' [n, ...]}, stats)`` for the ``kinds`` of this ε asked for (``uae``, ``nomi``, ``noise``,
    ``pgd``); the UAEs are made whenever any of them is asked (noise takes their L2 sizes). ``stats``: the UAEs'
    success rate and mean MI, and the mean L2 ``||x' - x||`` of every kind made."""
    options = {**attack_options, "eps": eps, "seed": seed}
    attack = MinMaxAttack(criterion, **options)
    uae = _attack_rows(attack, src, folder and folder / "uae")
    made = {"uae": uae["adv"]}
    stats: dict[str, Any] = {
        "uae_success_rate": float(uae["success"].float().mean()),
        "uae_mean_mi": float(uae["mi"].mean()),
    }
    if "nomi" in kinds:
        ablation = MinMaxAttack(criterion, **{**options, "mi_weight": 0.0})
        nomi = _attack_rows(ablation, src, folder and folder / "nomi")
        made["nomi"] = nomi["adv"]
        stats["nomi_success_rate"] = float(nomi["success"].float().mean())
    if "noise" in kinds:
        made["noise"] = matched_gaussian_noise(src, made["uae"], seed=seed)
    if "pgd" in kinds:
        made["pgd"] = pgd_rows(criterion, src, eps, attack.settings.steps, seed, folder and folder / "pgd.pt")
    stats["l2"] = {kind: _l2(src, adv) for kind, adv in made.items()}
    return {k: v for k, v in made.items() if k in kinds}, stats


def augmented_rows(n_train: int, n_augment: int | None) -> torch.Tensor:
    """The positions of the training rows that get an augmentation: all (``None``), or ``n_augment`` drawn
    without replacement by a permutation seeded with 0 (the same for every arm and seed), in increasing order."""
    if n_augment is None or n_augment >= n_train:
        return torch.arange(n_train)
    return torch.randperm(n_train, generator=torch.Generator().manual_seed(0))[:n_augment].sort().values


def stored_examples(folder: Path | None, kinds: list[str], src: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """The augmentations of the first ``k = len(src)`` augmented rows ``src``, read back from a trial folder's
    ``uaes/eps-ε/`` (UAEs and the ablation from their runs, PGD from its file; noise remade from the UAEs, as the
    trial makes it), for the pictures of a resumed trial; ``{}`` where the folder holds none of them."""
    if folder is None:
        return {}
    from ..generation import UAEDataset

    k = src.shape[0]
    out: dict[str, torch.Tensor] = {}
    for kind in ("uae", "nomi"):
        if (kind in kinds or (kind == "uae" and "noise" in kinds)) and (folder / kind).is_dir():
            try:
                run = UAEDataset(folder / kind)
            except (ValueError, OSError):
                continue
            out[kind] = torch.stack([run[i] for i in range(min(k, len(run)))])
    if "pgd" in kinds and (folder / "pgd.pt").exists():
        out["pgd"] = torch.load(folder / "pgd.pt", weights_only=True, mmap=True)[:k].clone()
    if "noise" in kinds and "uae" in out:
        out["noise"] = matched_gaussian_noise(src, out["uae"], seed=seed)
    return {kind: v for kind, v in out.items() if kind in kinds}


def generation_estimate(plan: Any, model: torch.nn.Module, src: torch.Tensor, eps: list[float]) -> float:
    """Seconds to make the offline augmentations of every ε in ``eps`` for the rows ``src``, from one timed UAE
    attack on a probe of ``PROBE_ROWS`` of them: per ε, the UAE attack, the no-MI attack (when asked) and PGD
    (about ``T / (T + 2)`` of an attack) on every row."""
    probe = on_device_of(model, src[:PROBE_ROWS])
    attack = MinMaxAttack(plan.criterion, **{**plan.attack_options, "eps": eps[0], "seed": plan.attack_seed})
    start = time.perf_counter()
    attack(probe, index=torch.arange(probe.shape[0]))
    per_row = (time.perf_counter() - start) / probe.shape[0]
    steps = attack.settings.steps
    total = 0.0
    for e in eps:
        kinds = {a.kind for a in plan.arms if a.eps == e and not a.online}
        attacks = 1 + ("nomi" in kinds) + ("pgd" in kinds) * steps / (steps + 2)
        total += attacks * per_row * src.shape[0]
    return total
