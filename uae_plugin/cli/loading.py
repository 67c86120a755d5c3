"""Read what the command line is given: models and data sets, without unsafe unpickling.

Models: a ``torch.export`` program (``.pt2``, ``torch.export.save``; the documented route), a
TorchScript file (``torch.jit.save``, deprecated in torch 2.14, still read), or a state dict (read
with ``torch.load(weights_only=True)``) plus the class to build: a built-in name (``conv``,
``dense``), ``package.module:ClassName`` (importable from the current folder, as ``python -m``
does) or ``path/to/file.py:ClassName``, built with ``--model-kwargs`` (a JSON object). A whole
pickled model (``torch.save(model)``) is refused, never unpickled (unpickling runs code).

Data (:func:`load_dataset`, a map-style Dataset read row by row):
the built-in ``mnist`` digits, a ``.pt`` file holding a tensor (or a dict with
key ``x``, labels under ``y``), a ``.npy`` file, a ``.npz`` file (key ``x`` or
its only array, labels under ``y``; ``allow_pickle=False``), or a folder of
images (:mod:`.images`). Integer data is scaled by 1/255; float data must
already lie in [0, 1] (:mod:`.arrays`).

In memory (:func:`rows_in_memory`): a Dataset's rows decoded once into a tensor (with its labels), for a
command that reads every row many times (``uae trial``), when :func:`decoded_bytes` fit :func:`memory_limit`.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import pickle
import sys
import warnings
from pathlib import Path
from typing import Any

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
IN_MEMORY_BYTES = 2**30  # decoded rows up to this size are held in memory by the commands that reread them


CLASS_FORMS = "'conv', 'dense', 'package.module:ClassName' or 'path/to/file.py:ClassName'"
SAVE_STATE_DICT = "save torch.save(model.state_dict(), path) and pass --model-class, or torch.export.save a .pt2"


class ExportedModel(nn.Module):
    """A ``torch.export`` program as a module; its train/eval mode was fixed at export, so ``train()`` only
    sets this wrapper's flag (the program itself refuses ``train()``)."""

    def __init__(self, program: nn.Module) -> None:
        super().__init__()
        self.program = program

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.program(x)

    def train(self, mode: bool = True) -> ExportedModel:
        self.training = mode
        return self


def add_model_arguments(p: argparse.ArgumentParser, what: str = "the model") -> None:
    """``--model``, ``--model-class`` and ``--model-kwargs``, the same for every command that reads a model."""
    p.add_argument(
        "--model",
        required=True,
        help=f"{what}: a torch.export .pt2, a TorchScript file, or a state dict with --model-class",
    )
    p.add_argument("--model-class", default=None, help=f"for a state dict: {CLASS_FORMS}")
    p.add_argument(
        "--model-kwargs",
        default=None,
        help="the class's constructor arguments as a JSON object, e.g. '{\"width\": 32}'",
    )


def _import_class(spec: str) -> tuple[Any, str]:
    """The object ``spec`` names and its name, from ``module:Name`` or ``file.py:Name``."""
    module_name, sep, class_name = spec.rpartition(":")
    if not sep or not module_name or not class_name:
        raise ValueError(f"model class must be one of {CLASS_FORMS}, got {spec!r}")
    try:
        if module_name.endswith(".py"):
            if not Path(module_name).is_file():
                raise ImportError(f"no file {module_name}")
            loaded = importlib.util.spec_from_file_location(Path(module_name).stem, module_name)
            module = importlib.util.module_from_spec(loaded)
            loaded.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path:  # as `python -m` does: a module in the current folder imports
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(module_name)
        return getattr(module, class_name), class_name
    except (ImportError, AttributeError) as err:
        raise ValueError(f"cannot import model class {spec!r}: {err}") from err


def _build(spec: str, kwargs_json: str | None) -> nn.Module:
    """``cls(**kwargs)`` for the class ``spec`` names and the JSON object ``kwargs_json``."""
    cls = BUILTIN_MODELS[spec] if spec in BUILTIN_MODELS else _import_class(spec)[0]
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise TypeError(f"model class {spec!r} is not an nn.Module subclass")
    try:
        kwargs = {} if kwargs_json is None else json.loads(kwargs_json)
    except json.JSONDecodeError as err:
        raise ValueError(f"--model-kwargs must be a JSON object, e.g. '{{\"width\": 32}}': {err}") from err
    if not isinstance(kwargs, dict):
        raise ValueError(f"--model-kwargs must be a JSON object of argument names, got {kwargs_json}")
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ValueError(f"cannot build {spec} with --model-kwargs {kwargs_json or '{}'}: {err}") from err


def _state_dict(path: Path) -> Any:
    """``torch.load(weights_only=True)``: plain tensors only; a pickled object is refused with the fix."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError for a class in the pickle; RuntimeError/EOFError for damage
        if isinstance(err, pickle.UnpicklingError) and "Unsupported global" in str(err):  # never unpickled
            raise ValueError(
                f"{path} holds a pickled object (a whole model saved with torch.save(model)?), not plain tensors; "
                f"it is not unpickled (that runs code): {SAVE_STATE_DICT}"
            ) from err
        raise ValueError(f"{path} is not a readable state dict of plain tensors ({type(err).__name__})") from err


def _model_file(path: Path) -> nn.Module:
    """A model stored whole: a ``.pt2`` export program, or a TorchScript file."""
    if path.suffix == ".pt2":
        try:
            return ExportedModel(torch.export.load(str(path)).module())
        except Exception as err:
            raise ValueError(f"{path} is not a torch.export program: {error_summary(err)}") from err
    try:
        with warnings.catch_warnings():  # torch 2.14 marks TorchScript deprecated; it still loads
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(str(path), map_location="cpu")
    except (RuntimeError, ValueError) as err:
        try:  # what else it is, read safely: a pickled object is named as one, a state dict asks for its class
            state = _state_dict(path)
        except ValueError as unread:
            if "pickled object" in str(unread):
                raise unread from err
            state = None
        if isinstance(state, dict):
            raise ValueError(f"{path} holds a state dict: pass --model-class ({CLASS_FORMS})") from err
        raise ValueError(
            f"{path} is neither a torch.export .pt2 nor a TorchScript file; for a state dict pass --model-class "
            f"({CLASS_FORMS})"
        ) from err


def load_model(path: str | Path, model_class: str | None = None, model_kwargs: str | None = None) -> nn.Module:
    """A model in eval mode from a ``.pt2`` program or TorchScript file, or from a state dict with
    ``model_class`` built with ``model_kwargs`` (a JSON object)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    _not_empty(path, "model file", "save a model with torch.export.save or torch.save(model.state_dict(), path)")
    if model_class is None:
        if model_kwargs is not None:
            raise ValueError("--model-kwargs builds a --model-class: pass both, or neither for a whole-model file")
        return _model_file(path).eval()
    model = _build(model_class, model_kwargs)
    state = _state_dict(path)
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict")
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise ValueError(
            f"{path} does not fit {model_class}: missing keys {_first(missing)}, unexpected keys {_first(unexpected)}; "
            "choose the --model-class (and --model-kwargs) the weights were saved from"
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
    check_range: bool = False,
) -> Dataset:
    """A map-style Dataset of ``x: [C, H, W]`` (or ``[D]``) float32 in [0, 1], or of ``(x, label)`` when the
    source has labels (``mnist``; an image folder with class subfolders; ``y`` in a ``.pt`` dict or ``.npz``).

    Nothing is read whole but a ``.npz``: rows are read (and values checked) when asked for.
    ``image_size``, ``channels`` and ``skip_bad`` apply to image folders (see :mod:`.images`); ``limit``
    keeps the first rows only (an image folder then reads the headers of those files only). ``check_range``:
    an array file's values are checked whole when it is opened (one pass; the error names the file, the real
    range and its cause), not only batch by batch as they are read.
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
        dataset = _array_file(path, source, check_range)
    n = len(dataset)  # type: ignore[arg-type]
    return dataset if limit is None or limit >= n else Subset(dataset, range(limit))


def _array_file(path: Path, source: str, check_range: bool = False) -> ArrayRows:
    if not path.is_file():
        raise FileNotFoundError(f"data {source!r} is neither 'mnist', a file nor a folder")
    if path.suffix not in DATA_SUFFIXES:
        raise ValueError(f"data file {path} must end in {', '.join(DATA_SUFFIXES)} (or be a folder of images)")
    _not_empty(path, "data file", "save the data with torch.save(x, path) or numpy.savez(path, x=x)")
    if path.suffix == ".pt":
        return pt_file(path, check_range)
    if path.suffix == ".npy":
        return npy_file(path, check_range)
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
    return ArrayRows(lambda: x, str(path), None if labels is None else torch.from_numpy(labels), check_range)


def load_data(source: str, split: str = "train") -> torch.Tensor:
    """``x: [N, ...]`` float32 in [0, 1], all of :func:`load_dataset` in memory at once (for small data)."""
    rows = Rows(load_dataset(source, split))
    return rows.read(range(rows.n))[0]


def memory_limit() -> int:
    """Bytes of decoded rows a command may hold in memory: ``IN_MEMORY_BYTES`` (1 GiB), or an eighth of this
    machine's physical memory when that is less. It depends on the machine only, never on what is free at the
    moment, so the same data on the same machine is always read the same way."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: the fixed limit alone
        return IN_MEMORY_BYTES
    return min(IN_MEMORY_BYTES, total // 8) if total > 0 else IN_MEMORY_BYTES


def decoded_bytes(data: Dataset) -> int:
    """The bytes of every row of ``data`` decoded as float32: ``len(data)`` times the size of item 0's ``x``
    (item 0 is read; the rows of a Dataset share one shape)."""
    first = data[0]
    x = first[0] if isinstance(first, (tuple, list)) else first
    return len(data) * x.numel() * 4  # type: ignore[arg-type]


def _tensor_rows(data: Dataset) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """``(x, labels)`` of a ``TensorDataset`` (or a ``Subset`` of one) by indexing its tensors; None otherwise."""
    if isinstance(data, TensorDataset):
        return data.tensors[0].float(), data.tensors[1] if len(data.tensors) > 1 else None
    if isinstance(data, Subset):
        inner = _tensor_rows(data.dataset)
        if inner is None:
            return None
        index = torch.as_tensor(list(data.indices), dtype=torch.long)
        return inner[0][index], None if inner[1] is None else inner[1][index]
    return None


def rows_in_memory(data: Dataset, block: int = 1024) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(x [N, ...] float32, labels [N] or None)``: every row of ``data`` decoded once, ``block`` rows at a time
    (each checked as it is read, :class:`~uae_plugin.generation.sources.Rows`), into one tensor; the labels are
    the items' second field, when they are ``(x, label)``."""
    direct = _tensor_rows(data)
    if direct is not None:
        return direct
    rows = Rows(data)
    spans = [range(a, min(a + block, rows.n)) for a in range(0, rows.n, block)]
    x = labels = None
    for rows_read, (xb, rest) in zip(spans, rows.chunks(spans), strict=True):
        if x is None:
            x = torch.empty((rows.n, *xb.shape[1:]), dtype=torch.float32)
            labels = torch.empty(rows.n, dtype=torch.long) if rest and torch.is_tensor(rest[0]) else None
        x[rows_read.start : rows_read.stop] = xb
        if labels is not None:
            labels[rows_read.start : rows_read.stop] = rest[0]
    return x, labels  # type: ignore[return-value]


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
