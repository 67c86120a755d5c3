"""The defaults of a contrastive trial: continue SimCLR training, score by kNN error.

- fit: :class:`~uae_plugin.trial.budget.AdamFit` with :class:`SimCLRLoss`, lightly's ``NTXentLoss`` (temperature
  0.5, the reference's) between two random kornia views of each row of the batch (the SimCLR recipe of
  :func:`~uae_plugin.contrastive_views.default_augmentation`), on the encoder's flattened output: the batch's
  other rows are the negatives (Chen et al. 2020).
- score: :class:`KNNError`, ``1 - accuracy`` of a cosine 10-NN classifier on the encoder's features, the training
  rows as the bank: it needs labels (``y_train``, ``y_test``), used for scoring only.

Both need the ``[lightly]`` extra (lightly and kornia); each says so in one line when it is missing.
"""

from __future__ import annotations

import torch
from torch import nn

from .._extras import require
from ..contrastive_views import default_augmentation
from .knn import encode, knn_accuracy
from .rows import Data

TEMPERATURE = 0.5  # the reference's NT-Xent temperature
KNN_K = 10


class SimCLRLoss:
    """``loss(encoder, x)``: NT-Xent between ``encoder(aug(x))`` and ``encoder(aug'(x))``, two independent draws of
    the SimCLR views of ``x: [B, C, H, W]`` (kornia, from torch's RNG: the fit seeds it)."""

    __name__ = "SimCLRLoss"

    def __init__(self, temperature: float = TEMPERATURE, augment: nn.Module | None = None) -> None:
        self.ntxent = require("lightly.loss", "task='contrastive' (its default fit)").NTXentLoss(
            temperature=temperature
        )
        require("kornia.augmentation", "task='contrastive' (its default fit)")
        self.augment = augment

    def __call__(self, encoder: nn.Module, x: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        """NT-Xent of the views of ``x``; ``target`` (the fit's) is not used: the views are their own targets."""
        if self.augment is None:
            self.augment = default_augmentation(x.shape[1], tuple(x.shape[-2:]))
        z0, z1 = encoder(self.augment(x)).flatten(1), encoder(self.augment(x)).flatten(1)
        return self.ntxent(z0, z1)


class KNNError:
    """``score(encoder, x_test) = 1 - knn_accuracy(f(x_train), y_train, f(x_test), y_test, k)``: lower is better."""

    def __init__(self, x_train: Data, y_train: torch.Tensor, y_test: torch.Tensor, k: int = KNN_K) -> None:
        self.x_train, self.y_train, self.y_test, self.k = x_train, y_train, y_test, k

    def __repr__(self) -> str:
        return f"KNNError(k={self.k})"

    def __call__(self, encoder: nn.Module, x_test: Data) -> float:
        bank = encode(encoder, self.x_train)
        k = min(self.k, bank.shape[0])
        return 1.0 - knn_accuracy(bank, self.y_train, encode(encoder, x_test), self.y_test, k=k)
