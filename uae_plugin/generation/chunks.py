"""The chunk files of a generation run: ``chunk-<k>.pt`` holds ``{"adv", "success", "mi", "gap", "index"}``.

Tensors only (``torch.save``), read back with ``torch.load(weights_only=True)``; every file is checked against
the SHA-256 the manifest records for it before it is trusted.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch

from ..minmax import MinMaxAttack
from .files import atomic_write, sha256
from .ledger import MANIFEST, read_manifest

FIELDS = ("adv", "success", "mi", "gap", "index")


def intact(out_dir: Path, entry: dict[str, Any] | None, warn: bool = False) -> bool:
    """The chunk named by the manifest ``entry`` is recorded, present and matches its SHA-256; with ``warn``,
    a file that fails its checksum is named in a warning (the caller regenerates it)."""
    if entry is None:
        return False
    path = out_dir / entry["file"]
    if not path.exists():
        return False
    if sha256(path) != entry["sha256"]:
        if warn:
            warnings.warn(f"{path} does not match its checksum in {MANIFEST}: regenerating it", stacklevel=3)
        return False
    return True


def write_chunk(attack: MinMaxAttack, data: torch.Tensor, out: Path, number: int, rows: range) -> dict[str, Any]:
    """Attack rows ``rows`` of ``data`` with their global indices, write chunk ``number``; its manifest entry."""
    index = torch.arange(rows.start, rows.stop)
    res = attack(data[rows.start : rows.stop], index=index.to(data.device))
    record = {"adv": res.adv, "success": res.success, "mi": res.mi, "gap": res.gap, "index": index}
    record = {k: v.detach().cpu().contiguous() for k, v in record.items()}
    name = f"chunk-{number:05d}.pt"
    atomic_write(out / name, lambda fh: torch.save(record, fh))
    return {"file": name, "sha256": sha256(out / name), "rows": [rows.start, rows.stop]}


def verify(out: Path, manifest: dict[str, Any], n_chunks: int) -> None:
    """Every chunk ``0 .. n_chunks-1`` is recorded and its file matches its SHA-256, else ValueError."""
    for number in range(n_chunks):
        entry = manifest["chunks"].get(str(number))
        if not intact(out, entry):
            raise ValueError(
                f"chunk {number} in {out} is missing or does not match its checksum after generation "
                "(all ranks must write to one shared folder); rerun the same command to regenerate it"
            )


def load_generated(out_dir: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All chunks of a finished run, concatenated: ``{"adv", "success", "mi", "gap", "index"}``.

    Every chunk is checked against its SHA-256 and read with ``torch.load(weights_only=True)``
    (tensors only, nothing unpickled); a missing or corrupted chunk raises ``ValueError``.
    """
    out = Path(out_dir)
    manifest = read_manifest(out)
    if manifest is None:
        raise ValueError(f"{out} has no {MANIFEST}: not a generated UAE data set")
    n, size = manifest["fingerprint"]["n"], manifest["fingerprint"]["chunk_size"]
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in FIELDS}
    for number in range((n + size - 1) // size):
        entry = manifest["chunks"].get(str(number))
        if not intact(out, entry):
            raise ValueError(f"chunk {number} in {out} is missing or corrupted; rerun the generation to complete it")
        record = torch.load(out / entry["file"], weights_only=True)
        for k in FIELDS:
            parts[k].append(record[k])
    return {k: torch.cat(v) for k, v in parts.items()}
