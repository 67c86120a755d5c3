"""Frozen-encoder features and cosine kNN accuracy: the default score of a contrastive trial."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..model_guard import borrowed
from .rows import Data, batches, on_device_of


@torch.no_grad()
def encode(encoder: nn.Module, x: Data, batch_size: int = 256) -> torch.Tensor:
    """``f(x): [N, D]`` with the encoder borrowed in eval mode, float32, on the encoder's device (if it has one).
    ``x``: a tensor ``[N, C, H, W]`` or a map-style Dataset of rows (or ``(x, ...)`` tuples)."""
    with borrowed(encoder):
        return torch.cat([encoder(on_device_of(encoder, b)).flatten(1).float() for b in batches(x, batch_size)])


def knn_accuracy(
    train_features: torch.Tensor, y_train: torch.Tensor, test_features: torch.Tensor, y_test: torch.Tensor, k: int = 10
) -> float:
    """Cosine kNN: each test row votes ``argmax_c #{j in top-k cos(f_test, f_train_j) : y_j = c}``; accuracy."""
    if not 1 <= k <= train_features.shape[0]:
        raise ValueError(f"k must be in [1, {train_features.shape[0]}] (training rows), got {k}")
    bank, queries = F.normalize(train_features, dim=1), F.normalize(test_features, dim=1)
    nearest = (queries @ bank.T).topk(k, dim=1).indices
    y_train, y_test = y_train.to(nearest.device), y_test.to(nearest.device)
    votes = F.one_hot(y_train[nearest], int(y_train.max()) + 1).sum(dim=1)
    return float((votes.argmax(dim=1) == y_test).float().mean())
