"""Attacks inside a training step: the chosen rows of a batch replaced by their adversarial examples.

    x_out[i] = A(x[i])  for the chosen rows i,   x_out[i] = x[i]  otherwise,

with ``A`` a :class:`~uae_plugin.MinMaxAttack` (UAEs) or any attack ``x -> x'``, run on the model's device and
returned in the input's device and dtype. Only the chosen rows are attacked, so the work scales with their number.
``RandomUAE`` (kornia) and the online arms of a trial (``online-uae``, ``online-pgd``) both go through here.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .result import AttackResult


def model_device(model: nn.Module, fallback: torch.Tensor) -> torch.device:
    """The device of ``model``'s first parameter or buffer (``fallback``'s for a model that has none)."""
    held = next(model.parameters(), None)
    held = next(model.buffers(), None) if held is None else held
    return fallback.device if held is None else held.device


def replace_rows(
    x: torch.Tensor,
    rows: torch.Tensor,
    attack: Callable[[torch.Tensor], torch.Tensor | AttackResult],
    device: torch.device,
) -> tuple[torch.Tensor, AttackResult | None]:
    """``(x_out, result)``: ``x: [B, ...]`` with the rows ``rows: [B]`` bool replaced by ``attack(x[rows])`` (an
    ``AttackResult``, whose ``adv`` is taken, or the examples themselves) run on ``device``; ``result`` is the
    ``AttackResult`` when the attack gives one. No chosen row: ``x`` itself, and no attack call."""
    if not bool(rows.any()):
        return x, None
    if torch.is_inference_mode_enabled():
        raise RuntimeError(
            "an attack inside a training step needs autograd and cannot run under torch.inference_mode(); "
            "use torch.no_grad() instead, or call it outside"
        )
    found = attack(x[rows].to(device))
    result = found if isinstance(found, AttackResult) else None
    out = x.clone()
    out[rows] = (found.adv if result is not None else found).detach().to(x.device, x.dtype)
    return out, result
