"""The chunk files of a generation run: ``chunk-<k>.pt`` holds ``{"adv", "success", "mi", "gap", "index"}``,
and ``"rest"`` (the fields carried with each ``x``: a tensor or a list per field) when the data's items are tuples.

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
from .ledger import FORMAT, MANIFEST, read_manifest
from .sources import cat_rest

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


def chunk_rows(number: int, n: int, chunk_size: int) -> range:
    """The rows of chunk ``number`` in a run of ``n`` rows."""
    return range(number * chunk_size, min((number + 1) * chunk_size, n))


def reusable(out_dir: Path, entry: dict[str, Any] | None, rows: range, warn: bool = False) -> bool:
    """The chunk is :func:`intact` and was made from exactly ``rows`` (a run's last, partial chunk is not reused
    once the data has grown past it); whether its input matches is checked when its rows are read."""
    return intact(out_dir, entry, warn) and entry["rows"] == [rows.start, rows.stop]  # type: ignore[index]


def write_chunk(
    attack: MinMaxAttack, x: torch.Tensor, rest: list[Any] | None, out: Path, number: int, rows: range, digest: str
) -> dict[str, Any]:
    """Attack ``x: [len(rows), ...]`` (rows ``rows`` of the data) with their global indices, write chunk
    ``number`` with ``rest`` (None: the items are bare tensors); its manifest entry, ``digest`` the input's."""
    index = torch.arange(rows.start, rows.stop)
    res = attack(x, index=index.to(x.device))
    record: dict[str, Any] = {"adv": res.adv, "success": res.success, "mi": res.mi, "gap": res.gap, "index": index}
    record = {k: v.detach().cpu().contiguous() for k, v in record.items()}
    if rest is not None:
        record["rest"] = [v.detach().cpu().contiguous() if torch.is_tensor(v) else v for v in rest]
    name = f"chunk-{number:05d}.pt"
    atomic_write(out / name, lambda fh: torch.save(record, fh))
    return {"file": name, "sha256": sha256(out / name), "rows": [rows.start, rows.stop], "input_sha256": digest}


def verify(out: Path, manifest: dict[str, Any], n_chunks: int) -> None:
    """Every chunk ``0 .. n_chunks-1`` is recorded for its rows and its file matches its SHA-256, else ValueError."""
    n, size = manifest["n"], manifest["fingerprint"]["chunk_size"]
    for number in range(n_chunks):
        if not reusable(out, manifest["chunks"].get(str(number)), chunk_rows(number, n, size)):
            raise ValueError(
                f"chunk {number} in {out} is missing or does not match its checksum after generation "
                "(all ranks must write to one shared folder); rerun the same command to regenerate it"
            )


def finished_run(out_dir: str | os.PathLike) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The manifest of a finished run in ``out_dir`` and the entries of its chunks, in order.

    Raises ``ValueError`` when there is no manifest or a chunk of its ``n`` rows is not recorded.
    """
    out = Path(out_dir)
    manifest = read_manifest(out)
    if manifest is None:
        raise ValueError(f"{out} has no {MANIFEST}: not a generated UAE data set")
    n, size = manifest.get("n"), manifest.get("fingerprint", {}).get("chunk_size")
    if manifest.get("format") != FORMAT or not isinstance(n, int) or not isinstance(size, int):
        raise ValueError(f"{out / MANIFEST} was written by another version of uae-plugin; regenerate the UAEs")
    entries = []
    for number in range((n + size - 1) // size):
        entry = manifest["chunks"].get(str(number))
        rows = chunk_rows(number, n, size)
        if entry is None or entry["rows"] != [rows.start, rows.stop]:
            raise ValueError(f"chunk {number} in {out} is missing; rerun the generation to complete it")
        entries.append(entry)
    return manifest, entries


def read_chunk(out_dir: Path, entry: dict[str, Any], check: bool = True, mmap: bool = False) -> dict[str, Any]:
    """One chunk file, after checking it against its SHA-256 unless ``check=False`` (``ValueError`` when missing
    or corrupted); ``mmap=True`` maps it, so that only the rows used are read from disk."""
    if check and not intact(out_dir, entry):
        raise ValueError(f"{out_dir / entry['file']} is missing or corrupted; rerun the generation to regenerate it")
    return torch.load(out_dir / entry["file"], weights_only=True, mmap=mmap)


def load_generated(out_dir: str | os.PathLike) -> dict[str, Any]:
    """All chunks of a finished run, concatenated: ``{"adv", "success", "mi", "gap", "index"}`` (tensors ``[N, ...]``),
    plus ``"rest"`` (one tensor ``[N, ...]`` or list per field carried with ``x``) when the data's items were tuples.

    Every chunk is checked against its SHA-256 and read with ``torch.load(weights_only=True)``
    (tensors only, nothing unpickled); a missing or corrupted chunk raises ``ValueError``. Holds the whole
    run in memory: for large runs read it through :class:`~uae_plugin.UAEDataset`.
    """
    out = Path(out_dir)
    manifest, entries = finished_run(out)
    records = [read_chunk(out, entry) for entry in entries]
    result: dict[str, Any] = {k: torch.cat([r[k] for r in records]) for k in FIELDS}
    if manifest["fingerprint"]["data"]["items"]["tuple"]:
        result["rest"] = cat_rest([r["rest"] for r in records])
    return result
