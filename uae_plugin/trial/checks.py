"""Checks a trial runs before any training, and how it names what it was given.

Each error names the argument, what was expected and the real cause.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from ..criteria import Criterion
from ..generation import tensor_digest
from ..model_guard import borrowed
from .rows import Data, batches, count, on_device_of, take


def describe_callable(f: Any) -> str:
    """A fit or score by what it is: a function by its qualified name, an object by its repr."""
    if hasattr(f, "__qualname__") and not isinstance(f, type) and callable(f) and not hasattr(f, "__self__"):
        return f"{getattr(f, '__module__', '?')}.{f.__qualname__}"
    return repr(f)


def check_seeds(seeds: Any) -> list[int]:
    if isinstance(seeds, int) or not isinstance(seeds, Sequence) or isinstance(seeds, str):
        raise ValueError(f"seeds must be a sequence of at least 2 ints, got {seeds!r}")
    if any(isinstance(s, bool) or not isinstance(s, int) for s in seeds):
        raise ValueError(f"seeds must be ints, got {list(seeds)!r}")
    if len(set(seeds)) < 2:
        raise ValueError(
            f"seeds must hold at least 2 distinct seeds: a verdict compares per-seed differences, got {list(seeds)}"
        )
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must not repeat a seed, got {list(seeds)}")
    return list(seeds)


def check_model_takes(criterion: Criterion, data: Data, name: str) -> None:
    """The model runs on two rows of ``data`` (one for a single row), else a ValueError naming ``name``."""
    probe = take(data, torch.arange(min(2, count(data))))
    try:
        criterion.check_input(probe)
        with borrowed(criterion.model), torch.no_grad():
            criterion.prepare(on_device_of(criterion.model, probe), None, 0)
    except (ValueError, TypeError) as err:
        raise type(err)(f"{name}: {err}") from err


def check_labels(y: Any, n: int, name: str) -> torch.Tensor:
    if not torch.is_tensor(y) or y.dtype.is_floating_point or y.dtype == torch.bool or tuple(y.shape) != (n,):
        raise ValueError(f"{name} must be an integer tensor of class labels [{n}], got {getattr(y, 'shape', y)!r}")
    return y


def digest_rows(data: Data) -> str:
    """SHA-256 of the rows, read in blocks of 1,024 whether ``data`` is a tensor or a Dataset: the same rows give
    the same digest in either form (a folder made from files read lazily resumes from the same rows in memory)."""
    return tensor_digest(batches(data, 1024))


def checked_score(value: Any) -> float:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"score must return a finite number (lower is better), got {value!r}")
    return float(value)
