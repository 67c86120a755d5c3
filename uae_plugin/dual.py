"""The penalty weight ``c`` of the MinMax objective: how it starts and how it moves after each iterate.

- :class:`DualAscent` (MinMax): ``c_0 = c0``, ``c_t = max(0, (1 - beta gamma_t) c_{t-1} + beta max(f_x(x_t), 0))``
  with ``gamma_t = t^(-gamma_power)`` (docs/algorithm.md).
- :class:`FixedPenalty` (the binary-search baseline): ``c_t = c``, given per sample.
"""

from __future__ import annotations

import torch

from .settings import MinMaxSettings


class DualAscent:
    """``c_t = max(0, (1 - beta t^-gamma_power) c_{t-1} + beta max(gap_t, 0))``, from ``c_0 = c0`` for every sample."""

    def __init__(self, settings: MinMaxSettings) -> None:
        self.c0, self.beta, self.gamma_power = settings.c0, settings.beta, settings.gamma_power

    def start(self, batch: int, device: torch.device) -> torch.Tensor:
        return torch.full((batch,), self.c0, device=device)

    def update(self, c: torch.Tensor, gap: torch.Tensor, t: int) -> torch.Tensor:
        decay = 1 - self.beta * t**-self.gamma_power
        c = torch.relu(gap.detach()).mul_(self.beta).add_(c, alpha=decay)
        return c if decay >= 0 else c.clamp_(min=0)  # a sum of non-negative terms needs no clamp


class FixedPenalty:
    """``c_t = c`` for every t: the penalty method at a fixed per-sample ``c: [B]``."""

    def __init__(self, c: torch.Tensor) -> None:
        self.c = c

    def start(self, batch: int, device: torch.device) -> torch.Tensor:
        return self.c.float().clone().to(device)

    def update(self, c: torch.Tensor, gap: torch.Tensor, t: int) -> torch.Tensor:
        return c
