"""What a trial returns: the scores of every arm and seed, the paired verdicts, the table, the JSON and the pictures.

matplotlib (the ``[demo]`` extra) is imported only by the picture methods.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .._extras import require
from .verdict import CONFIDENCE, HARMS, HELPS, Paired, paired

CONTROL_WORDS = {HELPS: "UAE better", HARMS: "UAE worse"}
VERDICT_COLOURS = {HELPS: "tab:green", HARMS: "tab:red"}


def _control_word(p: Paired) -> str:
    return CONTROL_WORDS.get(p.verdict, "no measurable difference")


@dataclass
class TrialReport:
    """The result of :func:`~uae_plugin.run_trial`.

    scores: arm key -> the test score of each seed (lower is better), in the order of ``seeds``; ``"none"`` is a
        key, every other key starts with its arm's name (``copy``, ``noise@0.3``, ``uae@0.3``, ...).
    seeds: the fine-tuning seeds. baseline: the score of the given model before any fine-tuning.
    versus_none: arm key -> :class:`Paired` comparison with ``"none"`` (its ``verdict``: helps, harms or no
        measurable change, by the 95% paired t-interval of :mod:`uae_plugin.trial.verdict`).
    controls: UAE arm key -> {control arm key -> :class:`Paired` of UAE minus that control, in % of none's mean}.
    stats: per ε (key ``"0.3"``): UAE success rate, mean MI, mean L2 ``||x' - x||`` of each augmentation.
    config: the trial's settings (JSON-ready). timings: seconds spent generating, fine-tuning, scoring.
    examples: a few training rows and each augmentation of them (``{"x": [k, ...], "uae@0.3": ...}``), for pictures;
        not written to JSON.
    """

    scores: dict[str, list[float]]
    seeds: list[int]
    baseline: float
    versus_none: dict[str, Paired]
    controls: dict[str, dict[str, Paired]]
    stats: dict[str, dict[str, Any]]
    config: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    examples: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    @classmethod
    def compare(
        cls,
        scores: dict[str, list[float]],
        seeds: list[int],
        baseline: float,
        stats: dict[str, dict[str, Any]],
        config: dict[str, Any],
        timings: dict[str, float] | None = None,
        examples: dict[str, torch.Tensor] | None = None,
    ) -> TrialReport:
        """The report of ``scores`` (``"none"`` among them): every arm paired with none, every ``uae@ε`` with
        ``noise@ε`` and ``nomi@ε`` where they ran (in % of none's mean score)."""
        none = scores["none"]
        scale = sum(none) / len(none)
        versus = {arm: paired(values, none) for arm, values in scores.items() if arm != "none"}
        controls = {}
        for arm in (a for a in scores if a.startswith("uae@")):
            eps = arm.partition("@")[2]
            kept = [f"{kind}@{eps}" for kind in ("noise", "nomi") if f"{kind}@{eps}" in scores]
            controls[arm] = {c: paired(scores[arm], scores[c], scale=scale) for c in kept}
        return cls(scores, seeds, baseline, versus, controls, stats, config, timings or {}, examples or {})

    @property
    def verdict(self) -> dict[str, str]:
        """Arm key -> ``"helps"``, ``"harms"`` or ``"no measurable change"`` against ``"none"``."""
        return {arm: p.verdict for arm, p in self.versus_none.items()}

    @property
    def recommendation(self) -> str:
        """One line: the arm that measurably helped most, and whether a UAE arm beat its controls, or that no
        augmentation measurably helped this model."""
        n = len(self.seeds)
        helping = [arm for arm, p in self.versus_none.items() if p.verdict == HELPS]
        if not helping:
            return (
                f"No augmentation measurably helped this model ({CONFIDENCE:.0%} paired interval over {n} seeds): "
                "keep training on the clean data."
            )
        best = min(helping, key=lambda arm: self.versus_none[arm].mean)
        line = f"Recommended: {best} ({self.versus_none[best].describe()} against none)."
        if best.startswith("uae"):
            beaten = [c for c, p in self.controls.get(best, {}).items() if p.verdict == HELPS]
            missed = [c for c, p in self.controls.get(best, {}).items() if p.verdict != HELPS]
            if missed:
                line += (
                    f" It is not measurably better than {', '.join(missed)}: the UAE's MI term did not earn its cost."
                )
            elif beaten:
                line += f" It also beats its controls {', '.join(beaten)}."
        else:
            uaes = [arm for arm in helping if arm.startswith("uae")]
            line += " UAEs " + (f"help less ({', '.join(uaes)})." if uaes else "did not measurably help.")
        return line

    def table(self) -> str:
        """Markdown: one row per arm (score mean ± sd, change against none with its 95% interval, verdict, mean
        L2 of the augmentation), the controls of each UAE arm, and the recommendation."""
        n = len(self.seeds)
        lines = [
            f"| arm | test score (mean ± sd, {n} seeds) | change vs none [{CONFIDENCE:.0%} interval] "
            "| verdict | mean L2 |",
            "|---|---|---|---|---|",
        ]
        for arm, values in self.scores.items():
            t = torch.tensor(values, dtype=torch.float64)
            kind, _, eps = arm.partition("@")
            l2 = self.stats.get(eps, {}).get("l2", {}).get(kind)
            change = "—" if arm == "none" else self.versus_none[arm].describe()
            verdict = "reference" if arm == "none" else self.versus_none[arm].verdict
            lines.append(
                f"| {arm} | {float(t.mean()):.6g} ± {float(t.std()):.2g} | {change} | {verdict} | "
                f"{'—' if l2 is None else f'{l2:.3g}'} |"
            )
        lines.append("")
        lines.append(f"Score of the given model before fine-tuning: {self.baseline:.6g}.")
        for eps, s in self.stats.items():
            lines.append(
                f"UAEs at ε {eps}: success rate {s['uae_success_rate']:.1%}, mean MI {s['uae_mean_mi']:.3g} nats."
            )
        if self.controls:
            lines += ["", "| UAE arm | against | UAE − control [% of none's score] | |", "|---|---|---|---|"]
            for arm, controls in self.controls.items():
                for control, p in controls.items():
                    lines.append(f"| {arm} | {control} | {p.describe()} | {_control_word(p)} |")
        lines += ["", self.recommendation]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scores": self.scores,
            "seeds": self.seeds,
            "baseline": self.baseline,
            "verdict": self.verdict,
            "versus_none": {arm: p.to_dict() for arm, p in self.versus_none.items()},
            "controls": {arm: {c: p.to_dict() for c, p in cs.items()} for arm, cs in self.controls.items()},
            "stats": self.stats,
            "recommendation": self.recommendation,
            "config": self.config,
            "timings": self.timings,
        }

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` as JSON to ``path``; returns it."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True))
        return path

    def plot(self, path: str | os.PathLike) -> Path:
        """The change of each arm against none in % with its 95% interval (green: helps, red: harms), one row an
        arm, a line at 0 (left of it is better)."""
        plt = _pyplot()
        arms = list(self.versus_none)
        fig, ax = plt.subplots(figsize=(6.0, 0.9 + 0.38 * len(arms)))
        for i, arm in enumerate(arms):
            p = self.versus_none[arm]
            colour = VERDICT_COLOURS.get(p.verdict, "tab:gray")
            ax.errorbar(
                p.mean_pct,
                i,
                xerr=[[p.mean_pct - p.low_pct], [p.high_pct - p.mean_pct]],
                fmt="o",
                color=colour,
                capsize=4,
            )
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_yticks(range(len(arms)))
        ax.set_yticklabels(arms)
        ax.invert_yaxis()
        ax.set_xlabel("test score change against none (%), below 0 is better")
        ax.set_title(
            f"{self.config.get('model', 'model')}: paired change, "
            f"{CONFIDENCE:.0%} interval over {len(self.seeds)} seeds",
            fontsize=9,
        )
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return Path(path)

    def plot_examples(self, path: str | os.PathLike, k: int = 4) -> Path | None:
        """A grid of ``k`` training rows (columns) and each augmentation of them (rows), if the rows are images
        ``[C, H, W]`` with 1 or 3 channels; else nothing is written and None is returned."""
        x = self.examples.get("x")
        if x is None or x.dim() != 4 or x.shape[1] not in (1, 3):
            return None
        plt = _pyplot()
        names = list(self.examples)
        k = min(k, x.shape[0])
        fig, axes = plt.subplots(len(names), k, figsize=(0.9 * k + 1.2, 0.9 * len(names) + 0.4), squeeze=False)
        for r, name in enumerate(names):
            for c in range(k):
                img = self.examples[name][c].detach().float().cpu().clamp(0, 1).permute(1, 2, 0).squeeze(-1)
                axes[r, c].imshow(img.numpy(), cmap="gray" if img.dim() == 2 else None, vmin=0, vmax=1)
                axes[r, c].set_xticks([])
                axes[r, c].set_yticks([])
            axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return Path(path)


def _pyplot():
    matplotlib = require("matplotlib", "TrialReport's pictures")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def examples_of(x: torch.Tensor, augmented: dict[str, torch.Tensor], k: int = 4) -> dict[str, torch.Tensor]:
    """The first ``k`` augmented rows and each augmentation of them, for :meth:`TrialReport.plot_examples`."""
    return {"x": x[:k].detach().cpu(), **{arm: adv[:k].detach().cpu() for arm, adv in augmented.items()}}
