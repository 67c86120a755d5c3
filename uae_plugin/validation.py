"""Argument checks that run before any work: each error names the argument and what was expected."""

from __future__ import annotations

import itertools
import math
import re
from typing import Any

import torch
from torch import nn


def check_images(x: Any, name: str = "x") -> None:
    """``x`` must be a non-empty float tensor ``[B, ...]`` (rank >= 2), finite, in [0, 1]."""
    if not torch.is_tensor(x):
        hint = f"; convert with torch.from_numpy({name})" if type(x).__module__ == "numpy" else ""
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}{hint}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a float tensor with values in [0, 1], got dtype {x.dtype}; "
            f"convert with {name}.float() / 255 for 8-bit images"
        )
    if x.dim() < 2:
        raise ValueError(f"{name} must have shape [B, ...] with rank >= 2, got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is an empty batch (shape {tuple(x.shape)}); pass at least one sample")
    if x.numel() == 0:
        raise ValueError(f"{name} has no features (shape {tuple(x.shape)})")
    lo, hi = value_range(x)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} contains NaN or Inf; clean the data before attacking")
    if lo < 0.0 or hi > 1.0:
        hint = range_hint(lo, hi, name)
        raise ValueError(f"{name} must have values in [0, 1], got range {format_range(lo, hi)}; {hint}")


NEAR_UNIT = 1e-3  # data within this of [0, 1] is taken for rounding, not another scale
UNIT_RANGE_SLACK = 0.3  # the tails of kornia's noise augmentations: RandomGaussianNoise(std=0.05) stays within 6 std


def unit_range(x: torch.Tensor, who: str) -> torch.Tensor:
    """The adapters' rule for images that reach them through an augmentation chain: ``x`` clamped to [0, 1].

    Values within ``UNIT_RANGE_SLACK`` of [0, 1] (the tails of noise added before, as kornia's unit-range ops
    allow) are clamped; NaN/Inf and values further out (normalised images, 8-bit values) raise ``ValueError``
    with the fix. The core (:func:`check_images`) takes pixels straight from the user and allows no slack.
    """
    x = x.detach()
    lo, hi = value_range(x)
    if not (math.isfinite(lo) and math.isfinite(hi)):  # clamping would hide broken data
        raise ValueError(f"{who} input contains NaN or Inf; clean the data first")
    if lo < -UNIT_RANGE_SLACK or hi > 1.0 + UNIT_RANGE_SLACK:
        raise ValueError(
            f"{who} input must have values in [0, 1], got range {format_range(lo, hi)}; {range_hint(lo, hi)} "
            f"(values within {UNIT_RANGE_SLACK} of [0, 1], e.g. after noise, are clamped)"
        )
    return x.clamp(0.0, 1.0)


def value_range(x: torch.Tensor) -> tuple[float, float]:
    """``(min, max)`` of ``x`` in one pass (``torch.aminmax``); NaN in ``x`` makes both NaN, an Inf shows in them."""
    lo, hi = torch.aminmax(x.detach())
    return float(lo), float(hi)


def format_range(lo: float, hi: float) -> str:
    """``[lo, hi]`` with 4 significant digits, or as many as it takes to show a bound outside [0, 1]."""

    def show(v: float) -> str:
        short = f"{v:.4g}"
        return short if (0.0 <= float(short) <= 1.0) == (0.0 <= v <= 1.0) else repr(v)

    return f"[{show(lo)}, {show(hi)}]"


def range_hint(lo: float, hi: float, name: str = "x") -> str:
    """How to bring data in ``[lo, hi]`` into [0, 1]: values a rounding error outside are the user's to clamp,
    8-bit values are divided by 255, and anything else had a normalisation to undo."""
    if lo >= -NEAR_UNIT and hi <= 1.0 + NEAR_UNIT:
        return f"values a rounding error outside [0, 1]? clamp them yourself if so ({name}.clamp(0, 1))"
    if lo >= 0.0 and 1.0 < hi <= 255.0:
        return f"8-bit values? use {name} / 255"
    return "undo the normalisation before attacking (x * std + mean)"


def check_labels(y: Any, batch: int, logits: torch.Tensor) -> None:
    """``y`` must be an integer tensor ``[B]`` with values in ``[0, n_classes)``."""
    if y is None:
        raise ValueError("y is required for Classification: pass labels [B] (targets when targeted)")
    if not torch.is_tensor(y) or y.dtype.is_floating_point or y.dtype == torch.bool:
        raise TypeError(f"y must be an integer tensor of class indices, got {getattr(y, 'dtype', type(y).__name__)}")
    if tuple(y.shape) != (batch,):
        raise ValueError(f"y must have shape [{batch}] to match x, got {tuple(y.shape)}")
    classes = logits.reshape(batch, -1).shape[1]
    if bool((y < 0).any()) or bool((y >= classes).any()):
        raise ValueError(f"y must hold class indices in [0, {classes}), got range [{int(y.min())}, {int(y.max())}]")


def error_summary(err: BaseException) -> str:
    """One line for a message: the error's first line, or the final error of a TorchScript interpreter traceback."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    if lines[0].startswith("The following operation failed in the TorchScript interpreter"):
        return re.sub(r"^\w+(Error|Exception): ", "", lines[-1])
    return lines[0]


def check_model_output(out: Any, name: str) -> torch.Tensor:
    """A model used by a criterion must return one tensor; a dict or tuple is refused with the wrapper to write."""
    if torch.is_tensor(out):
        return out
    if isinstance(out, dict):
        keys = list(out)
        got = f"a dict with keys {keys[:5]}" + (" ..." if len(keys) > 5 else "")
        pick = f"[{keys[0]!r}]" if keys else "[key]"
    elif isinstance(out, (tuple, list)):
        got, pick = f"a {type(out).__name__} of {len(out)}", "[0]"
    else:
        got, pick = type(out).__name__, ""
    raise TypeError(
        f"{name} must return a single tensor, got {got}; wrap it in an nn.Module "
        f"whose forward returns the tensor to attack, e.g. model(x){pick}"
    )


def _devices(model: nn.Module) -> set[torch.device]:
    return {t.device for t in itertools.chain(model.parameters(), model.buffers())}


def check_model_device(model: nn.Module, x: Any, name: str = "x") -> None:
    """``x`` must lie on a device that holds the model's weights, and those weights must hold values (not 'meta').

    A model spread over several devices passes when ``x`` is on one of them; a model without weights always passes.
    """
    if not torch.is_tensor(x):
        return  # check_images names the type
    devices = _devices(model)
    if not devices:
        return
    if x.device not in devices:
        where = ", ".join(sorted(str(d) for d in devices))
        first = str(min(devices, key=str))
        raise ValueError(
            f"the model is on {where} but {name} is on {x.device}; put both on one device before attacking, "
            f"e.g. model.to('{x.device}') or {name}.to('{first}')"
        )
    if x.device.type == "meta":
        raise ValueError(
            "the model's weights are on the 'meta' device and hold no values; load real weights first, "
            "e.g. model.to_empty(device='cpu') then model.load_state_dict(...)"
        )


def check_positive(value: Any, name: str) -> float:
    """A finite real number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_non_negative(value: Any, name: str) -> float:
    """A finite real number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or value == float("inf"):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_count(value: Any, name: str, minimum: int = 1) -> int:
    """An int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def check_index(index: Any, batch: int, device: torch.device) -> torch.Tensor:
    """Global sample indices: ``[B]`` non-negative integers."""
    index = torch.as_tensor(index, device=device)
    if index.dtype.is_floating_point or index.dtype == torch.bool:
        raise TypeError(f"index must hold integers, got dtype {index.dtype}")
    if tuple(index.shape) != (batch,):
        raise ValueError(f"index must have shape [{batch}] to match x, got {tuple(index.shape)}")
    if bool((index < 0).any()):
        raise ValueError("index must be >= 0")
    return index.to(torch.int64)
