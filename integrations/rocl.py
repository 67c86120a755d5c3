"""RoCL's instance-wise attack (Kim et al., NeurIPS 2020) run by the real ``torchattacks.PGD``: the common
alternative to UAEs for contrastive learning, an L-inf attack that *maximises* the contrastive loss."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from uae_plugin._extras import require
from uae_plugin.validation import check_count, check_positive


class ContrastiveLogits(nn.Module):
    """``x -> s(x) = cos(f(x), z⁺_j) / τ`` for every positive ``z⁺_j`` of the batch: ``[B, C, H, W] -> [B, B]``.

    With label ``i`` for row ``i``, the cross-entropy of these logits is the InfoNCE (NT-Xent) loss of the pair
    ``(x_i, x⁺_i)`` with the other rows' positives as negatives,
    ``ℓ_i = -log exp(s_ii) / Σ_j exp(s_ij)``, so any torchattacks attack that raises the cross-entropy of
    ``labels = arange(B)`` is RoCL's instance-wise attack. ``positives: [B, D]`` are held fixed (detached).
    """

    def __init__(self, encoder: nn.Module, positives: torch.Tensor, temperature: float = 0.5) -> None:
        super().__init__()
        self.encoder = encoder
        self.register_buffer("positives", F.normalize(positives.detach().flatten(1).float(), dim=1))
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.normalize(self.encoder(x).flatten(1).float(), dim=1)
        return z @ self.positives.T / self.temperature


class RoCLTransform:
    """Normalised views ``v: [B, C, H, W]`` -> normalised ``v'`` with ``|x' - x|_inf <= eps`` in pixels, found by
    ``torchattacks.PGD(eps, alpha, steps)`` maximising ``ℓ_i`` of :class:`ContrastiveLogits` against ``positives``.

    torchattacks un-normalises ``v`` (``set_normalization_used``), runs PGD on the pixels
    ``x = v * std + mean`` (``x'`` clipped to [0, 1]) and re-normalises ``x'``; it puts the encoder in eval mode for
    the attack and back in train mode after if it was. ``alpha`` defaults to ``2.5 * eps / steps``
    (Madry et al.). ``seed`` fixes PGD's uniform random start.

    Example:
        >>> rocl = RoCLTransform(eps=8 / 255, steps=7, mean=[0.1307], std=[0.3081])
        >>> v1_adv = rocl(model, v1, positives=model(v0).detach())
    """

    def __init__(
        self,
        eps: float = 8 / 255,
        steps: int = 7,
        alpha: float | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        temperature: float = 0.5,
        seed: int | None = None,
    ) -> None:
        if check_positive(eps, "eps") > 1:
            raise ValueError(f"eps must be a number in (0, 1] (pixels in [0, 1]), got {eps!r}")
        self.eps, self.steps = float(eps), check_count(steps, "steps")
        self.temperature, self.seed = check_positive(temperature, "temperature"), seed
        self.alpha = 2.5 * self.eps / steps if alpha is None else check_positive(alpha, "alpha")
        self.mean = [0.0] if mean is None else [float(m) for m in mean]
        self.std = [1.0] if std is None else [float(s) for s in std]
        if any(s <= 0 for s in self.std) or len(self.mean) != len(self.std):
            raise ValueError(f"mean and std must be per-channel values of equal length, std > 0, got {mean}, {std}")
        self.calls = 0

    def __call__(self, encoder: nn.Module, views: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(views) or views.dim() != 4 or not views.is_floating_point():
            raise ValueError(f"views must be a float tensor [B, C, H, W], got {getattr(views, 'shape', views)!r}")
        if not torch.is_tensor(positives) or positives.shape[0] != views.shape[0]:
            raise ValueError(
                f"positives must be a tensor [B, D] with B = {views.shape[0]} (one per view), "
                f"got {tuple(getattr(positives, 'shape', ()))}"
            )
        logits = ContrastiveLogits(encoder, positives, self.temperature)
        torchattacks = require("torchattacks", "RoCLTransform")
        attack = torchattacks.PGD(logits, eps=self.eps, alpha=self.alpha, steps=self.steps, random_start=True)
        attack.set_normalization_used(mean=self.mean, std=self.std)  # normalised in and out, PGD in pixels
        labels = torch.arange(views.shape[0], device=views.device)
        with torch.random.fork_rng(devices=[views.device] if views.device.type == "cuda" else []):
            if self.seed is not None:
                torch.manual_seed(self.seed + self.calls)
            adv = attack(views.detach().float(), labels)
        self.calls += 1
        return adv.detach().to(views.dtype)
