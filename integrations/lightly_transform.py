"""UAEs of a batch of normalised SimCLR views (lightly's ``SimCLRTransform`` output): :class:`UAETransform`.

It un-normalises the views to pixels, runs :class:`uae_plugin.MinMaxAttack` with a :class:`uae_plugin.Contrastive`
criterion there and normalises the UAEs again; :class:`uae_plugin.integrations.lightly.UAESimCLR` trains with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from uae_plugin import AttackResult, Contrastive, MinMaxAttack
from uae_plugin._extras import require

Normalize = require("torchvision.transforms", "uae_plugin.integrations.lightly").Normalize

PIXEL_TOLERANCE = 0.05  # un-normalised pixels this far outside [0, 1] mean that mean/std do not match the views


class UAETransform:
    """UAEs of a batch of normalised SimCLR views, on the training device (Hsu et al., AAAI 2022).

    ``v: [B, C, H, W]``, normalised with per-channel ``mean``/``std`` (e.g. ``**IMAGENET_NORMALIZE``; None: 0, 1)
    -> ``v'`` normalised, detached, with ``x' = v' * std + mean`` in [0, 1] and ``|x' - clip(v * std + mean, 0, 1)|
    <= eps``; un-normalised pixels within ``PIXEL_TOLERANCE`` of [0, 1] are clamped, further out (or NaN/Inf) raise
    ValueError.
    The attack borrows ``encoder`` (eval, frozen, restored after) and never calls a training loss: no memory bank or
    all-gather moves. Other arguments as for ``MinMaxAttack`` (unset: the preset's; the authors' SimCLR runs use
    T = 20) and ``Contrastive``
    (its default kornia views; ``normalize`` is the torchvision ``Normalize`` that ends lightly's ``SimCLRTransform``).

    Example:
        >>> uae = UAETransform(model, eps=0.1, steps=5, seed=0, **IMAGENET_NORMALIZE)
        >>> x1_adv = uae(x1)   # normalised views in, normalised UAE views out; uae.last_result: AttackResult
    """

    def __init__(
        self,
        encoder: nn.Module,
        eps: float | None = None,
        steps: int | None = None,
        mean: Sequence[float] | torch.Tensor | None = None,
        std: Sequence[float] | torch.Tensor | None = None,
        seed: int | None = None,
        n_views: int = 4,
        temperature: float = 0.5,
        estimator: str | None = None,
        **settings: Any,
    ) -> None:
        if not isinstance(encoder, nn.Module):
            raise TypeError(f"encoder must be a torch.nn.Module, got {type(encoder).__name__}")
        stats = (0.0 if mean is None else mean, 1.0 if std is None else std)
        self.mean, self.std = (torch.as_tensor(t, dtype=torch.float32).view(1, -1, 1, 1) for t in stats)
        if not (self.mean.isfinite().all() and self.std.isfinite().all() and (self.std > 0).all()):
            raise ValueError(f"mean and std must be finite per-channel values, std > 0, got {mean!r}, {std!r}")
        self.normalize = Normalize(self.mean.flatten().tolist(), self.std.flatten().tolist())
        criterion = Contrastive(nn.Sequential(self.normalize, encoder), n_views, temperature)
        criterion.model_name = type(encoder).__name__  # errors name the user's encoder, not the wrapper
        self.attack = MinMaxAttack(criterion, eps=eps, steps=steps, seed=seed, estimator=estimator, **settings)
        self.last_result: AttackResult | None = None

    def check(self, t: Any, name: str = "views") -> torch.Tensor:
        """``t`` must be a non-empty float tensor ``[B, C, H, W]`` with C = len(mean) (or mean of length 1)."""
        if not torch.is_tensor(t) or not t.is_floating_point():
            raise TypeError(
                f"{name} must be a float tensor [B, C, H, W], got {getattr(t, 'dtype', type(t).__name__)}; "
                "convert 8-bit images with x.float() / 255 (then normalise views)"
            )
        if t.dim() != 4 or self.mean.shape[1] not in (1, t.shape[1]):
            raise ValueError(f"{name} must have shape [B, C, H, W], C = len(mean), got {tuple(t.shape)}")
        if t.shape[0] == 0:
            raise ValueError(f"{name} is an empty batch (shape {tuple(t.shape)}); pass at least one sample")
        return t

    def unnormalize(self, views: torch.Tensor) -> torch.Tensor:
        """``clip(v * std + mean, 0, 1)`` in float32; ValueError for NaN/Inf or beyond ``PIXEL_TOLERANCE``."""
        x = self.check(views).float() * self.std.to(views.device) + self.mean.to(views.device)
        if not bool(torch.isfinite(x).all()):
            raise ValueError("views contain NaN or Inf after un-normalising with mean/std; clean the data first")
        if not (-PIXEL_TOLERANCE <= float(x.min()) and float(x.max()) <= 1 + PIXEL_TOLERANCE):  # also catches NaN
            span = f"[{float(x.min()):.3g}, {float(x.max()):.3g}]"
            raise ValueError(f"views un-normalised span {span}: pass the mean= and std= the views were normalised with")
        return x.clamp(0.0, 1.0)

    def attack_pixels(self, pixels: torch.Tensor, index: Any = None) -> AttackResult:
        """The attack on pixels ``[B, C, H, W]`` in [0, 1]; ``index: [B]`` keys each sample's randomness."""
        self.last_result = self.attack(self.check(pixels, "pixels"), index=index)
        return self.last_result

    def __call__(self, views: torch.Tensor, index: Any = None) -> torch.Tensor:
        """Normalised UAE views ``[B, C, H, W]``, detached, in the dtype of ``views``."""
        adv = self.attack_pixels(self.unnormalize(views), index).adv
        return self.normalize(adv).detach().to(views.dtype)
