"""Tabular data for feature selection: Mice Protein Expression (shipped) and flattened MNIST.

The Mice Protein file ships inside the package (``uae_plugin/experiments/data_files``,
CC BY 4.0, see ``MICE_PROTEIN_LICENSE.md``) and is read with
``importlib.resources``; nothing is downloaded.
"""

from __future__ import annotations

import csv
import io
from importlib import resources

import numpy as np
import torch

from .data import mnist_split

MICE_PROTEIN_FILE = "mice_protein.csv"
N_PROTEINS = 77


def _read_mice_protein_csv() -> tuple[list[str], np.ndarray, list[str]]:
    """The shipped file as (protein column names, values [1080, 77] with NaN where missing, class names [1080])."""
    text = (
        resources.files("uae_plugin.experiments")
        .joinpath("data_files")
        .joinpath(MICE_PROTEIN_FILE)
        .read_text(encoding="utf-8")
    )
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], [r for r in rows[1:] if r]
    proteins = header[1 : 1 + N_PROTEINS]  # MouseID, 77 proteins, Genotype, Treatment, Behavior, class
    values = np.array([[float(v) if v != "" else np.nan for v in r[1 : 1 + N_PROTEINS]] for r in body])
    return proteins, values, [r[header.index("class")] for r in body]


def load_mice_protein() -> tuple[torch.Tensor, torch.Tensor]:
    """Mice Protein Expression (Higuera et al. 2015) as ``x: [1080, 77]`` float32 in [0, 1], ``y: [1080]`` int64.

    ``y`` is the index of the ``class`` column (Genotype x Treatment x
    Behavior, 8 classes) in sorted order of the class names. Each missing
    value is replaced by the mean of its column over the rows of the same
    class; then every column is min-max scaled to [0, 1] over all rows. The
    result has no NaN and is the same at every call.
    """
    _, values, classes = _read_mice_protein_csv()
    names = sorted(set(classes))
    y = np.array([names.index(c) for c in classes], dtype=np.int64)
    for label in range(len(names)):
        rows = y == label
        block = values[rows]
        class_mean = np.nanmean(block, axis=0)
        class_mean = np.where(np.isnan(class_mean), np.nanmean(values, axis=0), class_mean)  # column empty in class
        values[rows] = np.where(np.isnan(block), class_mean, block)
    lo, hi = values.min(axis=0), values.max(axis=0)
    scaled = (values - lo) / np.where(hi > lo, hi - lo, 1.0)
    return torch.as_tensor(scaled, dtype=torch.float32).clamp(0, 1), torch.as_tensor(y)


def mice_protein_classes() -> list[str]:
    """The 8 class names in the order of the labels of :func:`load_mice_protein`."""
    return sorted(set(_read_mice_protein_csv()[2]))


def stratified_split(y: torch.Tensor, test_fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row indices ``(train, test)`` with about ``test_fraction`` of every class in test; fixed by ``seed``."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    gen = torch.Generator().manual_seed(seed)
    train, test = [], []
    for label in torch.unique(y):
        rows = torch.nonzero(y == label).flatten()
        rows = rows[torch.randperm(rows.numel(), generator=gen)]
        n_test = max(1, round(test_fraction * rows.numel()))
        test.append(rows[:n_test])
        train.append(rows[n_test:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values


def mice_protein_split(test_fraction: float = 0.3, seed: int = 0) -> dict[str, torch.Tensor]:
    """Stratified train/test split of :func:`load_mice_protein`: ``{"x_train", "y_train", "x_test", "y_test"}``."""
    x, y = load_mice_protein()
    train, test = stratified_split(y, test_fraction, seed)
    return {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]}


def mnist_flat_split(n_train: int = 2000, n_test: int = 1000, seed: int = 0) -> dict[str, torch.Tensor]:
    """:func:`uae_plugin.experiments.data.mnist_split` with images flattened to ``[N, 784]`` float32 in [0, 1]."""
    data = mnist_split(n_train=n_train, n_test=n_test, seed=seed)
    return {k: v.reshape(v.shape[0], -1) if k.startswith("x") else v for k, v in data.items()}
