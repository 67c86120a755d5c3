"""The paired verdict rule, on synthetic per-seed scores."""

from __future__ import annotations

import pytest

from uae_plugin.trial import HARMS, HELPS, NO_CHANGE, paired
from uae_plugin.trial.report import TrialReport
from uae_plugin.trial.verdict import t_quantile

NONE = [1.00, 1.02, 0.98, 1.01, 0.99]


def test_clearly_lower_scores_help():
    assert paired([s - 0.05 for s in NONE], NONE).verdict == HELPS


def test_clearly_higher_scores_harm():
    assert paired([s + 0.05 for s in NONE], NONE).verdict == HARMS


def test_mixed_differences_are_no_measurable_change():
    assert paired([1.03, 0.99, 1.00, 0.98, 1.02], NONE).verdict == NO_CHANGE


def test_identical_scores_are_no_measurable_change():
    assert paired(NONE, NONE).verdict == NO_CHANGE


def test_the_interval_is_the_paired_student_t_interval():
    p = paired([2.0, 4.0], [0.0, 0.0])  # d = (2, 4): mean 3, sd sqrt(2), n 2, t(1) = 12.706
    assert p.mean == pytest.approx(3.0)
    assert p.high - p.mean == pytest.approx(12.706 * 2**0.5 / 2**0.5)
    assert p.verdict == NO_CHANGE


def test_percentages_are_of_the_reference_mean():
    p = paired([1.1, 1.1], [1.0, 1.0])
    assert p.mean_pct == pytest.approx(10.0)


def test_t_quantiles_match_the_table_and_the_normal_limit():
    assert t_quantile(1) == 12.706 and t_quantile(30) == 2.042
    assert t_quantile(60) == pytest.approx(2.000, abs=2e-3)
    assert t_quantile(10_000) == pytest.approx(1.960, abs=1e-3)


def test_one_seed_is_refused():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        paired([1.0], [1.0])


def _report(scores):
    none = scores["none"]
    versus = {a: paired(v, none) for a, v in scores.items() if a != "none"}
    controls = {"uae@0.3": {c: paired(scores["uae@0.3"], scores[c]) for c in ("noise@0.3",)}}
    return TrialReport(scores, [0, 1, 2], 1.0, versus, controls, {}, {})


def test_the_recommendation_names_a_uae_arm_that_beats_its_controls():
    report = _report({"none": [1.0, 1.01, 0.99], "noise@0.3": [0.99, 1.0, 0.98], "uae@0.3": [0.9, 0.91, 0.89]})
    assert report.recommendation.startswith("Recommended: uae@0.3")
    assert "beats its controls noise@0.3" in report.recommendation


def test_the_recommendation_says_when_the_mi_term_did_not_earn_its_cost():
    report = _report({"none": [1.0, 1.01, 0.99], "noise@0.3": [0.9, 0.92, 0.89], "uae@0.3": [0.9, 0.91, 0.9]})
    assert report.recommendation.startswith("Recommended: ")
    assert "did not earn its cost" in report.recommendation or "UAEs help less" in report.recommendation


def test_the_recommendation_says_when_nothing_helped():
    report = _report({"none": [1.0, 1.01, 0.99], "noise@0.3": [1.1, 1.1, 1.1], "uae@0.3": [1.0, 1.02, 0.98]})
    assert report.recommendation.startswith("No augmentation measurably helped this model")
