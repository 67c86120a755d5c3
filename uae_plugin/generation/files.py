"""Files a generation run writes: atomic replacement, checksums, and the temporaries a killed write leaves.

``atomic_write(path, write)``: ``write(fh)`` goes to ``.<name>.<random>.tmp`` beside ``path``, is fsynced, and
``os.replace`` moves it into place, so a reader sees the old file or the new one, never a part.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

STALE_TEMP = re.compile(r"\.(manifest(\.rank-\d+)?\.json|chunk-\d+\.pt)\..+\.tmp")
FULL_BELOW = 1 << 20  # a failed write with less free space than this (1 MiB) is a full disk


class DiskFullError(OSError):
    """A file could not be written because its disk is full; the files written before it are intact."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path: Path, write: Any) -> None:
    """Write via ``write(file_object)`` to a temporary file beside ``path``, fsync, then ``os.replace``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; the file gets the mode open() would give it
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        full = _disk_full(err, path.parent)  # before the temporary's space is given back
        Path(tmp).unlink(missing_ok=True)
        if full:
            raise DiskFullError(
                errno.ENOSPC,
                f"could not write {path}: the disk is full. The files written before it are intact: "
                "free some space and rerun the same command to continue",
            ) from None
        raise


def _umask() -> int:
    """The process's umask (read by setting it, then put back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _disk_full(err: BaseException, folder: Path) -> bool:
    """ENOSPC, or a failed write (torch.save reports a full disk as a RuntimeError) with under 1 MiB left."""
    if isinstance(err, OSError) and err.errno == errno.ENOSPC:
        return True
    if not isinstance(err, (OSError, RuntimeError)):
        return False
    try:
        return shutil.disk_usage(folder).free < FULL_BELOW
    except OSError:
        return False


def tensor_digest(tensors: Iterable[torch.Tensor]) -> str:
    """SHA-256 over each tensor's shape, dtype and bytes (read in 4 MiB blocks)."""
    digest = hashlib.sha256()
    for t in tensors:
        digest.update(f"{tuple(t.shape)}|{t.dtype};".encode())
        raw = t.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
        for start in range(0, raw.numel(), 1 << 22):
            digest.update(raw[start : start + (1 << 22)].numpy().tobytes())
    return digest.hexdigest()


def remove_stale_temporaries(out_dir: Path) -> list[str]:
    """Delete the ``.<name>.<random>.tmp`` files a killed ``atomic_write`` left; returns their names.

    Only temporaries of the files this module writes (chunks, manifest, part files) are touched.
    """
    stale = sorted(p for p in out_dir.glob(".*.tmp") if STALE_TEMP.fullmatch(p.name))
    for path in stale:
        path.unlink(missing_ok=True)
    return [p.name for p in stale]
