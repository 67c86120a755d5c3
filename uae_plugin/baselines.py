"""What a user compares UAEs against.

- :class:`BinarySearchPenalty`: the paper's baseline for MinMax, the penalty
  method ``min_delta c max(f, 0) + I`` at a fixed ``c``, with a binary search
  over ``c`` (``searches`` runs of ``steps`` iterations each).
- :class:`UnsupervisedPGD`: the "usual" adversarial example, PGD that
  maximises the task loss in the L-inf ball (Madry et al., 2018).
- :func:`matched_gaussian_noise`: Gaussian noise with the L2 size of given examples.
"""

from __future__ import annotations

from typing import Any

import torch

from .criteria import Criterion
from .dual import FixedPenalty
from .minmax import MinMaxAttack
from .model_guard import borrowed
from .result import AttackResult
from .rng import SampleRandom, content_keys, stream_id
from .validation import check_count, check_images, check_positive

_PGD_START_STREAM = 31
_NOISE_STREAM = 32


class BinarySearchPenalty:
    """Penalty method with a per-sample binary search over ``c`` (Hsu et al. 2022, Sec. 3).

    Run ``searches`` times (paper: 9): solve ``min_delta c max(f, 0) + I`` for
    ``steps`` iterations at fixed ``c``; then per sample, on success
    ``upper = c``, on failure ``lower = c``; the next ``c`` is ``10 c`` until
    the first success and ``(lower + upper) / 2`` after. Keeps the best
    iterate over all runs by the MinMax rule. Costs ``searches`` times the
    model evaluations of one MinMax run.

    Args: as :class:`MinMaxAttack` (``c0`` is the first ``c``), plus ``searches``.
    """

    def __init__(self, criterion: Criterion, searches: int = 9, **minmax: Any) -> None:
        self.searches = check_count(searches, "searches")
        self.attack = MinMaxAttack(criterion, **minmax)

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None = None, *, index: Any = None) -> AttackResult:
        check_images(x)
        b = x.shape[0]
        c = torch.full((b,), self.attack.settings.c0, device=x.device)
        lower = torch.zeros_like(c)
        upper = torch.full_like(c, float("inf"))
        best = self.attack.keep_best(x)
        evaluations, mi_hist, gap_hist = 0, [], []
        for _ in range(self.searches):
            res = self.attack.run_with_penalty(x, y, FixedPenalty(c), index=index)
            best.update(res.adv, res.success, res.gap, res.mi, res.saturated)
            evaluations += res.model_evaluations
            mi_hist.append(res.mi_history)
            gap_hist.append(res.gap_history)
            upper = torch.where(res.success, torch.minimum(upper, c), upper)
            lower = torch.where(res.success, lower, torch.maximum(lower, c))
            c = torch.where(torch.isinf(upper), c * 10, (lower + upper) / 2)
        return best.result(c, torch.cat(mi_hist), torch.cat(gap_hist), evaluations)


class UnsupervisedPGD:
    """PGD on the task loss: ``x_{k+1} = Proj(x_k + alpha sign(grad L(x_k)))``.

    ``L`` is the criterion's task loss (reconstruction error ``||x - g(x')||^2``,
    the NT-Xent loss of the sample's views, or the cross entropy), maximised
    within ``||x' - x||_inf <= eps`` and ``[0, 1]``. Random start uniform in the
    ball, drawn per sample from (seed, its values). Returns ``x'``: ``[B, ...]``.
    """

    def __init__(
        self,
        criterion: Criterion,
        eps: float = 0.1,
        alpha: float | None = None,
        steps: int = 40,
        random_start: bool = True,
        seed: int = 0,
    ) -> None:
        self.criterion = criterion
        self.eps = check_positive(eps, "eps")
        self.steps = check_count(steps, "steps")
        self.alpha = check_positive(alpha if alpha is not None else 2.5 * eps / steps, "alpha")
        self.random_start, self.seed = random_start, seed

    def __call__(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        check_images(x)
        x32 = x.detach().float()
        with borrowed(self.criterion.model), torch.enable_grad():
            state = self.criterion.prepare(x, y, self.seed)
            adv = x32.clone()
            if self.random_start:
                u = SampleRandom(self.seed, content_keys(x)).uniform(stream_id(_PGD_START_STREAM), tuple(x.shape[1:]))
                adv = torch.clamp(x32 + (2 * u - 1) * self.eps, 0, 1)
            for _ in range(self.steps):
                adv.requires_grad_(True)
                loss = self.criterion.task_loss(adv.to(x.dtype), state).sum()
                (grad,) = torch.autograd.grad(loss, adv)
                with torch.no_grad():
                    adv = adv + self.alpha * grad.sign()
                    adv = torch.clamp(torch.clamp(adv, x32 - self.eps, x32 + self.eps), 0, 1)
        return adv.detach().to(x.dtype)


def matched_gaussian_noise(
    x: torch.Tensor, reference: torch.Tensor, seed: int = 0, iterations: int = 40
) -> torch.Tensor:
    """``x' = clip(x + s_b n_b, 0, 1)``, ``n_b`` Gaussian, with ``||x'_b - x_b||_2 = ||reference_b - x_b||_2``.

    The scale ``s_b`` is found per sample by bisection (the realised norm grows
    with ``s``), so the norm matches *after* clipping to [0, 1]; where even
    a huge scale cannot reach it (a saturated sample), the largest realised
    norm is used. Draws are keyed by (seed, the sample's values).
    """
    check_images(x, "x")
    check_images(reference, "reference")
    if reference.shape != x.shape:
        raise ValueError(f"reference must have the shape of x {tuple(x.shape)}, got {tuple(reference.shape)}")
    x32 = x.float()
    view = (-1, *[1] * (x.dim() - 1))
    noise = SampleRandom(seed, content_keys(x)).normal(stream_id(_NOISE_STREAM), tuple(x.shape[1:]))

    def realised(scale: torch.Tensor) -> torch.Tensor:
        return (torch.clamp(x32 + scale.reshape(view) * noise, 0, 1) - x32).reshape(x.shape[0], -1).norm(dim=1)

    target = (reference.float() - x32).reshape(x.shape[0], -1).norm(dim=1)
    lo = torch.zeros_like(target)
    hi = torch.full_like(target, 1e3)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        short = realised(mid) < target
        lo, hi = torch.where(short, mid, lo), torch.where(short, hi, mid)
    return torch.clamp(x32 + hi.reshape(view) * noise, 0, 1).to(x.dtype)
