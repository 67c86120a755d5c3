"""The data-reconstruction experiment engine (`uae demo`): QUICK config on the real embedded digits."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from uae_plugin.experiments.experiment import (
    METHODS,
    QUICK,
    ExperimentConfig,
    format_table,
    run_experiment,
    run_with_images,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    return run_experiment(QUICK, out_dir=out, progress=False), out


def test_metrics_have_every_model_method_and_seed(quick_run):
    metrics, _ = quick_run
    assert list(metrics["models"]) == list(QUICK.models)
    for entry in metrics["models"].values():
        assert list(entry["methods"]) == list(METHODS)
        assert list(entry["seeds"]) == [str(s) for s in QUICK.seeds]
        for m in entry["methods"].values():
            assert len(m["test_mse"]) == len(QUICK.seeds)
            assert {"mean", "std", "change_vs_none_pct"} <= set(m)
        assert entry["methods"]["none"]["change_vs_none_pct"] == 0.0


def test_every_method_gets_the_same_gradient_step_budget(quick_run):
    metrics, _ = quick_run
    for entry in metrics["models"].values():
        for m in entry["methods"].values():
            assert m["grad_steps"] == [QUICK.retrain_steps] * len(QUICK.seeds)


def test_augmented_methods_train_on_train_plus_one_augmentation_per_digit(quick_run):
    metrics, _ = quick_run
    for entry in metrics["models"].values():
        for record in entry["seeds"].values():
            rows = {m: r["train_rows"] for m, r in record["methods"].items()}
            assert rows == {
                "none": QUICK.n_train,
                "noise": 2 * QUICK.n_train,
                "pgd": 2 * QUICK.n_train,
                "nomi": 2 * QUICK.n_train,
                "uae": 2 * QUICK.n_train,
            }


def test_test_errors_success_rates_and_sizes_are_finite(quick_run):
    metrics, _ = quick_run
    for entry in metrics["models"].values():
        for m in entry["methods"].values():
            assert all(math.isfinite(e) and 0 < e < 1 for e in m["test_mse"])
        for record in entry["seeds"].values():
            assert record["uae_success_rate"] > 0.25  # 5 attack steps on barely trained models: 0.46 and up
            assert record["l2"]["noise"] == pytest.approx(record["l2"]["uae"], rel=1e-3)


def test_report_files_are_valid_pngs_and_loadable_json(quick_run):
    metrics, out = quick_run
    assert json.loads((out / "metrics.json").read_text())["models"].keys() == metrics["models"].keys()
    for name in ("uae_grid.png", "test_error.png"):
        data = (out / name).read_bytes()
        assert data[:8] == PNG_SIGNATURE and len(data) > 1000
    assert (out / "uaes" / f"{QUICK.models[0]}-seed{QUICK.seeds[0]}" / "manifest.json").exists()


def test_format_table_has_a_row_per_model_and_method(quick_run):
    metrics, _ = quick_run
    table = format_table(metrics).splitlines()
    assert table[0].startswith("| model | method | test MSE")
    assert len(table) == 2 + len(QUICK.models) * len(METHODS)


def test_none_is_deterministic_for_a_seed():
    config = replace(QUICK, models=("dense",), methods=("none",))
    first, _ = run_with_images(config, progress=False)
    second, _ = run_with_images(config, progress=False)
    assert (
        first["models"]["dense"]["methods"]["none"]["test_mse"]
        == second["models"]["dense"]["methods"]["none"]["test_mse"]
    )


def test_images_hold_originals_uaes_and_reconstructions():
    config = replace(QUICK, models=("dense",), methods=("none", "uae"), n_images=3)
    _, images = run_with_images(config, progress=False)
    # noise is matched to the UAEs, so it is always made; pgd and nomi only when asked for
    assert set(images["dense"]) == {"x", "uae", "noise", "recon_x", "recon_uae", "recon_x_after_uae"}
    assert all(t.shape == (3, 1, 28, 28) for t in images["dense"].values())


@pytest.mark.parametrize(
    ("field", "value"),
    [("models", ("vae",)), ("methods", ("mixup",)), ("target", "noisy"), ("seeds", ()), ("n_augment", 0)],
)
def test_bad_config_raises_value_error_naming_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        ExperimentConfig(**{field: value})
