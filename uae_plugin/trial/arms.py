"""The arms of a trial: what each one trains on, and the key it is reported under.

- ``none``: the training set alone (the reference every verdict is against);
- ``copy``: the training set plus a second clean copy of the augmented rows (controls for a larger set);
- ``noise@ε``: plus Gaussian noise with each UAE's L2 size (:func:`~uae_plugin.matched_gaussian_noise`);
- ``nomi@ε``: plus the same attack with ``mi_weight=0`` (the no-MI ablation);
- ``pgd@ε``: plus :class:`~uae_plugin.UnsupervisedPGD` examples at the same L-inf ε and steps;
- ``uae@ε``: plus UAEs, ``MinMaxAttack`` at ε.

Every arm but ``none`` and ``copy`` exists once per ε, so several ε give several UAE arms, each with its own
noise and no-MI controls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..validation import check_positive

ARMS = ("none", "copy", "noise", "nomi", "pgd", "uae")
PER_EPS = ("noise", "nomi", "pgd", "uae")
DEFAULT_ARMS = ARMS
DEFAULT_EPS = (0.1, 0.3)  # the library default, and the budget where UAEs helped overfitting dense AEs


@dataclass(frozen=True)
class Arm:
    """One arm: its ``kind`` (one of ``ARMS``) and, for the kinds in ``PER_EPS``, its ``eps``."""

    kind: str
    eps: float | None = None

    @property
    def key(self) -> str:
        """``none``, ``copy`` or ``<kind>@<eps>``, e.g. ``uae@0.3``."""
        return self.kind if self.eps is None else f"{self.kind}@{self.eps:g}"


def plan_arms(arms: Sequence[str], eps: Sequence[float]) -> list[Arm]:
    """The arms to run, ``none`` first (always run: it is the reference), then ``copy``, then per ε in the order
    given: noise, nomi, pgd, uae. Unknown or repeated names and ε, and ``eps <= 0``, raise ``ValueError``."""
    if isinstance(arms, str) or not isinstance(arms, Sequence) or not arms:
        raise ValueError(f"arms must be a non-empty sequence of names from {ARMS}, got {arms!r}")
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise ValueError(f"arms: unknown arm {unknown[0]!r}; choose from {', '.join(ARMS)}")
    if len(set(arms)) != len(arms):
        raise ValueError(f"arms must not repeat a name, got {list(arms)}")
    if isinstance(eps, (int, float)):
        eps = (eps,)
    if not isinstance(eps, Sequence) or not eps:
        raise ValueError(f"eps must be a non-empty sequence of L-inf budgets > 0, got {eps!r}")
    budgets = [check_positive(e, "eps") for e in eps]
    if len({f"{e:g}" for e in budgets}) != len(budgets):
        raise ValueError(f"eps must not repeat a budget, got {list(eps)}")
    plan = [Arm("none")] + ([Arm("copy")] if "copy" in arms else [])
    for e in budgets:
        plan += [Arm(kind, e) for kind in PER_EPS if kind in arms]
    return plan
