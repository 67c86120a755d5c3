"""The ledger of a generation run: ``manifest.json`` and, on a process group, one part file per rank.

manifest.json    {"format", "fingerprint": {"config", "model", "model_sha256", "data", "chunk_size"}, "n",
                  "chunks": {"0": {"file", "sha256", "rows", "input_sha256"}}}
manifest.rank-<r>.json   the same shape: the chunks rank r finished (folded into manifest.json by rank 0)
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from .files import atomic_write, remove_stale_temporaries
from .fingerprint import differences

MANIFEST = "manifest.json"
FORMAT = "uae-plugin/generation/3"  # 3: data identified chunk by chunk (input_sha256), n outside the fingerprint
# 2: the fingerprint is an explicit configuration (was the attack's repr)
PART = re.compile(r"manifest\.rank-(\d+)\.json")


def read_ledger(path: Path) -> dict[str, Any] | None:
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


def read_manifest(out_dir: Path) -> dict[str, Any] | None:
    return read_ledger(out_dir / MANIFEST)


def write_ledger(path: Path, ledger: dict[str, Any]) -> None:
    atomic_write(path, lambda fh: fh.write(json.dumps(ledger, indent=1, sort_keys=True).encode()))


def new_ledger(fingerprint: dict[str, Any], n: int) -> dict[str, Any]:
    return {"format": FORMAT, "fingerprint": fingerprint, "n": n, "chunks": {}}


def part_name(rank: int) -> str:
    """The file in which rank ``rank`` of a distributed run records the chunks it has finished."""
    return f"manifest.rank-{rank}.json"


def part_files(out_dir: Path) -> list[Path]:
    found = (p for p in out_dir.glob("manifest.rank-*.json") if PART.fullmatch(p.name))
    return sorted(found, key=lambda p: int(PART.fullmatch(p.name).group(1)))  # type: ignore[union-attr]


def different_run(where: Path, there: Any, here: dict[str, Any]) -> ValueError:
    """The error for a folder (or part file) of another run, naming the fields that differ and both values."""
    if not isinstance(there, dict) or there.get("format") != FORMAT or not isinstance(there.get("fingerprint"), dict):
        found = there.get("format") if isinstance(there, dict) else None
        return ValueError(
            f"{where} holds UAEs of a different run, written in format {found!r} (this version writes {FORMAT!r}); "
            "use another out_dir or delete that one"
        )
    names = differences(there["fingerprint"], here)
    old = there["fingerprint"]
    shown = "; ".join(f"{name}: {_at(old, name)!r} there, {_at(here, name)!r} now" for name in names[:3])
    more = f" (and {len(names) - 3} more)" if len(names) > 3 else ""
    return ValueError(f"{where} holds UAEs of a different run: {shown}{more}; use another out_dir or delete that one")


def _at(fingerprint: dict[str, Any], name: str) -> Any:
    """The value at a dotted name, shortened to 60 characters; ``None`` where it is missing."""
    value: Any = fingerprint
    for key in name.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    text = repr(value)
    return value if len(text) <= 60 else text[:57] + "..."


def fold_parts(out_dir: Path, manifest: dict[str, Any], must_write: bool = False) -> dict[str, Any]:
    """Merge every part file into ``manifest``, write ``manifest.json``, then delete the part files.

    With no part file, ``manifest.json`` is written only if ``must_write``.

    A part file's entries replace the manifest's (they are newer); a part file of another run is refused.
    Crash-safe: the part files go only once the merged manifest is on disk, and folding twice changes nothing.
    """
    parts = part_files(out_dir)
    if not parts and not must_write:
        return manifest
    for path in parts:
        part = read_ledger(path)
        if part is None or part.get("fingerprint") != manifest["fingerprint"]:
            raise different_run(path, part, manifest["fingerprint"])
        manifest["chunks"].update(part["chunks"])
    write_ledger(out_dir / MANIFEST, manifest)
    for path in parts:
        path.unlink(missing_ok=True)
    return manifest


def open_folder(out: Path, fingerprint: dict[str, Any], n: int) -> dict[str, Any]:
    """Rank 0 / the single process, before any chunk: the folder's manifest, created or checked and completed,
    now for ``n`` rows (entries of chunks past them stay, to be reused if the data grows again)."""
    blocker = next((p for p in (out, *out.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise NotADirectoryError(f"out_dir {out} cannot be created: {blocker} is a file, not a folder")
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK):
        raise PermissionError(f"out_dir {out} is not writable; choose another folder")
    remove_stale_temporaries(out)
    manifest = read_manifest(out)
    if manifest is not None and (manifest.get("format") != FORMAT or manifest.get("fingerprint") != fingerprint):
        raise different_run(out, manifest, fingerprint)
    grown = manifest is None or manifest.get("n") != n
    manifest = manifest or new_ledger(fingerprint, n)
    manifest["n"] = n
    return fold_parts(out, manifest, must_write=grown)
