"""Evaluating a frozen self-supervised encoder: kNN and linear-probe accuracy, and the probe's accuracy under PGD.

Labels are used here only; the encoder maps pixels ``[N, C, H, W]`` in [0, 1] to features ``[N, D]`` (put any
input normalisation inside it, e.g. ``nn.Sequential(Normalize(mean, std), backbone)``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._extras import require
from ..model_guard import borrowed
from ..trial.knn import encode, knn_accuracy

__all__ = ["LinearProbe", "encode", "knn_accuracy", "probe_accuracy", "robust_probe_accuracy"]


class LinearProbe(nn.Module):
    """``logits = W (f - mu) / sigma + b``: multinomial logistic regression on standardised frozen features.

    ``mu, sigma``: the training features' mean and std (sigma = 1 where a feature is constant, so an input change
    there is not amplified a million times).

    :meth:`fit` minimises ``CE + weight_decay * |W|^2`` full-batch with L-BFGS (deterministic: no sampling).
    """

    def __init__(self, n_features: int, n_classes: int) -> None:
        super().__init__()
        self.register_buffer("mu", torch.zeros(n_features))
        self.register_buffer("sigma", torch.ones(n_features))
        self.linear = nn.Linear(n_features, n_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear((features.flatten(1) - self.mu) / self.sigma)

    def fit(self, features: torch.Tensor, y: torch.Tensor, weight_decay: float = 1e-4, steps: int = 100) -> LinearProbe:
        self.mu.copy_(features.mean(0))
        std = features.std(0)
        self.sigma.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))  # constant features: no 1e6 gain
        features = features.detach()
        optimizer = torch.optim.LBFGS(self.linear.parameters(), lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = F.cross_entropy(self(features), y) + weight_decay * self.linear.weight.pow(2).sum()
            loss.backward()
            return loss

        with torch.enable_grad():
            optimizer.step(closure)
        return self


def probe_accuracy(encoder: nn.Module, probe: LinearProbe, x: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy of ``probe(f(x))`` against ``y``."""
    with torch.no_grad():
        return float((probe(encode(encoder, x)).argmax(1) == y).float().mean())


def robust_probe_accuracy(
    encoder: nn.Module,
    probe: LinearProbe,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int = 10,
    batch_size: int = 256,
    seed: int = 0,
) -> float:
    """Accuracy of ``probe(f(x'))`` where ``x' = torchattacks.PGD(probe ∘ f, eps, 2.5 eps / steps, steps)(x, y)``.

    White-box L-inf PGD on the whole classifier (the frozen encoder and its probe), random start, pixels in [0, 1].
    """
    correct = 0
    with borrowed(nn.Sequential(encoder, probe)) as classifier, torch.random.fork_rng():
        torchattacks = require("torchattacks", "robust_probe_accuracy")
        attack = torchattacks.PGD(classifier, eps=eps, alpha=2.5 * eps / steps, steps=steps, random_start=True)
        torch.manual_seed(seed)
        for xb, yb in zip(x.split(batch_size), y.split(batch_size), strict=True):
            adv = attack(xb, yb)
            with torch.no_grad():
                correct += int((classifier(adv).argmax(1) == yb).sum())
    return correct / x.shape[0]
