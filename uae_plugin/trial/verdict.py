"""The paired rule that turns per-seed scores into a verdict.

For an arm ``a`` and the reference ``r`` (``"none"``), scored on the same seeds ``s = 1..n`` (same batch order,
same test set), the per-seed differences ``d_s = score_a(s) - score_r(s)`` (lower scores are better) give

    mean  d̄ = (1/n) Σ_s d_s,    sd = sqrt(Σ_s (d_s - d̄)² / (n - 1)),
    95% interval  d̄ ± t_{0.975, n-1} · sd / √n          (Student's t, paired)

and the verdict: ``"helps"`` when the interval lies below 0, ``"harms"`` when it lies above 0, else
``"no measurable change"``. Each interval is a single 95% interval: with many arms, one in twenty harmless arms
is expected to cross 0 by chance, so treat a lone marginal verdict with care (docs/trial.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

HELPS, HARMS, NO_CHANGE = "helps", "harms", "no measurable change"
CONFIDENCE = 0.95
# Two-sided 95% quantiles t_{0.975, df} of Student's t for df = 1..30 (any statistics table).
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
_Z975 = 1.959964


def t_quantile(df: int) -> float:
    """``t_{0.975, df}``: the table for df <= 30, beyond it the Cornish-Fisher expansion around the normal
    quantile ``z`` (``z + (z³ + z) / 4df + (5z⁵ + 16z³ + 3z) / 96df²``, within 1e-3 of the exact value there)."""
    if df < 1:
        raise ValueError(f"df must be >= 1 (at least 2 seeds), got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = _Z975
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


@dataclass(frozen=True)
class Paired:
    """The paired comparison of two arms over ``n`` seeds: ``mean`` and the 95% interval ``[low, high]`` of
    ``d_s = score_a(s) - score_b(s)``, each also in % of the reference's mean score (``*_pct``), and the verdict."""

    mean: float
    low: float
    high: float
    mean_pct: float
    low_pct: float
    high_pct: float
    n: int
    verdict: str

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)

    def describe(self) -> str:
        """E.g. ``-2.31% [-3.02, -1.60]``: the mean change and its 95% interval, in % of the reference."""
        return f"{self.mean_pct:+.2f}% [{self.low_pct:+.2f}, {self.high_pct:+.2f}]"


def paired(scores: Sequence[float], reference: Sequence[float], scale: float | None = None) -> Paired:
    """Compare ``scores`` with ``reference`` seed by seed (the same order); lower is better (module docstring).
    The ``*_pct`` fields are in % of ``scale`` (default: the reference's mean score)."""
    if len(scores) != len(reference):
        raise ValueError(f"scores and reference must cover the same seeds, got {len(scores)} and {len(reference)}")
    n = len(scores)
    if n < 2:
        raise ValueError(f"a paired verdict needs at least 2 seeds, got {n}")
    diffs = [float(a) - float(b) for a, b in zip(scores, reference, strict=True)]
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1))
    half = t_quantile(n - 1) * sd / math.sqrt(n)
    low, high = mean - half, mean + half
    verdict = HELPS if high < 0 else HARMS if low > 0 else NO_CHANGE
    scale = abs(sum(float(b) for b in reference) / n if scale is None else scale)
    pct = (lambda v: 100.0 * v / scale) if scale > 0 else (lambda v: 0.0 if v == 0 else math.copysign(math.inf, v))
    return Paired(mean, low, high, pct(mean), pct(low), pct(high), n, verdict)
