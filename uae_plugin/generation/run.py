"""``generate_dataset``: attack a data set chunk by chunk, on one process or a torch.distributed group."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..distributed import Ranks
from ..minmax import MinMaxAttack
from ..validation import check_count, check_images, check_model_device
from .chunks import chunk_rows, reusable, verify, write_chunk
from .fingerprint import rank_mismatch, run_fingerprint
from .ledger import MANIFEST, fold_parts, new_ledger, open_folder, part_name, write_ledger
from .sources import Rows, rows_digest


def _check_arguments(attack: Any, data: Any, chunk_size: Any, num_workers: Any) -> Rows:
    if not isinstance(attack, MinMaxAttack):
        raise TypeError(f"attack must be a MinMaxAttack, got {type(attack).__name__}")
    if attack.seed is None:
        raise ValueError("attack.seed must be an int for dataset generation: a resumable run must be reproducible")
    rows = Rows(data)
    check_count(chunk_size, "chunk_size")
    check_count(num_workers, "num_workers", minimum=0)
    if rows.is_tensor:
        check_model_device(attack.criterion.model, data, "data")
    return rows


def _identity(rows: Rows, fingerprint: dict[str, Any]) -> dict[str, Any]:
    """What every rank must agree on: the run, the number of rows and the digest of the first and last row."""
    ends = [rows.read(range(0, 1)), rows.read(range(rows.n - 1, rows.n))]
    return {"run": fingerprint, "n": rows.n, "first and last rows": [rows_digest(*end) for end in ends]}


def _on_device(x: torch.Tensor, attack: MinMaxAttack) -> torch.Tensor:
    """A chunk read from a Dataset moves to the model's device (a tensor's rows are already where it is)."""
    weight = next(iter(attack.criterion.model.parameters()), None)
    return x if weight is None or weight.device.type == "meta" else x.to(weight.device)


def _checked(x: torch.Tensor, rows: range) -> torch.Tensor:
    """``check_images`` on one chunk; its error says which rows (the chunks before it are kept)."""
    try:
        check_images(x, "data")
    except (TypeError, ValueError) as err:
        where = f"rows {rows.start}-{rows.stop - 1} of " if rows.start else ""
        raise type(err)(f"{where}{err}") from None
    return x


def generate_dataset(
    attack: MinMaxAttack,
    data: torch.Tensor | Dataset,
    out_dir: str | os.PathLike,
    chunk_size: int = 256,
    progress: bool = True,
    *,
    distributed: bool | None = None,
    num_workers: int = 0,
) -> dict[str, Any]:
    """UAEs for every row of ``data``, written to ``out_dir``; returns the manifest.

    ``data``: a tensor ``[N, ...]`` in [0, 1], or a map-style ``torch.utils.data.Dataset`` of ``N`` items,
    each ``x`` (a float tensor in [0, 1], the same shape for all) or a tuple ``(x, *rest)``: ``x`` is
    attacked, ``rest`` (labels, ids, ...) is stored with it (see :mod:`.sources`). Rows are read chunk by
    chunk, never all at once; a Dataset through a ``DataLoader`` with ``num_workers`` decoding processes.
    A Dataset gives bit-identical UAEs to the tensor of its rows.

    ``attack`` must have an int ``seed`` (a resumable run must be deterministic).
    A rerun with the same attack, model, item structure and ``chunk_size`` continues where
    the last one stopped (with any number of processes), reusing a chunk only when the rows
    read now have the digest recorded for it; more rows (data grown, a larger limit) extend
    the run. Anything else different raises ``ValueError`` naming the field, rather than
    mixing two runs in one folder.

    ``distributed=None`` runs on the default torch.distributed process group
    when one is initialised, else in this process alone; ``False`` forces one
    process. On a group this is a collective: every rank must call it with the
    same arguments and a shared ``out_dir``; rank ``r`` attacks chunks
    ``k % world_size == r``, only rank 0 shows progress, every rank returns the
    merged, verified manifest or raises the same error (see the module docstring).
    """
    ranks = Ranks.current(distributed)
    out = Path(out_dir)
    fingerprint, identity, error = None, None, None
    try:
        source = _check_arguments(attack, data, chunk_size, num_workers)
        fingerprint = run_fingerprint(attack, source, chunk_size)
        identity = _identity(source, fingerprint)
    except Exception as err:  # shared with every rank by agree(), which re-raises it
        error = err
    ranks.agree(error)
    ranks.agree(rank_mismatch(ranks, identity, "generate_dataset with the same attack, model, data and chunk_size"))
    n = source.n
    manifest = ranks.on_leader(lambda: open_folder(out, fingerprint, n))

    n_chunks = (n + chunk_size - 1) // chunk_size
    mine = ranks.shard(n_chunks)
    if ranks.world == 1:  # the only writer: record straight into manifest.json
        ledger, ledger_path = manifest, out / MANIFEST
    else:
        ledger, ledger_path = new_ledger(fingerprint, n), out / part_name(ranks.rank)
    rows = {k: chunk_rows(k, n, chunk_size) for k in mine}
    done = {k for k in mine if reusable(out, manifest["chunks"].get(str(k)), rows[k], warn=True)}
    total = sum(map(len, rows.values()))
    kept = sum(len(rows[k]) for k in done)
    show = progress and ranks.leader
    if show and kept:
        print(f"resuming {out}: {len(done)} of {len(mine)} chunks ({kept} samples) kept from the last run")
    desc = "UAE" if ranks.world == 1 else f"UAE rank 0/{ranks.world}"
    # initial=kept: the rate counts only the samples attacked now; one bar: the attack's per-step bar stays off
    bar = tqdm(total=total, initial=kept, unit="sample", desc=desc, disable=not show)
    inner_progress, attack.progress = attack.progress, False
    error = None
    try:
        for number, (x, rest) in zip(mine, source.chunks(list(rows.values()), num_workers), strict=True):
            digest, entry = rows_digest(x, rest), manifest["chunks"].get(str(number))
            if number in done and entry.get("input_sha256") == digest:
                continue
            if number in done:
                warnings.warn(
                    f"the rows {rows[number].start}-{rows[number].stop - 1} of the data differ from those "
                    f"{entry['file']} in {out} was made from: regenerating it",
                    stacklevel=2,
                )
            x = _checked(_on_device(x, attack), rows[number])
            carried = rest if source.structure["tuple"] else None
            ledger["chunks"][str(number)] = write_chunk(attack, x, carried, out, number, rows[number], digest)
            write_ledger(ledger_path, ledger)
            bar.update(len(rows[number]))
    except Exception as err:  # shared with every rank by agree(), which re-raises it
        error = err
    finally:
        bar.close()
        attack.progress = inner_progress
    ranks.agree(error)  # also the barrier: every rank has finished its chunks

    def finish() -> dict[str, Any]:
        merged = fold_parts(out, manifest) if ranks.world > 1 else manifest
        verify(out, merged, n_chunks)
        return merged

    return ranks.on_leader(finish)
