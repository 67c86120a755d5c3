"""The attack's MI term against fixed clean pairs, from ``1 - rho^2``, as one autograd node.

For pairs ``a, b`` of ``D`` values (``[B, N, D]``) with Pearson correlation ``rho``, let ``u_a`` be ``a``
centred over its ``D`` values and scaled to unit norm, ``c_b = b - mean(b)``, ``t = <u_a, c_b>`` and
``v = c_b - t u_a``, the part of ``c_b`` orthogonal to ``a``. Then

    u = 1 - rho^2 = ||v||^2 / (||v||^2 + t^2)          (the share of b's variance a leaves unexplained)
    I = -(m / 2) mean_i log(F + (1 - F) u_i)            (:func:`~uae_plugin.estimators.gaussian_mi`, floor F)
    dI/db_i = -(m (1 - F) / (N E_i (F + (1 - F) u_i))) ((1 - u_i) v_i - u_i t_i u_a,i),   E_i = ||c_b,i||^2

(``v`` is a projection of ``b``, so ``d||v||^2/db = 2 v``; ``d||c_b||^2/db = 2 c_b = 2 (v + t u_a)``).
``v`` is formed as a vector and squared after, so ``u`` is precise in float32 near 0 too (``b -> a``), where
``1 - rho^2`` from a float32 ``rho`` would be rounding; and ``u`` is 1 for a constant ``b`` (``c_b = 0``).
Per step: 5 float32 passes over the pairs forward and 2 backward, in one graph node, where ``rho`` in float64
by autograd took about 25 passes and 20 nodes.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
from torch.autograd.function import once_differentiable

_NO_VARIANCE = 1e-30  # added to ||v||^2: far below any pair's, far enough above float32's smallest for 1 / it


def flat_pairs(pairs: torch.Tensor) -> torch.Tensor:
    """``[B, N, *element]`` -> ``[B, N, D]``."""
    return pairs.reshape(pairs.shape[0], pairs.shape[1], -1)


def centred_unit(pairs: torch.Tensor) -> torch.Tensor:
    """``[B, N, D]`` pairs centred over ``D`` and scaled to unit norm (zero where a pair is constant)."""
    centred = pairs - pairs.mean(dim=2, keepdim=True)
    return centred / (torch.linalg.vector_norm(centred, dim=2, keepdim=True) + 1e-12)


class CleanPairs:
    """The clean pairs ``a [B, N, *element]`` every iterate of one attack is compared with, and their unit
    centred vectors ``u_a`` (made once, in float64, kept in float32 or the pairs' dtype when wider)."""

    def __init__(self, clean: torch.Tensor) -> None:
        a = flat_pairs(clean)
        wide = torch.float32 if a.device.type == "mps" else torch.float64
        with torch.autocast(a.device.type, enabled=False):
            unit = centred_unit(a.to(wide))
        self.source = clean
        self.unit = unit.to(torch.promote_types(a.dtype, torch.float32))

    def mi(self, moved: torch.Tensor, m: float, floor: float) -> torch.Tensor:
        """``I [B]`` float32 (module docstring) of each sample's clean pairs and ``moved [B, N, *element]``,
        differentiable in ``moved``."""
        device = moved.device.type
        with torch.autocast(device, enabled=False) if torch.is_autocast_enabled(device) else nullcontext():
            return GaussianMIFromClean.apply(flat_pairs(moved), self.unit, m, floor)


class GaussianMIFromClean(torch.autograd.Function):
    """``I [B]`` for ``b [B, N, D]`` and unit centred ``u_a [B, N, D]`` (module docstring); gradient in ``b``."""

    @staticmethod
    def forward(ctx: Any, b: torch.Tensor, unit: torch.Tensor, m: float, floor: float) -> torch.Tensor:
        w = b.to(unit.dtype)
        orthogonal = w - w.mean(dim=2, keepdim=True)  # c_b, made into v in place
        along = (unit * orthogonal).sum(dim=2, keepdim=True)
        orthogonal.addcmul_(unit, along, value=-1.0)
        # + 1e-30: a constant b (c_b = 0 exactly, so v = 0 and t = 0) is independent of a, u = 1, gradient 0
        residual = torch.linalg.vector_norm(orthogonal, dim=2, keepdim=True).square_().add_(_NO_VARIANCE)
        energy = along.square().add_(residual)
        u = residual.div_(energy)
        inner = u.mul(1.0 - floor).add_(floor)
        ctx.save_for_backward(orthogonal, unit, u, energy, along, inner)
        ctx.m, ctx.floor, ctx.input_dtype = m, floor, b.dtype
        return inner.log().mean(dim=(1, 2)).mul_(-0.5 * m).float()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        orthogonal, unit, u, energy, along, inner = ctx.saved_tensors
        k = g.to(u.dtype)[:, None, None] * (-ctx.m * (1.0 - ctx.floor) / orthogonal.shape[1])
        k = k / energy.mul_(inner)
        grad = orthogonal * (k * (1.0 - u))
        grad.addcmul_(unit, k.mul_(u).mul_(along), value=-1.0)
        return grad.to(ctx.input_dtype), None, None, None
