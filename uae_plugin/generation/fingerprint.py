"""What identifies a generation run, so that a rerun resumes the same run and nothing else.

A run is its explicit configuration, not a ``repr``: the attack's class, every
:class:`~uae_plugin.MinMaxSettings` field, its seed and ``model_training``; the
criterion and its options (:meth:`Criterion.config`); the pair source; the model's
class and weights (SHA-256 over every tensor of its ``state_dict``, buffers such as
batch-norm statistics included); the data (SHA-256 of its values); and the chunking.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from torch import nn

from ..minmax import MinMaxAttack
from .files import tensor_digest


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
    """What must match for chunks of an earlier run to be reused (JSON-normalised, as the manifest stores it)."""
    model = attack.criterion.model
    fingerprint = {
        "config": run_config(attack),
        "model": type(model).__name__,
        "model_sha256": tensor_digest(model.state_dict().values()),
        "data_sha256": tensor_digest([data]),
        "chunk_size": chunk_size,
        "n": int(data.shape[0]),
    }
    return json.loads(json.dumps(fingerprint))
