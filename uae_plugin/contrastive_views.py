"""Views of one sample for the contrastive criterion, drawn with kornia.

Sample b's ``n`` pairs of views are ``aug(x_b; p_k), aug(x_b; q_k)``, k < n,
where the parameter draws ``p, q`` depend only on the seed: the same ``n``
draws serve every sample, so a sample's views never depend on its batch.
The batch runs as one kornia call on ``x`` tiled to ``[B*n, C, H, W]`` with
the draws replayed through kornia's ``params=`` argument.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._extras import require

# Keys of kornia parameter dicts that are not indexed by the batch.
_NOT_PER_ROW = {"order"}


def default_augmentation(channels: int, size: tuple[int, int]) -> nn.Module:
    """SimCLR views with kornia (Chen et al. 2020): crop, flip, colour jitter, blur.

    RGB gets the full SimCLR recipe; other channel counts (grey digits)
    get crop, brightness/contrast jitter and blur.
    """
    K = require("kornia.augmentation", "Contrastive's default views")

    kernel = max(3, (min(size) // 10) | 1)  # SimCLR: blur kernel ~10% of the side, odd
    blur = K.RandomGaussianBlur((kernel, kernel), (0.1, 2.0), p=0.5)
    if channels == 3:
        return K.AugmentationSequential(
            K.RandomResizedCrop(size, scale=(0.2, 1.0)),
            K.RandomHorizontalFlip(),
            K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
            K.RandomGrayscale(p=0.2),
            blur,
        )
    return K.AugmentationSequential(K.RandomResizedCrop(size, scale=(0.5, 1.0)), K.ColorJitter(0.4, 0.4, p=0.8), blur)


def _tile(data: Any, n: int, reps: int, device: torch.device) -> Any:
    """Repeat every per-row tensor of a kornia parameter structure ``reps`` times, on ``device``."""
    ParamItem = require("kornia.augmentation.container.params", "Contrastive").ParamItem

    if isinstance(data, ParamItem):
        return ParamItem(data.name, _tile(data.data, n, reps, device))
    if isinstance(data, (list, tuple)):
        return type(data)(_tile(item, n, reps, device) for item in data)
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            if key == "forward_input_shape":
                value = value.clone()
                value[0] = n * reps
            elif torch.is_tensor(value) and value.dim() >= 1 and value.shape[0] == n and key not in _NOT_PER_ROW:
                value = value.repeat(reps, *([1] * (value.dim() - 1))).to(device)
            elif isinstance(value, (dict, list, tuple, ParamItem)):
                value = _tile(value, n, reps, device)
            out[key] = value
        return out
    return data


class ViewSampler:
    """Draws ``n_views`` pairs of augmentation parameters and applies them to a batch."""

    def __init__(self, n_views: int, augment: nn.Module | None = None) -> None:
        self.n_views = n_views
        self.augment = augment

    def draw(self, x: torch.Tensor, seed: int) -> tuple[Any, Any]:
        """Two parameter draws for ``n`` views each, from ``seed`` alone, tiled to ``B*n`` rows."""
        if x.dim() != 4:
            raise ValueError(f"Contrastive needs images x: [B, C, H, W], got shape {tuple(x.shape)}")
        if self.augment is None:
            self.augment = default_augmentation(x.shape[1], tuple(x.shape[-2:]))
        shape = torch.Size([self.n_views, *x.shape[1:]])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            draws = [self.augment.forward_parameters(shape) for _ in range(2)]
        return tuple(_tile(d, self.n_views, x.shape[0], x.device) for d in draws)

    def apply(self, x: torch.Tensor, params: tuple[Any, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Views ``[B*n, C, H, W]`` twice, rows ordered sample-major (b*n + k)."""
        tiled = x.repeat_interleave(self.n_views, dim=0)
        return self.augment(tiled, params=params[0]), self.augment(tiled, params=params[1])
