"""``uae trial`` as a new user runs it: their own model class in their own module, their own data file."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from support import USER_MODULE

from uae_plugin.experiments.data import animal_mnist_split


def uae(*args, cwd):
    return subprocess.run(
        [sys.executable, "-m", "uae_plugin.cli", *map(str, args)], capture_output=True, text=True, timeout=300, cwd=cwd
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A user's folder: ``models.py`` with their class, ``ae.pt`` (its trained state dict), ``animals.npz``
    (8-bit Animal-MNIST silhouettes with labels)."""
    folder = tmp_path_factory.mktemp("project")
    (folder / "models.py").write_text(USER_MODULE)
    sys.path.insert(0, str(folder))
    try:
        from models import ColourAE, SilhouetteAE  # noqa: PLC0415
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("models", None)
    data = animal_mnist_split(n_train=200, n_test=10, seed=0)
    torch.manual_seed(0)
    model = SilhouetteAE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        loss = torch.nn.functional.mse_loss(model(data["x_train"]), data["x_train"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.save(model.state_dict(), folder / "ae.pt")
    torch.manual_seed(0)
    torch.save(ColourAE().state_dict(), folder / "colour_ae.pt")
    x8 = (data["x_train"] * 255).round().to(torch.uint8).numpy()
    np.savez(folder / "animals.npz", x=x8, y=data["y_train"].numpy())
    np.savez(folder / "unlabelled.npz", x=x8)
    return folder


QUICK = ("--model", "ae.pt", "--model-class", "models:SilhouetteAE", "--data", "animals.npz", "--quick")


def test_a_quick_trial_on_the_users_module_and_data_writes_the_report(project):
    done = uae("trial", *QUICK, "--out", "trial", "--no-progress", cwd=project)
    assert done.returncode == 0, done.stderr
    assert "uae trial: SilhouetteAE on 128 training rows; 40 rows (20%) of --data held out" in done.stdout
    assert "| uae@0.3 |" in done.stdout and "| copy |" in done.stdout
    report = json.loads((project / "trial" / "report.json").read_text())
    assert set(report["scores"]) == {"none", "copy", "noise@0.3", "nomi@0.3", "pgd@0.3", "uae@0.3"}
    assert report["metrics"] == ["clean", "adversarial"]
    assert report["recommendation"] in done.stdout
    assert report["recommendation"].startswith("No recommendation: a smoke run (--quick) decides nothing")
    assert any(w.startswith("a smoke run (--quick") for w in report["warnings"])
    assert "test rows (--data animals.npz; " in (project / "trial" / "report.md").read_text()
    for name in ("report.md", "change_vs_none.png", "examples.png"):
        assert (project / "trial" / name).stat().st_size > 0


def test_a_rerun_resumes_and_shows_the_progress_bar_to_its_end(project):
    first = uae("trial", *QUICK, "--arms", "uae", "--out", "resumed", cwd=project)
    assert first.returncode == 0, first.stderr
    assert "uae trial (arm x seed)" in first.stderr and "4/4" in first.stderr
    again = uae("trial", *QUICK, "--arms", "uae", "--out", "resumed", cwd=project)
    assert again.returncode == 0 and "uae trial (arm x seed)" not in again.stderr  # nothing left to fine-tune
    assert json.loads((project / "resumed" / "report.json").read_text())["scores"]["uae@0.3"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--seeds", "0"), "seeds must hold at least 2 distinct seeds"),
        (("--arms", "mixup"), "unknown arm 'mixup'"),
        (("--eps", "0"), "eps must be a finite number > 0"),
        (("--test-fraction", "1.5"), "--test-fraction must be in (0, 1)"),
        (("--task", "contrastive", "--data", "unlabelled.npz"), "--data holds no labels"),
        (("--metrics", "clean", "robustness"), "metrics: unknown metric 'robustness'"),
        (("--test-eps", "2"), "--test-eps must be an L-inf budget in (0, 1]"),
        (("--target", "clean", "--task", "contrastive"), "--target: 'clean' (train an augmented row"),
    ],
)
def test_bad_input_ends_in_one_line_before_any_training(project, extra, message):
    done = uae("trial", *QUICK, *extra, "--out", "bad", "--no-progress", cwd=project)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (project / "bad" / "scores.json").exists()


def test_a_test_set_the_model_cannot_take_is_named(project):
    np.savez(project / "colour.npz", x=np.zeros((8, 3, 28, 28), dtype=np.uint8))  # a grey model, colour images
    done = uae("trial", *QUICK, "--test-data", "colour.npz", "--out", "colour", cwd=project)
    assert done.returncode == 2
    assert "x_test: the model (SilhouetteAE) cannot run on input of shape (2, 3, 28, 28)" in done.stderr


def test_a_contrastive_trial_on_a_colour_image_folder_reads_the_classes_as_labels(project):
    from PIL import Image

    gen = torch.Generator().manual_seed(0)
    silhouettes = animal_mnist_split(n_train=40, n_test=1, seed=1)["x_train"]
    for i, x in enumerate(silhouettes):
        colour, background = torch.rand(3, 1, 1, generator=gen), torch.rand(3, 1, 1, generator=gen)
        rgb = (x * colour + (1 - x) * background).permute(1, 2, 0).mul(255).round().to(torch.uint8).numpy()
        (project / "pictures" / f"class{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(project / "pictures" / f"class{i % 2}" / f"{i:03d}.png")
    done = uae("trial", "--model", "colour_ae.pt", "--model-class", "models:ColourAE", "--data", "pictures",
               "--task", "contrastive", "--arms", "uae", "--quick", "--out", "pictures-trial", "--no-progress",
               cwd=project)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "ColourAE on 32 training rows; 8 rows (20%) of --data held out" in done.stdout
    scores = json.loads((project / "pictures-trial" / "report.json").read_text())["scores"]
    assert set(scores) == {"none", "uae@0.3"} and all(0 <= s <= 1 for v in scores.values() for s in v)


def test_every_metric_and_an_online_arm_on_the_users_module_and_data(project):
    done = uae("trial", *QUICK, "--metrics", "clean", "adversarial", "corruption", "--test-eps", "0.1",
               "--arms", "online-pgd", "uae", "--target", "clean", "--out", "robust", "--no-progress",
               cwd=project)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "clean: change vs none | adversarial (mean ± sd) | adversarial: change vs none | corruption" in done.stdout
    assert "the online arms attack 50% of every batch for 5 steps" in done.stdout
    report = json.loads((project / "robust" / "report.json").read_text())
    assert report["metrics"] == ["clean", "adversarial", "corruption"]
    assert report["config"]["metric_settings"]["robustness"]["test_eps"] == 0.1
    assert report["config"]["target"] == "clean"
    details = report["by_metric"]["corruption"]["details"]["online-pgd@0.3"][0]
    assert set(details["gaussian_noise"]) == {"1", "2", "3", "4", "5"}
    by_metric = report["by_metric"]
    for arm, values in by_metric["adversarial"]["scores"].items():
        assert all(a >= c for a, c in zip(values, by_metric["clean"]["scores"][arm], strict=True))
