"""An array file as a map-style Dataset, read batch by batch and scaled to [0, 1] as it is read.

``.pt``: a tensor, or a dict with the tensor under ``x`` (and labels ``[N]`` under ``y``), read with
``torch.load(weights_only=True, mmap=True)``; ``.npy``: one array, ``np.load(mmap_mode="r",
allow_pickle=False)``. Each batch (``__getitems__``, what a ``DataLoader`` asks for) maps the file afresh,
reads only the rows asked for, and lets the map go once they are copied out, so neither memory nor the
resident pages of the map grow with the file. ``.npz`` (compressed, so not mappable) is read whole, in its
own dtype.

Values: integer arrays are 8-bit values (0-255), scaled by 1/255; float arrays must already lie in [0, 1].
Each batch is checked as it is read; with ``check_range=True`` the whole array's range is found once when the
file is opened (one pass, block by block) and refused then, before any work, with the real range and its cause
(floats in [0, 255]: divide by 255; negative values: normalised data, undo the normalisation).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

RANGE_BLOCK_BYTES = 64 * 2**20  # the whole-array range is found this many bytes of rows at a time
EXPECTED = "store 8-bit integers or floats in [0, 1]"


def range_cause(lo: float, hi: float, is_float: bool) -> str:
    """Why values in ``[lo, hi]`` (outside the range their dtype is read in) are not images, and the fix."""
    if not is_float:
        return (
            "integers are read as 8-bit values and divided by 255: rescale wider ones to floats in [0, 1] "
            "(e.g. 16-bit images: x / 65535)"
        )
    if lo < 0:
        return "negative values mean normalised data: undo the normalisation (x * std + mean) to get [0, 1]"
    if hi <= 255:
        return "floats in [0, 255] are 8-bit values stored as floats: divide them by 255 (x / 255)"
    return f"floats in [0, 1] were expected, these reach {hi:.4g}: rescale the data to [0, 1]"


def check_values(lo: float, hi: float, is_float: bool, source: str) -> None:
    """Refuse values in ``[lo, hi]`` that are not finite, or lie outside [0, 255] (integers) or [0, 1] (floats),
    naming ``source``, the range and its cause."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{source} contains NaN or Inf; clean the data first")
    top = 1 if is_float else 255
    if lo < 0 or hi > top:
        raise ValueError(
            f"{source} has values outside [0, {top}] (range [{lo:.4g}, {hi:.4g}]); {EXPECTED}: "
            f"{range_cause(lo, hi, is_float)}"
        )


def _refuse_dtype(dtype: Any, source: str) -> None:
    """Booleans and complex numbers are not images."""
    if dtype in (torch.bool, np.bool_):
        raise ValueError(f"{source} holds booleans; expected images or features")
    if dtype.is_complex if isinstance(dtype, torch.dtype) else np.issubdtype(dtype, np.complexfloating):
        raise ValueError(f"{source} holds complex numbers; expected images or features")


def _is_float(dtype: Any) -> bool:
    return dtype.is_floating_point if isinstance(dtype, torch.dtype) else bool(np.issubdtype(dtype, np.floating))


def value_range(array: Any) -> tuple[float, float]:
    """``(min, max)`` of a tensor or numpy array ``[N, ...]`` (mapped or not), read ``RANGE_BLOCK_BYTES`` at a time;
    NaN propagates (an Inf or NaN gives a non-finite bound)."""
    n = array.shape[0]
    row_bytes = max(1, math.prod(array.shape[1:]) * array.itemsize)
    step = max(1, RANGE_BLOCK_BYTES // row_bytes)
    lo, hi = math.inf, -math.inf
    for start in range(0, n, step):
        block = array[start : start + step]
        b_lo, b_hi = float(block.min()), float(block.max())
        if math.isnan(b_lo) or math.isnan(b_hi):
            return math.nan, math.nan
        lo, hi = min(lo, b_lo), max(hi, b_hi)
    return lo, hi


def unit_float(x: torch.Tensor, source: str) -> torch.Tensor:
    """``x`` as float32 in [0, 1] (a copy): integers in [0, 255] / 255, floats checked; booleans, complex
    numbers, NaN, Inf and values out of range refused (:func:`check_values`)."""
    _refuse_dtype(x.dtype, source)
    if x.numel():
        check_values(float(x.min()), float(x.max()), x.is_floating_point(), source)
    return x.float() / 255.0 if not x.is_floating_point() else x.float().clone()


def check_shape(shape: tuple[int, ...], source: str) -> None:
    if len(shape) < 2 or shape[0] == 0:
        raise ValueError(f"{source} must hold a non-empty array [N, ...], got shape {tuple(shape)}")


class ArrayRows(Dataset):
    """Rows of the array ``open_array()`` returns (a tensor or a numpy array ``[N, ...]``, mapped or not):
    item ``i`` is ``x: [...]`` float32 in [0, 1], or ``(x, label)`` when ``labels: [N]`` are given.

    ``check_range``: find the whole array's range now (:func:`value_range`, kept as ``value_range``) and refuse
    values out of range before any row is used; otherwise only each batch is checked, as it is read.
    """

    def __init__(
        self,
        open_array: Callable[[], Any],
        source: str,
        labels: torch.Tensor | None = None,
        check_range: bool = False,
    ) -> None:
        self.open_array, self.source = open_array, source
        array = open_array()
        self.shape, dtype = tuple(array.shape), array.dtype
        check_shape(self.shape, source)
        _refuse_dtype(dtype, source)
        if labels is not None and tuple(labels.shape) != self.shape[:1]:
            raise ValueError(f"{source}: labels 'y' must have shape [{self.shape[0]}], got {tuple(labels.shape)}")
        self.labels = labels
        self.value_range = value_range(array) if check_range else None
        if self.value_range is not None:
            check_values(*self.value_range, _is_float(dtype), source)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitems__(self, indices: list[int]) -> list[Any]:
        """The items at ``indices``: a run of consecutive rows is sliced, any other set picked row by row from
        the map (only those rows are read)."""
        lo, hi = min(indices), max(indices) + 1
        array = self.open_array()
        if hi - lo == len(indices) and indices == list(range(lo, hi)):
            block = array[lo:hi]
        else:
            block = array[np.asarray(indices)] if isinstance(array, np.ndarray) else array[torch.as_tensor(indices)]
        block = torch.from_numpy(np.array(block)) if isinstance(block, np.ndarray) else block
        x = unit_float(block, f"{self.source} (rows {lo}-{hi - 1})" if lo or hi < len(self) else self.source)
        rows = list(x.unbind(0))
        if self.labels is None:
            return rows
        return [(row, int(self.labels[i])) for row, i in zip(rows, indices, strict=True)]

    def __getitem__(self, i: int) -> Any:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} is out of range for {len(self)} rows of {self.source}")
        return self.__getitems__([i % len(self)])[0]


def pt_file(path: Path, check_range: bool = False) -> ArrayRows:
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
    return ArrayRows(open_x, str(path), None if labels is None else labels.clone(), check_range)


def npy_file(path: Path, check_range: bool = False) -> ArrayRows:
    """The array of a ``.npy`` file, memory-mapped afresh for every batch."""

    def open_x() -> np.ndarray:
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except Exception as err:  # ValueError for pickled objects, OSError/EOFError for damage
            reason = str(err).split(". ")[0]
            raise ValueError(f"{path} is not a readable .npy of a plain array: {reason}") from err

    return ArrayRows(open_x, str(path), check_range=check_range)
