"""The augmentations of one ε: UAEs, the no-MI ablation, matched noise and PGD, made once from the user's model.

``src: [n, ...]`` are the augmented training rows; sample ``i`` of them has its random draws keyed by ``i``, so its
UAE does not depend on the other rows. With a folder, the two MinMax attacks are
written with :func:`~uae_plugin.generate_dataset` (resumable, checksummed) and PGD with one atomic file; a rerun
reads them back instead of attacking again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..baselines import UnsupervisedPGD, matched_gaussian_noise
from ..criteria import Criterion
from ..generation import atomic_write, generate_dataset, load_generated
from ..minmax import MinMaxAttack

ATTACK_BATCH = 256


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


def _pgd(criterion: Criterion, src: torch.Tensor, eps: float, steps: int, seed: int, file: Path | None) -> torch.Tensor:
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
        made["pgd"] = _pgd(criterion, src, eps, attack.settings.steps, seed, folder and folder / "pgd.pt")
    stats["l2"] = {kind: _l2(src, adv) for kind, adv in made.items()}
    return {k: v for k, v in made.items() if k in kinds}, stats


def augmented_rows(n_train: int, n_augment: int | None) -> torch.Tensor:
    """The positions of the training rows that get an augmentation: all (``None``), or ``n_augment`` drawn
    without replacement by a permutation seeded with 0 (the same for every arm and seed), in increasing order."""
    if n_augment is None or n_augment >= n_train:
        return torch.arange(n_train)
    return torch.randperm(n_train, generator=torch.Generator().manual_seed(0))[:n_augment].sort().values
