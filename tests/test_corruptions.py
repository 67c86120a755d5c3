"""The common corruptions (Hendrycks & Dietterich, CIFAR-10-C) of the trial's corruption metric, on real digits."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from uae_plugin.experiments.data import mnist_split
from uae_plugin.trial import corruptions
from uae_plugin.trial.corruptions import CORRUPTIONS, SEVERITIES, check_corruptible, corrupt

RANDOM = ("gaussian_noise", "impulse_noise", "motion_blur", "elastic_transform")  # the ones with a draw
INK = torch.tensor([1.0, 0.6, 0.3]).view(1, 3, 1, 1)
PAPER = torch.tensor([0.1, 0.2, 0.4]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def images() -> dict[str, torch.Tensor]:
    """Real digits: grey 28x28 and 16x16, and tinted colour 32x32 (ink on coloured paper)."""
    grey = mnist_split(64, 32, seed=0)["x_test"]
    big = F.interpolate(grey, size=(32, 32), mode="bilinear", align_corners=False).clamp(0, 1)
    return {
        "grey28": grey,
        "grey16": F.interpolate(grey, size=(16, 16), mode="area"),
        "colour32": big * INK + (1 - big) * PAPER,
    }


def test_names_and_severities_are_fixed():
    assert SEVERITIES == (1, 2, 3, 4, 5)
    assert len(set(CORRUPTIONS)) == len(CORRUPTIONS) == 9
    assert CORRUPTIONS[:2] == ("gaussian_noise", "impulse_noise") and "jpeg_compression" in CORRUPTIONS


@pytest.mark.parametrize("kind", ["grey28", "grey16", "colour32"])
def test_every_corruption_and_severity_keeps_shape_dtype_and_range(images, kind):
    x = images[kind]
    for name in CORRUPTIONS:
        for severity in SEVERITIES:
            out = corrupt(x, name, severity, seed=0)
            assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device, (name, severity)
            assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1, (name, severity)
        assert not torch.equal(out, x), f"{name} at severity 5 left {kind} unchanged"


def test_float64_and_float16_keep_their_dtype(images):
    for dtype in (torch.float64, torch.float16):
        x = images["grey16"][:4].to(dtype)
        for name in CORRUPTIONS:
            assert corrupt(x, name, 3, seed=0).dtype == dtype, name


@pytest.mark.parametrize("kind", ["grey28", "colour32"])
def test_same_seed_is_bit_identical_and_the_global_rng_is_untouched(images, kind):
    x = images[kind]
    torch.manual_seed(123)
    state = torch.get_rng_state()
    for name in CORRUPTIONS:
        first = corrupt(x, name, 4, seed=7)
        assert torch.equal(first, corrupt(x, name, 4, seed=7)), name
        other = corrupt(x, name, 4, seed=8)
        assert torch.equal(first, other) == (name not in RANDOM), name  # only the draws depend on the seed
    assert torch.equal(torch.get_rng_state(), state)
    expected = torch.rand(3, generator=torch.Generator().manual_seed(123))
    assert torch.equal(torch.rand(3), expected)


def test_the_batch_is_corrupted_row_by_row_in_one_call(images):
    """Every row is corrupted at severity 5, and a corruption without a draw gives a row alone what it gives it
    inside the batch (no mixing of rows)."""
    x = images["grey28"]
    for name in CORRUPTIONS:
        out = corrupt(x, name, 5, seed=0)
        assert ((out - x).abs().flatten(1).amax(dim=1) > 0).all(), f"{name} left some rows unchanged"
        if name not in RANDOM:
            torch.testing.assert_close(corrupt(x[5:6], name, 5, seed=0), out[5:6], atol=1e-6, rtol=0)


@pytest.mark.parametrize("kind", ["grey28", "grey16", "colour32"])
def test_mean_change_grows_with_severity(images, kind):
    x = images[kind]
    for name in CORRUPTIONS:
        change = [float((corrupt(x, name, s, seed=0) - x).abs().mean()) for s in SEVERITIES]
        assert all(a <= b for a, b in zip(change[:-1], change[1:], strict=True)), (name, change)
        assert change[-1] > change[0], (name, change)


def test_photometric_corruptions_use_hendrycks_values(images):
    grey = images["grey28"]
    torch.testing.assert_close(corrupt(grey, "brightness", 5, seed=0), (grey + 0.3).clamp(0, 1))
    mean = grey.mean(dim=(1, 2, 3), keepdim=True)
    contrast = corrupt(grey, "contrast", 5, seed=0)
    torch.testing.assert_close(contrast, ((grey - mean) * 0.15 + mean).clamp(0, 1))
    colour = images["colour32"]
    paper = (colour == PAPER).all(dim=1)  # background pixels: (0.1, 0.2, 0.4), far from 0 and 1
    noise = corrupt(colour, "gaussian_noise", 5, seed=0) - colour
    assert abs(float(noise[:, 2][paper].std()) - 0.10) < 0.005
    assert abs(float(noise[:, 2][paper].mean())) < 0.005
    impulse = corrupt(colour, "impulse_noise", 5, seed=0)
    rewritten = ((impulse == 0) | (impulse == 1)).all(dim=1)[paper]
    assert abs(float(rewritten.float().mean()) - 0.07) < 0.01


def test_blur_and_pixelate_smooth_and_jpeg_of_grey_stays_grey(images):
    grey = images["grey28"]

    def roughness(z: torch.Tensor) -> float:
        return float((z[..., 1:] - z[..., :-1]).abs().mean() + (z[..., 1:, :] - z[..., :-1, :]).abs().mean())

    for name in ("motion_blur", "gaussian_blur", "pixelate"):
        assert roughness(corrupt(grey, name, 5, seed=0)) < 0.9 * roughness(grey), name
    assert corrupt(grey, "jpeg_compression", 5, seed=0).shape[1] == 1


def test_bad_name_and_severity_are_refused_naming_the_argument(images):
    x = images["grey16"][:2]
    with pytest.raises(ValueError, match=r"^name must be one of \('gaussian_noise'.*got 'frost'$"):
        corrupt(x, "frost", 1, seed=0)
    for severity in (0, 6, True, 2.0, "3"):
        with pytest.raises(ValueError, match=r"^severity must be one of \(1, 2, 3, 4, 5\), got"):
            corrupt(x, "contrast", severity, seed=0)


def test_non_image_rows_and_integer_dtype_are_refused(images):
    x = images["grey28"][:4]
    cases = {
        "shape (4, 784)": x.flatten(1),
        "shape (4, 2, 28, 28)": x.expand(-1, 2, -1, -1),
        "dtype torch.uint8": (x * 255).to(torch.uint8),
        "dtype torch.int64": (x * 255).long(),
    }
    for got, bad in cases.items():
        with pytest.raises(ValueError, match=rf"^x_test must be float images \[B, C, H, W\].*got {re.escape(got)};"):
            check_corruptible(bad)
        with pytest.raises(ValueError, match=rf"^x must be float images .*got {re.escape(got)};"):
            corrupt(bad, "brightness", 1, seed=0)
    with pytest.raises(ValueError, match=r"^x_val must be float images .*got ndarray"):
        check_corruptible(x.numpy(), "x_val")
    check_corruptible(x)  # grey images pass
    check_corruptible(images["colour32"])


def test_without_kornia_the_module_imports_and_the_check_names_the_extra(monkeypatch, images):
    monkeypatch.setitem(sys.modules, "kornia", None)
    monkeypatch.setitem(sys.modules, "kornia.augmentation", None)
    spec = importlib.util.spec_from_file_location("uae_plugin.trial._corruptions_copy", Path(corruptions.__file__))
    copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(copy)  # the core imports without kornia
    with pytest.raises(ImportError) as err:
        copy.check_corruptible(images["grey16"])
    message = str(err.value)
    assert message == "the corruption metric needs kornia, which is not installed: pip install 'uae-plugin[kornia]'"
    with pytest.raises(ImportError, match="the corruption metric needs kornia"):
        copy.corrupt(images["grey16"], "brightness", 1, seed=0)
