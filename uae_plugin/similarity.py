"""A similarity: the pair source and the estimator that scores its pairs, resolved together.

``(similarity, estimator)`` as the user gives them become one :class:`SimilarityMeasure`:

| similarity | ``"gaussian"`` | ``"mine"`` |
|---|---|---|
| ``"projection"`` | :class:`SamplePairs`, ``m = pair_dim`` (one projection pair) | ``n_pairs`` projections |
| ``"conv"`` / an ``nn.Conv2d`` | full-size centred maps, ``m = 1`` | maps pooled to ``pool`` |
| a callable | refused: no closed form for an unknown pair source | the callable's pairs |

Centring (``settings.centre``) applies to both estimators' pairs; the Gaussian estimator
centres its pairs itself in any case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .estimators import GaussianEstimator, check_estimator
from .mine import MineEstimator
from .pairs import ConvPairs, PairSource, SamplePairs, Similarity, resolve_pairs
from .rng import SampleRandom
from .settings import MinMaxSettings


@dataclass
class SimilarityMeasure:
    """``pairs(x) -> [B, N, *element]`` and ``estimator(rand, clean_pairs)`` -> an object with
    ``fit(a, b, steps, step)``, ``bound(a, b, step) -> [B]`` and ``saturated(mi) -> [B] bool``."""

    pairs: PairSource
    estimator_name: str
    settings: MinMaxSettings
    needs_images: bool

    def estimator(self, rand: SampleRandom, clean_pairs: torch.Tensor) -> Any:
        if self.estimator_name == "gaussian":
            m = self.settings.pair_dim if isinstance(self.pairs, SamplePairs) else 1
            return GaussianEstimator(m, clean_pairs)
        return MineEstimator.for_pairs(rand, clean_pairs, self.settings)


def resolve_similarity(
    similarity: Similarity, model: nn.Module, settings: MinMaxSettings, seed: int
) -> SimilarityMeasure:
    """The user's ``similarity`` with ``settings.estimator``; refuses a pair source the estimator cannot score."""
    estimator = check_estimator(settings.estimator)
    s = settings
    if estimator == "gaussian":
        if similarity == "projection":
            return SimilarityMeasure(SamplePairs(), estimator, s, needs_images=False)
        if callable(similarity) and not isinstance(similarity, (str, nn.Conv2d)):
            raise ValueError(
                "estimator='gaussian' has a closed form only for similarity='projection' or 'conv' "
                f"(or an nn.Conv2d of the model), got similarity={similarity!r}; use estimator='mine' "
                "for a pair source of your own"
            )
        pairs = resolve_pairs(similarity, model, n_pairs=2, dim=2, pool=None, seed=seed, centre=True)
        return SimilarityMeasure(pairs, estimator, s, needs_images=True)
    pairs = resolve_pairs(similarity, model, n_pairs=s.n_pairs, dim=s.pair_dim, pool=s.pool, seed=seed, centre=s.centre)
    return SimilarityMeasure(pairs, estimator, s, needs_images=isinstance(pairs, ConvPairs))
