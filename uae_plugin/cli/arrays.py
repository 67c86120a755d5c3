"""An array file as a map-style Dataset, read batch by batch and scaled to [0, 1] as it is read.

``.pt``: a tensor, or a dict with the tensor under ``x`` (and labels ``[N]`` under ``y``), read with
``torch.load(weights_only=True, mmap=True)``; ``.npy``: one array, ``np.load(mmap_mode="r",
allow_pickle=False)``. Each batch (``__getitems__``, what a ``DataLoader`` asks for) maps the file afresh
and lets the map go once its rows are copied out, so neither memory nor the resident pages of the map grow
with the file. ``.npz`` (compressed, so not mappable) is read whole, in its own dtype. Integer arrays are
scaled by 1/255; float arrays must already lie in [0, 1], checked on each batch as it is read.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset


def unit_float(x: torch.Tensor, source: str) -> torch.Tensor:
    """``x`` as float32 in [0, 1] (a copy): integers / 255, floats checked; booleans, NaN, Inf refused."""
    if x.dtype == torch.bool:
        raise ValueError(f"{source} holds booleans; expected images or features")
    x = x.float() / 255.0 if not x.is_floating_point() else x.float().clone()
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{source} contains NaN or Inf; clean the data first")
    if x.numel() and (float(x.min()) < 0 or float(x.max()) > 1):
        raise ValueError(
            f"{source} has values outside [0, 1] (range [{float(x.min()):.4g}, {float(x.max()):.4g}]); "
            "store 8-bit integers or floats in [0, 1], not normalised data"
        )
    return x


def check_shape(shape: tuple[int, ...], source: str) -> None:
    if len(shape) < 2 or shape[0] == 0:
        raise ValueError(f"{source} must hold a non-empty array [N, ...], got shape {tuple(shape)}")


class ArrayRows(Dataset):
    """Rows of the array ``open_array()`` returns (a tensor or a numpy array ``[N, ...]``, mapped or not):
    item ``i`` is ``x: [...]`` float32 in [0, 1], or ``(x, label)`` when ``labels: [N]`` are given."""

    def __init__(self, open_array: Callable[[], Any], source: str, labels: torch.Tensor | None = None) -> None:
        self.open_array, self.source = open_array, source
        array = open_array()
        self.shape, dtype = tuple(array.shape), array.dtype
        check_shape(self.shape, source)
        if dtype in (torch.bool, np.bool_):
            raise ValueError(f"{source} holds booleans; expected images or features")
        if labels is not None and tuple(labels.shape) != self.shape[:1]:
            raise ValueError(f"{source}: labels 'y' must have shape [{self.shape[0]}], got {tuple(labels.shape)}")
        self.labels = labels

    def __len__(self) -> int:
        return self.shape[0]

    def __getitems__(self, indices: list[int]) -> list[Any]:
        lo, hi = min(indices), max(indices) + 1
        block = self.open_array()[lo:hi]
        block = torch.from_numpy(np.array(block)) if isinstance(block, np.ndarray) else block
        if hi - lo != len(indices) or indices != list(range(lo, hi)):
            block = block[torch.as_tensor(indices) - lo]
        x = unit_float(block, f"{self.source} (rows {lo}-{hi - 1})" if lo or hi < len(self) else self.source)
        rows = list(x.unbind(0))
        if self.labels is None:
            return rows
        return [(row, int(self.labels[i])) for row, i in zip(rows, indices, strict=True)]

    def __getitem__(self, i: int) -> Any:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} is out of range for {len(self)} rows of {self.source}")
        return self.__getitems__([i % len(self)])[0]


def pt_file(path: Path) -> ArrayRows:
    """``x`` (and ``y``) of a ``.pt`` file, mapped afresh for every batch."""

    def load() -> Any:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception as err:
            raise ValueError(
                f"{path} is not a readable tensor file ({type(err).__name__}); save the data with torch.save(x, path) "
                "(plain tensors only: pickled objects and code are refused)"
            ) from err
        return obj

    obj = load()
    labels = obj.get("y") if isinstance(obj, dict) else None

    def open_x() -> torch.Tensor:
        got = load()
        got = got.get("x") if isinstance(got, dict) else got
        if not torch.is_tensor(got):
            raise ValueError(f"{path} must hold a tensor or a dict with a tensor under 'x'")
        return got

    if labels is not None and not torch.is_tensor(labels):
        raise ValueError(f"{path}: 'y' must be a tensor of labels [N]")
    return ArrayRows(open_x, str(path), None if labels is None else labels.clone())


def npy_file(path: Path) -> ArrayRows:
    """The array of a ``.npy`` file, memory-mapped afresh for every batch."""

    def open_x() -> np.ndarray:
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except Exception as err:  # ValueError for pickled objects, OSError/EOFError for damage
            reason = str(err).split(". ")[0]
            raise ValueError(f"{path} is not a readable .npy of a plain array: {reason}") from err

    return ArrayRows(open_x, str(path))
