"""Data-set-scale UAE generation: chunked, streamed, resumable, checksummed, optionally on many processes.

``generate_dataset(attack, data, out_dir)`` attacks ``data`` chunk by chunk
and writes one file per chunk plus ``manifest.json``:

    out_dir/chunk-00000.pt   {"adv", "success", "mi", "gap", "index"}  (torch.save of tensors only)
    out_dir/manifest.json    {"format", "fingerprint": {..., "n", "chunk_size"},
                              "chunks": {"0": {"file", "sha256", "rows"}}}

Sample ``i`` is attacked with ``index=i``, so its UAE is the same whatever the
chunking, the number of processes and however often the run is interrupted.
Each file is written to a temporary file and moved into place with
``os.replace`` (atomic), so a killed run leaves no partial file that a later
run would trust; the temporary files such a kill leaves behind
(``.<name>.<random>.tmp``) are deleted when the next run starts. On a rerun, a
chunk is kept only if its file's SHA-256 matches the manifest; a missing chunk
is generated, a corrupted one is regenerated with a warning naming the file.
Memory stays flat: only one chunk of data and results is held at a time.

On a torch.distributed process group (``torchrun``; every rank calls
``generate_dataset`` with the same arguments and the same ``out_dir``, a
folder all ranks share):

- ranks given a different attack, model, data or chunk_size than rank 0 are
  refused (every rank raises the same ValueError) before any chunk is attacked;
- chunk ``k`` is attacked by rank ``k % world_size`` only;
- rank 0 alone writes ``manifest.json``: at the start (after refusing a
  different run, folding in what an interrupted run left, deleting stale
  temporaries) and at the end (merging every rank's chunks and checking every
  chunk's SHA-256); every rank raises the same error if any rank fails;
- rank ``r`` records each chunk it finishes in its own ``manifest.rank-<r>.json``,
  so no two processes ever write the same file. A killed run can be resumed
  with any number of processes, or in one: the next run folds the part files
  into ``manifest.json`` before sharding what is still missing, and removes them.

A single process writes ``manifest.json`` itself after every chunk. One run at
a time per ``out_dir``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .distributed import Ranks
from .minmax import MinMaxAttack
from .validation import check_count, check_images, check_model_device

MANIFEST = "manifest.json"
FORMAT = "uae-plugin/generation/1"
PART = re.compile(r"manifest\.rank-(\d+)\.json")
STALE_TEMP = re.compile(r"\.(manifest(\.rank-\d+)?\.json|chunk-\d+\.pt)\..+\.tmp")
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


def _read_ledger(path: Path) -> dict[str, Any] | None:
    """``manifest.json`` or a rank's part file, or ``None`` if absent; anything else is refused with ValueError."""
    if not path.exists():
        return None
    try:
        ledger = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not a readable manifest ({err}); move it away or choose another out_dir") from err
    if not isinstance(ledger, dict) or not isinstance(ledger.get("chunks"), dict):
        raise ValueError(f"{path} is not a uae-plugin manifest; choose another out_dir")
    return ledger


def _read_manifest(out_dir: Path) -> dict[str, Any] | None:
    return _read_ledger(out_dir / MANIFEST)


def _write_ledger(path: Path, ledger: dict[str, Any]) -> None:
    _atomic_write(path, lambda fh: fh.write(json.dumps(ledger, indent=1, sort_keys=True).encode()))


def _new_ledger(fingerprint: dict[str, Any]) -> dict[str, Any]:
    return {"format": FORMAT, "fingerprint": fingerprint, "chunks": {}}


def part_name(rank: int) -> str:
    """The file in which rank ``rank`` of a distributed run records the chunks it has finished."""
    return f"manifest.rank-{rank}.json"


def _part_files(out_dir: Path) -> list[Path]:
    found = (p for p in out_dir.glob("manifest.rank-*.json") if PART.fullmatch(p.name))
    return sorted(found, key=lambda p: int(PART.fullmatch(p.name).group(1)))  # type: ignore[union-attr]


def remove_stale_temporaries(out_dir: Path) -> list[str]:
    """Delete the ``.<name>.<random>.tmp`` files a killed ``_atomic_write`` left; returns their names.

    Only temporaries of the files this module writes (chunks, manifest, part files) are touched.
    """
    stale = sorted(p for p in out_dir.glob(".*.tmp") if STALE_TEMP.fullmatch(p.name))
    for path in stale:
        path.unlink(missing_ok=True)
    return [p.name for p in stale]


def _different_run(where: Path) -> ValueError:
    return ValueError(
        f"{where} holds UAEs of a different run (data, model, attack settings or chunk_size differ); "
        "use another out_dir or delete that one"
    )


def _fold_parts(out_dir: Path, manifest: dict[str, Any], must_write: bool = False) -> dict[str, Any]:
    """Merge every part file into ``manifest``, write ``manifest.json``, then delete the part files.

    With no part file, ``manifest.json`` is written only if ``must_write``.

    A part file's entries replace the manifest's (they are newer); a part file of another run is refused.
    Crash-safe: the part files go only once the merged manifest is on disk, and folding twice changes nothing.
    """
    parts = _part_files(out_dir)
    if not parts and not must_write:
        return manifest
    for path in parts:
        part = _read_ledger(path)
        if part is None or part.get("fingerprint") != manifest["fingerprint"]:
            raise _different_run(path)
        manifest["chunks"].update(part["chunks"])
    _write_ledger(out_dir / MANIFEST, manifest)
    for path in parts:
        path.unlink(missing_ok=True)
    return manifest


def _open_folder(out: Path, fingerprint: dict[str, Any]) -> dict[str, Any]:
    """Rank 0 / the single process, before any chunk: the folder's manifest, created or checked and completed."""
    blocker = next((p for p in (out, *out.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise NotADirectoryError(f"out_dir {out} cannot be created: {blocker} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK):
        raise PermissionError(f"out_dir {out} is not writable; choose another folder")
    remove_stale_temporaries(out)
    manifest = _read_manifest(out)
    if manifest is not None and manifest.get("fingerprint") != fingerprint:
        raise _different_run(out)
    return _fold_parts(out, manifest or _new_ledger(fingerprint), must_write=manifest is None)


def _intact(out_dir: Path, entry: dict[str, Any] | None) -> bool:
    """The chunk named by the manifest ``entry`` is recorded, present and matches its SHA-256."""
    if entry is None:
        return False
    path = out_dir / entry["file"]
    return path.exists() and _sha256(path) == entry["sha256"]


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


def _write_chunk(attack: MinMaxAttack, data: torch.Tensor, out: Path, number: int, rows: range) -> dict[str, Any]:
    """Attack rows ``rows`` of ``data`` with their global indices, write chunk ``number``; its manifest entry."""
    index = torch.arange(rows.start, rows.stop)
    res = attack(data[rows.start : rows.stop], index=index.to(data.device))
    record = {"adv": res.adv, "success": res.success, "mi": res.mi, "gap": res.gap, "index": index}
    record = {k: v.detach().cpu().contiguous() for k, v in record.items()}
    name = f"chunk-{number:05d}.pt"
    _atomic_write(out / name, lambda fh: torch.save(record, fh))
    return {"file": name, "sha256": _sha256(out / name), "rows": [rows.start, rows.stop]}


def _verify(out: Path, manifest: dict[str, Any], n_chunks: int) -> None:
    """Every chunk ``0 .. n_chunks-1`` is recorded and its file matches its SHA-256, else ValueError."""
    for number in range(n_chunks):
        entry = manifest["chunks"].get(str(number))
        if not _intact(out, entry):
            raise ValueError(
                f"chunk {number} in {out} is missing or does not match its checksum after generation "
                "(all ranks must write to one shared folder); rerun the same command to regenerate it"
            )


def _check_arguments(attack: Any, data: Any, chunk_size: Any) -> None:
    if not isinstance(attack, MinMaxAttack):
        raise TypeError(f"attack must be a MinMaxAttack, got {type(attack).__name__}")
    if attack.seed is None:
        raise ValueError("attack.seed must be an int for dataset generation: a resumable run must be reproducible")
    if not torch.is_tensor(data) or data.dim() < 2 or data.shape[0] == 0:
        raise ValueError(f"data must be a non-empty tensor [N, ...], got {getattr(data, 'shape', type(data).__name__)}")
    check_count(chunk_size, "chunk_size")
    check_model_device(attack.criterion.model, data, "data")
    check_images(data, "data")


def _same_on_every_rank(ranks: Ranks, fingerprint: dict[str, Any] | None) -> ValueError | None:
    """An error naming the first rank whose attack, model, data or chunk_size differ from rank 0's."""
    fingerprints = ranks.gather(fingerprint)
    for rank, other in enumerate(fingerprints):
        if other != fingerprints[0]:
            differ = sorted(k for k in other if other[k] != fingerprints[0].get(k))
            return ValueError(
                f"rank {rank} was given a different {', '.join(differ)} than rank 0; "
                "every rank must call generate_dataset with the same attack, model, data and chunk_size"
            )
    return None


def _on_leader(ranks: Ranks, step: Callable[[], Any]) -> Any:
    """Run ``step()`` on rank 0 only; every rank gets its result, or raises its error (collective)."""
    result, error = None, None
    if ranks.leader:
        try:
            result = step()
        except Exception as err:  # shared with every rank by agree(), which re-raises it
            error = err
    ranks.agree(error)
    return ranks.share(result)


def generate_dataset(
    attack: MinMaxAttack,
    data: torch.Tensor,
    out_dir: str | os.PathLike,
    chunk_size: int = 256,
    progress: bool = True,
    *,
    distributed: bool | None = None,
) -> dict[str, Any]:
    """UAEs for every row of ``data: [N, ...]`` in [0, 1], written to ``out_dir``; returns the manifest.

    ``attack`` must have an int ``seed`` (a resumable run must be deterministic).
    A rerun with the same attack, model, data and ``chunk_size`` continues where
    the last one stopped (with any number of processes); with anything different
    it raises ``ValueError`` rather than mixing two runs in one folder.

    ``distributed=None`` runs on the default torch.distributed process group
    when one is initialised, else in this process alone; ``False`` forces one
    process. On a group this is a collective: every rank must call it with the
    same arguments and a shared ``out_dir``; rank ``r`` attacks chunks
    ``k % world_size == r``, only rank 0 shows progress, every rank returns the
    merged, verified manifest or raises the same error (see the module docstring).
    """
    ranks = Ranks.current(distributed)
    out = Path(out_dir)
    fingerprint, error = None, None
    try:
        _check_arguments(attack, data, chunk_size)
        fingerprint = run_fingerprint(attack, data, chunk_size)
    except Exception as err:  # shared with every rank by agree(), which re-raises it
        error = err
    ranks.agree(error)
    ranks.agree(_same_on_every_rank(ranks, fingerprint))
    manifest = _on_leader(ranks, lambda: _open_folder(out, fingerprint))

    n = data.shape[0]
    n_chunks = (n + chunk_size - 1) // chunk_size
    mine = ranks.shard(n_chunks)
    if ranks.world == 1:  # the only writer: record straight into manifest.json
        ledger, ledger_path = manifest, out / MANIFEST
    else:
        ledger, ledger_path = _new_ledger(fingerprint), out / part_name(ranks.rank)
    rows = {k: range(k * chunk_size, min((k + 1) * chunk_size, n)) for k in mine}
    desc = "UAE" if ranks.world == 1 else f"UAE rank 0/{ranks.world}"
    bar = tqdm(total=sum(map(len, rows.values())), unit="sample", desc=desc, disable=not (progress and ranks.leader))
    error = None
    try:
        for number in mine:
            if not _chunk_is_valid(out, manifest["chunks"].get(str(number))):
                ledger["chunks"][str(number)] = _write_chunk(attack, data, out, number, rows[number])
                _write_ledger(ledger_path, ledger)
            bar.update(len(rows[number]))
    except Exception as err:  # shared with every rank by agree(), which re-raises it
        error = err
    finally:
        bar.close()
    ranks.agree(error)  # also the barrier: every rank has finished its chunks

    def finish() -> dict[str, Any]:
        merged = _fold_parts(out, manifest) if ranks.world > 1 else manifest
        _verify(out, merged, n_chunks)
        return merged

    return _on_leader(ranks, finish)


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
        if not _intact(out, entry):
            raise ValueError(f"chunk {number} in {out} is missing or corrupted; rerun the generation to complete it")
        record = torch.load(out / entry["file"], weights_only=True)
        for k in FIELDS:
            parts[k].append(record[k])
    return {k: torch.cat(v) for k, v in parts.items()}
