"""The attack's MI term against fixed clean pairs, from ``1 - rho^2``, with its gradient in closed form.

For pairs ``a, b`` of ``D`` values (``[B, N, D]``) with Pearson correlation ``rho``, let ``u_a`` be ``a``
centred over its ``D`` values and scaled to unit norm, ``c_b = b - mean(b)``, ``t = <u_a, c_b>`` and
``v = c_b - t u_a``, the part of ``c_b`` orthogonal to ``a``. Then

    u = 1 - rho^2 = ||v||^2 / (||v||^2 + t^2)          (the share of b's variance a leaves unexplained)
    I = -(m / 2) mean_i log(F + (1 - F) u_i)            (:func:`~uae_plugin.estimators.gaussian_mi`, floor F)
    dI/db_i = -(m (1 - F) / (N E_i (F + (1 - F) u_i))) ((1 - u_i) v_i - u_i t_i u_a,i),   E_i = ||c_b,i||^2

(``v`` is a projection of ``b``, so ``d||v||^2/db = 2 v``; ``d||c_b||^2/db = 2 c_b = 2 (v + t u_a)``).
``v`` is formed as a vector and squared after, so ``u`` is precise in float32 near 0 too (``b -> a``), where
``1 - rho^2`` from a float32 ``rho`` would be rounding; and ``u`` is 1 for a constant ``b`` (``c_b = 0``).
Per step: 5 float32 passes over the pairs forward and 2 backward, without a graph in the attack
(:meth:`CleanPairs.mi_and_gradient`; autograd takes the gradient from the pairs on), or as one graph node
(:meth:`CleanPairs.mi`), where ``rho`` in float64 by autograd took about 25 passes and 20 nodes.
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
        with _no_autocast(moved):
            return GaussianMIFromClean.apply(flat_pairs(moved), self.unit, m, floor)

    @torch.no_grad()
    def mi_and_gradient(self, moved: torch.Tensor, m: float, floor: float) -> tuple[torch.Tensor, Unexplained]:
        """``I [B]`` (module docstring) and what its gradient in ``moved`` is made from (:meth:`Unexplained.gradient`),
        without a graph: the attack adds the gradient to its own."""
        with _no_autocast(moved):
            share = Unexplained(flat_pairs(moved), self.unit, floor)
            return share.mi(m), share


def _no_autocast(t: torch.Tensor):
    device = t.device.type
    return torch.autocast(device, enabled=False) if torch.is_autocast_enabled(device) else nullcontext()


class Unexplained:
    """For ``b [B, N, D]`` and unit centred ``u_a``: ``c_b = b - mean(b)``, ``t = <u_a, c_b>``, ``v = c_b - t u_a``,
    ``E = ||v||^2 + t^2 = ||c_b||^2``, ``u = ||v||^2 / E`` and ``inner = F + (1 - F) u``; then :meth:`mi` and
    :meth:`gradient` (module docstring). 5 passes over ``b``."""

    def __init__(self, b: torch.Tensor, unit: torch.Tensor, floor: float) -> None:
        w = b.to(unit.dtype)
        self.unit, self.floor, self.n = unit, floor, b.shape[1]
        self.orthogonal = w - w.mean(dim=2, keepdim=True)  # c_b (exactly 0 for a constant b), made into v in place
        self.along = torch.linalg.vecdot(self.orthogonal, unit, dim=2).unsqueeze(2)
        self.orthogonal.addcmul_(unit, self.along, value=-1.0)
        # + 1e-30: a constant b (c_b = 0 exactly, so v = 0 and t = 0) is independent of a, u = 1, gradient 0
        residual = torch.linalg.vector_norm(self.orthogonal, dim=2, keepdim=True).square_().add_(_NO_VARIANCE)
        self.energy = self.along.square().add_(residual)
        self.u = residual.div_(self.energy)
        self.inner = self.u.mul(1.0 - floor).add_(floor)

    def mi(self, m: float) -> torch.Tensor:
        """``I = -(m / 2) mean_i log(inner_i)``, ``[B]`` float32."""
        return self.inner.log().mean(dim=(1, 2)).mul_(-0.5 * m).float()

    @torch.no_grad()
    def gradient(self, g: torch.Tensor | float, m: float, out: torch.Tensor | None = None) -> torch.Tensor:
        """``g_b dI_b/db``, ``[B, N, D]`` in ``u_a``'s dtype, for ``g [B]`` or one number: ``k ((1 - u) v - u t u_a)``
        with ``k = -g m (1 - F) / (N E (F + (1 - F) u))``; added in place to ``out [B, N, D]`` when given."""
        c = -m * (1.0 - self.floor) / self.n
        k = (self.energy * self.inner).reciprocal_()
        k.mul_(g.to(k.dtype)[:, None, None] * c if isinstance(g, torch.Tensor) else g * c)
        if out is None:
            out = self.orthogonal * (k * (1.0 - self.u))
        else:
            out.addcmul_(self.orthogonal, k * (1.0 - self.u))
        return out.addcmul_(self.unit, k.mul_(self.u).mul_(self.along), value=-1.0)


class GaussianMIFromClean(torch.autograd.Function):
    """``I [B]`` for ``b [B, N, D]`` and unit centred ``u_a [B, N, D]`` (module docstring); gradient in ``b``."""

    @staticmethod
    def forward(ctx: Any, b: torch.Tensor, unit: torch.Tensor, m: float, floor: float) -> torch.Tensor:
        share = Unexplained(b, unit, floor)
        ctx.share, ctx.m, ctx.input_dtype = share, m, b.dtype
        return share.mi(m)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        return ctx.share.gradient(g, ctx.m).to(ctx.input_dtype), None, None, None
