"""When a trial's answer is not about the user's model: the warnings of a report, and when its recommendation is
withheld.

On the first metric (clean error unless the user's scores say otherwise), with ``none`` the reference arm:

- **the fine-tuning damaged the model**: ``mean_s none(s) > (1 + DAMAGE_TOLERANCE) · baseline`` (lower is
  better; ``baseline`` is the given model's score before any fine-tuning). Every arm continued training a
  damaged model, so no verdict is about the user's; the recommendation is withheld.
- **the fine-tuning moves the model more than any augmentation**: the seed spread of ``none`` (its sd) exceeds
  the largest mean change of any arm against none; the verdicts then rest on few seeds of a noisy fine-tune.

On the adversarial metric:

- **the attack saturates the model**: an error rate (a metric with a resolution) of ``none`` at or above
  ``SATURATED``: no arm can show a gain at this ``test_eps``;
- **the augmentations' budget is far from the test's**: ``max ε > BUDGET_RATIO · test_eps`` (e.g. the digits
  default ε 0.3 against 8/255 for photographs).
"""

from __future__ import annotations

from typing import Any

DAMAGE_TOLERANCE = 0.05  # none may end 5% worse than the given model before the fine-tune is called damaging
SATURATED = 0.95  # an adversarial error rate this high leaves no room for a measurable gain
BUDGET_RATIO = 4.0  # augmentations at more than 4x the test budget are trained for another threat


def _sd(values: list[float]) -> float:
    n = len(values)
    mean = sum(values) / n
    return (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5 if n > 1 else 0.0


def damage_warnings(first: Any) -> tuple[list[str], str | None]:
    """``(warnings, withheld)`` for the first metric's :class:`~.report.MetricResult` (module docstring):
    one-line warnings, and the reason the recommendation is withheld (None if it stands)."""
    warnings: list[str] = []
    withheld = None
    none = first.scores["none"]
    mean = sum(none) / len(none)
    if first.baseline is not None and first.baseline > 0 and mean > (1 + DAMAGE_TOLERANCE) * first.baseline:
        change = 100 * (mean / first.baseline - 1)
        warnings.append(
            f"the fine-tuning damaged the model: none scores {mean:.6g} on {first.name} against {first.baseline:.6g} "
            f"before fine-tuning ({change:+.1f}%, more than {DAMAGE_TOLERANCE:.0%} worse); every arm continued a "
            "damaged model: lower --lr or --fit-steps (docs/trial.md, 'A budget that does not damage the model')"
        )
        withheld = f"the reference (none) was damaged by the fine-tuning ({change:+.1f}% on {first.name})"
    spread = _sd(none)
    changes = [abs(p.mean) for p in first.versus_none.values()]
    if changes and mean != 0 and spread > max(changes):
        warnings.append(
            f"the seed spread of none (sd {100 * spread / abs(mean):.2g}% of its {first.name} score) exceeds the "
            f"largest change in the table ({100 * max(changes) / abs(mean):.2g}%): the fine-tuning moves the model "
            "more than any augmentation does; lower the learning rate, or add seeds"
        )
    return warnings, withheld


def robustness_warnings(results: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """The adversarial metric's warnings (module docstring), from a report's results and config."""
    attacked = results.get("adversarial")
    if attacked is None:
        return []
    warnings = []
    test_eps = config.get("metric_settings", {}).get("robustness", {}).get("test_eps")
    none = attacked.scores["none"]
    mean = sum(none) / len(none)
    if attacked.resolution is not None and mean >= SATURATED:
        warnings.append(
            f"the attack saturates the model: none's adversarial error is {mean:.1%} at test_eps {test_eps:.4g}, "
            "so no arm can show a gain; lower --test-eps"
        )
    eps = [e for e in config.get("eps", []) if e]
    if test_eps and eps and max(eps) > BUDGET_RATIO * test_eps:
        warnings.append(
            f"the augmentations' ε (up to {max(eps):g}) is {max(eps) / test_eps:.0f}x the adversarial metric's "
            f"test_eps ({test_eps:.4g}): they train for a larger threat than the one measured; for natural images "
            "pass --eps near --test-eps (e.g. 0.0314)"
        )
    return warnings
