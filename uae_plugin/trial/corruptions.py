"""Common corruptions of Hendrycks & Dietterich (ICLR 2019; CIFAR-10-C) as kornia augmentations at fixed parameters.

A corrupted image is ``x_c = clip(corruption_s(x), 0, 1)``: one kornia augmentation (``p=1``, every range collapsed
to one value) per corruption and severity ``s``, so the only randomness is its noise or field draw (and, as in H&D,
motion blur's angle), made under ``seed`` in a forked RNG. Values are H&D's CIFAR-10-C ones (``make_cifar_c.py``,
hendrycks/robustness), for 32 px images:

==================  ===================================================  ================================
name                kornia class: parameter                              severity 1, 2, 3, 4, 5
==================  ===================================================  ================================
gaussian_noise      RandomGaussianNoise: std                             0.04, 0.06, 0.08, 0.09, 0.10
impulse_noise       RandomSaltAndPepperNoise: amount (salt:pepper 1:1)   0.01, 0.02, 0.03, 0.05, 0.07
motion_blur         RandomMotionBlur: kernel 1 + 2 ceil(sigma s),        sigma 1, 1.5, 2, 2, 2.5
                    angle ~ U(-45, 45) as H&D, direction 0               (kernel 3, 5, 5, 5, 7 at 32 px)
brightness          RandomBrightness: x + c                              0.05, 0.1, 0.15, 0.2, 0.3
contrast            ColorJitter(order=[1]): (x - mean) c + mean          0.75, 0.5, 0.4, 0.3, 0.15
elastic_transform   RandomElasticTransform: (alpha, sigma) px            (0, 0), (1.6, 6.4), (2.56, 1.92),
                                                                         (3.2, 1.28), (3.2, 0.96)
pixelate            torch resize to floor(c H) x floor(c W) and back     0.95, 0.9, 0.85, 0.75, 0.65
jpeg_compression    RandomJPEG: quality                                  80, 65, 58, 50, 40
gaussian_blur       RandomGaussianBlur: sigma (H&D's extra set)          0.4, 0.6, 0.7, 0.8, 1.0
==================  ===================================================  ================================

Where kornia differs from H&D: motion_blur is a uniform centred line of odd length about 2 sigma + 1 (ImageMagick's is
a one-sided Gaussian of that sigma); brightness adds ``c`` to every channel (H&D raise the HSV value by ``c``: equal
for grey images); contrast blends with the grayscale mean (H&D: per-channel means; equal for grey); impulse noise
rewrites a pixel in all channels (H&D: each channel alone); JPEG is kornia's differentiable codec; elastic_transform
is the smoothed-noise field only (truncated at 3 sigma): H&D's random affine is left out, so severity 1, whose field
H&D set to zero, is the identity. pixelate: H&D's PIL box resize (block means, near-nearest upscaling) is not monotone
in mean |x_c - x| on digits (28 -> 21 px aligns 4:3 and loses less than 28 -> 23), so it is an antialiased bicubic
downscale and a bilinear upscale (align_corners), monotone on MNIST and Animal-MNIST at 16-48 px, grey and colour.

Left out: shot_noise and speckle_noise (kornia 0.9 has no Poisson or multiplicative noise augmentation),
defocus_blur (no disk-kernel blur), glass_blur (local pixel shuffling) and zoom_blur (no augmentation), frost
(needs H&D's frost image files), fog (RandomPlasmaBrightness uses a plasma fractal too, but adds a zero-mean signed
map ``x + i (2 p - 1)`` instead of H&D's ``(x + c p) max / (max + c)``, so it is not fog), snow (RandomSnow whitens
dark HLS lightness, not H&D's blurred snow layer), spatter (none) and saturate (a no-op on grey images and not
monotone in severity: its factors 0.3, 0.1, 1.5, 2, 2.5).

Grey and small images: with ``s = min(H, W) / 32`` the spatial sizes are scaled to the image (gaussian_blur and
elastic sigma and alpha times ``s``, kernel radius ``int(4 sigma + 0.5)``, resp. ``int(3 sigma + 0.5)``; motion
kernel from ``sigma s``), so a 16 px digit is blurred as much, relative to its size, as a 32 px CIFAR image; pixelate
is already relative; noise, brightness, contrast and JPEG (8 px blocks) act per pixel. Every op takes 1 or 3
channels except RandomJPEG, which gets the grey image repeated to 3 channels and averaged back.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch
import torch.nn.functional as F

from .._extras import require

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)

# H&D make_cifar_c.py, severities 1..5 (pixel sizes for 32 px images)
_PARAMS: dict[str, tuple[Any, ...]] = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "impulse_noise": (0.01, 0.02, 0.03, 0.05, 0.07),
    "motion_blur": (1.0, 1.5, 2.0, 2.0, 2.5),
    "brightness": (0.05, 0.1, 0.15, 0.2, 0.3),
    "contrast": (0.75, 0.5, 0.4, 0.3, 0.15),
    "elastic_transform": ((0.0, 0.0), (1.6, 6.4), (2.56, 1.92), (3.2, 1.28), (3.2, 0.96)),
    "pixelate": (0.95, 0.9, 0.85, 0.75, 0.65),
    "jpeg_compression": (80.0, 65.0, 58.0, 50.0, 40.0),
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),
}
CORRUPTIONS: tuple[str, ...] = tuple(_PARAMS)  # H&D's order; gaussian_blur, from their extra set, last


def check_corruptible(x: torch.Tensor, name: str = "x_test") -> None:
    """Raise a one-line ValueError unless ``x`` is float images ``[B, C, H, W]`` with ``C`` in (1, 3), and the
    one-line ImportError of :func:`~uae_plugin._extras.require` when kornia is not installed."""
    if not isinstance(x, torch.Tensor):
        got = type(x).__name__
    elif x.ndim != 4 or x.shape[1] not in (1, 3):
        got = f"shape {tuple(x.shape)}"
    elif not x.is_floating_point():
        got = f"dtype {x.dtype}"
    else:
        got = ""
    if got:
        raise ValueError(
            f"{name} must be float images [B, C, H, W] with C in (1, 3) and values in [0, 1], got {got}; "
            "reshape flat rows to images (e.g. x.view(-1, 1, 28, 28)) and convert integers with x.float() / 255"
        )
    require("kornia.augmentation", "the corruption metric")


def _radius(sigma: float, truncate: float) -> int:
    return max(1, int(truncate * sigma + 0.5))


def _augmentation(name: str, c: Any, h: int, w: int) -> torch.nn.Module:
    """The kornia augmentation of ``name`` at parameter ``c`` for ``h x w`` images."""
    K = require("kornia.augmentation", "the corruption metric")
    s = min(h, w) / 32
    if name == "gaussian_noise":
        return K.RandomGaussianNoise(mean=0.0, std=c, p=1.0)
    if name == "impulse_noise":
        return K.RandomSaltAndPepperNoise(amount=c, salt_vs_pepper=0.5, p=1.0)
    if name == "motion_blur":
        k = 1 + 2 * math.ceil(c * s)
        return K.RandomMotionBlur(k, 45.0, 0.0, border_type="replicate", resample="bilinear", p=1.0)
    if name == "brightness":
        return K.RandomBrightness(brightness=(1.0 + c, 1.0 + c), p=1.0)
    if name == "contrast":
        return K.ColorJitter(contrast=(c, c), order=[1], p=1.0)
    if name == "jpeg_compression":
        return K.RandomJPEG(jpeg_quality=(c, c), p=1.0)
    if name == "gaussian_blur":
        k = 2 * _radius(c * s, 4.0) + 1
        return K.RandomGaussianBlur((k, k), (c * s, c * s), border_type="replicate", p=1.0)
    alpha, sigma = c  # elastic_transform: pixels at 32 px -> normalised grid units (2 / size per pixel)
    if alpha == 0:
        return torch.nn.Identity()  # H&D's severity 1 has no field, only the affine left out here
    k = 2 * _radius(sigma * s, 3.0) + 1
    grid_alpha = (2 * alpha * s / w, 2 * alpha * s / h)
    return K.RandomElasticTransform((k, k), (sigma * s, sigma * s), grid_alpha, padding_mode="reflection", p=1.0)


def corrupt(x: torch.Tensor, name: str, severity: int, seed: int) -> torch.Tensor:
    """``clip(corruption_severity(x), 0, 1)`` of the batch ``x: [B, C, H, W]`` in [0, 1]: same shape, dtype and
    device; bit-identical for the same ``(x, name, severity, seed)``; the caller's global RNG is left untouched."""
    check_corruptible(x, "x")
    if name not in CORRUPTIONS:
        raise ValueError(f"name must be one of {CORRUPTIONS}, got {name!r}")
    if isinstance(severity, bool) or not isinstance(severity, numbers.Integral) or severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
    c = _PARAMS[name][int(severity) - 1]
    h, w = x.shape[-2:]
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()
    if name == "pixelate":
        size = (max(1, int(h * c)), max(1, int(w * c)))
        small = F.interpolate(work, size=size, mode="bicubic", align_corners=True, antialias=True)
        return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=True).clamp(0, 1).to(x.dtype)
    aug = _augmentation(name, c, h, w)
    to_rgb = name == "jpeg_compression" and x.shape[1] == 1
    cuda = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.default_generator.manual_seed(seed)  # not torch.manual_seed: it would (lazily) reseed every GPU
        if cuda:
            index = torch.cuda.current_device() if x.device.index is None else x.device.index
            torch.cuda.default_generators[index].manual_seed(seed)
        out = aug(work.expand(-1, 3, -1, -1) if to_rgb else work)
    if to_rgb:
        out = out.mean(dim=1, keepdim=True)
    return out.clamp(0, 1).to(x.dtype)
