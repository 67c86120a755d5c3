"""Read what the command line is given: models and data sets, without unsafe unpickling.

Models: a TorchScript file (``torch.jit.save``), or a state dict (read with
``torch.load(weights_only=True)``) plus the class to build, either a built-in
name (``conv``, ``dense``) or ``package.module:ClassName`` (built with no
arguments). Data: the built-in ``mnist`` digits, a ``.pt`` file holding a
tensor (or a dict with key ``x``), a ``.npz`` file (key ``x`` or its only
array; ``allow_pickle=False``), or a folder of images. Integer data is scaled
by 1/255; float data must already lie in [0, 1].
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

from ..experiments.data import mnist_split
from ..experiments.models import ConvAutoencoder, DenseAutoencoder
from ..validation import error_summary

BUILTIN_MODELS = {"conv": ConvAutoencoder, "dense": DenseAutoencoder}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


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


def _as_unit_float(x: torch.Tensor, source: str) -> torch.Tensor:
    if not x.is_floating_point():
        if x.dtype == torch.bool:
            raise ValueError(f"{source} holds booleans; expected images or features")
        x = x.float() / 255.0
    x = x.float()
    if x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"{source} must hold a non-empty array [N, ...], got shape {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{source} contains NaN or Inf; clean the data first")
    if float(x.min()) < 0 or float(x.max()) > 1:
        raise ValueError(
            f"{source} has values outside [0, 1] (range [{float(x.min()):.4g}, {float(x.max()):.4g}]); "
            "store 8-bit integers or floats in [0, 1], not normalised data"
        )
    return x


def _image_folder(folder: Path) -> torch.Tensor:
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"folder {folder} has no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    arrays = []
    for f in files:
        with Image.open(f) as img:
            arrays.append(np.asarray(img.convert("L") if img.mode in ("L", "1", "P") else img.convert("RGB")))
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"images in {folder} differ in size or channels: {sorted(shapes)}")
    x = torch.from_numpy(np.stack(arrays))
    return x[:, None] if x.dim() == 3 else x.permute(0, 3, 1, 2)


def load_data(source: str, split: str = "train") -> torch.Tensor:
    """``x: [N, ...]`` float32 in [0, 1] from ``mnist``, a ``.pt``/``.npz`` file or an image folder."""
    if source == "mnist":
        data = mnist_split()
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        return data[f"x_{split}"]
    path = Path(source)
    if path.is_dir():
        return _as_unit_float(_image_folder(path), str(path))
    if not path.is_file():
        raise FileNotFoundError(f"data {source!r} is neither 'mnist', a file nor a folder")
    if path.suffix in (".pt", ".npz"):
        _not_empty(path, "data file", "save the data with torch.save(x, path) or numpy.savez(path, x=x)")
    if path.suffix == ".pt":
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)  # read by chunk, not at once
        except Exception as err:
            reason = type(err).__name__
            raise ValueError(
                f"{path} is not a readable tensor file ({reason}); save the data with torch.save(x, path) "
                "(plain tensors only: pickled objects and code are refused)"
            ) from err
        obj = obj.get("x") if isinstance(obj, dict) else obj
        if not torch.is_tensor(obj):
            raise ValueError(f"{path} must hold a tensor or a dict with a tensor under 'x'")
        return _as_unit_float(obj, str(path))
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as npz:
                key = "x" if "x" in npz.files else (npz.files[0] if len(npz.files) == 1 else None)
                if key is None:
                    raise ValueError(f"{path} holds {npz.files}; name the data array 'x'")
                array = npz[key]
        except Exception as err:  # OSError, ValueError (pickled objects), EOFError, zipfile.BadZipFile for damage
            reason = error_summary(err).split(". ")[0]  # numpy goes on to suggest unsafe loading
            raise ValueError(f"{path} is not a readable .npz of plain arrays: {reason}") from err
        return _as_unit_float(torch.from_numpy(np.ascontiguousarray(array)), str(path))
    raise ValueError(f"data file {path} must end in .pt or .npz (or be a folder of images)")


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


def load_labels(source: str, split: str = "train") -> torch.Tensor:
    """Class labels ``y: [N]`` int64 beside the data of ``source``: the built-in digits' labels, or the array
    ``y`` of a ``.pt`` dict or ``.npz`` file (read as :func:`load_data` reads ``x``)."""
    if source == "mnist":
        return mnist_split()[f"y_{split}"]
    path = Path(source)
    y = None
    if path.suffix == ".pt" and path.is_file():
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        y = obj.get("y") if isinstance(obj, dict) else None
    elif path.suffix == ".npz" and path.is_file():
        with np.load(path, allow_pickle=False) as npz:
            y = torch.from_numpy(npz["y"]) if "y" in npz.files else None
    if y is None:
        raise ValueError(
            f"{source} holds no labels: a contrastive trial scores by kNN error, which needs class labels; "
            "save them beside the data (torch.save({'x': x, 'y': y}, path) or numpy.savez(path, x=x, y=y))"
        )
    if not torch.is_tensor(y) or y.dtype.is_floating_point or y.dim() != 1:
        raise ValueError(f"labels 'y' in {source} must be integers [N], got {getattr(y, 'dtype', type(y))}")
    return y.long()
