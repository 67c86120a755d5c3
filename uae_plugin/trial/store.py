"""A trial's folder: what identifies the trial, and every score so far, so that a rerun resumes it.

    out/trial.json     {"format", "identity": {task, model, model_sha256, data digests, fit, metrics, budget, ...}}
    out/scores.json    {"baseline": {metric: score}, "scores": {metric: {arm: {seed: score}}},
                        "details": {metric: {arm: {seed: detail}}}, "resolution": {metric: r}, "stats": {eps: {...}}}
    out/uaes/eps-<ε>/  uae/ and nomi/ (generate_dataset runs), pgd.pt
    out/scores.rank-<r>.json  (a trial on several processes) the scores rank r > 0 made so far, folded into
                       scores.json by rank 0 when the fine-tunes end, or when the folder is next opened

Both JSON files are replaced atomically after every fine-tune; on a process group rank 0 is their only writer. A
rerun with the same identity, on any number of processes, reuses every score and every generated set (more seeds,
arms or metrics only add fine-tunes); one with a different identity is refused, naming the fields that differ,
before any work.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..generation import atomic_write

FORMAT = "uae-plugin trial 2"  # 2: scores per metric
IDENTITY, SCORES = "trial.json", "scores.json"
PARTS = "scores.rank-*.json"
MEASURED = ("scores", "details", "resolution")  # what a fine-tune records (and a part file holds)
STATE = ("baseline", *MEASURED, "stats")


def part_name(rank: int) -> str:
    """The file of the scores rank ``rank`` (> 0) of a process group made: ``scores.rank-<rank>.json``."""
    return f"scores.rank-{rank}.json"


def _write_json(path: Path, value: Any) -> None:
    atomic_write(path, lambda fh: fh.write(json.dumps(value, indent=1, sort_keys=True).encode()))


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not a readable trial file ({err}); move it away or choose another out") from err


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 60 else f"{text[:28]}...{text[-28:]}"


def _differences(there: dict[str, Any], now: dict[str, Any], prefix: str = "") -> list[str]:
    """``["lr: 0.001 there, 0.003 now", ...]``: every field that differs, nested dicts by their own fields."""
    out = []
    for key in sorted(there.keys() | now.keys()):
        a, b = there.get(key), now.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}: {_short(a)} there, {_short(b)} now")
    return out


def _put(state: dict[str, Any], arm: str, seed: int | str, metric: str, value: Any) -> None:
    """Record one score (a float, or a ``Measured`` with ``resolution`` and ``detail``) into ``state``."""
    state["resolution"][metric] = getattr(value, "resolution", None)
    state["scores"].setdefault(metric, {}).setdefault(arm, {})[str(seed)] = float(value)
    detail = getattr(value, "detail", None)
    if detail is not None:
        state["details"].setdefault(metric, {}).setdefault(arm, {})[str(seed)] = detail


def _merge(state: dict[str, Any], part: dict[str, Any]) -> None:
    """Add the scores, details and resolutions of a part file ``part`` to ``state`` (theirs win on a clash)."""
    for key in ("scores", "details"):
        for metric, by_arm in part.get(key, {}).items():
            for arm, by_seed in by_arm.items():
                state[key].setdefault(metric, {}).setdefault(arm, {}).update(by_seed)
    state["resolution"].update(part.get("resolution", {}))


class TrialFolder:
    """The folder ``out`` of a trial with ``identity`` (JSON-ready): opened, checked, then updated as scores come.
    With ``out=None`` the scores are kept in memory only.

    On a process group every rank holds one: rank 0's (``rank=0``, the default) opens, checks and writes
    ``trial.json`` and ``scores.json``; another rank's reads nothing and writes only its own fine-tunes' scores,
    to ``scores.rank-<rank>.json`` (folded into ``scores.json`` by rank 0), and gets the state from rank 0
    (:meth:`state`, :meth:`load`)."""

    def __init__(self, out: Path | None, identity: dict[str, Any], rank: int = 0) -> None:
        self.out, self.rank = out, rank
        self.baseline: dict[str, float] = {}
        self.scores: dict[str, dict[str, dict[str, float]]] = {}
        self.details: dict[str, dict[str, dict[str, Any]]] = {}
        self.resolution: dict[str, float | None] = {}
        self.stats: dict[str, dict[str, Any]] = {}
        self.own: dict[str, Any] = {key: {} for key in MEASURED}  # a rank > 0's own scores (its part file)
        if out is not None and rank == 0:
            self._open(out, json.loads(json.dumps(identity)))

    def _open(self, out: Path, identity: dict[str, Any]) -> None:
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(f"out {out} exists and is not a folder")
        found = out / IDENTITY
        if found.exists():
            saved = _read_json(found)
            if not isinstance(saved, dict) or not str(saved.get("format", "")).startswith("uae-plugin trial"):
                raise ValueError(f"{found} is not a uae-plugin trial file; choose another out")
            if saved["format"] != FORMAT:
                raise ValueError(
                    f"out {out} holds a trial of an older uae-plugin ({saved['format']}, scores of one metric); "
                    "choose another out"
                )
            differ = _differences(saved["identity"], identity)
            if differ:
                raise ValueError(
                    f"out {out} holds another trial ({'; '.join(differ)}); "
                    "choose another out, or rerun with the same model, data and settings to resume it"
                )
        out.mkdir(parents=True, exist_ok=True)
        _write_json(found, {"format": FORMAT, "identity": identity})
        state = _read_json(out / SCORES) if (out / SCORES).exists() else {}
        self.baseline = state.get("baseline", {})
        self.scores = state.get("scores", {})
        self.details = state.get("details", {})
        self.resolution = state.get("resolution", {})
        self.stats = state.get("stats", {})
        self.fold_parts()

    def state(self) -> dict[str, Any]:
        """Every score so far, the baseline, the resolutions and the generation stats (``scores.json``'s content)."""
        return {key: getattr(self, key) for key in STATE}

    def load(self, state: dict[str, Any]) -> None:
        """Take ``state`` (another rank's :meth:`state`) as this folder's; nothing is written."""
        for key in STATE:
            setattr(self, key, state[key])

    def fold_parts(self, parts: list[dict[str, Any]] | None = None) -> None:
        """Rank 0: add the other ranks' scores (``parts``: their :attr:`own`; default: read from their part files)
        to the state and ``scores.json``, then delete the part files (those of a killed run are folded in when the
        folder is next opened, by any number of processes)."""
        if self.rank != 0:
            return
        files = [] if self.out is None else sorted(self.out.glob(PARTS))
        for part in parts if parts is not None else [_read_json(f) for f in files]:
            _merge(self.state(), part)
        if parts or files:
            self.save()
        for f in files:
            f.unlink(missing_ok=True)

    def uae_folder(self, eps: float) -> Path | None:
        return None if self.out is None else self.out / "uaes" / f"eps-{eps:g}"

    def done(self, arm: str, seed: int, metrics: list[str]) -> bool:
        """Whether the fine-tune of ``arm`` and ``seed`` has a score for every metric asked."""
        return all(str(seed) in self.scores.get(m, {}).get(arm, {}) for m in metrics)

    def holds_more(self, arms: list[str], seeds: list[int], metrics: list[str]) -> dict[str, list[str]]:
        """What the folder holds beyond the arms, seeds and metrics asked: ``{"arms": [...], "seeds": [...],
        "metrics": [...]}`` (only the non-empty)."""
        held_metrics = [m for m in self.scores if m not in metrics]
        held_arms = sorted({a for per in self.scores.values() for a in per} - set(arms))
        held_seeds = sorted(
            {s for per in self.scores.values() for by_seed in per.values() for s in by_seed} - {str(s) for s in seeds},
            key=int,
        )
        more = {"arms": held_arms, "seeds": held_seeds, "metrics": held_metrics}
        return {k: v for k, v in more.items() if v}

    def has_baseline(self, metrics: list[str]) -> bool:
        return all(m in self.baseline for m in metrics)

    def record(self, arm: str | None, seed: int | None, scores: dict[str, Any]) -> None:
        """Keep ``{metric: Measured}`` of ``arm`` and ``seed`` (``arm=None``: the given model before fine-tuning)."""
        for metric, value in scores.items():
            if arm is None:
                self.resolution[metric] = getattr(value, "resolution", None)
                self.baseline[metric] = float(value)
                continue
            _put(self.state(), arm, seed, metric, value)
            if self.rank != 0:
                _put(self.own, arm, seed, metric, value)
        self.save()

    def save(self) -> None:
        """Rank 0: replace ``scores.json`` with the state; another rank: its part file with its own scores."""
        if self.out is None:
            return
        if self.rank == 0:
            _write_json(self.out / SCORES, self.state())
        elif self.own["scores"]:
            _write_json(self.out / part_name(self.rank), self.own)
