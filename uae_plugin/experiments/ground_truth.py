"""Sample pairs whose per-sample mutual information is known, to check an estimator against the truth.

Gaussian images ``x = 0.5 + s g``, ``x' = 0.5 + s (rho g + sqrt(1 - rho^2) z)``, with ``g, z`` independent
standard normal images and ``s`` small enough that clipping to [0, 1] never happens in practice
(``s = 0.1``: 5 sigma). Every linear feature of ``(x, x')`` (a Gaussian projection to ``m`` dimensions,
a convolution map of ``m`` values with full-rank covariance) is then jointly Gaussian with all canonical
correlations equal to ``rho``, so its MI is exactly

    I = -(m / 2) log(1 - rho^2).

The shared brightness 0.5 is deliberate: an estimator that measures uncentred similarity scores two
independent such images as nearly identical.
"""

from __future__ import annotations

import math

import torch

SCALE = 0.1


def correlated_images(
    n: int, rho: float, shape: tuple[int, ...] = (1, 28, 28), seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, x')``, each ``[n, *shape]`` float32 in [0, 1], Pearson correlation ``rho`` per pixel pair."""
    if not -1.0 <= rho <= 1.0:
        raise ValueError(f"rho must be in [-1, 1], got {rho!r}")
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(n, *shape, generator=gen)
    z = torch.randn(n, *shape, generator=gen)
    other = rho * g + math.sqrt(1.0 - rho * rho) * z
    return (0.5 + SCALE * g).clamp(0, 1), (0.5 + SCALE * other).clamp(0, 1)


def true_mi(rho: float, m: float) -> float:
    """``-(m / 2) log(1 - rho^2)`` nats: the MI of ``m`` independent bivariate Gaussian coordinates."""
    return math.inf if abs(rho) >= 1.0 else -0.5 * m * math.log1p(-rho * rho)
