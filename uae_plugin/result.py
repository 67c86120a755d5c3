"""The result of an attack on a batch."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class AttackResult:
    """What an attack returns for ``x: [B, ...]``.

    adv: ``[B, ...]`` the kept examples, same dtype and device as x.
    success: ``[B]`` bool, the criterion holds at ``adv`` (``f_x(adv) <= 0``;
        label flipped for Classification).
    mi: ``[B]`` float32, the estimate ``I(x, adv)`` that selected ``adv`` (the attack's estimator: the exact
        Gaussian form by default, or MINE's DV bound).
    gap: ``[B]`` float32, ``f_x(adv)``.
    saturated: ``[B]`` bool, ``mi`` is a MINE estimate at its ``log N`` ceiling
        (``>= 0.9 log N``): a floor of the true value, not a measurement.
        Always False for the closed-form ``"gaussian"`` estimator.
    c: ``[B]`` the final Lagrange multipliers.
    mi_history, gap_history: ``[T, B]`` the estimate and gap at every iterate.
    model_evaluations: rows the model evaluated (forward passes x batch rows).
    """

    adv: torch.Tensor
    success: torch.Tensor
    mi: torch.Tensor
    gap: torch.Tensor
    c: torch.Tensor
    mi_history: torch.Tensor
    gap_history: torch.Tensor
    model_evaluations: int
    saturated: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.saturated is None:  # a result built by hand, e.g. a slice of another
            self.saturated = torch.zeros(self.success.shape, dtype=torch.bool, device=self.success.device)

    @property
    def success_rate(self) -> float:
        """Fraction of the batch with ``success``."""
        return float(self.success.float().mean())

    def __repr__(self) -> str:
        return (
            f"AttackResult(batch={self.adv.shape[0]}, success_rate={self.success_rate:.3f}, "
            f"mean_mi={float(self.mi.mean()):.4f}, saturated={int(self.saturated.sum())}, "
            f"mean_gap={float(self.gap.mean()):.4g}, "
            f"model_evaluations={self.model_evaluations})"
        )
