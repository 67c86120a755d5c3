"""Rows of a tensor or a map-style Dataset, chunk by chunk: what generation attacks and what it carries through.

A tensor ``data: [N, ...]`` is sliced. A ``torch.utils.data.Dataset`` of ``N`` items, each ``x`` or a tuple
``(x, *rest)``, is read through a ``DataLoader`` (``num_workers`` processes decode while the attack runs; a
Dataset with ``__getitems__`` is asked for whole batches); only the rows of the chunks asked for are read.
A chunk comes out as ``x: [B, ...]`` (the items' ``x`` stacked) and ``rest``: one entry per ``rest`` field,
a tensor ``[B, ...]`` for tensor and number fields, a list of ``B`` values for anything else (strings, ...).

Checked before any row is attacked: the type, the length and item 0 (its structure: tensor or tuple, the
kind of each ``rest`` field, the shape and dtype of ``x``), and the last item against it. Every chunk is
checked again as it is read: an item whose structure, shape or dtype differs from item 0's is named by index.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from functools import partial
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

NUMBER = (bool, int, float)
EXPECTED = "a tensor [N, ...] or a map-style torch.utils.data.Dataset whose items are x or tuples (x, *rest)"


def kind_of(value: Any) -> str:
    """How a ``rest`` field is stored: ``tensor``, ``number`` (a Python bool/int/float) or ``other``."""
    if torch.is_tensor(value):
        return "tensor"
    return "number" if isinstance(value, NUMBER) else "other"


def split_item(item: Any, index: int) -> tuple[torch.Tensor, list[Any] | None]:
    """``x`` and ``rest`` of one item (``rest`` is None when the item is a bare tensor)."""
    if torch.is_tensor(item):
        return item, None
    if isinstance(item, (tuple, list)) and item and torch.is_tensor(item[0]):
        return item[0], list(item[1:])
    got = type(item).__name__
    if isinstance(item, (tuple, list)):
        got = f"a {got} whose first element is a {type(item[0]).__name__}" if item else f"an empty {got}"
    raise TypeError(f"data[{index}] must be a tensor x or a tuple (x, *rest) starting with one, got {got}")


def describe_item(item: Any, index: int = 0) -> dict[str, Any]:
    """An item's structure, as the run's fingerprint and :class:`UAEDataset` record it."""
    x, rest = split_item(item, index)
    return {
        "shape": list(x.shape),
        "dtype": str(x.dtype),
        "tuple": rest is not None,
        "rest": [kind_of(v) for v in rest or []],
    }


def _check_like(structure: dict[str, Any], item: Any, index: int) -> None:
    got = describe_item(item, index)
    for field in ("tuple", "rest", "shape", "dtype"):
        if got[field] != structure[field]:
            what = {"tuple": "item type (tuple or tensor)", "rest": "kinds of the fields after x"}.get(field, field)
            raise ValueError(
                f"data[{index}] differs from data[0] in its {what}: {got[field]} against {structure[field]}; "
                "every item must have the same structure and x the same shape (resize or pad the data first)"
            )


class _Indexed(Dataset):
    """A batch of ``dataset`` together with its indices, so that errors can name the item."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __getitems__(self, indices: list[int]) -> tuple[list[int], list[Any]]:
        getitems = getattr(self.dataset, "__getitems__", None)
        items = getitems(indices) if getitems else [self.dataset[i] for i in indices]
        return indices, list(items)


def _collate(structure: dict[str, Any], batch: tuple[list[int], list[Any]]) -> tuple[torch.Tensor, list[Any]]:
    indices, items = batch
    xs, fields = [], [[] for _ in structure["rest"]]
    for index, item in zip(indices, items, strict=True):
        _check_like(structure, item, index)
        x, rest = split_item(item, index)
        xs.append(x)
        for values, value in zip(fields, rest or [], strict=True):
            values.append(value)
    rest = [_stack(values, kind) for values, kind in zip(fields, structure["rest"], strict=True)]
    return torch.stack(xs), rest


def _stack(values: list[Any], kind: str) -> Any:
    if kind == "tensor":
        return torch.stack(values)
    return torch.tensor(values) if kind == "number" else values


def cat_rest(parts: Sequence[list[Any]]) -> list[Any]:
    """The ``rest`` fields of consecutive row blocks joined: tensors concatenated, lists extended."""
    if not parts:
        return []
    joined = []
    for field in zip(*parts, strict=True):
        joined.append(torch.cat(field) if torch.is_tensor(field[0]) else [v for block in field for v in block])
    return joined


def rows_digest(x: torch.Tensor, rest: list[Any]) -> str:
    """SHA-256 over the shape, dtype and bytes of ``x`` and of every ``rest`` field (JSON for non-tensors)."""
    digest = hashlib.sha256()
    for t in [x, *rest]:
        if torch.is_tensor(t):
            raw = t.detach().cpu().contiguous()
            digest.update(f"{tuple(raw.shape)}|{raw.dtype};".encode())
            digest.update(raw.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            digest.update(json.dumps(t, default=repr).encode())
    return digest.hexdigest()


class Rows:
    """The rows of ``data`` (a tensor ``[N, ...]`` or a map-style Dataset), checked as described above."""

    def __init__(self, data: Any) -> None:
        self.data = data
        self.is_tensor = torch.is_tensor(data)
        if self.is_tensor:
            if data.dim() < 2 or data.shape[0] == 0:
                raise ValueError(f"data must be a non-empty tensor [N, ...], got shape {tuple(data.shape)}")
            self.n = int(data.shape[0])
            self.structure = {"shape": list(data.shape[1:]), "dtype": str(data.dtype), "tuple": False, "rest": []}
            return
        if not isinstance(data, Dataset) or isinstance(data, IterableDataset):
            raise TypeError(f"data must be {EXPECTED}, got {type(data).__name__}")
        try:
            self.n = len(data)  # type: ignore[arg-type]
        except TypeError as err:
            raise TypeError(f"data must be a Dataset with a length (__len__), got {type(data).__name__}") from err
        if self.n == 0:
            raise ValueError("data is an empty Dataset (len 0); pass at least one item")
        self.structure = describe_item(data[0], 0)
        if len(self.structure["shape"]) < 1:
            raise ValueError(f"data[0] must be a tensor x with at least one axis, got shape {self.structure['shape']}")
        _check_like(self.structure, data[self.n - 1], self.n - 1)

    def describe(self) -> dict[str, Any]:
        """What the fingerprint records of the data: the items' structure (no pass over the rows)."""
        return {"items": self.structure}

    def read(self, rows: range) -> tuple[torch.Tensor, list[Any]]:
        """``x: [len(rows), ...]`` and ``rest`` of one block of rows, read in this process."""
        return next(self.chunks([rows]))

    def chunks(self, spans: Sequence[range], num_workers: int = 0) -> Iterator[tuple[torch.Tensor, list[Any]]]:
        """``(x, rest)`` for each span of rows, in order; a Dataset is read in ``max(1, num_workers)`` batches
        per span, by ``num_workers`` processes (0: this one), the next spans decoded while one is attacked."""
        if self.is_tensor:
            for rows in spans:
                yield self.data[rows.start : rows.stop], []
            return
        pieces = {rows: _split(rows, max(1, num_workers)) for rows in spans}
        loader = DataLoader(
            _Indexed(self.data),
            batch_sampler=[list(part) for rows in spans for part in pieces[rows]],
            num_workers=num_workers,
            collate_fn=partial(_collate, self.structure),
        )
        blocks = iter(loader)
        for rows in spans:
            parts = [_next(blocks) for _ in pieces[rows]]
            yield torch.cat([p[0] for p in parts]), cat_rest([p[1] for p in parts])


def _split(rows: range, pieces: int) -> list[range]:
    """``rows`` cut into at most ``pieces`` contiguous, non-empty blocks of near-equal size."""
    size = -(-len(rows) // pieces)
    return [range(a, min(a + size, rows.stop)) for a in range(rows.start, rows.stop, size)]


def _next(blocks: Iterator[Any]) -> Any:
    """The next batch; an error from a worker process is re-raised as one line (its last), of its own type."""
    try:
        return next(blocks)
    except Exception as err:
        message = str(err)
        if not message.startswith("Caught ") or "Original Traceback" not in message:
            raise
        last = message.strip().splitlines()[-1]
        prefix = f"{type(err).__name__}: "
        try:
            clean = type(err)(last[len(prefix) :] if last.startswith(prefix) else last)
        except Exception:  # an error class that takes other arguments: the original, traceback and all
            raise err from None
        raise clean from None
