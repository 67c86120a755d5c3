"""The paired verdict rule and its correction for many comparisons, on synthetic per-seed scores."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats

from uae_plugin.trial import HARMS, HELPS, NO_CHANGE, paired
from uae_plugin.trial.report import MetricResult, TrialReport
from uae_plugin.trial.verdict import ALPHA, CORRECTION, MAX_SEEDS, corrected, t_quantile

NONE = [1.00, 1.02, 0.98, 1.01, 0.99]
JITTER = [0.004, -0.002, 0.0, 0.002, -0.004]  # per-seed differences that are not all equal


def _shift(scores, by, jitter=JITTER):
    return [s + by + j for s, j in zip(scores, jitter, strict=True)]


def test_clearly_lower_scores_help():
    assert paired(_shift(NONE, -0.05), NONE).verdict == HELPS


def test_clearly_higher_scores_harm():
    assert paired(_shift(NONE, 0.05), NONE).verdict == HARMS


def test_mixed_differences_are_no_measurable_change():
    assert paired([1.03, 0.99, 1.00, 0.98, 1.02], NONE).verdict == NO_CHANGE


def test_identical_scores_are_no_measurable_change():
    p = paired(NONE, NONE)
    assert p.verdict == NO_CHANGE and p.p == 1.0 and p.seeds_needed is None
    assert p.undecided_note() == "could detect ±0%; no seed changed the score"


def test_the_interval_is_the_paired_student_t_interval():
    p = paired([2.0, 4.0], [0.0, 0.0])  # d = (2, 4): mean 3, sd sqrt(2), n 2, t_{0.975, 1} = 12.706
    assert p.mean == pytest.approx(3.0)
    assert p.sd == pytest.approx(2**0.5)
    assert p.high - p.mean == pytest.approx(12.7062 * 2**0.5 / 2**0.5, rel=1e-5)
    assert p.verdict == NO_CHANGE


def test_percentages_are_of_the_reference_mean():
    p = paired([1.1, 1.12], [1.0, 1.0])
    assert p.mean_pct == pytest.approx(11.0)


def test_t_quantiles_are_scipys_and_match_the_table_and_the_normal_limit():
    assert t_quantile(1) == pytest.approx(12.706, abs=1e-3) and t_quantile(30) == pytest.approx(2.042, abs=1e-3)
    assert t_quantile(60) == pytest.approx(2.000, abs=2e-3)
    assert t_quantile(10_000) == pytest.approx(1.960, abs=1e-3)
    assert t_quantile(4, 0.01) == pytest.approx(stats.t.ppf(0.995, 4))
    with pytest.raises(ValueError, match="at least 2 seeds"):
        t_quantile(0)


def test_one_seed_is_refused():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        paired([1.0], [1.0])


def test_the_p_value_is_the_paired_t_test():
    scores = [0.97, 1.01, 0.95, 1.00, 0.99]
    p = paired(scores, NONE)
    assert p.p == pytest.approx(stats.ttest_rel(scores, NONE).pvalue, rel=1e-10)
    assert p.p_adjusted == p.p and p.family == 1
    # at a family of one, p < 0.05 exactly when the 95% interval excludes 0
    for arm in (scores, _shift(NONE, -0.05), [1.03, 0.99, 1.00, 0.98, 1.02]):
        q = paired(arm, NONE)
        assert (q.p < ALPHA) == (q.high < 0 or q.low > 0)


# ---------------------------------------------------------------- many comparisons: Holm's correction


def _ten_arms():
    """Ten arms at 5 seeds: ``real`` helps (-10%, small spread), ``lucky`` is noise with an unadjusted p near 0.025,
    and eight more noise arms are centred near 0."""
    base = np.array([-0.02, -0.01, 0.0, 0.01, 0.02])
    arms = {
        "real": [0.9 * s + j for s, j in zip(NONE, [0.002, -0.001, 0.0, 0.001, -0.002], strict=True)],
        "lucky": _shift(NONE, 0.0, [-0.02, -0.035, -0.005, -0.03, -0.01]),
    }
    for k in range(8):
        arms[f"noise{k}"] = _shift(NONE, 0.003 * (k - 3.5), np.roll(base, k))
    return arms


def test_holm_keeps_only_the_real_effect_among_ten_arms():
    arms = _ten_arms()
    raw = {arm: paired(values, NONE) for arm, values in arms.items()}
    # unadjusted, one noise arm is a marginal "helps": the problem the correction solves
    assert {arm for arm, p in raw.items() if p.verdict != NO_CHANGE} == {"real", "lucky"}
    assert raw["lucky"].p < ALPHA and raw["real"].mean_pct == pytest.approx(-10.0, abs=0.5)
    fixed = corrected(raw)
    assert CORRECTION == "Holm" and list(fixed) == list(raw)
    assert {arm for arm, p in fixed.items() if p.verdict != NO_CHANGE} == {"real"}
    assert fixed["real"].verdict == HELPS and fixed["real"].p_adjusted < ALPHA
    assert fixed["lucky"].p_adjusted > ALPHA and fixed["lucky"].p == raw["lucky"].p
    assert all(p.family == 10 for p in fixed.values())
    # the interval shown stays the unadjusted one; the original objects are untouched
    assert fixed["lucky"].describe() == raw["lucky"].describe()
    assert raw["lucky"].verdict == HELPS and raw["lucky"].family == 1
    # correcting twice changes nothing
    assert corrected(fixed) == fixed


def test_holm_adjusted_p_values_match_a_hand_computation():
    template = paired(_shift(NONE, -0.01), NONE)
    ps = {"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.2}
    fixed = corrected({k: replace(template, p=v, p_adjusted=v) for k, v in ps.items()})
    # sorted: a 0.01, c 0.03, b 0.04, d 0.2 -> 4*0.01 = 0.04; max(0.04, 3*0.03) = 0.09; max(0.09, 2*0.04 = 0.08)
    # = 0.09 (step-down monotonicity); max(0.09, 1*0.2) = 0.2
    assert {k: p.p_adjusted for k, p in fixed.items()} == pytest.approx({"a": 0.04, "b": 0.09, "c": 0.09, "d": 0.2})
    assert [p.verdict for p in fixed.values()] == [HELPS, NO_CHANGE, NO_CHANGE, NO_CHANGE]
    capped = corrected({k: replace(template, p=v) for k, v in {"x": 0.5, "y": 0.6, "z": 0.001}.items()})
    assert {k: p.p_adjusted for k, p in capped.items()} == pytest.approx({"x": 1.0, "y": 1.0, "z": 0.003})
    assert corrected({}) == {}


# ---------------------------------------------------------------- zero width and resolution


def test_equal_differences_of_a_discrete_score_give_no_verdict():
    none = [k / 64 for k in (20, 22, 19, 21, 24)]  # error rates on 64 test rows
    uae = [e - 1 / 64 for e in none]  # one row fewer wrong on every seed: -4.72%, zero-width interval
    p = paired(uae, none)
    assert p.low == p.mean == p.high and p.sd == 0.0
    assert p.verdict == NO_CHANGE and p.p == 1.0 and p.p_adjusted == 1.0 and p.seeds_needed is None
    assert "same amount" in p.undecided_note()
    assert corrected({"uae": p})["uae"].verdict == NO_CHANGE


def test_equal_differences_up_to_rounding_give_no_verdict():
    none = [0.31, 0.47, 0.52, 0.29, 0.66]
    uae = [s - 0.05 for s in none]  # d_s = -0.05 but for float rounding
    assert np.std(np.subtract(uae, none), ddof=1) > 0  # rounding alone would make the t-test "significant"
    p = paired(uae, none)
    assert p.sd == 0.0 and p.low == p.high and p.verdict == NO_CHANGE and p.p == 1.0


def test_a_change_within_the_resolution_is_no_measurable_change():
    scores = _shift(NONE, -0.004, [1e-4, -1e-4, 0.0, 2e-4, -2e-4])
    assert paired(scores, NONE).verdict == HELPS  # steady, so significant without a resolution
    p = paired(scores, NONE, resolution=0.01)
    assert p.p < 1e-4 and p.verdict == NO_CHANGE and p.seeds_needed is None
    assert p.detectable_pct >= 1.0  # at least the resolution, 0.01 of a scale of 1.0
    assert p.undecided_note().endswith("the change is within the score's resolution")
    assert paired(scores, NONE, resolution=0.001).verdict == HELPS
    with pytest.raises(ValueError, match="resolution"):
        paired(scores, NONE, resolution=-1.0)


# ---------------------------------------------------------------- what an undecided trial could have detected


def _holds(n, sd, mean, level):
    return stats.t.ppf(1 - level / 2, n - 1) * sd / math.sqrt(n) < abs(mean)


def test_detectable_change_and_seeds_needed():
    p = paired([0.99, 0.98, 1.00], [1.0, 1.0, 1.0])  # d = (-0.01, -0.02, 0): mean -0.01, sd 0.01, scale 1
    assert p.mean == pytest.approx(-0.01) and p.sd == pytest.approx(0.01) and p.verdict == NO_CHANGE
    assert p.detectable_pct == pytest.approx(100 * stats.t.ppf(0.975, 2) * 0.01 / math.sqrt(3))
    n = p.seeds_needed
    assert n == 7  # t_{0.975, 6} = 2.447 < √7 = 2.646, t_{0.975, 5} = 2.571 > √6 = 2.449
    assert _holds(n, p.sd, p.mean, ALPHA) and not _holds(n - 1, p.sd, p.mean, ALPHA)
    assert p.undecided_note() == f"could detect ±{p.detectable_pct:.1f}%; about 7 seeds would settle -1.00%"
    # in a family of 10, at the Bonferroni level 0.005
    family = corrected({f"arm{k}": p for k in range(10)})
    q = family["arm0"]
    assert q.detectable_pct == pytest.approx(100 * stats.t.ppf(1 - ALPHA / 20, 2) * 0.01 / math.sqrt(3))
    assert q.seeds_needed > n
    assert _holds(q.seeds_needed, q.sd, q.mean, ALPHA / 10) and not _holds(q.seeds_needed - 1, q.sd, q.mean, ALPHA / 10)


def test_seeds_needed_is_none_when_decided_or_out_of_reach():
    assert paired(_shift(NONE, -0.05), NONE).seeds_needed is None  # decided
    far = paired([1.0001 + d for d in (0.1, -0.1, 0.05, -0.05)], [1.0] * 4)  # mean 1e-4, sd ~0.09
    assert far.verdict == NO_CHANGE and far.seeds_needed is None
    assert not _holds(MAX_SEEDS, far.sd, far.mean, ALPHA)
    assert far.undecided_note().endswith(f"no number of seeds (up to {MAX_SEEDS}) would settle it at this spread")
    assert paired(_shift(NONE, 0.05), NONE).undecided_note() == ""


def test_the_new_fields_are_in_to_dict():
    d = paired([0.99, 0.98, 1.00], [1.0, 1.0, 1.0], resolution=0.001).to_dict()
    assert {"p", "p_adjusted", "family", "resolution", "detectable_pct", "seeds_needed"} <= set(d)
    assert d["family"] == 1 and d["resolution"] == 0.001 and d["seeds_needed"] == 7


# ---------------------------------------------------------------- the report


def _report(scores):
    """The report of one metric; its verdicts Holm-corrected over the arms, and over the UAE-control pairs."""
    return TrialReport({"clean": MetricResult.compare("clean", scores, baseline=1.0)}, [0, 1, 2], {}, {})


def test_the_recommendation_names_a_uae_arm_that_beats_its_controls():
    report = _report({"none": [1.0, 1.01, 0.99], "noise@0.3": [0.99, 1.0, 0.98], "uae@0.3": [0.9, 0.92, 0.88]})
    assert report.recommendation.startswith("Recommended: uae@0.3")
    assert "beats its controls noise@0.3" in report.recommendation


def test_the_recommendation_says_when_the_mi_term_did_not_earn_its_cost():
    report = _report({"none": [1.0, 1.01, 0.99], "noise@0.3": [0.9, 0.92, 0.89], "uae@0.3": [0.9, 0.91, 0.9]})
    assert report.recommendation.startswith("Recommended: ")
    assert "did not earn its cost" in report.recommendation or "UAEs help less" in report.recommendation


def test_the_recommendation_says_when_nothing_helped():
    report = _report({"none": [1.0, 1.01, 0.99], "noise@0.3": [1.1, 1.1, 1.1], "uae@0.3": [1.0, 1.02, 0.98]})
    assert report.recommendation.startswith("No augmentation measurably helped this model")
