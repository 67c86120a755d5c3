"""The robustness half of run_trial: every fine-tuned model scored on clean, adversarial and corrupted error; the
online arms (UAEs and PGD in every training step); denoising targets; refusals before any work. Real digits."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from uae_plugin import run_trial
from uae_plugin.experiments.data import mnist_split
from uae_plugin.trial import AdamFit, reconstruction_error
from uae_plugin.trial.metrics import Robustness, TrialMetrics
from uae_plugin.trial.online import OnlineAttack, chosen_rows

QUIET = {"progress": False}


def small_conv_autoencoder() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(),
        nn.ConvTranspose2d(16, 8, 4, 2, 1), nn.ReLU(), nn.ConvTranspose2d(8, 1, 4, 2, 1), nn.Sigmoid(),
    )  # fmt: skip


@pytest.fixture(scope="module")
def digits16():
    split = mnist_split(n_train=400, n_test=100, seed=0)
    return {k: F.interpolate(split[k], size=16, mode="area") for k in ("x_train", "x_test")}


@pytest.fixture(scope="module")
def autoencoder(digits16):
    torch.manual_seed(0)
    return AdamFit(lr=3e-3)(small_conv_autoencoder(), digits16["x_train"], steps=300, seed=0)


@pytest.fixture(scope="module")
def adversarial_training(autoencoder, digits16):
    """PGD adversarial training (every row of every batch attacked, 5 steps at ε 0.1) against plain fine-tuning."""
    return run_trial(
        autoencoder, digits16["x_train"], digits16["x_test"], arms=("none", "online-pgd"), eps=(0.1,),
        seeds=(0, 1, 2), steps=100, lr=1e-3, test_eps=0.1, online_fraction=1.0, **QUIET,
    )  # fmt: skip


def test_online_pgd_lowers_the_error_under_attack_of_a_small_autoencoder(adversarial_training):
    robust = adversarial_training.for_metric("adversarial")
    assert robust.verdict["online-pgd@0.1"] == "helps"
    assert robust.versus_none["online-pgd@0.1"].mean_pct < -10


def test_the_adversarial_score_is_never_below_the_clean_score(adversarial_training):
    clean, attacked = adversarial_training.results["clean"], adversarial_training.results["adversarial"]
    assert attacked.baseline >= clean.baseline
    for arm, values in attacked.scores.items():
        assert all(a >= c for a, c in zip(values, clean.scores[arm], strict=True))


def test_the_recommendation_states_the_trade_off_of_robustness_and_clean_error(adversarial_training):
    words = adversarial_training.recommendation
    assert "adversarial: online-pgd@0.1:" in words and "lower adversarial error" in words
    assert "higher clean error" in words or "clean error" in words


def test_the_attack_of_the_adversarial_metric_is_not_masked(autoencoder, digits16):
    x = digits16["x_test"][:64]

    def attacked(eps: float, steps: int) -> float:
        metric = TrialMetrics("reconstruction", ["adversarial"], {}, Robustness(eps, steps=steps), x.shape[0])
        return float(metric(autoencoder, x)["adversarial"])

    clean = reconstruction_error(autoencoder, x)
    by_eps = [attacked(e, 20) for e in (0.02, 0.05, 0.1, 0.2)]
    assert clean < by_eps[0] < by_eps[1] < by_eps[2] < by_eps[3]  # the error grows with ε
    assert attacked(0.1, 40) >= 0.99 * by_eps[2]  # more steps do not lower it


def test_the_online_arms_attack_the_stated_fraction_of_every_batch_and_nothing_else(autoencoder, digits16):
    from uae_plugin import Reconstruction

    x = digits16["x_train"][:64]
    rows = chosen_rows(64, 0.25, seed=3, step=7)
    assert int(rows.sum()) == 16 and torch.equal(rows, chosen_rows(64, 0.25, seed=3, step=7))
    for kind in ("online-uae", "online-pgd"):
        augment = OnlineAttack(kind, Reconstruction, 0.1, 3, 0.25, 3, {})
        out = augment(autoencoder, x, 7)
        changed = (out != x).flatten(1).any(dim=1)
        assert torch.equal(changed & ~rows, torch.zeros_like(rows))  # only the chosen rows
        assert changed[rows].float().mean() > 0.9 and (out - x).abs().max() <= 0.1 + 1e-6


class Recorder:
    def __init__(self):
        self.calls = []

    def __repr__(self):
        return "Recorder()"

    def __call__(self, model, data, *, steps, seed, targets=None, augment=None):
        self.calls.append({"data": data, "targets": targets, "augment": augment})
        return AdamFit()(model, data, steps=steps, seed=seed, targets=targets, augment=augment)


@pytest.fixture(scope="module")
def dense(trial_autoencoder, trial_digits):
    return trial_autoencoder, trial_digits


TINY = {"steps": 5, "eps": (0.3,), "seeds": (0, 1), "attack_options": {"steps": 3}, "progress": False}


def test_target_clean_trains_each_augmented_row_towards_its_clean_source(dense):
    model, split = dense
    fit = Recorder()
    run_trial(model, split["x_train"], split["x_test"], fit=fit, arms=("uae",), target="clean", metrics=("clean",),
              **TINY)  # fmt: skip
    uae = [c for c in fit.calls if c["targets"] is not None]
    assert len(uae) == 2 and len(fit.calls) == 4  # none's two fine-tunes get no targets
    n = split["x_train"].shape[0]
    assert torch.equal(uae[0]["targets"], torch.cat([split["x_train"], split["x_train"]]))
    assert not torch.equal(uae[0]["data"][n:], split["x_train"])


def test_the_online_arms_train_on_the_clean_rows_with_an_augment_hook(dense):
    model, split = dense
    fit = Recorder()
    run_trial(model, split["x_train"], split["x_test"], fit=fit, arms=("online-uae",), metrics=("clean",), **TINY)
    online = [c for c in fit.calls if c["augment"] is not None]
    assert len(online) == 2 and all(c["data"] is split["x_train"] for c in online)


def test_a_dict_of_scores_gives_one_verdict_column_each(dense):
    model, split = dense
    scores = {"mse": reconstruction_error, "mae": lambda m, x: float((m(x) - x).abs().mean().detach())}
    report = run_trial(model, split["x_train"], split["x_test"], score=scores, arms=("copy",), **TINY)
    assert report.metrics == ["mse", "mae"]
    table = report.table()
    assert "| mse: change vs none |" in table and "| mae: change vs none |" in table
    assert report.for_metric("mae").scores != report.scores


def test_for_metric_agrees_with_a_trial_on_that_metric_alone(dense):
    model, split = dense
    both = run_trial(model, split["x_train"], split["x_test"], arms=("uae",), metrics=("clean", "adversarial"), **TINY)
    alone = run_trial(model, split["x_train"], split["x_test"], arms=("uae",), metrics=("adversarial",), **TINY)
    assert both.for_metric("adversarial").scores == alone.scores
    assert both.for_metric("adversarial").verdict == alone.verdict
    with pytest.raises(KeyError, match="metric 'corruption' is not in this report"):
        both.for_metric("corruption")


def test_the_corruption_metric_keeps_per_corruption_and_per_severity_numbers(dense, tmp_path):
    import json

    from uae_plugin.trial.corruptions import CORRUPTIONS

    model, split = dense
    report = run_trial(model, split["x_train"], split["x_test"], arms=("copy",), metrics=("corruption",), out=tmp_path,
                       **TINY)  # fmt: skip
    saved = json.loads((tmp_path / "report.json").read_text())["by_metric"]["corruption"]
    detail = saved["details"]["copy"][0]
    assert set(detail) == set(CORRUPTIONS) and all(set(v) == {"1", "2", "3", "4", "5"} for v in detail.values())
    mean = sum(v for per in detail.values() for v in per.values()) / (5 * len(detail))
    assert report.for_metric("corruption").scores["copy"][0] == pytest.approx(mean)


def test_a_contrastive_trial_scores_clean_and_adversarial_error_of_one_probe(dense):
    _, split = dense
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2), nn.ReLU(), nn.Flatten())
    report = run_trial(encoder, split["x_train"], split["x_test"], task="contrastive", arms=("copy",),
                       metrics=("clean", "adversarial", "knn"), test_eps=0.1, y_train=split["y_train"],
                       y_test=split["y_test"], **TINY)  # fmt: skip
    clean, attacked = report.results["clean"], report.results["adversarial"]
    assert clean.resolution == pytest.approx(1 / 48) and attacked.resolution == pytest.approx(1 / 48)
    for arm in clean.scores:
        assert all(a >= c for a, c in zip(attacked.scores[arm], clean.scores[arm], strict=True))
    assert attacked.baseline > clean.baseline  # a probe on a random encoder is not robust at ε 0.1
    assert "knn" in report.metrics and all(0 <= s <= 1 for s in report.results["knn"].scores["none"])


class Never:
    calls = 0

    def __repr__(self):
        return "Never()"

    def __call__(self, model, data, *, steps, seed):
        Never.calls += 1
        return model


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metrics": ("clean", "robustness")}, "metrics: unknown metric 'robustness'"),
        ({"metrics": ("knn",)}, "'knn' scores an encoder's features: it needs task='contrastive'"),
        ({"test_eps": 0.0}, "test_eps must be a finite number > 0"),
        ({"test_eps": 1.5}, "test_eps must be an L-inf budget in \\(0, 1\\]"),
        ({"test_attack": "autoattack"}, "test_attack: 'autoattack' attacks a classifier"),
        ({"test_attack": "fgsm"}, "test_attack must be one of"),
        ({"target": "noisy"}, "target must be one of"),
        ({"arms": ("online-pgd",)}, "takes no augment= keyword"),
        ({"target": "clean", "arms": ("uae",)}, "takes no targets= keyword"),
        ({"online_fraction": 0.0}, "online_fraction must be a share of each batch in \\(0, 1\\]"),
    ],
)
def test_bad_robustness_settings_are_refused_before_any_training(dense, change, message):
    model, split = dense
    Never.calls = 0
    with pytest.raises((ValueError, TypeError), match=message):
        run_trial(model, split["x_train"], split["x_test"], fit=Never(), **{**TINY, **change})
    assert Never.calls == 0


def test_corruptions_of_rows_that_are_not_images_are_refused_naming_x_test(dense):
    model, split = dense
    flat = nn.Sequential(nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 784), nn.Sigmoid())
    x_train, x_test = split["x_train"].flatten(1), split["x_test"].flatten(1)
    with pytest.raises(ValueError, match="x_test"):
        run_trial(flat, x_train, x_test, metrics=("clean", "corruption"), fit=Never(), **TINY)
    assert Never.calls == 0


def test_a_missing_extra_for_a_metric_is_one_line_naming_it(dense, monkeypatch):
    import builtins

    model, split = dense
    real_import = builtins.__import__

    def no_kornia(name, *args, **kwargs):
        if name.split(".")[0] == "kornia":
            raise ImportError(f"No module named {name!r}", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_kornia)
    for module in [m for m in list(__import__("sys").modules) if m.split(".")[0] == "kornia"]:
        monkeypatch.delitem(__import__("sys").modules, module)
    with pytest.raises(ImportError, match=r"needs kornia, which is not installed: pip install 'uae-plugin\[kornia\]'"):
        run_trial(model, split["x_train"], split["x_test"], metrics=("corruption",), fit=Never(), **TINY)
    assert Never.calls == 0
