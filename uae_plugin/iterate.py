"""One scored iterate of the attack, and the gradient of the MinMax objective at it in one backward pass.

    F(x', c) = sum_i c_i max(f_i(x'), 0) + s I_i(x, x')          (s = +-w, the signed MI weight)
    grad_x' F = J_o^T (c 1[f > 0] df/do) + J_p^T (s dI/dp)

``o`` is what the criterion hands back (its model's output with ``df/do`` in closed form, or ``f`` itself with
``df/df = 1``: :meth:`~uae_plugin.criteria.Evaluation.seed`), ``p`` the pairs the estimator scores (the Gaussian
estimator gives ``s dI/dp`` in closed form; MINE's ``I`` carries its graph, seeded with ``s``). Both seeds go to
one ``torch.autograd.grad`` call, so autograd runs through the model and the pair source only.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .criteria import Criterion, Evaluation


@dataclass
class ScoredIterate:
    """``point``: the iterate ``x_t`` as a float32 leaf; ``adv``: it in the model's dtype; the criterion's
    ``evaluation`` and ``mi [B]`` (detached) there. The MI term's gradient, one of: ``mi_grad(out=None)``, which
    returns ``s dI/dp`` for the pairs ``mi_output`` (or adds it in place to ``out``); or ``I`` itself as
    ``mi_output`` with its graph, seeded with ``s`` (``mi_grad`` None). Both None at the last iterate, which is
    only scored, or with ``s = 0``; ``mi_scale`` is ``s``."""

    point: torch.Tensor
    adv: torch.Tensor
    evaluation: Evaluation
    mi: torch.Tensor
    mi_output: torch.Tensor | None = None
    mi_grad: Callable[[torch.Tensor | None], torch.Tensor] | None = None
    mi_scale: float = 0.0

    def gradient(self, c: torch.Tensor) -> torch.Tensor:
        """``grad_x' F(x_t, c)`` (module docstring), ``[B, ...]`` float32."""
        ev = self.evaluation
        seeded = [ev.seed(c * (ev.gap.detach() > 0))]
        if not seeded[0][0].requires_grad:
            warnings.warn(
                "the criterion's gap (or output) carries no graph back to x': the attack moves x' by the MI term "
                "alone; compute the gap from the model's output with autograd on (not under torch.no_grad, "
                "not through .item() or .detach())",
                stacklevel=4,
            )
        into_point = self.mi_grad is not None and _same_values(self.mi_output, self.point)
        if self.mi_grad is None and self.mi_output is not None:
            seeded.append((self.mi_output, torch.full_like(self.mi_output, self.mi_scale)))
        elif self.mi_grad is not None and not into_point:
            seeded.append((self.mi_output, self.mi_grad(None).reshape(self.mi_output.shape).to(self.mi_output.dtype)))
        seeded = [(out, seed) for out, seed in seeded if out.requires_grad]  # none: e.g. a constant model
        grad = None
        if seeded:
            outputs, seeds = zip(*seeded, strict=True)
            (grad,) = torch.autograd.grad(outputs, self.point, seeds, allow_unused=True)
        grad = torch.zeros_like(self.point) if grad is None else grad
        if into_point:  # the pairs are the point itself (projection pairs, float32): add s dI/dp in place
            grad = grad.contiguous()
            self.mi_grad(grad.view(self.mi_output.shape))
        return grad


def _same_values(pairs: torch.Tensor, point: torch.Tensor) -> bool:
    """``pairs`` is ``point`` reshaped (a view of the same contiguous memory, same dtype)."""
    return (
        pairs.dtype == point.dtype
        and pairs.numel() == point.numel()
        and pairs.data_ptr() == point.data_ptr()
        and pairs.is_contiguous()
        and point.is_contiguous()
    )


@dataclass
class IterateScorer:
    """Scores iterates of one attack: ``(iterate, t, graph) -> ScoredIterate``. Fits the statistics networks
    on the pairs of ``x_t`` first (``t >= 1``: the start ``x_0`` is scored with the untrained networks), then
    evaluates the criterion and ``I(x, x_t)``; with ``graph``, keeps what :meth:`ScoredIterate.gradient` needs."""

    criterion: Criterion
    state: Any
    pairs: Callable[[torch.Tensor], torch.Tensor]
    estimator: Any
    clean_pairs: torch.Tensor
    mi_sign: float
    dtype: torch.dtype
    mine_steps: int

    def __call__(self, iterate: torch.Tensor, t: int, graph: bool) -> ScoredIterate:
        point = iterate.detach().requires_grad_(graph)
        with torch.set_grad_enabled(graph):
            adv = point.to(self.dtype)
            moved = self.pairs(adv)
        if t > 0:
            self.estimator.fit(self.clean_pairs, moved, self.mine_steps, step=t)
        seeded = graph and self.mi_sign != 0.0
        with torch.set_grad_enabled(graph):
            ev = self.criterion.evaluate(adv, self.state)
            mi, grad = self.estimator.bound_and_gradient(
                self.clean_pairs, moved, step=t + 1, scale=self.mi_sign if seeded else None
            )
        if not seeded:
            return ScoredIterate(point, adv, ev, mi.detach())
        if grad is not None:
            return ScoredIterate(point, adv, ev, mi, moved, grad)
        return ScoredIterate(point, adv, ev, mi.detach(), mi, mi_scale=self.mi_sign)
