"""An independent per-sample MI estimate between two batches, for comparing attacks fairly."""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import torch
from torch import nn

from .estimators import SATURATION, concrete_estimator
from .model_guard import borrowed
from .pairs import Similarity
from .rng import SampleRandom, content_keys
from .settings import MinMaxSettings
from .similarity import resolve_similarity
from .validation import check_count, check_images

# The yardstick's own widths, fixed here so that moving the attack's defaults never moves the ruler.
# pair_dim equals the attack's default, so the default Gaussian yardstick reproduces AttackResult.mi.
YARDSTICK = MinMaxSettings(n_pairs=64, pair_dim=16, hidden=64, out=10, mine_lr=1e-3, pool=8, hidden_activation=True)


class SaturationWarning(UserWarning):
    """A MINE estimate at its ``log N`` ceiling: the true MI may be far higher."""


def mutual_information(
    x: torch.Tensor,
    x_other: torch.Tensor,
    similarity: Similarity = "projection",
    model: nn.Module | None = None,
    steps: int = 300,
    seed: int = 0,
    settings: MinMaxSettings = YARDSTICK,
    repeats: int = 8,
    *,
    estimator: str = "gaussian",
) -> torch.Tensor:
    """Per-sample estimate ``I(x_b, x'_b)`` in nats, ``[B]`` float32.

    ``estimator="gaussian"`` (default): the closed form ``-(k/2) log(1 - rho_b^2)``,
    ``rho_b`` the Pearson correlation of ``x_b`` and ``x'_b``, ``k = settings.pair_dim``
    (16): exact for Gaussian projections of the pixel-centred samples to ``k``
    dimensions; for ``similarity="conv"``, ``-(1/2) log(1 - rho^2)`` per map value,
    averaged over the maps (see :mod:`uae_plugin.estimators`). ``steps``,
    ``repeats`` are unused.

    ``estimator="mine"``: trains a new statistics network per sample for ``steps``
    Adam steps on the pairs of ``(x_b, x'_b)`` (pair source, widths and learning
    rate from ``settings``, by default :data:`YARDSTICK`: 64 centred projections to
    16 dimensions, 64 hidden units), then averages the DV bound over ``repeats``
    permutations. Randomness is keyed by ``x``'s values and ``seed`` only, so
    two candidates ``x'`` for the same ``x`` are scored by identically
    initialised networks. From ``N`` pairs the bound cannot exceed about
    ``log N``; estimates at or above ``0.9 log N`` raise a :class:`SaturationWarning`.

    ``model`` is needed for ``similarity="conv"``.
    """
    check_images(x, "x")
    check_images(x_other, "x_other")
    if x.shape != x_other.shape:
        raise ValueError(f"x_other must have the shape of x {tuple(x.shape)}, got {tuple(x_other.shape)}")
    check_count(steps, "steps")
    check_count(repeats, "repeats")
    owner = model if model is not None else nn.Identity()
    estimator = concrete_estimator(estimator, maximize_mi=False)
    measure = resolve_similarity(similarity, owner, replace(settings, estimator=estimator).validated(), seed)
    rand = SampleRandom(seed, content_keys(x))
    with borrowed(owner), torch.no_grad():
        a, b = measure.pairs(x), measure.pairs(x_other)
    est = measure.estimator(rand, a)
    if estimator == "gaussian":
        with torch.no_grad():
            return est.bound(a, b)
    est.fit(a, b, steps, step=0)
    with torch.no_grad():
        mi = torch.stack([est.bound(a, b, step=r) for r in range(1, repeats + 1)]).mean(dim=0)
    saturated = est.saturated(mi)
    if bool(saturated.any()):
        warnings.warn(
            f"{int(saturated.sum())} of {mi.shape[0]} MINE estimates are at or above {SATURATION} log N = "
            f"{SATURATION * math.log(a.shape[1]):.2f} nats (N = {a.shape[1]} pairs): the DV bound cannot exceed about "
            "log N, so these are floors of the true MI, not measurements; use estimator='gaussian'",
            SaturationWarning,
            stacklevel=2,
        )
    return mi
