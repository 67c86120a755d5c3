"""run_trial: the controlled augmentation trial, on real digits with a real dense autoencoder."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.data import TensorDataset

from uae_plugin import run_trial
from uae_plugin.experiments.models import DenseAutoencoder, train_autoencoder
from uae_plugin.trial import AdamFit, reconstruction_error

PNG = b"\x89PNG\r\n\x1a\n"
TINY = {"steps": 5, "eps": (0.3,), "seeds": (0, 1), "attack_options": {"steps": 3}, "progress": False}


class Recorder:
    """A fit or score that records each call and delegates to the default."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def __repr__(self):
        return "Recorder()"

    def __call__(self, model, data, **kw):
        self.calls.append(kw.get("seed", len(data)))
        return self.inner(model, data, **kw)


@pytest.fixture(scope="module")
def snapshot_and_report(model, split):
    """The model's weights, grads, flags and mode before a trial, and the trial's report (the model in train mode)."""
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [(p.requires_grad, None if p.grad is None else p.grad.clone()) for p in model.parameters()]
    report = run_trial(model, split["x_train"], split["x_test"], **TINY)
    snapshot = (before, flags, model.training)
    model.eval()
    return snapshot, report


@pytest.fixture(scope="module")
def report(snapshot_and_report):
    return snapshot_and_report[1]


@pytest.fixture(scope="module")
def stored(model, split, tmp_path_factory):
    out = tmp_path_factory.mktemp("trial")
    return run_trial(model, split["x_train"], split["x_test"], out=out, **TINY), out


def test_the_users_model_is_bit_identical_after_a_trial(model, snapshot_and_report):
    (before, flags, training), _ = snapshot_and_report
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    for p, (required, grad) in zip(model.parameters(), flags, strict=True):
        assert p.requires_grad == required
        assert (p.grad is None and grad is None) or torch.equal(p.grad, grad)
    assert training


def test_the_same_call_twice_gives_identical_scores(model, split, report):
    again = run_trial(model, split["x_train"], split["x_test"], **TINY)
    assert again.scores == report.scores


def test_every_arm_has_one_score_per_seed_and_keys_start_with_the_arm_name(report):
    assert list(report.scores) == ["none", "copy", "noise@0.3", "nomi@0.3", "pgd@0.3", "uae@0.3"]
    assert all(len(v) == 2 for v in report.scores.values())
    assert set(report.verdict) == set(report.scores) - {"none"}
    assert set(report.controls["uae@0.3"]) == {"noise@0.3", "nomi@0.3"}


def test_augmented_arms_differ_from_none(report):
    assert report.scores["uae@0.3"] != report.scores["none"]
    assert report.stats["0.3"]["l2"]["noise"] == pytest.approx(report.stats["0.3"]["l2"]["uae"], rel=1e-3)


def test_custom_fit_and_score_are_called_once_per_arm_and_seed(model, split):
    fit, score = Recorder(AdamFit()), Recorder(lambda m, x: reconstruction_error(m, x))
    run_trial(model, split["x_train"], split["x_test"], fit=fit, score=score, arms=("uae", "noise"), **TINY)
    assert sorted(fit.calls) == [0, 0, 0, 1, 1, 1]  # none, noise@0.3, uae@0.3 at seeds 0 and 1
    assert len(score.calls) == 6 + 1  # and once for the given model's baseline


def test_the_fit_gets_train_plus_one_augmentation_per_row(model, split):
    sizes = []

    def fit(m, data, *, steps, seed):
        sizes.append(len(data))
        return m

    run_trial(model, split["x_train"], split["x_test"], fit=fit, arms=("copy", "uae"), **TINY)
    assert sorted(set(sizes)) == [64, 128]


def test_n_augment_augments_that_many_rows(model, split):
    sizes = []
    fit = lambda m, data, *, steps, seed: sizes.append(len(data)) or m  # noqa: E731
    run_trial(model, split["x_train"], split["x_test"], fit=fit, arms=("uae",), n_augment=10, **TINY)
    assert sorted(set(sizes)) == [64, 74]


def test_a_dataset_gives_the_scores_of_the_tensor_of_its_rows(model, split, report):
    labels = torch.zeros(64, dtype=torch.long)
    as_dataset = run_trial(model, TensorDataset(split["x_train"], labels), TensorDataset(split["x_test"]), **TINY)
    assert as_dataset.scores == report.scores


def test_a_rerun_with_out_resumes_without_fitting_again(model, split, tmp_path):
    first = run_trial(model, split["x_train"], split["x_test"], out=tmp_path, fit=Recorder(AdamFit()), **TINY)
    fit = Recorder(AdamFit())
    again = run_trial(model, split["x_train"], split["x_test"], out=tmp_path, fit=fit, **TINY)
    assert again.scores == first.scores and fit.calls == []
    more = run_trial(model, split["x_train"], split["x_test"], out=tmp_path, fit=fit, **{**TINY, "seeds": (0, 1, 2)})
    assert fit.calls == [2] * 6  # only the new seed, once per arm
    assert more.scores["uae@0.3"][:2] == first.scores["uae@0.3"]


def test_with_out_the_uaes_are_those_of_a_trial_without_it(stored, report):
    assert stored[0].scores == report.scores
    assert (stored[1] / "uaes" / "eps-0.3" / "uae" / "manifest.json").exists()


def test_a_folder_of_another_model_is_refused_naming_the_field(model, split, tmp_path):
    run_trial(model, split["x_train"], split["x_test"], out=tmp_path, arms=("copy",), **TINY)
    other = train_autoencoder(DenseAutoencoder(hidden=32), split["x_train"], epochs=1, seed=5)
    with pytest.raises(ValueError, match="model_sha256: [0-9a-f.]+ there, [0-9a-f.]+ now"):
        run_trial(other, split["x_train"], split["x_test"], out=tmp_path, arms=("copy",), **TINY)


def test_out_holds_the_json_report_the_table_and_the_pictures(stored):
    report, out = stored
    saved = json.loads((out / "report.json").read_text())
    assert saved["scores"] == report.scores and saved["verdict"] == report.verdict
    assert saved["recommendation"] == report.recommendation
    assert "| arm | clean (mean ± sd) | clean: change vs none | adversarial" in (out / "report.md").read_text()
    assert (out / "change_vs_none.png").read_bytes()[:8] == PNG
    assert (out / "examples.png").read_bytes()[:8] == PNG


def test_the_table_has_a_row_per_arm_and_ends_with_the_recommendation(report):
    table = report.table()
    for arm in report.scores:
        assert f"| {arm} |" in table
    assert table.splitlines()[-1] == report.recommendation


class Refused:
    def __init__(self):
        self.calls = 0

    def __call__(self, model, data, *, steps, seed):
        self.calls += 1
        return model


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seeds": (0,)}, "at least 2 distinct seeds"),
        ({"seeds": (3, 3)}, "at least 2 distinct seeds"),
        ({"arms": ("uae", "mixup")}, "unknown arm 'mixup'"),
        ({"eps": (0.3, 0.0)}, "eps must be a finite number > 0"),
        ({"eps": (-1.0,)}, "eps must be a finite number > 0"),
        ({"task": "denoising"}, "task must be one of"),
        ({"attack_options": {"eps": 0.5}}, "must not set 'eps'"),
        ({"attack_options": {"not_a_setting": 1}}, "not_a_setting"),
    ],
)
def test_bad_settings_are_refused_before_any_training(model, split, change, message):
    fit = Refused()
    with pytest.raises((ValueError, TypeError), match=message):
        run_trial(model, split["x_train"], split["x_test"], fit=fit, **{**TINY, **change})
    assert fit.calls == 0


def test_a_test_set_the_model_cannot_take_is_refused_naming_x_test(model, split):
    fit = Refused()
    with pytest.raises(ValueError, match="x_test: .*DenseAutoencoder.*cannot run on input of shape"):
        run_trial(model, split["x_train"], split["x_test"][:, :, :20, :20], fit=fit, **TINY)
    assert fit.calls == 0


def test_normalised_test_data_is_refused_naming_x_test(model, split):
    with pytest.raises(ValueError, match="x_test must have values in"):
        run_trial(model, split["x_train"], (split["x_test"] - 0.5) / 0.5, **TINY)


def test_a_contrastive_trial_without_labels_or_score_says_what_it_needs(model, split):
    with pytest.raises(ValueError, match="need class labels: pass y_train and y_test, or your own score"):
        run_trial(model, split["x_train"], split["x_test"], task="contrastive", **TINY)


def test_a_score_that_returns_no_number_is_named(model, split):
    with pytest.raises(ValueError, match="score must return a finite number"):
        run_trial(model, split["x_train"], split["x_test"], score=lambda m, x: float("nan"), **TINY)


def test_a_contrastive_trial_fine_tunes_with_simclr_and_scores_by_knn_error(split):
    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, stride=2), torch.nn.ReLU(), torch.nn.Flatten())
    labels = {"y_train": split["y_train"], "y_test": split["y_test"]}
    report = run_trial(encoder, split["x_train"], split["x_test"], task="contrastive", arms=("uae",), **labels, **TINY)
    assert list(report.scores) == ["none", "uae@0.3"]
    assert all(0.0 <= s <= 1.0 for values in report.scores.values() for s in values)
    assert report.stats["0.3"]["uae_success_rate"] > 0


def test_the_default_contrastive_fit_trains_the_encoder_on_nt_xent(split):
    from uae_plugin.trial.contrastive import SimCLRLoss

    torch.manual_seed(0)
    encoder = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, stride=2), torch.nn.ReLU(), torch.nn.Flatten())
    before = [p.clone() for p in encoder.parameters()]
    loss = SimCLRLoss()(encoder, split["x_train"][:16])
    assert loss.ndim == 0 and torch.isfinite(loss)
    AdamFit(loss=SimCLRLoss())(encoder, split["x_train"], steps=3, seed=0)
    assert any(not torch.equal(a, b) for a, b in zip(before, encoder.parameters(), strict=True))
