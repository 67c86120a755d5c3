"""The online arms' augmentation: in every fine-tuning step, a fraction of the batch attacked against the model
as it is at that step.

For step ``k`` of a fine-tune with seed ``s``, ``m = round(fraction B)`` rows of the batch ``x: [B, ...]`` are
chosen by a permutation seeded with ``(s, k)`` (the same rows for ``online-uae`` and ``online-pgd``), and replaced
(:func:`uae_plugin.online.replace_rows`, as ``RandomUAE`` does) by

- ``online-uae``: their UAEs, ``MinMaxAttack(criterion(model), eps, steps)`` with the step's seed;
- ``online-pgd``: PGD examples, ``UnsupervisedPGD(criterion(model), eps, steps)`` (adversarial training,
  Madry et al. 2018: ``min_θ E max_{||x'-x||_∞ <= ε} L(x')``).

The fit trains on the replaced batch with the clean rows as targets. Cost per fine-tuning step, in model passes
over the batch: about ``1 + fraction (T + 2) v`` for UAEs (T steps, the start and the keep-best check) and
``1 + fraction T v`` for PGD, against 1 for a plain step, where ``v`` is the criterion's passes per row against
the fit's (1 for an autoencoder; ``n_views`` for a contrastive encoder, whose attack scores ``n_views`` pairs of
views per row where the SimCLR fit scores one).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..baselines import UnsupervisedPGD
from ..criteria import Criterion
from ..minmax import MinMaxAttack
from ..online import model_device, replace_rows

DEFAULT_ONLINE_STEPS = 5  # attack steps per fine-tuning step: the small online budget of RandomUAE benchmarks
DEFAULT_ONLINE_FRACTION = 0.5  # share of each batch attacked (RandomUAE's default p)
_STEP_STRIDE = 1_000_003  # a prime: (seed, step) -> one generator seed


def online_cost(kind: str, steps: int, fraction: float, views: int = 1) -> float:
    """The model passes of one fine-tuning step of this arm, in plain fine-tuning steps (module docstring)."""
    return 1.0 + fraction * (steps + (2 if kind == "online-uae" else 0)) * views


def views_per_row(criterion: Criterion) -> int:
    """``v`` of the module docstring: the criterion's model passes per row against a fit's."""
    return int(getattr(getattr(criterion, "views", None), "n_views", 1))


def chosen_rows(batch: int, fraction: float, seed: int, step: int) -> torch.Tensor:
    """``[batch]`` bool: ``round(fraction batch)`` rows chosen by a permutation seeded with ``(seed, step)``."""
    gen = torch.Generator().manual_seed(seed * _STEP_STRIDE + step)
    rows = torch.zeros(batch, dtype=torch.bool)
    rows[torch.randperm(batch, generator=gen)[: round(fraction * batch)]] = True
    return rows


class OnlineAttack:
    """``augment(model, x, step) -> x_in``: the hook :class:`~uae_plugin.trial.budget.AdamFit` calls on every batch
    of an online arm (module docstring). ``criterion_of(model)`` wraps the model being trained."""

    def __init__(
        self,
        kind: str,
        criterion_of: Callable[[nn.Module], Criterion],
        eps: float,
        steps: int,
        fraction: float,
        seed: int,
        attack_options: dict[str, Any],
    ) -> None:
        self.kind, self.criterion_of, self.eps, self.steps = kind, criterion_of, eps, steps
        self.fraction, self.seed, self.options = fraction, seed, attack_options
        self._model: nn.Module | None = None
        self._attack: Any = None

    def _attack_of(self, model: nn.Module) -> Any:
        if model is not self._model:  # a new fine-tune: a new copy of the model
            criterion = self.criterion_of(model)
            if self.kind == "online-uae":
                options = {**self.options, "eps": self.eps, "steps": self.steps}
                self._attack = MinMaxAttack(criterion, **options)
            else:
                self._attack = criterion
            self._model = model
        return self._attack

    def __call__(self, model: nn.Module, x: torch.Tensor, step: int) -> torch.Tensor:
        attack = self._attack_of(model)
        rows = chosen_rows(x.shape[0], self.fraction, self.seed, step).to(x.device)
        step_seed = self.seed * _STEP_STRIDE + step
        if self.kind == "online-uae":
            run = lambda chosen: attack(chosen, seed=step_seed)  # noqa: E731
        else:
            run = UnsupervisedPGD(attack, eps=self.eps, steps=self.steps, seed=step_seed)
        out, _ = replace_rows(x, rows, run, model_device(model, x))
        return out
