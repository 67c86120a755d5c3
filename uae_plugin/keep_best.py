"""Per-sample selection of the iterate an attack returns (docs/algorithm.md, section 3, step 4)."""

from __future__ import annotations

import torch

from .result import AttackResult


class KeepBest:
    """Tracks, per sample, the best iterate seen so far, with no host sync.

    Unsupervised (``maximize_mi=False``): among successful iterates, the one
    with the smallest positive ``w I`` (a successful iterate with ``w I <= 0``
    ranks after every positive one; with ``exact`` estimators, whose ``I = 0``
    means independence, the smallest non-negative); if none succeeded, the
    smallest gap. Supervised (``maximize_mi=True``): the successful iterate with
    the largest ``w I``; if none succeeded, the smallest gap. With the MI
    weight ``w = 0`` (the no-MI ablation) successful iterates tie and the
    first one is kept: MI plays no part in the choice either.
    """

    def __init__(self, x: torch.Tensor, maximize_mi: bool, mi_weight: float = 1.0, exact: bool = False) -> None:
        b = x.shape[0]
        self.maximize_mi = maximize_mi
        self.mi_weight, self.exact = mi_weight, exact
        self.adv = x.detach().clone()
        self.success = torch.zeros(b, dtype=torch.bool, device=x.device)
        self.score = torch.full((b,), float("inf"), device=x.device)
        self.gap = torch.full((b,), float("inf"), device=x.device)
        self.mi = torch.full((b,), float("nan"), device=x.device)
        self.saturated = torch.zeros(b, dtype=torch.bool, device=x.device)

    def _score(self, mi: torch.Tensor) -> torch.Tensor:
        """Lower is better among successful iterates."""
        weighted = mi if self.mi_weight == 1.0 else self.mi_weight * mi
        if self.maximize_mi:
            return -weighted
        valid = (weighted >= 0) if (self.exact and self.mi_weight > 0) else (weighted > 0)
        return torch.where(valid, weighted, float("inf"))

    def update(
        self,
        adv: torch.Tensor,
        success: torch.Tensor,
        gap: torch.Tensor,
        mi: torch.Tensor,
        saturated: torch.Tensor | None = None,
    ) -> None:
        """Offer one iterate: ``adv [B, ...]``, ``success/gap/mi/saturated [B]``.

        Taken where it is the first success, a success with a better score than the kept success, or, while
        none succeeded, a failure with a smaller gap."""
        score, gap, mi = self._score(mi.detach()), gap.detach(), mi.detach()
        take = torch.where(self.success, success & (score < self.score), success | (gap < self.gap))
        # a select, not lerp_ with 0/1 weights: 0 * NaN would let a NaN iterate overwrite a kept finite one
        torch.where(take.view(-1, *([1] * (adv.dim() - 1))), adv.detach(), self.adv, out=self.adv)
        self.success |= success
        torch.where(take, score, self.score, out=self.score)
        torch.where(take, gap, self.gap, out=self.gap)
        torch.where(take, mi, self.mi, out=self.mi)
        if saturated is not None:
            torch.where(take, saturated, self.saturated, out=self.saturated)

    def result(
        self, c: torch.Tensor, mi_history: torch.Tensor, gap_history: torch.Tensor, model_evaluations: int
    ) -> AttackResult:
        """The kept iterates as an :class:`AttackResult` (``adv`` in the dtype of the ``x`` given at construction)."""
        return AttackResult(
            adv=self.adv,
            success=self.success,
            mi=self.mi,
            gap=self.gap,
            saturated=self.saturated,
            c=c,
            mi_history=mi_history,
            gap_history=gap_history,
            model_evaluations=model_evaluations,
        )
