"""What every fine-tuned model of a trial is scored on: one fine-tune, several scores, each lower-is-better.

| metric | ``task="reconstruction"`` (autoencoder ``g``) | ``task="contrastive"`` (encoder ``f``, probe ``h``) |
|---|---|---|
| ``clean`` | ``mean_i ||x_i - g(x_i)||² / d`` | ``mean_i 1[argmax h(f(x_i)) != y_i]`` |
| ``adversarial`` | ``mean_i ||x_i - g(x'_i)||² / d`` | ``mean_i 1[argmax h(f(x'_i)) != y_i]`` |
| ``corruption`` | ``mean_{c,s} mean_i ||x_i - g(c_s(x_i))||² / d`` | ``mean_{c,s} mean_i 1[h(f(c_s(x_i))) != y_i]`` |
| ``knn`` | — | ``1 -`` cosine 10-NN accuracy, the training rows as the bank |

- ``x'_i = argmax_{||x' - x_i||_∞ <= test_eps, x' ∈ [0,1]}`` of the same error (``x_i`` itself when the attack
  found no worse point, so the adversarial score is never below the clean one on the same rows), by
  :class:`~uae_plugin.UnsupervisedPGD` (``ADVERSARIAL_STEPS`` steps of size ``2.5 ε / T``, a random start, a fixed
  seed): for an autoencoder it maximises the reconstruction error of ``x`` from ``x'``; for an encoder the cross
  entropy of the probe ``h ∘ f`` end to end (or torchattacks' AutoAttack, ``attack="autoattack"``).
- The probe ``h`` (contrastive): a linear layer fitted on the clean features ``f(x_train)`` of the frozen encoder
  (:mod:`.probe`, the RobustSSL / AdvCL protocol); ``clean`` and ``adversarial`` use the same probe, so they compare.
- ``c_s``: the common corruptions at severities 1-5 (:mod:`.corruptions`, kornia; image rows only). They do not
  depend on the model: made once per trial and kept (up to ``CORRUPTION_CACHE_BYTES``) for every model.
- ``robust_rows``: the robustness metrics (adversarial, corruption) may be scored on a seeded subset of the test
  rows (an attack per fine-tuned model costs ``T`` backward passes over them); ``clean`` always uses every row.

Each score is a :class:`Measured` float carrying its ``resolution`` (the smallest change it can show: ``1/n`` for
an error rate on ``n`` rows, None for a continuous error) and, for corruption, the per-corruption and per-severity
numbers. A user's ``score`` (one callable, or a dict of named callables) replaces or adds metrics by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from ..baselines import UnsupervisedPGD
from ..criteria import Reconstruction
from ..model_guard import borrowed
from ..validation import check_positive
from .budget import SCORE_BATCH
from .checks import describe_callable
from .rows import Data, count, on_device_of, take

METRICS = ("clean", "adversarial", "corruption", "knn")
ROBUSTNESS = ("adversarial", "corruption")
DEFAULT_METRICS = ("clean", "adversarial")  # torch only, any row shape; corruption needs images and kornia
DEFAULT_TEST_EPS = 8 / 255  # the L-inf budget of the robust-SSL anchors on natural images (RobustSSL, AdvCL)
ADVERSARIAL_STEPS = 20  # PGD-20, the anchors' attack
TEST_ATTACKS = ("pgd", "autoattack")
CORRUPTION_CACHE_BYTES = 256 * 2**20  # corrupted test rows kept for the next model, up to this size


class Measured(float):
    """A score: a float, with ``resolution`` (None or the smallest change it can show) and ``detail`` (JSON-ready,
    e.g. per-corruption numbers)."""

    resolution: float | None
    detail: Any

    def __new__(cls, value: float, resolution: float | None = None, detail: Any = None) -> Measured:
        made = super().__new__(cls, value)
        made.resolution, made.detail = resolution, detail
        return made


@dataclass(frozen=True)
class Robustness:
    """The settings of the robustness metrics (part of the trial's identity)."""

    test_eps: float = DEFAULT_TEST_EPS
    steps: int = ADVERSARIAL_STEPS
    attack: str = "pgd"
    seed: int = 0
    rows: int | None = None


class _Reconstructions:
    """Per-row errors ``||x - g(x_in)||² / d: [B]`` of an autoencoder, and PGD on that error."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    @torch.no_grad()
    def errors(self, x_in: torch.Tensor, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        with borrowed(self.model):
            return (self.model(x_in).float() - x.float()).pow(2).flatten(1).mean(1)

    def attack(self, x: torch.Tensor, y: torch.Tensor | None, robust: Robustness) -> torch.Tensor:
        return UnsupervisedPGD(Reconstruction(self.model), robust.test_eps, steps=robust.steps, seed=robust.seed)(x)


class _Probe:
    """Per-row 0/1 errors of a linear probe on the frozen encoder's clean features, and the probe attacked."""

    def __init__(self, encoder: nn.Module, x_train: Data, y_train: torch.Tensor, seed: int) -> None:
        from .knn import encode
        from .probe import ProbedEncoder, fit_probe

        features = encode(encoder, x_train)
        probe = fit_probe(features, y_train.to(features.device), seed=seed)
        self.model = encoder
        self.classifier = ProbedEncoder(encoder, probe)

    def errors(self, x_in: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        from .probe import probe_errors

        return probe_errors(self.classifier, x_in, y.to(x_in.device)).float()

    def attack(self, x: torch.Tensor, y: torch.Tensor, robust: Robustness) -> torch.Tensor:
        from .probe import attack_classifier

        y = y.to(x.device)
        return attack_classifier(
            self.classifier, x, y, robust.test_eps, attack=robust.attack, steps=robust.steps, seed=robust.seed
        )


class TrialMetrics:
    """``metrics(model, x_test) -> {name: Measured}``: every metric of a trial for one model (module docstring).

    ``custom``: the user's score callables by metric name (they replace a built-in of the same name).
    """

    def __init__(
        self,
        task: str,
        names: list[str],
        custom: dict[str, Callable[[nn.Module, Data], float]],
        robust: Robustness,
        n_test: int,
        x_train: Data = None,
        y_train: torch.Tensor | None = None,
        y_test: torch.Tensor | None = None,
    ) -> None:
        self.task, self.names, self.custom, self.robust = task, names, custom, robust
        self.x_train, self.y_train, self.y_test = x_train, y_train, y_test
        self.builtin = [n for n in names if n not in custom]
        self.rows = robust_subset(n_test, robust.rows)
        self._corrupted: dict[tuple[int, str, int], torch.Tensor] = {}  # the same for every model: made once
        self._cache_left = CORRUPTION_CACHE_BYTES

    def describe(self) -> dict[str, Any]:
        """What defines each metric (JSON-ready, for the trial's identity)."""
        out: dict[str, Any] = {n: describe_callable(f) for n, f in self.custom.items()}
        if set(self.builtin) & set(ROBUSTNESS):
            out["robustness"] = asdict(self.robust)
        return out

    def __call__(self, model: nn.Module, x_test: Data) -> dict[str, Measured]:
        from .checks import checked_score

        scores: dict[str, Measured] = {}
        for name, f in self.custom.items():
            value = f(model, x_test)
            resolution = getattr(value, "resolution", None) or getattr(f, "resolution", None)
            scores[name] = Measured(checked_score(value), resolution, getattr(value, "detail", None))
        if self.builtin:
            scores.update(self._builtin(model, x_test))
        return {n: scores[n] for n in self.names}

    def _builtin(self, model: nn.Module, x_test: Data) -> dict[str, Measured]:
        if self.task == "contrastive" and self.builtin == ["knn"]:
            return {"knn": self._knn(model, x_test)}
        judge: Any = (
            _Reconstructions(model)
            if self.task == "reconstruction"
            else _Probe(model, self.x_train, self.y_train, self.robust.seed)
        )
        rate = (lambda n: 1.0 / n) if self.task == "contrastive" else (lambda n: None)
        out: dict[str, Measured] = {}
        if "clean" in self.builtin:
            errors = torch.cat([judge.errors(x, x, y) for x, y, _ in self._batches(model, x_test, None)])
            out["clean"] = Measured(float(errors.mean()), rate(errors.numel()))
        if "adversarial" in self.builtin:  # per row the worse of x' and x: the attacker may keep x itself
            errors = torch.cat(
                [
                    torch.maximum(judge.errors(judge.attack(x, y, self.robust), x, y), judge.errors(x, x, y))
                    for x, y, _ in self._batches(model, x_test, self.rows)
                ]
            )
            out["adversarial"] = Measured(float(errors.mean()), rate(errors.numel()))
        if "corruption" in self.builtin:
            out["corruption"] = self._corruption(judge, x_test, rate)
        if "knn" in self.builtin:
            out["knn"] = self._knn(model, x_test)
        return out

    def _corruption(self, judge: Any, x_test: Data, rate: Callable[[int], float | None]) -> Measured:
        from .corruptions import CORRUPTIONS, SEVERITIES, corrupt

        sums = torch.zeros(len(CORRUPTIONS), len(SEVERITIES), dtype=torch.float64)
        n = 0
        for x, y, start in self._batches(judge.model, x_test, self.rows):
            for c, name in enumerate(CORRUPTIONS):
                for s, severity in enumerate(SEVERITIES):
                    key = (start, name, severity)
                    seed = (self.robust.seed * 1009 + c * 10 + severity) * 1_000_003 + start
                    corrupted = self._corrupted.get(key)
                    if corrupted is None or corrupted.device != x.device:
                        corrupted = corrupt(x, name, severity, seed)
                        if self._cache_left >= corrupted.numel() * corrupted.element_size():
                            self._corrupted[key] = corrupted
                            self._cache_left -= corrupted.numel() * corrupted.element_size()
                    sums[c, s] += float(judge.errors(corrupted, x, y).double().sum())
            n += x.shape[0]
        table = sums / n
        detail = {
            name: {str(sv): float(table[c, s]) for s, sv in enumerate(SEVERITIES)} for c, name in enumerate(CORRUPTIONS)
        }
        step = rate(n)  # an error rate over n rows, averaged over every corruption and severity
        return Measured(float(table.mean()), None if step is None else step / table.numel(), detail)

    def _knn(self, model: nn.Module, x_test: Data) -> Measured:
        from .contrastive import KNNError

        value = KNNError(self.x_train, self.y_train, self.y_test)(model, x_test)
        return Measured(value, 1.0 / count(x_test))

    def _batches(
        self, model: nn.Module, x_test: Data, rows: torch.Tensor | None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, int]]:
        """``(x, y, start)`` batches of ``x_test`` (its ``rows`` only, when given), ``x`` on ``model``'s device."""
        index = torch.arange(count(x_test)) if rows is None else rows
        for start in range(0, index.numel(), SCORE_BATCH):
            idx = index[start : start + SCORE_BATCH]
            y = None if self.y_test is None else self.y_test[idx]
            yield on_device_of(model, take(x_test, idx)), y, start


def robust_subset(n_test: int, rows: int | None) -> torch.Tensor | None:
    """The test rows of the robustness metrics: all (None), or ``rows`` drawn by a permutation seeded with 0, in
    increasing order."""
    if rows is None or rows >= n_test:
        return None
    return torch.randperm(n_test, generator=torch.Generator().manual_seed(0))[:rows].sort().values


def check_test_eps(test_eps: Any) -> float:
    value = check_positive(test_eps, "test_eps")
    if value > 1:
        raise ValueError(f"test_eps must be an L-inf budget in (0, 1] for images in [0, 1], got {test_eps!r}")
    return value
