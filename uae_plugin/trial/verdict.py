"""The paired rule that turns per-seed scores into a verdict, corrected for the number of comparisons.

For an arm ``a`` and the reference ``r`` (``"none"``), scored on the same seeds ``s = 1..n`` (same batch order,
same test set), the per-seed differences ``d_s = score_a(s) - score_r(s)`` (lower scores are better) give

    mean  d̄ = (1/n) Σ_s d_s,    sd = sqrt(Σ_s (d_s - d̄)² / (n - 1)),
    95% interval  d̄ ± t_{0.975, n-1} · sd / √n                       (Student's t, paired)
    p = 2 · P(T_{n-1} > |d̄| / (sd / √n))                             (two-sided paired t-test of mean d = 0)

Differences equal up to floating-point rounding (``sd <= 1e-9 · max |score|``) count as exactly equal: ``sd = 0``,
a zero-width interval and ``p = 1`` (no test applies; equal differences are what a discrete score such as an error
rate often gives, not evidence of a certain change).

A trial makes many comparisons (every arm against none, every UAE arm against its controls); one marginal 95%
verdict among ten harmless arms is expected by chance. :func:`corrected` adjusts the p-values of a family of ``m``
comparisons by Holm's step-down method: with the p-values sorted ``p_(1) <= ... <= p_(m)``,

    p_adj_(i) = max_{j <= i} min(1, (m - j + 1) · p_(j)),

which holds the chance of any false verdict in the family at ``alpha``. Until corrected, ``p_adj = p`` (a family
of 1). The verdict is ``"helps"`` (``d̄ < 0``) or ``"harms"`` (``d̄ > 0``) only when

    p_adj < alpha (0.05),   sd > 0,   and |d̄| > resolution (when the score has one),

else ``"no measurable change"``. The ``resolution`` is the smallest meaningful change of the score in its own
units (``1 / n_test`` for an error rate on ``n_test`` rows): a change no larger is no measurable change however
steady. The 95% interval shown (``low``, ``high``, :meth:`Paired.describe`) stays the unadjusted paired interval;
the correction acts on the verdict, ``p_adjusted``, ``detectable_pct`` and ``seeds_needed``.

What the trial could have detected, at the family's Bonferroni level ``alpha / m`` (``m = 1`` until corrected):

    detectable = max(t_{1 - alpha/(2m), n-1} · sd / √n, resolution)                (in % of the scale)
    seeds_needed = min { n' in 2..1000 : t_{1 - alpha/(2m), n'-1} · sd / √n' < |d̄| }  (the same sd assumed)

``seeds_needed`` is None for a decided comparison, when ``|d̄| <= resolution``, when ``sd = 0``, or when no
``n' <= 1000`` reaches it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
from scipy import stats

HELPS, HARMS, NO_CHANGE = "helps", "harms", "no measurable change"
ALPHA = 0.05
CONFIDENCE = 1.0 - ALPHA  # the level of the interval shown
CORRECTION = "Holm"
MAX_SEEDS = 1000  # the most seeds ``seeds_needed`` looks for
_TIES = 1e-9  # differences whose sd is below this fraction of the largest |score| are equal (rounding only)


def t_quantile(df: int | np.ndarray, alpha: float = ALPHA) -> float | np.ndarray:
    """The two-sided critical value ``t_{1 - alpha/2, df}`` of Student's t (scipy); ``df`` may be an array."""
    if np.any(np.asarray(df) < 1):
        raise ValueError(f"df must be >= 1 (at least 2 seeds), got {df}")
    return stats.t.ppf(1.0 - alpha / 2.0, df)


@dataclass(frozen=True)
class Paired:
    """The paired comparison of two arms over ``n`` seeds (module docstring for the equations).

    mean, low, high: the mean of ``d_s = score_a(s) - score_b(s)`` and its unadjusted 95% interval; ``*_pct``: the
        same in % of ``scale`` (by default the reference's mean score).
    n: seeds. verdict: ``"helps"``, ``"harms"`` or ``"no measurable change"`` (at ``p_adjusted`` and ``alpha``).
    p: the two-sided paired t-test p-value of mean d = 0 (1.0 when ``sd == 0``). p_adjusted: ``p`` after the
        family's correction (``p`` until :func:`corrected`). family: the number of comparisons corrected together.
    resolution: None or the smallest meaningful change of the score, in its own units.
    detectable_pct: the smallest |change| (in % of scale) this trial could have detected at ``alpha / family``.
    seeds_needed: None when decided, else about how many seeds would decide ``mean`` at the same sd (or None).
    sd, scale, alpha: the sd of the differences, the scale of the percentages and the significance level.
    """

    mean: float
    low: float
    high: float
    mean_pct: float
    low_pct: float
    high_pct: float
    n: int
    verdict: str
    p: float
    p_adjusted: float
    family: int
    resolution: float | None
    detectable_pct: float
    seeds_needed: int | None
    sd: float
    scale: float
    alpha: float = ALPHA

    def to_dict(self) -> dict[str, float | int | str | None]:
        return asdict(self)

    def describe(self) -> str:
        """E.g. ``-2.31% [-3.02, -1.60]``: the mean change and its 95% interval, in % of the reference."""
        return f"{self.mean_pct:+.2f}% [{self.low_pct:+.2f}, {self.high_pct:+.2f}]"

    def undecided_note(self) -> str:
        """What an undecided comparison could have detected and what would settle it, e.g. ``could detect ±4.1%;
        about 7 seeds would settle -1.20%``; ``""`` for a decided one (helps or harms)."""
        if self.verdict != NO_CHANGE:
            return ""
        head = f"could detect ±{_short(self.detectable_pct)}%"
        if self.resolution is not None and abs(self.mean) <= self.resolution:
            return f"{head}; the change is within the score's resolution"
        if self.sd == 0:
            if self.mean == 0:
                return f"{head}; no seed changed the score"
            return f"{head}; every seed changed the score by the same amount, so its spread is unknown"
        if self.seeds_needed is None:
            return f"{head}; no number of seeds (up to {MAX_SEEDS}) would settle it at this spread"
        return f"{head}; about {self.seeds_needed} seeds would settle {self.mean_pct:+.2f}%"


def _short(pct: float) -> str:
    return f"{pct:.1f}" if abs(pct) >= 1 or not math.isfinite(pct) else f"{pct:.2g}"


def _percent(value: float, scale: float) -> float:
    if scale > 0:
        return 100.0 * value / scale
    return 0.0 if value == 0 else math.copysign(math.inf, value)


def _judge(
    mean: float, sd: float, n: int, scale: float, resolution: float | None, p_adjusted: float, family: int, alpha: float
) -> tuple[str, float, int | None]:
    """The verdict, ``detectable_pct`` and ``seeds_needed`` at the family's level (module docstring)."""
    level = alpha / family
    within = resolution is not None and abs(mean) <= resolution
    decided = p_adjusted < alpha and sd > 0 and not within
    verdict = (HELPS if mean < 0 else HARMS) if decided else NO_CHANGE
    detectable = _percent(t_quantile(n - 1, level) * sd / math.sqrt(n), scale)
    if resolution is not None:
        detectable = max(detectable, _percent(resolution, scale))
    needed = None
    if not decided and not within and sd > 0:
        ns = np.arange(2, MAX_SEEDS + 1)
        reached = np.flatnonzero(t_quantile(ns - 1, level) * sd / np.sqrt(ns) < abs(mean))
        needed = int(ns[reached[0]]) if reached.size else None
    return verdict, float(detectable), needed


def paired(
    scores: Sequence[float], reference: Sequence[float], scale: float | None = None, resolution: float | None = None
) -> Paired:
    """Compare ``scores`` with ``reference`` seed by seed (the same order); lower is better (module docstring).
    The ``*_pct`` fields are in % of ``scale`` (default: the reference's mean score); ``resolution`` (score units)
    is the smallest change that counts. The result is a family of one: pass several to :func:`corrected`."""
    if len(scores) != len(reference):
        raise ValueError(f"scores and reference must cover the same seeds, got {len(scores)} and {len(reference)}")
    n = len(scores)
    if n < 2:
        raise ValueError(f"a paired verdict needs at least 2 seeds, got {n}")
    if resolution is not None and not resolution >= 0:
        raise ValueError(f"resolution must be None or >= 0, got {resolution}")
    a = np.asarray(scores, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    diffs = a - b
    mean = float(diffs.mean())
    sd = float(diffs.std(ddof=1))
    if sd <= _TIES * float(max(np.abs(a).max(), np.abs(b).max())):
        sd = 0.0  # equal differences, up to rounding
    half = float(t_quantile(n - 1)) * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    p = float(2.0 * stats.t.sf(abs(mean) / (sd / math.sqrt(n)), n - 1)) if sd > 0 else 1.0
    scale = abs(float(b.mean()) if scale is None else float(scale))
    verdict, detectable, needed = _judge(mean, sd, n, scale, resolution, p, 1, ALPHA)
    pct = [_percent(v, scale) for v in (mean, low, high)]
    return Paired(mean, low, high, *pct, n, verdict, p, p, 1, resolution, detectable, needed, sd, scale, ALPHA)


def corrected(comparisons: dict[str, Paired], alpha: float = ALPHA) -> dict[str, Paired]:
    """The family ``comparisons`` after Holm's step-down correction (module docstring): new :class:`Paired` (same
    keys and order) with ``p_adjusted``, ``family = m``, ``alpha``, ``verdict``, ``detectable_pct`` and
    ``seeds_needed`` recomputed at the family's level. Each comparison's own ``p`` is used, so correcting twice
    gives the same result."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    m = len(comparisons)
    order = sorted(comparisons, key=lambda key: comparisons[key].p)
    adjusted, running = {}, 0.0
    for j, key in enumerate(order, start=1):
        running = max(running, min(1.0, (m - j + 1) * comparisons[key].p))
        adjusted[key] = running
    out = {}
    for key, c in comparisons.items():
        verdict, detectable, needed = _judge(c.mean, c.sd, c.n, c.scale, c.resolution, adjusted[key], m, alpha)
        out[key] = replace(
            c,
            p_adjusted=adjusted[key],
            family=m,
            alpha=alpha,
            verdict=verdict,
            detectable_pct=detectable,
            seeds_needed=needed,
        )
    return out
