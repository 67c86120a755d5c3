"""How one sample becomes a pseudo-batch of pairs for its own MINE estimate.

A pair source maps a batch ``x: [B, ...]`` to per-sample pseudo-batches
``[B, N, *element]``; pair i of sample b is ``(source(x)[b, i], source(x')[b, i])``.

- :class:`ProjectionPairs` ("projection", the reference's "random_sampling"):
  ``N`` Gaussian projections of the flattened sample to ``k`` dimensions,
  entries ``N(0, 1/k)``, each projected row standardised over its ``k`` values.
  With ``centre=True`` the sample is pixel-centred first (``x - mean(x)``), so
  the pairs carry the Pearson correlation of ``x`` and ``x'``, not their shared
  brightness: without it, two independent images in [0, 1] give pairs with
  correlation near 1 (their uncentred cosine).
- :class:`ConvPairs` ("conv"): the maps of the model's first ``nn.Conv2d``; channel
  i of ``conv(x)`` and of ``conv(x')`` form pair i; ``centre=True`` pixel-centres
  the input and subtracts each map's spatial mean (the bias), so neither brightness
  nor the border pattern that zero padding draws on a bright image is shared.
- :class:`SamplePairs`: the flattened sample as its own single pair, ``[B, 1, d]``:
  what the closed-form Gaussian estimator needs for projections (module
  :mod:`uae_plugin.estimators`).
- any callable ``x -> [B, N, ...]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Union

import torch
import torch.nn.functional as F
from torch import nn

PairSource = Callable[[torch.Tensor], torch.Tensor]
Similarity = Union[str, PairSource, nn.Module]  # noqa: UP007 (a runtime alias)


class ProjectionPairs:
    """``P x`` reshaped to ``[B, N, k]``, rows standardised: ``z = (p - mean(p)) / std(p)``.

    ``P: [N*k, d]`` has entries ``N(0, 1/k)`` and is drawn once from ``seed``
    (shared by all samples: it is a fixed random feature map; what is
    per-sample is each sample's statistics network). Works for any input
    shape, tabular data included.
    """

    def __init__(self, n_pairs: int, dim: int, seed: int, centre: bool = False) -> None:
        self.n_pairs, self.dim, self.seed, self.centre = n_pairs, dim, seed, centre
        self._cache: dict[tuple[int, torch.device], torch.Tensor] = {}

    def matrix(self, d: int, device: torch.device) -> torch.Tensor:
        """The centred projection ``[d, N*k]`` (transposed for ``x @ P``), cached per size and device.

        Each group of k columns has its mean column subtracted, so ``x @ P`` comes out with
        ``mean(p) = 0`` per row: the centring is folded into the matrix (mean is linear).
        """
        key = (d, device)
        if key not in self._cache:
            gen = torch.Generator().manual_seed(self.seed)
            p = torch.randn(d, self.n_pairs, self.dim, generator=gen) / self.dim**0.5
            p = p - p.mean(dim=2, keepdim=True)
            self._cache[key] = p.reshape(d, self.n_pairs * self.dim).to(device)
        return self._cache[key]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1).float()
        if self.centre:
            flat = flat - flat.mean(dim=1, keepdim=True)
        centred = (flat @ self.matrix(flat.shape[1], x.device)).reshape(-1, self.n_pairs, self.dim)
        std = torch.linalg.vector_norm(centred, dim=2, keepdim=True) / (self.dim - 1) ** 0.5
        return centred / (std + 1e-6)


class ConvPairs:
    """The maps of a convolution, ``[B, C_out, H', W']``: pair i is channel i.

    ``pool`` (optional) average-pools each map to at most ``pool x pool``
    (a cheaper statistics network; the reference uses full-size maps).
    ``centre`` pixel-centres ``x`` first and subtracts each map's mean over its positions after.
    """

    def __init__(self, conv: nn.Module, pool: int | None = None, centre: bool = False) -> None:
        self.conv, self.pool, self.centre = conv, pool, centre

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.centre:  # centre the input too: zero padding of a bright image would leave a shared border pattern
            x = x - x.mean(dim=tuple(range(1, x.dim())), keepdim=True)
        maps = self.conv(x)
        if self.pool is not None and max(maps.shape[-2:]) > self.pool:
            maps = F.adaptive_avg_pool2d(maps, self.pool)
        if self.centre:
            maps = maps - maps.mean(dim=(-2, -1), keepdim=True)
        return maps


class SamplePairs:
    """The flattened sample as one pair: ``x [B, ...] -> [B, 1, d]`` float32."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], 1, -1).float()


def first_conv2d(model: nn.Module) -> nn.Conv2d:
    """The first ``nn.Conv2d`` in ``model.modules()`` order."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module
    raise ValueError(
        f"similarity='conv' needs an nn.Conv2d inside the model, but "
        f"{type(model).__name__} has none; use similarity='projection' or pass the module"
    )


def resolve_pairs(
    similarity: Similarity,
    model: nn.Module,
    *,
    n_pairs: int,
    dim: int,
    pool: int | None,
    seed: int,
    centre: bool = False,
) -> PairSource:
    """Turn the user's ``similarity`` argument into a pair source."""
    if isinstance(similarity, nn.Conv2d):
        return ConvPairs(similarity, pool, centre)
    if similarity == "projection":
        return ProjectionPairs(n_pairs, dim, seed, centre)
    if similarity == "conv":
        return ConvPairs(first_conv2d(model), pool, centre)
    if callable(similarity) and not isinstance(similarity, str):
        return similarity
    raise ValueError(
        "similarity must be 'projection', 'conv', an nn.Conv2d of the model, or a "
        f"callable mapping x [B, ...] to pairs [B, N, ...]; got {similarity!r}"
    )
