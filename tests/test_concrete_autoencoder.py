"""Concrete-autoencoder feature selection on the shipped Mice Protein data, and UAEs against it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from uae_plugin import MinMaxAttack, Reconstruction
from uae_plugin.experiments.concrete_autoencoder import ConcreteAutoencoder, temperature_at, train_concrete_autoencoder
from uae_plugin.experiments.tabular_data import load_mice_protein, mice_protein_split, mnist_flat_split

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "concrete_autoencoder.py"


@pytest.fixture(scope="module")
def mice() -> dict[str, torch.Tensor]:
    return mice_protein_split(test_fraction=0.3, seed=0)


@pytest.fixture(scope="module")
def trained(mice) -> ConcreteAutoencoder:
    torch.manual_seed(0)
    return train_concrete_autoencoder(ConcreteAutoencoder(77, 10, hidden=(64,)), mice["x_train"], steps=100, seed=0)


def _mse(model: ConcreteAutoencoder, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float((model(x) - x).pow(2).mean())


def test_mice_protein_loads_scaled_complete_and_8_classes():
    x, y = load_mice_protein()
    assert x.shape == (1080, 77) and x.dtype == torch.float32
    assert y.shape == (1080,) and y.dtype == torch.int64
    assert not torch.isnan(x).any()
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert torch.allclose(x.min(dim=0).values, torch.zeros(77)) and torch.allclose(x.max(dim=0).values, torch.ones(77))
    assert torch.equal(torch.unique(y), torch.arange(8))
    assert y.bincount().tolist() == [150, 135, 150, 135, 135, 105, 135, 135]


def test_splits_are_disjoint_stratified_and_flat(mice):
    assert mice["x_train"].shape[0] + mice["x_test"].shape[0] == 1080
    assert torch.equal(torch.unique(mice["y_test"]), torch.arange(8))
    digits = mnist_flat_split(n_train=50, n_test=20, seed=0)
    assert digits["x_train"].shape == (50, 784) and digits["x_test"].shape == (20, 784)


def test_temperature_anneals_exponentially_from_start_to_min():
    assert temperature_at(0, 100, 10.0, 0.1) == pytest.approx(10.0)
    assert temperature_at(99, 100, 10.0, 0.1) == pytest.approx(0.1)
    assert temperature_at(49, 99, 10.0, 0.1) == pytest.approx(1.0)


def test_selector_picks_k_distinct_features_and_eval_output_ignores_the_rest():
    torch.manual_seed(0)
    model = ConcreteAutoencoder(20, 5, hidden=(16,))
    with torch.no_grad():
        model.logits.zero_()
        model.logits[:, 3] = 5.0  # every neuron wants feature 3: duplicates must be resolved
    idx = model.eval().selected_features()
    assert idx.shape == (5,) and len(set(idx.tolist())) == 5 and 3 in idx.tolist()
    x = torch.rand(8, 20)
    other = torch.rand(8, 20)
    other[:, idx] = x[:, idx]  # same selected features, different everything else
    assert torch.equal(model.select(x), x[:, idx])
    assert torch.equal(model(x), model(other))
    changed = x.clone()
    changed[:, idx[0]] = 1 - changed[:, idx[0]]
    assert not torch.equal(model(x), model(changed))


def test_training_on_mice_protein_lowers_reconstruction_error(mice, trained):
    torch.manual_seed(0)
    untrained = ConcreteAutoencoder(77, 10, hidden=(64,)).eval()
    assert _mse(trained, mice["x_test"]) < 0.7 * _mse(untrained, mice["x_test"])
    assert not trained.training and len(set(trained.selected_features().tolist())) == 10


def test_uae_attack_on_the_trained_cae_respects_the_bounds(mice, trained):
    x = mice["x_test"][:32]
    before = {n: p.detach().clone() for n, p in trained.named_parameters()}
    res = MinMaxAttack(Reconstruction(trained), eps=0.1, steps=5, mine_steps=1, similarity="projection", seed=0)(x)
    assert res.adv.shape == x.shape
    assert float((res.adv - x).abs().max()) <= 0.1 + 1e-6
    assert float(res.adv.min()) >= 0.0 and float(res.adv.max()) <= 1.0
    assert float((res.adv - x).abs().max()) > 0  # it moved
    assert all(torch.equal(p, before[n]) for n, p in trained.named_parameters())


def test_bad_arguments_are_refused_before_any_work():
    with pytest.raises(ValueError, match="k must be <= n_features"):
        ConcreteAutoencoder(5, 6)
    with pytest.raises(ValueError, match="features per row"):
        train_concrete_autoencoder(ConcreteAutoencoder(5, 2), torch.rand(4, 6), steps=1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        train_concrete_autoencoder(ConcreteAutoencoder(5, 2), torch.rand(4, 5) + 1, steps=1)


def test_example_refuses_bad_threads_with_one_line_and_status_2(tmp_path):
    out = subprocess.run(
        [sys.executable, str(EXAMPLE), "--threads", "0", "--out", str(tmp_path)], capture_output=True, text=True
    )
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "--threads" in out.stderr


METHODS = ("plain", "uae", "nomi", "noise", "pgd")
AUGMENTED = METHODS[1:]


def _runs_by_cell(metrics: dict) -> dict[tuple, dict[str, dict]]:
    """``{(data, k, seed): {method: run}}``."""
    cells: dict[tuple, dict[str, dict]] = {}
    for r in metrics["runs"]:
        cells.setdefault((r["data"], r["k"], r["seed"]), {})[r["method"]] = r
    return cells


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    out_dir = tmp_path_factory.mktemp("quick")
    out = subprocess.run(
        [sys.executable, str(EXAMPLE), "--quick", "--out", str(out_dir)], capture_output=True, text=True, timeout=300
    )
    return out, out_dir


def test_example_quick_run_writes_table_json_and_plot(quick_run):
    out, tmp_path = quick_run
    assert out.returncode == 0, out.stderr
    assert "concrete AE (data x K x seed)" in out.stderr and "run/s" in out.stderr  # the progress bar
    table = (tmp_path / "results.md").read_text()
    assert table in out.stdout
    assert "MI(x, x') nats" in table and "L2(x' − x)" in table
    for data in ("mice", "mnist"):
        for method in METHODS:
            assert f"| {data} | 10 | {method} |" in table
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert [(s["data"], s["method"]) for s in metrics["summary"]] == [
        (d, m) for d in ("mice", "mnist") for m in METHODS
    ]
    chance = {"mice": 1 / 8, "mnist": 1 / 10}
    assert all(chance[s["data"]] < s["mean"] <= 1.0 for s in metrics["summary"])  # better than guessing
    assert all(len(set(r["features"])) == r["k"] for r in metrics["runs"])
    assert (tmp_path / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_example_records_mi_and_l2_per_augmentation_and_plain_has_none(quick_run):
    out, tmp_path = quick_run
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for s in metrics["summary"]:
        if s["method"] == "plain":
            assert s["mi"] is None and s["l2"] is None
        else:  # finite, positive: x' moved but still carries information about x
            assert 0.0 < s["mi"] < float("inf") and s["l2"] > 0.0
    table = (tmp_path / "results.md").read_text()
    mice_uae = next(s for s in metrics["summary"] if (s["data"], s["method"]) == ("mice", "uae"))
    assert f"| {mice_uae['mi']:.2f} | {mice_uae['l2']:.3f} |" in table


def test_example_controls_behave_as_their_definitions_say(quick_run):
    out, tmp_path = quick_run
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    eps = metrics["settings"]["attack"]["eps"]
    assert metrics["settings"]["pgd_steps"] == 10
    for cell, runs in _runs_by_cell(metrics).items():
        assert set(runs) == set(METHODS), cell
        # noise is matched to the UAEs' L2 size row by row, so the means agree; it is not bounded by eps
        assert runs["noise"]["l2"] == pytest.approx(runs["uae"]["l2"], rel=1e-3), cell
        for method in ("uae", "nomi", "pgd"):  # the attacks stay in the L-inf ball of the attack's eps
            assert 0.0 < runs[method]["linf"] <= eps + 1e-6, (cell, method)
        # the MI term is what makes UAEs less informative than the same attack without it
        assert runs["uae"]["mi"] < runs["nomi"]["mi"], cell
        # the plain CAE's criterion, recomputed, agrees with what the MinMax attacks report
        for method in ("uae", "nomi"):
            assert runs[method]["no_worse"] == pytest.approx(runs[method]["attack_success_rate"], abs=1e-6)
        for method in ("noise", "pgd"):
            assert runs[method]["attack_success_rate"] is None
        # PGD maximises the reconstruction error; the MinMax attacks keep it no worse where they succeed
        assert runs["pgd"]["mean_gap"] > 0 and runs["pgd"]["no_worse"] < runs["uae"]["no_worse"], cell
        assert runs["pgd"]["mean_gap"] > max(runs["uae"]["mean_gap"], runs["nomi"]["mean_gap"]), cell


def test_example_budget_options_reach_the_attack_and_bad_ones_are_refused(tmp_path):
    argv = [sys.executable, str(EXAMPLE), "--quick", "--out", str(tmp_path), "--uae-eps", "0.5", "--uae-steps", "2"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["settings"]["attack"]["eps"] == 0.5
    assert metrics["settings"]["attack"]["steps"] == 2
    for runs in _runs_by_cell(metrics).values():  # PGD follows the attack's eps: beyond the default 0.1, within 0.5
        assert 0.1 < runs["pgd"]["linf"] <= 0.5 + 1e-6
        assert runs["noise"]["l2"] == pytest.approx(runs["uae"]["l2"], rel=1e-3)
    bad = subprocess.run([sys.executable, str(EXAMPLE), "--uae-eps", "-1", "--out", str(tmp_path / "x")],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and "--uae-eps" in bad.stderr and not (tmp_path / "x").exists()
