"""The lightly adapter: UAETransform on SimCLRTransform views, UAESimCLR trained by a real Lightning Trainer."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import timm
import torch
from lightly.transforms import SimCLRTransform
from lightly.transforms.utils import IMAGENET_NORMALIZE
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.functional import to_pil_image

from uae_plugin.integrations.lightly import UAESimCLR, UAETransform

MNIST_NORMALIZE = {"mean": [0.1307], "std": [0.3081]}  # the usual MNIST statistics
TINY = {"steps": 2, "n_views": 2, "seed": 0}  # attack settings small enough for CPU tests


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


class TwoViews(Dataset):
    """``([v0, v1], label)`` per digit: lightly's SimCLRTransform on the digit as a PIL image."""

    def __init__(self, x: torch.Tensor, transform: SimCLRTransform, rgb: bool = False) -> None:
        self.x, self.transform, self.rgb = x, transform, rgb

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        image = self.x[i].expand(3, -1, -1) if self.rgb else self.x[i]
        return self.transform(to_pil_image(image)), 0


def _grey_transform() -> SimCLRTransform:
    return SimCLRTransform(
        input_size=28, min_scale=0.5, cj_strength=0.5, gaussian_blur=0.0, hf_prob=0.0, normalize=MNIST_NORMALIZE
    )


def _views(x: torch.Tensor, transform: SimCLRTransform, rgb: bool = False) -> list[torch.Tensor]:
    torch.manual_seed(0)
    return next(iter(DataLoader(TwoViews(x, transform, rgb), batch_size=len(x))))[0]


def _model(**kwargs) -> UAESimCLR:
    torch.manual_seed(0)
    options = {"backbone": "resnet10t", "in_chans": 1, "small_images": False, "hidden_dim": 64, "out_dim": 32}
    return UAESimCLR(**{**options, **MNIST_NORMALIZE, **TINY, **kwargs})


def _trainer(max_steps: int, callbacks=()) -> pl.Trainer:
    return pl.Trainer(
        max_steps=max_steps,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
    )


def _loader(x: torch.Tensor, batch_size: int) -> DataLoader:
    return DataLoader(
        TwoViews(x, _grey_transform()), batch_size, shuffle=True, generator=torch.Generator().manual_seed(0)
    )


def test_uae_transform_returns_imagenet_normalised_views_within_eps_of_the_pixels(digits):
    views = _views(digits[:4], SimCLRTransform(input_size=28, normalize=IMAGENET_NORMALIZE), rgb=True)[1]
    torch.manual_seed(0)
    encoder = timm.create_model("resnet10t", pretrained=False, num_classes=0).eval()
    uae = UAETransform(encoder, eps=0.1, **TINY, **IMAGENET_NORMALIZE)
    out = uae(views)
    mean, std = torch.tensor(IMAGENET_NORMALIZE["mean"]).view(1, 3, 1, 1), torch.tensor(IMAGENET_NORMALIZE["std"])
    pixels_in = (views * std.view(1, 3, 1, 1) + mean).clamp(0, 1)
    pixels_out = out * std.view(1, 3, 1, 1) + mean
    assert out.shape == views.shape and out.dtype == views.dtype and not out.requires_grad
    assert float(out.min()) < -1.0  # normalised: dark pixels sit near -mean/std, about -2
    assert float(pixels_out.min()) >= -1e-5 and float(pixels_out.max()) <= 1 + 1e-5
    assert float((pixels_out - pixels_in).abs().max()) <= 0.1 + 1e-5
    assert float((pixels_out - pixels_in).abs().max()) > 1e-3  # the attack moved the views
    assert torch.allclose(out, uae.normalize(uae.last_result.adv), atol=1e-6)


def test_uae_transform_clamps_pixels_just_outside_the_unit_box(digits):
    pixels = digits[:2].clone()
    pixels[:, :, 0, 0], pixels[:, :, 0, 1] = 1.0 + 1e-4, -1e-4  # float error of a normalise round trip
    uae = UAETransform(timm.create_model("resnet10t", num_classes=0, in_chans=1), **MNIST_NORMALIZE, **TINY)
    views = (pixels - 0.1307) / 0.3081
    back = uae.unnormalize(views)
    assert float(back.min()) == 0.0 and float(back.max()) == 1.0
    assert torch.allclose(back, pixels.clamp(0, 1), atol=1e-5)
    adv_pixels = uae(views) * 0.3081 + 0.1307
    assert float(adv_pixels.min()) >= -1e-5 and float(adv_pixels.max()) <= 1 + 1e-5


def test_uae_transform_rejects_views_normalised_with_other_statistics(digits):
    uae = UAETransform(timm.create_model("resnet10t", num_classes=0, in_chans=1), **TINY)  # expects pixels
    with pytest.raises(ValueError, match="mean"):
        uae((digits[:2] - 0.1307) / 0.3081)


def test_uae_transform_rejects_views_whose_channels_differ_from_mean(digits):
    uae = UAETransform(timm.create_model("resnet10t", num_classes=0, in_chans=1), **IMAGENET_NORMALIZE, **TINY)
    with pytest.raises(ValueError, match="len\\(mean\\)"):
        uae(digits[:2])


def test_online_uae_simclr_fit_has_a_finite_falling_loss(mnist):
    losses = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            losses.append(float(outputs["loss"]))

    pl.seed_everything(0)
    model = _model(uae="online", lr=0.06)
    trainer = _trainer(30, [Record()])
    trainer.fit(model, _loader(mnist["x_train"][:64], 16))
    assert len(losses) == 30 and all(torch.isfinite(torch.tensor(losses)))
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.3, (first, last)  # drops of 0.8 to 1.5 over seeds 0, 1, 2
    logged = float(trainer.callback_metrics["uae_success_rate"])
    assert logged == pytest.approx(model.uae_transform.last_result.success_rate) and logged > 0


def test_online_attack_inside_a_lightning_step_leaves_parameters_grads_modes_and_buffers(mnist):
    checks = []

    class Checked(UAESimCLR):
        def training_step(self, batch, batch_idx):
            params = {n: p.detach().clone() for n, p in self.named_parameters()}
            grads = {n: None if p.grad is None else p.grad.clone() for n, p in self.named_parameters()}
            modes = {n: m.training for n, m in self.named_modules()}
            flags = {n: p.requires_grad for n, p in self.named_parameters()}
            buffers = {n: b.clone() for n, b in self.named_buffers()}  # batch-norm running statistics
            self.uae_transform(batch[0][1][:4])
            checks.append(
                {
                    "training": self.training,
                    "had_grads": any(g is not None for g in grads.values()),
                    "params": all(torch.equal(p, params[n]) for n, p in self.named_parameters()),
                    "grads": all(
                        (p.grad is None and grads[n] is None) or torch.equal(p.grad, grads[n])
                        for n, p in self.named_parameters()
                    ),
                    "modes": all(m.training == modes[n] for n, m in self.named_modules()),
                    "flags": all(p.requires_grad == flags[n] for n, p in self.named_parameters()),
                    "buffers": all(torch.equal(b, buffers[n]) for n, b in self.named_buffers()),
                }
            )
            return super().training_step(batch, batch_idx)

    torch.manual_seed(0)
    model = Checked("resnet10t", in_chans=1, small_images=False, hidden_dim=64, out_dim=32, **MNIST_NORMALIZE, **TINY)
    _trainer(3).fit(model, _loader(mnist["x_train"][:24], 8))
    assert len(checks) == 3 and all(c["training"] for c in checks) and checks[-1]["had_grads"]
    for key in ("params", "grads", "modes", "flags", "buffers"):
        assert all(c[key] for c in checks), key


def test_attack_leaves_the_training_loss_memory_bank_untouched(mnist):
    model = _model(memory_bank_size=(64, 32)).train()
    x0, x1 = _views(mnist["x_train"][:6], _grey_transform())
    bank, ptr = model.criterion.memory_bank.bank.clone(), model.criterion.memory_bank.bank_ptr.clone()
    model.uae_transform(x1)
    assert torch.equal(model.criterion.memory_bank.bank, bank)
    assert torch.equal(model.criterion.memory_bank.bank_ptr, ptr)
    model.criterion(model(x0), model(x1))  # a training-loss call with gradients does move the bank
    assert not torch.equal(model.criterion.memory_bank.bank, bank)


def test_offline_mode_trains_plain_simclr_without_attacking(mnist):
    model = _model(uae="offline")
    trainer = _trainer(2)
    trainer.fit(model, _loader(mnist["x_train"][:16], 8))
    assert "train_loss" in trainer.callback_metrics and "uae_success_rate" not in trainer.callback_metrics
    assert model.uae_transform.last_result is None


def test_offline_generate_uaes_gives_one_uae_per_image_in_the_unit_box(digits):
    x = digits[:6]
    model = _model(uae="offline")
    uaes = model.generate_uaes(x, batch_size=4)
    assert uaes.shape == x.shape and uaes.device.type == "cpu"
    assert float(uaes.min()) >= 0.0 and float(uaes.max()) <= 1.0 and not torch.equal(uaes, x)
    assert model.offline_success.shape == (6,) and model.offline_success.dtype == torch.bool
    kept = model.generate_uaes(x, batch_size=4, only_successful=True)
    assert kept.shape[0] == int(model.offline_success.sum())


def test_offline_generate_uaes_from_a_dataloader_equals_the_tensor_input(digits):
    x = digits[:6]
    model = _model(uae="offline")
    from_tensor = model.generate_uaes(x, batch_size=6)
    from_loader = model.generate_uaes(DataLoader(torch.utils.data.TensorDataset(x, torch.zeros(6)), batch_size=4))
    assert torch.allclose(from_tensor, from_loader, atol=1e-6)


def test_small_image_stem_keeps_mnist_resolution_through_the_stem():
    model = UAESimCLR("resnet18", in_chans=1, uae=None)
    assert model.backbone.conv1.kernel_size == (3, 3) and model.backbone.conv1.stride == (1, 1)
    assert isinstance(model.backbone.maxpool, torch.nn.Identity)
    deep = UAESimCLR("resnet10t", in_chans=1, uae=None).backbone
    assert deep.conv1[0].stride == (1, 1) and isinstance(deep.maxpool, torch.nn.Identity)
    with torch.no_grad():
        assert model.backbone.forward_features(torch.rand(2, 1, 28, 28)).shape[-2:] == (4, 4)  # 28 -> 4, not 1
        assert model(torch.rand(2, 1, 28, 28)).shape == (2, 128)


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"uae": "sometimes"}, ValueError, "uae"),
        ({"uae_fraction": 0.0}, ValueError, "uae_fraction"),
        ({"uae_view": 2}, ValueError, "uae_view"),
        ({"backbone": "no_such_model"}, ValueError, "backbone"),
        ({"backbone": 3}, TypeError, "backbone"),
        ({"backbone": torch.nn.Flatten()}, ValueError, "num_features"),
        ({"backbone": "mobilenetv3_small_050", "small_images": True}, ValueError, "small_images"),
        ({"std": [0.0]}, ValueError, "std"),
        ({"eps": -1.0}, ValueError, "eps"),
    ],
)
def test_uae_simclr_rejects_bad_arguments(kwargs, error, name):
    with pytest.raises(error, match=name):
        _model(**kwargs)


@pytest.mark.parametrize(
    "views, error, name",
    [
        (torch.zeros(2, 1, 28, 28, dtype=torch.uint8), TypeError, "views"),
        (torch.zeros(2, 28, 28), ValueError, "views"),
        (torch.full((2, 1, 28, 28), float("nan")), ValueError, "mean"),
    ],
)
def test_uae_transform_rejects_bad_views_before_attacking(views, error, name):
    model = _model()
    with pytest.raises(error, match=name):
        model.uae_transform(views)
    assert model.uae_transform.last_result is None


def test_bad_batches_and_offline_data_raise_clear_errors(digits):
    model = _model()
    with pytest.raises(TypeError, match="batch"):
        model.training_step(digits[:4], 0)
    with pytest.raises(TypeError, match="data"):
        model.generate_uaes(42)
    with pytest.raises(TypeError, match="data"):
        model.generate_uaes((digits[:4] * 255).to(torch.uint8))
    with pytest.raises(RuntimeError, match="uae=None"):
        _model(uae=None).generate_uaes(digits[:4])
    with pytest.raises(TypeError, match="encoder"):
        UAETransform("resnet18")


class _RankRates(pl.Callback):
    """Writes each rank's own UAE success rate of every step to ``folder/rank-<r>.txt``."""

    def __init__(self, folder) -> None:
        self.folder = folder

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        rate = pl_module.uae_transform.last_result.success_rate
        with open(self.folder / f"rank-{trainer.global_rank}.txt", "a") as fh:
            fh.write(f"{rate}\n")


def test_under_ddp_with_two_processes_the_logged_success_rate_is_the_global_rate(mnist, tmp_path):
    pl.seed_everything(0)
    model = _model(uae="online", uae_fraction=1.0)
    trainer = pl.Trainer(
        max_steps=1,
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[_RankRates(tmp_path)],
    )
    trainer.fit(model, DataLoader(TwoViews(mnist["x_train"][:32], _grey_transform()), 16))
    rates = [float((tmp_path / f"rank-{r}.txt").read_text().split()[0]) for r in (0, 1)]
    assert rates[0] != rates[1]  # the ranks attacked different digits: rank 0's rate alone would be wrong
    assert float(trainer.callback_metrics["uae_success_rate"]) == pytest.approx(sum(rates) / 2)
