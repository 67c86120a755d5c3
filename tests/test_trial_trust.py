"""A trial people can trust: warnings when the fine-tuning damages the model, reports that never lose arms,
pictures rebuilt on resume, refusals that name values, a report.md with its context. Real digits and models."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from uae_plugin import run_trial
from uae_plugin.experiments.data import mnist_split
from uae_plugin.trial import AdamFit, reconstruction_error
from uae_plugin.trial.report import MetricResult, TrialReport

TINY = {"steps": 5, "eps": (0.3,), "seeds": (0, 1), "attack_options": {"steps": 3}, "progress": False,
        "metrics": ("clean",)}  # fmt: skip
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def batch_norm():
    """A strided conv autoencoder with batch norm, trained to convergence on 300 digits."""
    split = mnist_split(n_train=300, n_test=100, seed=0)
    torch.manual_seed(0)
    bn = nn.Sequential(
        nn.Conv2d(1, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.BatchNorm2d(16),
        nn.ReLU(), nn.ConvTranspose2d(16, 8, 4, 2, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.ConvTranspose2d(8, 1, 4, 2, 1),
        nn.Sigmoid(),
    )  # fmt: skip
    return AdamFit(lr=1e-3)(bn, split["x_train"], steps=600, seed=0), split


def test_the_default_fit_leaves_a_converged_batch_norm_model_no_worse(batch_norm):
    bn, split = batch_norm
    report = run_trial(bn, split["x_train"], split["x_test"], arms=("none",), seeds=(0, 1), steps=10,
                       metrics=("clean",), progress=False)  # fmt: skip
    assert not report.warnings and max(report.scores["none"]) <= 1.05 * report.baseline


def test_a_budget_that_damages_the_model_warns_and_withholds_the_recommendation(batch_norm, tmp_path):
    bn, split = batch_norm
    report = run_trial(bn, split["x_train"], split["x_test"], arms=("copy",), seeds=(0, 1), steps=10, lr=1e-2,
                       metrics=("clean",), progress=False, out=tmp_path)  # fmt: skip
    assert sum(report.scores["none"]) / 2 > 1.05 * report.baseline
    assert any(w.startswith("the fine-tuning damaged the model") for w in report.warnings)
    assert report.recommendation.startswith("No recommendation: the reference (none) was damaged")
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["warnings"] == report.warnings and "Warnings:" in (tmp_path / "report.md").read_text()


def test_a_seed_spread_larger_than_every_change_is_a_warning():
    scores = {"none": [1.0, 1.2, 0.9], "copy": [1.01, 1.21, 0.91]}
    result = MetricResult.compare("clean", scores, baseline=1.1)
    report = TrialReport({"clean": result}, [0, 1, 2], {}, {})
    assert any("seed spread of none" in w for w in report.warnings)


def test_a_rerun_with_fewer_arms_reports_them_and_says_the_folder_holds_more(model, split, tmp_path):
    run_trial(model, split["x_train"], split["x_test"], arms=("copy", "noise", "uae"), out=tmp_path, **TINY)
    fewer = run_trial(model, split["x_train"], split["x_test"], arms=("uae",), out=tmp_path, **TINY)
    assert list(fewer.scores) == ["none", "uae@0.3"]
    assert fewer.config["folder_holds"] == {"arms": ["copy", "noise@0.3"]}
    table = (tmp_path / "report.md").read_text()
    assert "The folder also holds arms copy, noise@0.3" in table and "| uae@0.3 |" in table


def test_pictures_are_rebuilt_on_a_resume_from_the_stored_augmentations(model, split, tmp_path):
    first = run_trial(model, split["x_train"], split["x_test"], arms=("noise", "pgd", "uae"), out=tmp_path, **TINY)
    for name in ("change_vs_none.png", "examples.png"):
        (tmp_path / name).unlink()
    again = run_trial(model, split["x_train"], split["x_test"], arms=("noise", "pgd", "uae"), out=tmp_path, **TINY)
    assert (tmp_path / "examples.png").read_bytes()[:8] == PNG
    assert set(again.examples) == set(first.examples)
    for key, rows in first.examples.items():
        assert torch.allclose(again.examples[key], rows)


def test_a_folder_of_another_learning_rate_is_refused_naming_both_values(model, split, tmp_path):
    run_trial(model, split["x_train"], split["x_test"], arms=("copy",), out=tmp_path, lr=1e-3, **TINY)
    with pytest.raises(ValueError, match=r"lr: 0\.001 there, 0\.003 now"):
        run_trial(model, split["x_train"], split["x_test"], arms=("copy",), out=tmp_path, lr=3e-3, **TINY)


def test_report_md_states_the_data_sizes_budget_and_what_each_metric_measures(model, split, tmp_path):
    settings = {**TINY, "metrics": ("clean", "adversarial"), "test_eps": 0.05, "score": {"clean": reconstruction_error}}
    run_trial(model, split["x_train"], split["x_test"], arms=("copy",), out=tmp_path, **settings)
    text = (tmp_path / "report.md").read_text()
    assert "Trial: task reconstruction, model DenseAutoencoder; 64 training rows, 48 test rows" in text
    assert "fit AdamFit(lr=0.0001, batch_size=64, loss=reconstruction_loss) for 5 steps" in text
    assert "clean (uae_plugin.trial.budget.reconstruction_error)" in text
    assert "adversarial (the test MSE per element under PGD-20, random start at ε 0.05, on every test row)" in text


def test_a_saturated_attack_and_a_budget_far_from_the_tests_are_warnings():
    clean = MetricResult.compare("clean", {"none": [0.1, 0.11, 0.12], "uae@0.3": [0.1, 0.1, 0.13]}, resolution=0.01)
    attacked = MetricResult.compare(
        "adversarial", {"none": [0.99, 1.0, 0.98], "uae@0.3": [0.99, 0.99, 1.0]}, resolution=0.01
    )
    config = {"eps": [0.3], "metric_settings": {"robustness": {"test_eps": 8 / 255}}}
    report = TrialReport({"clean": clean, "adversarial": attacked}, [0, 1, 2], {}, config)
    assert any(w.startswith("the attack saturates the model") for w in report.warnings)
    assert any("is 10x the adversarial metric's test_eps" in w for w in report.warnings)


def test_the_stated_cost_of_an_online_arm_counts_a_contrastive_attacks_views():
    from uae_plugin import Contrastive, Reconstruction
    from uae_plugin.trial.online import online_cost, views_per_row

    encoder = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten())
    assert views_per_row(Reconstruction(encoder)) == 1 and views_per_row(Contrastive(encoder, n_views=8)) == 8
    assert online_cost("online-pgd", 5, 0.5) == 3.5 and online_cost("online-pgd", 5, 0.5, views=8) == 21.0


def test_a_robustness_recommendation_states_its_cost_on_every_metric_it_measurably_moves():
    none = [1.0, 1.01, 0.99, 1.0, 1.02]
    results = {
        "clean": MetricResult.compare("clean", {"none": none, "online-pgd@0.1": [1.0, 1.01, 0.99, 1.01, 1.02]}),
        "adversarial": MetricResult.compare(
            "adversarial", {"none": none, "online-pgd@0.1": [0.8, 0.8, 0.79, 0.8, 0.81]}
        ),
        "corruption": MetricResult.compare("corruption", {"none": none, "online-pgd@0.1": [1.1, 1.1, 1.09, 1.1, 1.12]}),
    }
    words = TrialReport(results, [0, 1, 2, 3, 4], {}, {}).recommendation
    assert "adversarial: online-pgd@0.1: 20.3% lower adversarial error, no measurable change in clean error, " in words
    assert "9.8% higher corruption error" in words
