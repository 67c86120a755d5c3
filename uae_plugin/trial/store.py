"""A trial's folder: what identifies the trial, and every score so far, so that a rerun resumes it.

    out/trial.json     {"format", "identity": {task, model, model_sha256, data digests, fit, score, budget, ...}}
    out/scores.json    {"baseline", "scores": {arm: {seed: score}}, "stats": {eps: {...}}}
    out/uaes/eps-<ε>/  uae/ and nomi/ (generate_dataset runs), pgd.pt

Both JSON files are replaced atomically after every fine-tune. A rerun with the same identity reuses every score
and every generated set (more seeds or more arms only add fine-tunes); one with a different identity is refused,
naming the fields that differ, before any work.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..generation import atomic_write

FORMAT = "uae-plugin trial 1"
IDENTITY, SCORES = "trial.json", "scores.json"


def _write_json(path: Path, value: Any) -> None:
    atomic_write(path, lambda fh: fh.write(json.dumps(value, indent=1, sort_keys=True).encode()))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable trial file ({err}); move it away or choose another out") from err


class TrialFolder:
    """The folder ``out`` of a trial with ``identity`` (JSON-ready): opened, checked, then updated as scores come.
    With ``out=None`` the scores are kept in memory only."""

    def __init__(self, out: Path | None, identity: dict[str, Any]) -> None:
        self.out = out
        self.baseline: float | None = None
        self.scores: dict[str, dict[str, float]] = {}
        self.stats: dict[str, dict[str, Any]] = {}
        if out is not None:
            self._open(out, json.loads(json.dumps(identity)))

    def _open(self, out: Path, identity: dict[str, Any]) -> None:
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(f"out {out} exists and is not a folder")
        found = out / IDENTITY
        if found.exists():
            saved = _read_json(found)
            if not isinstance(saved, dict) or saved.get("format") != FORMAT:
                raise ValueError(f"{found} is not a uae-plugin trial file; choose another out")
            differ = sorted(
                k for k in identity.keys() | saved["identity"].keys() if saved["identity"].get(k) != identity.get(k)
            )
            if differ:
                raise ValueError(
                    f"out {out} holds a trial with a different {', '.join(differ)}; "
                    "choose another out, or rerun with the same model, data and settings to resume it"
                )
        out.mkdir(parents=True, exist_ok=True)
        _write_json(found, {"format": FORMAT, "identity": identity})
        state = _read_json(out / SCORES) if (out / SCORES).exists() else {}
        self.baseline = state.get("baseline")
        self.scores = state.get("scores", {})
        self.stats = state.get("stats", {})

    def uae_folder(self, eps: float) -> Path | None:
        return None if self.out is None else self.out / "uaes" / f"eps-{eps:g}"

    def done(self, arm: str, seed: int) -> bool:
        return str(seed) in self.scores.get(arm, {})

    def record(self, arm: str, seed: int, score: float) -> None:
        self.scores.setdefault(arm, {})[str(seed)] = score
        self.save()

    def save(self) -> None:
        if self.out is None:
            return
        _write_json(self.out / SCORES, {"baseline": self.baseline, "scores": self.scores, "stats": self.stats})
