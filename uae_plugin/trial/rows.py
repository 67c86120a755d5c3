"""Rows of a trial's data: a tensor ``[N, ...]`` or a map-style ``Dataset`` whose items are ``x`` or ``(x, *rest)``.

Only ``x`` is used; rows are read batch by batch, never the whole set at once (a Dataset is not materialised).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import ConcatDataset, Dataset

from ..validation import check_images

Data = Any  # torch.Tensor | torch.utils.data.Dataset


class TensorRows(Dataset):
    """A tensor ``[N, ...]`` as a map-style Dataset whose item ``i`` is the row ``x[i]`` (not a tuple)."""

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def on_device_of(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` on the device of ``model``'s first parameter or buffer (unchanged for a model that has none)."""
    held = next(model.parameters(), None)
    held = next(model.buffers(), None) if held is None else held
    return x if held is None else x.to(held.device)


def _first(item: Any) -> Any:
    return item[0] if isinstance(item, (tuple, list)) and item else item


def count(data: Data) -> int:
    return data.shape[0] if torch.is_tensor(data) else len(data)


def take(data: Data, index: torch.Tensor) -> torch.Tensor:
    """Rows ``index`` of ``data`` as one tensor ``[len(index), ...]``."""
    if torch.is_tensor(data):
        return data[index]
    return torch.stack([_first(data[int(i)]) for i in index])


def batches(data: Data, batch_size: int) -> Iterator[torch.Tensor]:
    """``data`` in order, ``batch_size`` rows at a time."""
    n = count(data)
    for start in range(0, n, batch_size):
        yield take(data, torch.arange(start, min(start + batch_size, n)))


def join(data: Data, extra: torch.Tensor | None) -> Data:
    """``data ∪ extra``: a tensor when ``data`` is one, else a ``ConcatDataset`` (nothing is copied)."""
    if extra is None:
        return data
    if torch.is_tensor(data):
        return torch.cat([data, extra.to(data.dtype)])
    return ConcatDataset([data, TensorRows(extra)])


def check_data(data: Data, name: str) -> None:
    """A non-empty float tensor in [0, 1] (:func:`check_images`), or a non-empty Dataset whose first item is one
    row ``x`` (or a tuple starting with it); the error names ``name``."""
    if torch.is_tensor(data):
        check_images(data, name)
        return
    if not isinstance(data, Dataset) or not hasattr(data, "__len__"):
        raise TypeError(f"{name} must be a tensor [N, ...] or a map-style torch Dataset, got {type(data).__name__}")
    if len(data) == 0:
        raise ValueError(f"{name} is an empty Dataset; pass at least one row")
    row = _first(data[0])
    if not torch.is_tensor(row):
        raise TypeError(f"{name}[0] must be a tensor x or a tuple (x, ...) starting with one, got {type(row).__name__}")
    check_images(row.unsqueeze(0), f"{name}[0]")
