"""What identifies a generation run, so that a rerun resumes the same run and nothing else.

A run is its explicit configuration, not a ``repr``: the attack's class, every
:class:`~uae_plugin.MinMaxSettings` field, its seed and ``model_training``; the
criterion and its options (:meth:`Criterion.config`); the pair source; the model's
class and weights (SHA-256 over every tensor of its ``state_dict``, buffers such as
batch-norm statistics included); the structure of the data's items (shape and dtype of
``x``, the kinds of the fields carried with it); and the chunking.

The data's values are not in the fingerprint, so that identifying a run needs no pass
over the data and a run can be extended by more rows: each chunk's manifest entry
records the SHA-256 of the rows it was made from (``input_sha256``), and a chunk is
reused only when the rows read now have that digest.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from torch import nn

from ..minmax import MinMaxAttack
from .files import tensor_digest
from .sources import Rows


def describe_similarity(similarity: Any, model: nn.Module) -> dict[str, Any]:
    """A pair source by what it is: its name; a module by its place in the model (or its weights if outside it);
    a callable by its qualified name (and its weights if it is a module), never by its address in memory."""
    if isinstance(similarity, str):
        return {"kind": similarity}
    if isinstance(similarity, nn.Module):
        inside = next((name for name, m in model.named_modules() if m is similarity), None)
        if inside is not None:
            return {"kind": "module of the model", "name": inside}
        found = {"kind": "module", "class": type(similarity).__qualname__}
        return {**found, "sha256": tensor_digest(similarity.state_dict().values())}
    target = getattr(similarity, "__func__", similarity)
    name = getattr(target, "__qualname__", type(target).__qualname__)
    return {"kind": "callable", "name": f"{getattr(target, '__module__', '?')}.{name}"}


def run_config(attack: MinMaxAttack) -> dict[str, Any]:
    """The attack as data: class, settings, seed, model mode, criterion with its options, pair source."""
    return {
        "attack": type(attack).__name__,
        "settings": asdict(attack.settings),
        "seed": attack.seed,
        "model_training": attack.model_training,
        "criterion": attack.criterion.config(),
        "similarity": describe_similarity(attack.similarity, attack.criterion.model),
    }


def run_fingerprint(attack: MinMaxAttack, data: Any, chunk_size: int) -> dict[str, Any]:
    """What must match for chunks of an earlier run to be reused (JSON-normalised, as the manifest stores it).

    ``data``: a tensor ``[N, ...]``, a map-style Dataset, or its :class:`~uae_plugin.generation.sources.Rows`;
    only its items' structure is read (item 0 and the last), never its rows.
    """
    model = attack.criterion.model
    rows = data if isinstance(data, Rows) else Rows(data)
    fingerprint = {
        "config": run_config(attack),
        "model": type(model).__name__,
        "model_sha256": tensor_digest(model.state_dict().values()),
        "data": rows.describe(),
        "chunk_size": chunk_size,
    }
    return json.loads(json.dumps(fingerprint))


def differences(there: Any, here: Any, prefix: str = "") -> list[str]:
    """The dotted names of the fields in which two fingerprints differ, e.g. ``['config.settings.steps']``."""
    if isinstance(there, dict) and isinstance(here, dict):
        found = []
        for key in sorted(set(there) | set(here), key=str):
            found += differences(there.get(key), here.get(key), f"{prefix}{key}.")
        return found
    return [] if there == here else [prefix.rstrip(".") or "fingerprint"]


def rank_mismatch(ranks: Any, value: Any, call: str) -> ValueError | None:
    """A collective: an error naming the first rank whose ``value`` (a fingerprint) differs from rank 0's, and the
    fields that differ, or None; ``call`` says what every rank must call alike (``"generate_dataset with the same
    attack, ..."``). ``ranks``: a :class:`~uae_plugin.distributed.Ranks`."""
    values = ranks.gather(value)
    for rank, other in enumerate(values):
        if other != values[0]:
            return ValueError(
                f"rank {rank} was given a different {', '.join(differences(values[0], other))} than rank 0; "
                f"every rank must call {call}"
            )
    return None
