"""Read what the command line is given: models and data sets, without unsafe unpickling.

Models: a TorchScript file (``torch.jit.save``), or a state dict (read with
``torch.load(weights_only=True)``) plus the class to build, either a built-in
name (``conv``, ``dense``) or ``package.module:ClassName`` (built with no
arguments). Data (:func:`load_dataset`, a map-style Dataset read row by row):
the built-in ``mnist`` digits, a ``.pt`` file holding a tensor (or a dict with
key ``x``, labels under ``y``), a ``.npy`` file, a ``.npz`` file (key ``x`` or
its only array, labels under ``y``; ``allow_pickle=False``), or a folder of
images (:mod:`.images`). Integer data is scaled by 1/255; float data must
already lie in [0, 1].
"""

from __future__ import annotations

import importlib
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Subset, TensorDataset

from ..experiments.data import mnist_split
from ..experiments.models import ConvAutoencoder, DenseAutoencoder
from ..generation.sources import Rows
from ..validation import error_summary
from .arrays import ArrayRows, check_shape, npy_file, pt_file
from .images import ImageFolderRows

BUILTIN_MODELS = {"conv": ConvAutoencoder, "dense": DenseAutoencoder}
DATA_SUFFIXES = (".pt", ".npy", ".npz")


def _model_class(spec: str) -> type[nn.Module]:
    if spec in BUILTIN_MODELS:
        return BUILTIN_MODELS[spec]
    module_name, sep, class_name = spec.partition(":")
    if not sep or not module_name or not class_name:
        raise ValueError(
            f"model class must be one of {sorted(BUILTIN_MODELS)} or 'package.module:ClassName', got {spec!r}"
        )
    if os.getcwd() not in sys.path:  # as `python -m` does: a module in the current folder imports
        sys.path.insert(0, os.getcwd())
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"cannot import model class {spec!r}: {err}") from err
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"model class {spec!r} is not an nn.Module subclass")
    return cls


def load_model(path: str | Path, model_class: str | None = None) -> nn.Module:
    """A model in eval mode from a TorchScript file, or from a state dict with ``model_class``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    _not_empty(path, "model file", "save a model with torch.jit.save or torch.save(model.state_dict(), path)")
    if model_class is None:
        try:
            with warnings.catch_warnings():  # torch 2.14 marks TorchScript deprecated; it still loads
                warnings.simplefilter("ignore", FutureWarning)
                return torch.jit.load(str(path), map_location="cpu").eval()
        except (RuntimeError, ValueError) as err:
            raise ValueError(
                f"{path} is not a TorchScript file; for a state dict pass --model-class "
                f"(one of {sorted(BUILTIN_MODELS)} or package.module:ClassName)"
            ) from err
    model = _model_class(model_class)()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle.UnpicklingError for code, RuntimeError/EOFError for damage
        raise ValueError(f"{path} is not a readable state dict of plain tensors ({type(err).__name__})") from err
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict")
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise ValueError(
            f"{path} does not fit {model_class}: missing keys {_first(missing)}, unexpected keys {_first(unexpected)}; "
            "choose the --model-class the weights were saved from"
        )
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(f"{path} does not fit {model_class}: {_shape_mismatch(err)}") from err
    return model.eval()


def _not_empty(path: Path, role: str, fix: str) -> None:
    if path.stat().st_size == 0:
        raise ValueError(f"{role} {path} is empty (0 bytes); {fix}")


def load_dataset(
    source: str,
    split: str = "train",
    *,
    image_size: tuple[int, int] | None = None,
    channels: int | None = None,
    skip_bad: bool = False,
    limit: int | None = None,
) -> Dataset:
    """A map-style Dataset of ``x: [C, H, W]`` (or ``[D]``) float32 in [0, 1], or of ``(x, label)`` when the
    source has labels (``mnist``; an image folder with class subfolders; ``y`` in a ``.pt`` dict or ``.npz``).

    Nothing is read whole but a ``.npz``: rows are read (and values checked) when asked for.
    ``image_size``, ``channels`` and ``skip_bad`` apply to image folders (see :mod:`.images`); ``limit``
    keeps the first rows only (an image folder then reads the headers of those files only).
    """
    if source == "mnist":
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        data = mnist_split()
        dataset: Dataset = TensorDataset(data[f"x_{split}"], data[f"y_{split}"])
    else:
        path = Path(source)
        if path.is_dir():
            return ImageFolderRows(path, image_size, channels, skip_bad, limit)
        dataset = _array_file(path, source)
    n = len(dataset)  # type: ignore[arg-type]
    return dataset if limit is None or limit >= n else Subset(dataset, range(limit))


def _array_file(path: Path, source: str) -> ArrayRows:
    if not path.is_file():
        raise FileNotFoundError(f"data {source!r} is neither 'mnist', a file nor a folder")
    if path.suffix not in DATA_SUFFIXES:
        raise ValueError(f"data file {path} must end in {', '.join(DATA_SUFFIXES)} (or be a folder of images)")
    _not_empty(path, "data file", "save the data with torch.save(x, path) or numpy.savez(path, x=x)")
    if path.suffix == ".pt":
        return pt_file(path)
    if path.suffix == ".npy":
        return npy_file(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            key = "x" if "x" in npz.files else (npz.files[0] if len(npz.files) == 1 else None)
            if key is None:
                raise ValueError(f"{path} holds {npz.files}; name the data array 'x'")
            array, labels = npz[key], (npz["y"] if "y" in npz.files and key == "x" else None)
    except Exception as err:  # OSError, ValueError (pickled objects), EOFError, zipfile.BadZipFile for damage
        reason = error_summary(err).split(". ")[0]  # numpy goes on to suggest unsafe loading
        raise ValueError(f"{path} is not a readable .npz of plain arrays: {reason}") from err
    check_shape(array.shape, str(path))
    x = torch.from_numpy(np.ascontiguousarray(array))
    return ArrayRows(lambda: x, str(path), None if labels is None else torch.from_numpy(labels))


def load_data(source: str, split: str = "train") -> torch.Tensor:
    """``x: [N, ...]`` float32 in [0, 1], all of :func:`load_dataset` in memory at once (for small data)."""
    rows = Rows(load_dataset(source, split))
    return rows.read(range(rows.n))[0]


def _first(keys: list[str], n: int = 4) -> str:
    """At most ``n`` keys, e.g. ``['a', 'b', ...] (7)``; ``none`` when empty."""
    if not keys:
        return "none"
    shown = ", ".join(repr(k) for k in keys[:n])
    return f"[{shown}{', ...' if len(keys) > n else ''}] ({len(keys)})"


def _shape_mismatch(err: RuntimeError) -> str:
    """The lines of a load_state_dict error that name a key (size mismatches), at most three, joined."""
    lines = [line.strip() for line in str(err).splitlines()[1:] if line.strip()]
    return "; ".join(lines[:3]) or str(err).splitlines()[0]
