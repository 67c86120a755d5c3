"""Data-set-scale UAE generation: chunked, streamed, resumable, checksummed.

``generate_dataset(attack, data, out_dir)`` attacks ``data`` chunk by chunk
and writes one file per chunk plus ``manifest.json``:

    out_dir/chunk-00000.pt   {"adv", "success", "mi", "gap", "index"}  (torch.save of tensors only)
    out_dir/manifest.json    {"fingerprint", "n", "chunk_size", "chunks": {"0": {"file", "sha256", "rows"}}}

Sample ``i`` is attacked with ``index=i``, so its UAE is the same whatever the
chunking and however often the run is interrupted. Each chunk is written to a
temporary file and moved into place with ``os.replace`` (atomic), then the
manifest is rewritten the same way, so a killed run leaves no partial file
that a later run would trust. On a rerun, a chunk is kept only if its file's
SHA-256 matches the manifest; a missing chunk is generated, a corrupted one is
regenerated with a warning naming the file. Memory stays flat: only one chunk
of data and results is held at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .minmax import MinMaxAttack
from .validation import check_count

MANIFEST = "manifest.json"
FIELDS = ("adv", "success", "mi", "gap", "index")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write(path: Path, write: Any) -> None:
    """Write via ``write(file_object)`` to a temporary file beside ``path``, fsync, then ``os.replace``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def tensor_digest(tensors: Iterable[torch.Tensor]) -> str:
    """SHA-256 over each tensor's shape, dtype and bytes (read in 4 MiB blocks)."""
    digest = hashlib.sha256()
    for t in tensors:
        digest.update(f"{tuple(t.shape)}|{t.dtype};".encode())
        raw = t.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
        for start in range(0, raw.numel(), 1 << 22):
            digest.update(raw[start : start + (1 << 22)].numpy().tobytes())
    return digest.hexdigest()


def run_fingerprint(attack: MinMaxAttack, data: torch.Tensor, chunk_size: int) -> dict[str, Any]:
    """What must match for chunks of an earlier run to be reused: data, model weights, attack, chunking."""
    model = attack.criterion.model
    return {
        "data_sha256": tensor_digest([data]),
        "attack": repr(attack),
        "model": type(model).__name__,
        "model_sha256": tensor_digest(model.state_dict().values()),
        "chunk_size": chunk_size,
        "n": int(data.shape[0]),
    }


def _read_manifest(out_dir: Path) -> dict[str, Any] | None:
    path = out_dir / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not a readable manifest ({err}); move it away or choose another out_dir") from err
    if not isinstance(manifest, dict) or not isinstance(manifest.get("chunks"), dict):
        raise ValueError(f"{path} is not a uae-plugin manifest; choose another out_dir")
    return manifest


def _write_manifest(out_dir: Path, manifest: dict[str, Any]) -> None:
    _atomic_write(out_dir / MANIFEST, lambda fh: fh.write(json.dumps(manifest, indent=1, sort_keys=True).encode()))


def _chunk_is_valid(out_dir: Path, entry: dict[str, Any] | None) -> bool:
    """The chunk named by ``entry`` exists and matches its checksum; warns when the file is corrupted."""
    if entry is None:
        return False
    path = out_dir / entry["file"]
    if not path.exists():
        return False
    if _sha256(path) != entry["sha256"]:
        warnings.warn(f"{path} does not match its checksum in {MANIFEST}: regenerating it", stacklevel=3)
        return False
    return True


def generate_dataset(
    attack: MinMaxAttack,
    data: torch.Tensor,
    out_dir: str | os.PathLike,
    chunk_size: int = 256,
    progress: bool = True,
) -> dict[str, Any]:
    """UAEs for every row of ``data: [N, ...]`` in [0, 1], written to ``out_dir``; returns the manifest.

    ``attack`` must have an int ``seed`` (a resumable run must be deterministic).
    A rerun with the same attack, model, data and ``chunk_size`` continues where
    the last one stopped; with anything different it raises ``ValueError``
    rather than mixing two runs in one folder.
    """
    if not isinstance(attack, MinMaxAttack):
        raise TypeError(f"attack must be a MinMaxAttack, got {type(attack).__name__}")
    if attack.seed is None:
        raise ValueError("attack.seed must be an int for dataset generation: a resumable run must be reproducible")
    if not torch.is_tensor(data) or data.dim() < 2 or data.shape[0] == 0:
        raise ValueError(f"data must be a non-empty tensor [N, ...], got {getattr(data, 'shape', type(data).__name__)}")
    check_count(chunk_size, "chunk_size")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK):
        raise PermissionError(f"out_dir {out} is not writable; choose another folder")
    fingerprint = run_fingerprint(attack, data, chunk_size)
    manifest = _read_manifest(out)
    if manifest is None:
        manifest = {"format": "uae-plugin/generation/1", "fingerprint": fingerprint, "chunks": {}}
        _write_manifest(out, manifest)
    elif manifest.get("fingerprint") != fingerprint:
        raise ValueError(
            f"{out} holds UAEs of a different run (data, model, attack settings or chunk_size differ); "
            "use another out_dir or delete that one"
        )
    n = data.shape[0]
    starts = range(0, n, chunk_size)
    bar = tqdm(total=n, unit="sample", desc="UAE", disable=not progress)
    for number, start in enumerate(starts):
        stop = min(start + chunk_size, n)
        key = str(number)
        if _chunk_is_valid(out, manifest["chunks"].get(key)):
            bar.update(stop - start)
            continue
        index = torch.arange(start, stop)
        res = attack(data[start:stop], index=index.to(data.device))
        record = {"adv": res.adv, "success": res.success, "mi": res.mi, "gap": res.gap, "index": index}
        record = {k: v.detach().cpu().contiguous() for k, v in record.items()}
        name = f"chunk-{number:05d}.pt"
        _atomic_write(out / name, lambda fh, rec=record: torch.save(rec, fh))
        manifest["chunks"][key] = {"file": name, "sha256": _sha256(out / name), "rows": [start, stop]}
        _write_manifest(out, manifest)
        bar.update(stop - start)
    bar.close()
    return manifest


def load_generated(out_dir: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All chunks of a finished run, concatenated: ``{"adv", "success", "mi", "gap", "index"}``.

    Every chunk is checked against its SHA-256 and read with ``torch.load(weights_only=True)``
    (tensors only, nothing unpickled); a missing or corrupted chunk raises ``ValueError``.
    """
    out = Path(out_dir)
    manifest = _read_manifest(out)
    if manifest is None:
        raise ValueError(f"{out} has no {MANIFEST}: not a generated UAE data set")
    n, size = manifest["fingerprint"]["n"], manifest["fingerprint"]["chunk_size"]
    parts: dict[str, list[torch.Tensor]] = {k: [] for k in FIELDS}
    for number in range((n + size - 1) // size):
        entry = manifest["chunks"].get(str(number))
        if entry is None or not (out / entry["file"]).exists() or _sha256(out / entry["file"]) != entry["sha256"]:
            raise ValueError(f"chunk {number} in {out} is missing or corrupted; rerun the generation to complete it")
        record = torch.load(out / entry["file"], weights_only=True)
        for k in FIELDS:
            parts[k].append(record[k])
    return {k: torch.cat(v) for k, v in parts.items()}
