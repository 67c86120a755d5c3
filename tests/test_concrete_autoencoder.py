"""Concrete-autoencoder feature selection on the shipped Mice Protein data, and UAEs against it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from uae_plugin import MinMaxAttack, Reconstruction
from uae_plugin.concrete_autoencoder import ConcreteAutoencoder, temperature_at, train_concrete_autoencoder
from uae_plugin.tabular_data import load_mice_protein, mice_protein_split, mnist_flat_split

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


def test_example_quick_run_writes_table_json_and_plot(tmp_path):
    out = subprocess.run(
        [sys.executable, str(EXAMPLE), "--quick", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    table = (tmp_path / "results.md").read_text()
    assert "| mice | 10 | plain |" in table and "| mnist | 10 | uae |" in table
    assert table in out.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {(s["data"], s["method"]) for s in metrics["summary"]} == {
        (d, m) for d in ("mice", "mnist") for m in ("plain", "uae")
    }
    assert all(0.0 <= s["mean"] <= 1.0 for s in metrics["summary"])
    assert all(len(set(r["features"])) == r["k"] for r in metrics["runs"])
    assert (tmp_path / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_example_budget_options_reach_the_attack_and_bad_ones_are_refused(tmp_path):
    argv = [sys.executable, str(EXAMPLE), "--quick", "--out", str(tmp_path), "--uae-eps", "0.5", "--uae-steps", "2"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert json.loads((tmp_path / "metrics.json").read_text())["settings"]["attack"]["eps"] == 0.5
    assert json.loads((tmp_path / "metrics.json").read_text())["settings"]["attack"]["steps"] == 2
    bad = subprocess.run([sys.executable, str(EXAMPLE), "--uae-eps", "-1", "--out", str(tmp_path / "x")],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and "--uae-eps" in bad.stderr and not (tmp_path / "x").exists()
