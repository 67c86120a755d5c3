"""An independent MI estimate between two batches, for comparing attacks fairly."""

from __future__ import annotations

import torch
from torch import nn

from .mine import MineEstimator
from .model_guard import borrowed
from .pairs import Similarity, resolve_pairs
from .rng import SampleRandom, content_keys
from .settings import MinMaxSettings
from .validation import check_count, check_images

# The yardstick's own widths, fixed here so that moving the attack's defaults never moves the ruler.
YARDSTICK = MinMaxSettings(n_pairs=64, pair_dim=32, hidden=64, out=10, mine_lr=1e-3, pool=8, hidden_activation=True)


def mutual_information(
    x: torch.Tensor,
    x_other: torch.Tensor,
    similarity: Similarity = "projection",
    model: nn.Module | None = None,
    steps: int = 300,
    seed: int = 0,
    settings: MinMaxSettings = YARDSTICK,
    repeats: int = 8,
) -> torch.Tensor:
    """Per-sample MINE estimate ``I(x_b, x'_b)``, ``[B]`` float32, from fresh networks.

    Trains a new statistics network per sample for ``steps`` Adam steps on the
    pairs of ``(x_b, x'_b)`` (same pair source, widths and learning rate as
    ``settings``, by default :data:`YARDSTICK`: 64 projections to 32 dimensions,
    64 hidden units), then averages the DV bound over ``repeats`` permutations.
    Randomness is keyed by ``x``'s values and ``seed`` only, so two
    candidates ``x'`` for the same ``x`` are scored by identically initialised
    networks. ``model`` is needed for ``similarity="conv"``.
    """
    check_images(x, "x")
    check_images(x_other, "x_other")
    if x.shape != x_other.shape:
        raise ValueError(f"x_other must have the shape of x {tuple(x.shape)}, got {tuple(x_other.shape)}")
    check_count(steps, "steps")
    check_count(repeats, "repeats")
    owner = model if model is not None else nn.Identity()
    pairs = resolve_pairs(
        similarity, owner, n_pairs=settings.n_pairs, dim=settings.pair_dim, pool=settings.pool, seed=seed
    )
    rand = SampleRandom(seed, content_keys(x))
    with borrowed(owner), torch.no_grad():
        a, b = pairs(x), pairs(x_other)
    mine = MineEstimator.for_pairs(rand, a, settings)
    mine.fit(a, b, steps, step=0)
    with torch.no_grad():
        return torch.stack([mine.bound(a, b, step=r) for r in range(1, repeats + 1)]).mean(dim=0)
