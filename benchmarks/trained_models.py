"""The autoencoders the benchmarks attack: trained 3 epochs on a training split, from torch seed 0."""

from __future__ import annotations

import torch
from torch import nn

from uae_plugin.experiments.models import ConvAutoencoder, DenseAutoencoder, train_autoencoder

KINDS = {"conv AE": ConvAutoencoder, "dense AE": DenseAutoencoder}


def trained_autoencoders(x_train: torch.Tensor, kinds: tuple[str, ...] = tuple(KINDS)) -> dict[str, nn.Module]:
    """``{kind: model}``, each trained with ``train_autoencoder(epochs=3, seed=0)``, built in order after
    ``torch.manual_seed(0)``."""
    torch.manual_seed(0)
    return {kind: train_autoencoder(KINDS[kind](), x_train, epochs=3, seed=0) for kind in kinds}
