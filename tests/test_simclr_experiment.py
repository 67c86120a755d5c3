"""The SimCLR comparison's parts: Animal-MNIST data, the stride-2 stem, RoCL's attack through the real
torchattacks PGD, UAESimCLR(uae="rocl") under a real Lightning Trainer, the evaluation probes, the example and its
no-MI ablation."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import pytorch_lightning as pl
import timm
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from uae_plugin.experiments.data import ANIMAL_MNIST_CLASSES, animal_mnist_split, load_animal_mnist
from uae_plugin.experiments.ssl_evaluation import (
    LinearProbe,
    encode,
    knn_accuracy,
    probe_accuracy,
    robust_probe_accuracy,
)
from uae_plugin.integrations.lightly import UAESimCLR, small_image_stem
from uae_plugin.integrations.rocl import ContrastiveLogits, RoCLTransform

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "simclr_uae.py"
STATS = {"mean": [0.1307], "std": [0.3081]}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.fixture(scope="module")
def encoder() -> nn.Module:
    torch.manual_seed(0)
    return timm.create_model("resnet10t", num_classes=0, in_chans=1)


def test_animal_mnist_ships_10000_silhouettes_1000_per_class_in_the_unit_box():
    x, y = load_animal_mnist()
    assert x.shape == (10000, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    assert torch.equal(torch.bincount(y), torch.full((len(ANIMAL_MNIST_CLASSES),), 1000))
    assert 0.05 < float(x.mean()) < 0.95  # silhouettes, not blank frames


def test_animal_mnist_split_is_disjoint_and_fixed_by_the_seed():
    a, b, c = (
        animal_mnist_split(200, 100, seed=0),
        animal_mnist_split(200, 100, seed=0),
        animal_mnist_split(200, 100, 1),
    )
    assert torch.equal(a["x_train"], b["x_train"]) and not torch.equal(a["x_train"], c["x_train"])
    rows = torch.cat([a["x_train"], a["x_test"]]).flatten(1)
    assert torch.unique(rows, dim=0).shape[0] >= 299  # disjoint rows (allowing one duplicate image in the data)
    with pytest.raises(ValueError, match="n_train"):
        animal_mnist_split(9000, 2000)
    with pytest.raises(ValueError, match="n_test"):
        animal_mnist_split(100, 0)


def test_stride_two_stem_halves_28_pixels_and_other_strides_are_refused():
    model = small_image_stem(timm.create_model("resnet18", num_classes=0, in_chans=1), stride=2)
    assert model.conv1.stride == (2, 2) and isinstance(model.maxpool, nn.Identity)
    with torch.no_grad():
        assert model.forward_features(torch.rand(2, 1, 28, 28)).shape[-2:] == (2, 2)  # 28 -> 14 -> 2
    with pytest.raises(ValueError, match="stride"):
        small_image_stem(timm.create_model("resnet18", num_classes=0), stride=3)


def test_contrastive_logits_cross_entropy_is_the_infonce_loss(encoder, digits):
    x, positives = digits[:6], torch.randn(6, 512)
    logits = ContrastiveLogits(encoder.eval(), positives, temperature=0.5)(x)
    z, p = F.normalize(encoder(x), dim=1), F.normalize(positives, dim=1)
    manual = -torch.log_softmax(z @ p.T / 0.5, dim=1).diagonal().mean()
    assert torch.allclose(F.cross_entropy(logits, torch.arange(6)), manual, atol=1e-5)


def test_rocl_views_stay_in_the_eps_ball_and_raise_the_contrastive_loss(digits):
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
                            nn.Linear(8 * 13 * 13, 32))  # fmt: skip
    x = digits[:16]
    views = (x - 0.1307) / 0.3081
    with torch.no_grad():
        positives = encoder.eval()((x.roll(2, dims=-1) - 0.1307) / 0.3081)  # another view of each digit
    encoder.train()
    adv = RoCLTransform(eps=0.1, steps=5, seed=0, **STATS)(encoder, views, positives)
    assert encoder.training and encoder[1].training  # torchattacks put it back in train mode
    pixels = adv * 0.3081 + 0.1307
    assert 0.05 < float((pixels - x).abs().max()) <= 0.1 + 1e-5
    assert float(pixels.min()) >= -1e-5 and float(pixels.max()) <= 1 + 1e-5
    noise = ((x + torch.empty_like(x).uniform_(-0.1, 0.1)).clamp(0, 1) - 0.1307) / 0.3081
    infonce, labels = ContrastiveLogits(encoder.eval(), positives), torch.arange(16)
    with torch.no_grad():
        clean, noisy, attacked = (F.cross_entropy(infonce(v), labels) for v in (views, noise, adv))
    assert attacked > clean + 0.5 and attacked > noisy + 0.5, (clean, noisy, attacked)
    again = RoCLTransform(eps=0.1, steps=5, seed=0, **STATS)(encoder.train(), views, positives)
    assert torch.equal(adv, again)  # the seed fixes PGD's random start


@pytest.mark.parametrize(
    "kwargs, name",
    [({"eps": 0.0}, "eps"), ({"eps": 2.0}, "eps"), ({"steps": 0}, "steps"), ({"alpha": -1.0}, "alpha"),
     ({"std": [0.0]}, "std"), ({"temperature": 0}, "temperature")],
)  # fmt: skip
def test_rocl_transform_rejects_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        RoCLTransform(**kwargs)


def test_rocl_transform_rejects_mismatched_positives(encoder, digits):
    with pytest.raises(ValueError, match="positives"):
        RoCLTransform()(encoder, digits[:4], torch.zeros(3, 512))


def test_rocl_simclr_trains_under_lightning_and_refuses_generate_uaes(mnist):
    torch.manual_seed(0)
    model = UAESimCLR("resnet10t", in_chans=1, small_images=False, hidden_dim=64, out_dim=32, uae="rocl",
                      eps=0.1, steps=2, seed=0, **STATS)  # fmt: skip
    x = (mnist["x_train"][:16] - 0.1307) / 0.3081
    batches = DataLoader([([a, b], 0) for a, b in zip(x, x.flip(-1), strict=True)], batch_size=8)
    trainer = pl.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(model, batches)
    assert torch.isfinite(trainer.callback_metrics["loss_uae"]) and "uae_success_rate" not in trainer.callback_metrics
    assert model.rocl_transform.calls == 2
    with pytest.raises(RuntimeError, match="uae='rocl'"):
        model.generate_uaes(mnist["x_train"][:4])


def test_knn_and_linear_probe_read_real_digits_and_pgd_lowers_the_probe(mnist):
    pl.seed_everything(0)
    pixels = nn.Flatten()  # raw pixels as the "encoder": a known, strong baseline on MNIST
    x_train, y_train, x_test, y_test = mnist["x_train"][:1000], mnist["y_train"][:1000], mnist["x_test"][:300], \
        mnist["y_test"][:300]  # fmt: skip
    train_f, test_f = encode(pixels, x_train), encode(pixels, x_test)
    assert knn_accuracy(train_f, y_train, test_f, y_test) > 0.85
    probe = LinearProbe(784, 10).fit(train_f, y_train)
    clean = probe_accuracy(pixels, probe, x_test, y_test)
    assert clean > 0.8
    assert robust_probe_accuracy(pixels, probe, x_test, y_test, eps=1e-4, steps=2) == pytest.approx(clean, abs=0.01)
    assert robust_probe_accuracy(pixels, probe, x_test, y_test, eps=0.2, steps=10) < clean - 0.3
    with pytest.raises(ValueError, match="k must be"):
        knn_accuracy(train_f, y_train, test_f, y_test, k=0)


def test_evaluation_leaves_the_encoder_as_it_was(encoder, digits):
    encoder.train()
    encoder.layer1.eval()
    state = {k: v.clone() for k, v in encoder.state_dict().items()}
    features = encode(encoder, digits[:8])
    probe = LinearProbe(features.shape[1], 10).fit(features, torch.arange(8) % 10)
    robust_probe_accuracy(encoder, probe, digits[:8], torch.arange(8) % 10, eps=0.05, steps=1)
    assert encoder.training and not encoder.layer1.training
    assert all(torch.equal(v, state[k]) for k, v in encoder.state_dict().items())
    assert all(p.requires_grad and p.grad is None for p in encoder.parameters())


@pytest.mark.parametrize("option", ["--threads", "--jobs"])
def test_example_refuses_bad_threads_or_jobs_with_one_line_and_status_2(tmp_path, option):
    out = subprocess.run([sys.executable, str(EXAMPLE), option, "0", "--out", str(tmp_path)],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and option in out.stderr
    assert not list(tmp_path.iterdir())  # refused before writing anything


def test_example_quick_run_writes_table_json_and_plot(tmp_path):
    out = subprocess.run([sys.executable, str(EXAMPLE), "--quick", "--out", str(tmp_path), "--threads", "1"],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "SimCLR (data x seed" in out.stderr  # the progress bar
    table = (tmp_path / "results.md").read_text()
    assert table in out.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    methods = ("raw pixels", "plain", "offline", "online", "online-nomi", "noise", "rocl")
    assert [(s["data"], s["method"]) for s in metrics["summary"]] == [
        (d, m) for d in ("mnist", "animals") for m in methods
    ]
    for s in metrics["summary"]:
        assert all(0.0 <= s[m] <= 1.0 for m in ("knn", "linear", "linear_pgd_0.05", "linear_pgd_0.1")), s
    assert "| mnist | raw pixels |" in table and "| animals | online-nomi |" in table
    raw = [r for r in metrics["runs"] if r["method"] == "raw pixels"]
    assert len(raw) == 2 and all(r["train_seconds"] == 0.0 for r in raw)  # the baseline trains nothing
    offline = [r for r in metrics["runs"] if r["method"] == "offline"]
    assert all(0.0 <= r["uae_success_rate"] <= 1.0 and 0.0 <= r["uae_linf_mean"] <= 0.3 + 1e-5 for r in offline)
    assert all(r["n_uaes"] == round(r["uae_success_rate"] * 64) for r in offline)  # only successful UAEs are added
    assert (tmp_path / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_mi_ablation_is_the_online_attack_with_mi_weight_zero(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE.parent))  # the example imports examples/table_script.py
    example = importlib.import_module("simclr_uae")
    cfg = example.QUICK
    for method, weight in (("online", 1.0), ("online-nomi", 0.0)):
        uae, options = example.method_options(method, cfg)
        model = UAESimCLR(example.backbone(cfg["backbone"]), uae=uae, **options, **STATS)
        assert uae == "online" and model.uae_transform.attack.settings.mi_weight == weight
        assert model.uae_transform.attack.eps == cfg["online_uae"]["eps"]  # otherwise the same attack


def test_noise_control_views_are_the_attacks_start_size_and_train_under_lightning(mnist):
    torch.manual_seed(0)
    model = UAESimCLR("resnet10t", in_chans=1, small_images=False, hidden_dim=64, out_dim=32, uae="noise",
                      eps=0.3, steps=2, seed=0, **STATS)  # fmt: skip
    x = mnist["x_train"][:16]
    views = (x - 0.1307) / 0.3081
    pixels = model.noise_views(views) * 0.3081 + 0.1307
    change = (pixels - x).abs()
    assert float(change.max()) <= 0.3 + 1e-5 and float(change.mean()) > 0.05  # U[-0.3, 0.3] after clipping
    assert float(pixels.min()) >= -1e-5 and float(pixels.max()) <= 1 + 1e-5
    batches = DataLoader([([a, b], 0) for a, b in zip(views, views.flip(-1), strict=True)], batch_size=8)
    trainer = pl.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(model, batches)
    assert torch.isfinite(trainer.callback_metrics["loss_uae"]) and model.uae_transform.last_result is None
    with pytest.raises(RuntimeError, match="uae='noise'"):
        model.generate_uaes(x[:4])
