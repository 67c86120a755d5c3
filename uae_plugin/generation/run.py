"""``generate_dataset``: attack a data set chunk by chunk, on one process or a torch.distributed group."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ..distributed import Ranks
from ..minmax import MinMaxAttack
from ..validation import check_count, check_images, check_model_device
from .chunks import intact, verify, write_chunk
from .fingerprint import run_fingerprint
from .ledger import MANIFEST, fold_parts, new_ledger, open_folder, part_name, write_ledger


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
    manifest = _on_leader(ranks, lambda: open_folder(out, fingerprint))

    n = data.shape[0]
    n_chunks = (n + chunk_size - 1) // chunk_size
    mine = ranks.shard(n_chunks)
    if ranks.world == 1:  # the only writer: record straight into manifest.json
        ledger, ledger_path = manifest, out / MANIFEST
    else:
        ledger, ledger_path = new_ledger(fingerprint), out / part_name(ranks.rank)
    rows = {k: range(k * chunk_size, min((k + 1) * chunk_size, n)) for k in mine}
    todo = [k for k in mine if not intact(out, manifest["chunks"].get(str(k)), warn=True)]
    total = sum(map(len, rows.values()))
    kept = total - sum(len(rows[k]) for k in todo)
    show = progress and ranks.leader
    if show and kept:
        print(f"resuming {out}: {len(mine) - len(todo)} of {len(mine)} chunks ({kept} samples) kept from the last run")
    desc = "UAE" if ranks.world == 1 else f"UAE rank 0/{ranks.world}"
    # initial=kept: the rate counts only the samples attacked now; the attack's own bar moves within a chunk
    bar = tqdm(total=total, initial=kept, unit="sample", desc=desc, disable=not show)
    inner_progress, attack.progress = attack.progress, show
    error = None
    try:
        for number in todo:
            ledger["chunks"][str(number)] = write_chunk(attack, data, out, number, rows[number])
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

    return _on_leader(ranks, finish)
