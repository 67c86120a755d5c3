"""A trial's pictures: the change of every arm against none per metric, and examples of each augmentation.

matplotlib (the ``[demo]`` extra) is imported only here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .._extras import require
from .verdict import ALPHA, HARMS, HELPS

VERDICT_COLOURS = {HELPS: "tab:green", HARMS: "tab:red"}


def _pyplot():
    matplotlib = require("matplotlib", "TrialReport's pictures")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_changes(report: Any, path: Path) -> Path:
    """One panel per metric of ``report`` (a :class:`~.report.TrialReport`): each arm's mean change against none
    in % with its 95% interval, coloured by its corrected verdict; a line at 0 (left of it is better)."""
    plt = _pyplot()
    arms = list(report.versus_none)
    fig, axes = plt.subplots(
        1,
        len(report.results),
        figsize=(4.2 * len(report.results) + 1.2, max(2.4, 1.2 + 0.38 * len(arms))),
        squeeze=False,
    )
    for ax, (name, result) in zip(axes[0], report.results.items(), strict=True):
        for i, arm in enumerate(arms):
            p = result.versus_none[arm]
            ax.errorbar(
                p.mean_pct,
                i,
                xerr=[[p.mean_pct - p.low_pct], [p.high_pct - p.mean_pct]],
                fmt="o",
                color=VERDICT_COLOURS.get(p.verdict, "tab:gray"),
                capsize=4,
            )
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_yticks(range(len(arms)))
        ax.set_yticklabels(arms if ax is axes[0][0] else [])
        ax.invert_yaxis()
        ax.set_xlabel(f"{name}: change against none (%)", fontsize=8)
    fig.suptitle(
        f"{report.config.get('model', 'model')}: paired change, 95% interval over {len(report.seeds)} seeds; "
        f"colour: Holm-corrected verdict at {ALPHA:g}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_examples(examples: dict[str, torch.Tensor], path: Path, k: int = 4) -> Path | None:
    """A grid of ``k`` training rows (columns) and each augmentation of them (rows), if the rows are images
    ``[C, H, W]`` with 1 or 3 channels; else nothing is written and None is returned."""
    x = examples.get("x")
    if x is None or x.dim() != 4 or x.shape[1] not in (1, 3):
        return None
    plt = _pyplot()
    names = list(examples)
    k = min(k, x.shape[0])
    fig, axes = plt.subplots(len(names), k, figsize=(0.9 * k + 1.2, 0.9 * len(names) + 0.4), squeeze=False)
    for r, name in enumerate(names):
        for c in range(k):
            img = examples[name][c].detach().float().cpu().clamp(0, 1).permute(1, 2, 0).squeeze(-1)
            axes[r, c].imshow(img.numpy(), cmap="gray" if img.dim() == 2 else None, vmin=0, vmax=1)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
