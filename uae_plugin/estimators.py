"""Per-sample MI estimators on a sample's pairs, and the one that fits a pair source.

Two estimators, chosen by ``estimator=`` (docs: README, "What the similarity measures"):

- ``"gaussian"`` (:class:`GaussianEstimator`): a closed form, no statistics network.
  A pair is ``(a_i, b_i)``, each ``D`` values, centred over its ``D`` values. With
  ``rho_i = <a_i, b_i> / (||a_i|| ||b_i||)`` (the Pearson correlation of the two),

      I = -(m / 2) mean_i log(1 - rho_i^2)

  the MI of ``m`` independent bivariate Gaussian coordinates with correlation ``rho_i``.
  *Projection pairs*: one pair, the centred sample itself (``N = 1``, ``D = d``),
  and ``m = k``: a Gaussian projection ``P x`` of pixel-centred ``x, x'`` to ``k``
  dimensions is bivariate normal per coordinate with correlation exactly the
  Pearson ``rho`` of ``x`` and ``x'``, so ``-(k/2) log(1 - rho^2)`` is the exact MI of
  one projection pair. *Conv maps*: ``N = C`` channels, ``D = H W`` positions and
  ``m = 1``: the MI of one map value of ``x`` with the value at the same position of
  ``x'``, under a Gaussian model, averaged over channels; exact when the maps are
  jointly Gaussian, for example Gaussian images ``x' = rho x + sqrt(1 - rho^2) z``.
  It never saturates, is differentiable, and measures linear dependence only.
- ``"mine"`` (:class:`~uae_plugin.mine.MineEstimator`): the paper's Donsker-Varadhan
  bound from a per-sample statistics network. From ``N`` pairs it cannot exceed about
  ``log N`` (McAllester & Stratos, AISTATS 2020): an estimate at or above ``0.9 log N``
  is flagged as saturated (:attr:`AttackResult.saturated`, a warning from
  :func:`~uae_plugin.mutual_information`), a floor of the truth rather than a measurement.

Why not a variational upper bound such as CLUB for conv maps: it needs a conditional
model ``q(b | a)`` fitted per sample on the same handful of pairs, and bounds MI from
above only when that fit is good; the Gaussian form is exact for linear dependence,
costs one dot product and has a ground truth to test against.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import torch

from .unexplained import CleanPairs, centred_unit, flat_pairs

ESTIMATORS = ("auto", "gaussian", "mine")

# 1 - rho^2 is floored at this, so identical samples score (m / 2) log(1 / floor) instead of infinity.
_FLOOR = 1e-6
SATURATION = 0.9  # a DV estimate >= SATURATION * log N is flagged


def gaussian_mi(rho: torch.Tensor, m: float) -> torch.Tensor:
    """``-(m / 2) log(1 - rho^2)`` with ``1 - rho^2`` floored smoothly at ``1e-6``."""
    return -0.5 * m * torch.log1p(-rho.clamp(-1.0, 1.0).square() * (1.0 - _FLOOR))


class GaussianEstimator:
    """``I_b = -(m / 2) mean_i log(1 - rho_{b,i}^2)`` on pairs ``[B, N, *element]`` (module docstring).

    ``m``: independent Gaussian coordinates per pair (``k`` for projection pairs, 1 for conv maps).
    ``clean``: the clean pairs ``a`` an attack scores every iterate against; ``bound(clean, b)`` then takes
    ``1 - rho^2`` from the part of ``b`` orthogonal to ``a`` (:class:`~uae_plugin.unexplained.CleanPairs`:
    float32, precise down to the floor, 7 passes over the pairs per step instead of about 25). Nothing to fit: ``fit``
    does nothing and ``saturated`` is all False.
    """

    name = "gaussian"

    def __init__(self, m: float, clean: torch.Tensor | None = None) -> None:
        self.m = float(m)
        self._clean = CleanPairs(clean) if clean is not None and not clean.requires_grad else None

    def fit(self, a: torch.Tensor, b: torch.Tensor, steps: int, step: int = 0) -> None:
        """No statistics network: the closed form needs no training."""

    def bound(self, a: torch.Tensor, b: torch.Tensor, step: int = 0) -> torch.Tensor:
        """``I_b``, ``[B]`` float32, differentiable in ``b``. Against the clean pairs given at construction,
        from ``1 - rho^2`` as :mod:`uae_plugin.unexplained` forms it; otherwise ``rho`` in float64
        (MPS: float32), so that identical samples reach the ceiling and not a float32 rounding of it."""
        if self._clean is not None and a is self._clean.source:
            return self._clean.mi(b, self.m, _FLOOR)
        wide = torch.float32 if a.device.type == "mps" else torch.float64
        with torch.autocast(a.device.type, enabled=False):
            ua = centred_unit(flat_pairs(a).to(wide))
            ub = centred_unit(flat_pairs(b).to(wide))
            rho = (ua * ub).sum(dim=2)
            return gaussian_mi(rho, self.m).mean(dim=1).float()

    def bound_and_gradient(
        self, a: torch.Tensor, b: torch.Tensor, step: int = 0, scale: float | None = None
    ) -> tuple[torch.Tensor, Callable[[torch.Tensor | None], torch.Tensor] | None]:
        """Against the clean pairs given at construction: ``I_b`` in closed form without a graph, and
        ``grad(out=None)``, which returns ``scale * dI_b/db`` (``[B, N, D]``; added in place to ``out`` when given),
        or None with ``scale`` None. Elsewhere ``(bound(a, b), None)``: ``I_b`` carries its graph."""
        if self._clean is None or a is not self._clean.source:
            return self.bound(a, b, step), None
        mi, share = self._clean.mi_and_gradient(b, self.m, _FLOOR)
        return mi, None if scale is None else partial(share.gradient, scale, self.m)

    def saturated(self, mi: torch.Tensor) -> torch.Tensor:
        return torch.zeros(mi.shape, dtype=torch.bool, device=mi.device)


def mine_saturated(mi: torch.Tensor, n_pairs: int) -> torch.Tensor:
    """``I_b >= 0.9 log N``: the DV bound from ``N`` pairs sits at its ceiling, ``[B]`` bool."""
    return mi >= SATURATION * math.log(n_pairs)


def concrete_estimator(estimator: str, maximize_mi: bool) -> str:
    """``"auto"``: ``"gaussian"`` where MI is minimised (UAEs); ``"mine"`` where it is maximised
    (the supervised extension): ``-log(1 - rho^2)`` grows without bound as ``x' -> x``, so
    maximising it pins ``x'`` to ``x``, while the DV bound tops out near ``log N``."""
    if check_estimator(estimator) != "auto":
        return estimator
    return "mine" if maximize_mi else "gaussian"


def check_estimator(estimator: str) -> str:
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    return estimator
