"""``UAEDataset``: a finished generation run as a map-style Dataset, read chunk by chunk when asked for."""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from .chunks import FIELDS, finished_run, read_chunk

EXTRA = ("success", "mi", "gap", "index")


class UAEDataset(Dataset):
    """The UAEs of a finished :func:`~uae_plugin.generate_dataset` run in ``out_dir``, as a map-style Dataset.

    Item ``i`` has the structure of the data's item ``i``, with its UAE in place of ``x``: a tensor
    ``adv: [C, H, W]`` when the data's items were tensors, else ``(adv, *rest)``. ``extra`` appends fields
    of the result: any of ``"success"`` (bool), ``"mi"``, ``"gap"`` (float), ``"index"`` (the row of the
    data the UAE was made from), as 0-dim tensors; then every item is a tuple ``(adv, *rest, *extra)``.
    ``only_successful=True`` keeps the UAEs with ``success`` (reading every chunk once, here, to find them).

    Chunks are opened when first needed, each checked against its SHA-256 at its first opening in this
    process (``ValueError`` names a missing or corrupted file), then memory-mapped, so an item reads only its
    own rows from disk; the last ``cache_chunks`` opened stay open.
    Works in a ``DataLoader`` with workers (each worker keeps its own cache) and in a ``ConcatDataset``::

        train = ConcatDataset([TensorDataset(x_train), UAEDataset("uaes/")])  # both give tuples (x,)
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        extra: Sequence[str] = (),
        only_successful: bool = False,
        cache_chunks: int = 8,
    ) -> None:
        unknown = [name for name in extra if name not in EXTRA]
        if isinstance(extra, str) or unknown:
            raise ValueError(f"extra must be a sequence of names from {EXTRA}, got {extra!r}")
        if isinstance(cache_chunks, bool) or not isinstance(cache_chunks, int) or cache_chunks < 1:
            raise ValueError(f"cache_chunks must be an int >= 1, got {cache_chunks!r}")
        self.out_dir = Path(out_dir)
        manifest, self.entries = finished_run(self.out_dir)
        items = manifest["fingerprint"]["data"]["items"]
        self.tuple, self.kinds = items["tuple"], items["rest"]
        self.chunk_size, self.n = manifest["fingerprint"]["chunk_size"], manifest["n"]
        self.extra, self.cache_chunks = tuple(extra), cache_chunks
        self._cache: OrderedDict[int, dict[str, Any]] = OrderedDict()
        self._checked: set[int] = set()  # chunks whose SHA-256 this process has checked
        self.rows: torch.Tensor | None = None  # the run's rows this dataset shows; None: all, in order
        if only_successful:
            flags = [self._chunk(k)["success"] for k in range(len(self.entries))]
            self.rows = torch.cat(flags).nonzero().flatten()

    def __len__(self) -> int:
        return self.n if self.rows is None else int(self.rows.numel())

    def __getitem__(self, i: int) -> Any:
        size = len(self)
        if not -size <= i < size:
            raise IndexError(f"UAEDataset index {i} is out of range for {size} items")
        row = i % size if self.rows is None else int(self.rows[i])
        record, j = self._chunk(row // self.chunk_size), row % self.chunk_size
        adv = record["adv"][j].clone()
        rest = [_value(record["rest"][f], j, kind) for f, kind in enumerate(self.kinds)] if self.tuple else []
        extra = [record[name][j].clone() for name in self.extra]
        if not self.tuple and not extra:
            return adv
        return (adv, *rest, *extra)

    def _chunk(self, number: int) -> dict[str, Any]:
        """Chunk ``number``'s record, from the cache or opened now (checked at its first opening)."""
        if number in self._cache:
            self._cache.move_to_end(number)
            return self._cache[number]
        record = read_chunk(self.out_dir, self.entries[number], check=number not in self._checked, mmap=True)
        self._checked.add(number)
        self._cache[number] = {k: record[k] for k in (*FIELDS, "rest") if k in record}
        while len(self._cache) > self.cache_chunks:
            self._cache.popitem(last=False)
        return self._cache[number]

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (to DataLoader workers) without the cache: each process reads and checks its own chunks."""
        return {**self.__dict__, "_cache": OrderedDict()}


def _value(field: Any, j: int, kind: str) -> Any:
    """Row ``j`` of a carried field as the data gave it: a Python number, a tensor, or the stored value."""
    if kind == "number":
        return field[j].item()
    return field[j].clone() if kind == "tensor" else field[j]
