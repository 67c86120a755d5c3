"""What a trial returns: per metric, the scores of every arm and seed and the corrected paired verdicts; the table,
the recommendation, the JSON and the pictures.

Per metric, every arm is compared with ``none`` (:func:`~.verdict.paired`), the family of those comparisons is
Holm-corrected (:func:`~.verdict.corrected`), and every ``uae@ε`` is compared with its ``noise@ε`` and ``nomi@ε``
controls as a second family. matplotlib (the ``[demo]`` extra) is imported only by the picture methods.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from .verdict import Paired, corrected, paired

CONTROL_KINDS = ("noise", "nomi")
EXAMPLE_ROWS = 4  # training rows shown with their augmentations in examples.png


@dataclass
class MetricResult:
    """One metric of a trial.

    scores: arm key -> the score of each seed (lower is better); ``"none"`` first. baseline: the given model's
    score before fine-tuning (None if unknown). versus_none: arm -> :class:`Paired` with none, Holm-corrected over
    the arms. controls: ``uae@ε`` -> {control arm -> :class:`Paired` of UAE minus control, in % of none's mean},
    Holm-corrected over every such pair. resolution: the smallest change the score can show (None: continuous).
    details: arm -> per-seed details (e.g. per-corruption numbers), where the metric gives them.
    """

    name: str
    scores: dict[str, list[float]]
    baseline: float | None
    versus_none: dict[str, Paired]
    controls: dict[str, dict[str, Paired]]
    resolution: float | None = None
    details: dict[str, list[Any]] = field(default_factory=dict)

    @classmethod
    def compare(
        cls,
        name: str,
        scores: dict[str, list[float]],
        baseline: float | None = None,
        resolution: float | None = None,
        details: dict[str, list[Any]] | None = None,
    ) -> MetricResult:
        none = scores["none"]
        scale = sum(none) / len(none)
        versus = corrected({arm: paired(v, none, resolution=resolution) for arm, v in scores.items() if arm != "none"})
        pairs = {}
        for arm in (a for a in scores if a.startswith("uae@")):
            eps = arm.partition("@")[2]
            for control in (f"{kind}@{eps}" for kind in CONTROL_KINDS if f"{kind}@{eps}" in scores):
                pairs[(arm, control)] = paired(scores[arm], scores[control], scale=scale, resolution=resolution)
        flat = corrected({f"{a} - {c}": p for (a, c), p in pairs.items()}) if pairs else {}
        controls: dict[str, dict[str, Paired]] = {}
        for arm, control in pairs:
            controls.setdefault(arm, {})[control] = flat[f"{arm} - {control}"]
        return cls(name, scores, baseline, versus, controls, resolution, details or {})

    def to_dict(self) -> dict[str, Any]:
        return {
            "scores": self.scores,
            "baseline": self.baseline,
            "resolution": self.resolution,
            "verdict": {arm: p.verdict for arm, p in self.versus_none.items()},
            "versus_none": {arm: p.to_dict() for arm, p in self.versus_none.items()},
            "controls": {arm: {c: p.to_dict() for c, p in cs.items()} for arm, cs in self.controls.items()},
            "details": self.details,
        }


@dataclass
class TrialReport:
    """The result of :func:`~uae_plugin.run_trial`: one :class:`MetricResult` per metric, in order.

    ``metrics``: the metric names; ``for_metric(name)``: the same report for that metric alone. ``scores``,
    ``baseline``, ``versus_none``, ``controls`` and ``verdict`` are those of the first metric (``"clean"`` unless
    the user's scores say otherwise). warnings: one-line strings saying when the answer is not about the user's
    model (:mod:`.warnings`: the fine-tuning damaged it, or moves it more than any augmentation; a smoke run);
    withheld: why the recommendation is withheld, or None. stats: per ε (key ``"0.3"``): UAE success rate, mean
    MI, mean L2 ``||x' - x||`` of each augmentation. config: the trial's settings (JSON-ready). timings: seconds spent
    generating, fine-tuning, scoring. examples: a few training rows and each augmentation of them, for pictures
    (not written to JSON).
    """

    results: dict[str, MetricResult]
    seeds: list[int]
    stats: dict[str, dict[str, Any]]
    config: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    examples: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    warnings: list[str] = field(default_factory=list)
    withheld: str | None = None

    def __post_init__(self) -> None:
        if not self.warnings and self.withheld is None:
            from .warnings import damage_warnings, robustness_warnings

            self.warnings, self.withheld = damage_warnings(self.first)
            self.warnings += robustness_warnings(self.results, self.config)

    @property
    def metrics(self) -> list[str]:
        return list(self.results)

    @property
    def first(self) -> MetricResult:
        return next(iter(self.results.values()))

    @property
    def scores(self) -> dict[str, list[float]]:
        return self.first.scores

    @property
    def baseline(self) -> float | None:
        return self.first.baseline

    @property
    def versus_none(self) -> dict[str, Paired]:
        return self.first.versus_none

    @property
    def controls(self) -> dict[str, dict[str, Paired]]:
        return self.first.controls

    @property
    def verdict(self) -> dict[str, str]:
        """Arm key -> ``"helps"``, ``"harms"`` or ``"no measurable change"`` against ``"none"`` (first metric)."""
        return {arm: p.verdict for arm, p in self.versus_none.items()}

    def for_metric(self, name: str) -> TrialReport:
        """This report restricted to metric ``name`` (its ``.scores``, ``.verdict``, ``.controls``, ``.table()``)."""
        if name not in self.results:
            raise KeyError(f"metric {name!r} is not in this report; it has {', '.join(self.results)}")
        return replace(self, results={name: self.results[name]})

    @property
    def recommendation(self) -> str:
        from .wording import recommendation

        return recommendation(self)

    def table(self) -> str:
        from .wording import table

        return table(self)

    def to_dict(self) -> dict[str, Any]:
        first = self.first.to_dict()
        return {
            "metrics": self.metrics,
            "scores": first["scores"],
            "baseline": first["baseline"],
            "verdict": first["verdict"],
            "versus_none": first["versus_none"],
            "controls": first["controls"],
            "by_metric": {name: r.to_dict() for name, r in self.results.items()},
            "seeds": self.seeds,
            "stats": self.stats,
            "recommendation": self.recommendation,
            "warnings": self.warnings,
            "config": self.config,
            "timings": self.timings,
        }

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` as JSON to ``path``; returns it."""
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1, sort_keys=True))
        return path

    def plot(self, path: str | os.PathLike) -> Path:
        """One panel per metric: each arm's change against none in % with its 95% interval (green: helps, red:
        harms, after the correction), a line at 0 (left of it is better)."""
        from .pictures import plot_changes

        return plot_changes(self, Path(path))

    def plot_examples(self, path: str | os.PathLike, k: int = 4) -> Path | None:
        """A grid of ``k`` training rows (columns) and each augmentation of them (rows), if the rows are images
        ``[C, H, W]`` with 1 or 3 channels; else nothing is written and None is returned."""
        from .pictures import plot_examples

        return plot_examples(self.examples, Path(path), k)


def examples_of(x: torch.Tensor, augmented: dict[str, torch.Tensor], k: int = EXAMPLE_ROWS) -> dict[str, torch.Tensor]:
    """The first ``k`` augmented rows and each augmentation of them, for :meth:`TrialReport.plot_examples`."""
    return {"x": x[:k].detach().cpu(), **{arm: adv[:k].detach().cpu() for arm, adv in augmented.items()}}
