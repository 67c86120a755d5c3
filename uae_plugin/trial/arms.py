"""The arms of a trial: what each one trains on, and the key it is reported under.

- ``none``: the training set alone (the reference every verdict is against);
- ``copy``: the training set plus a second clean copy of the augmented rows (controls for a larger set);
- ``noise@ε``: plus Gaussian noise with each UAE's L2 size (:func:`~uae_plugin.matched_gaussian_noise`);
- ``nomi@ε``: plus the same attack with ``mi_weight=0`` (the no-MI ablation);
- ``pgd@ε``: plus :class:`~uae_plugin.UnsupervisedPGD` examples at the same L-inf ε and steps;
- ``uae@ε``: plus UAEs, ``MinMaxAttack`` at ε;
- ``online-uae@ε``: no extra rows; in every fine-tuning step a stated fraction of the batch is replaced by UAEs
  made against the model as it is at that step (the ``RandomUAE`` use, trialled);
- ``online-pgd@ε``: the same rows replaced by PGD examples instead (adversarial training, Madry et al. 2018).

The offline arms (noise, nomi, pgd, uae) are made once from the given model; the online ones follow the model as
it trains, so they cost the attack's steps in every fine-tuning step and are opt-in.

Every arm but ``none`` and ``copy`` exists once per ε, so several ε give several UAE arms, each with its own
noise and no-MI controls.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..validation import check_positive

ARMS = ("none", "copy", "noise", "nomi", "pgd", "uae", "online-uae", "online-pgd")
PER_EPS = ("noise", "nomi", "pgd", "uae", "online-uae", "online-pgd")
OFFLINE = ("noise", "nomi", "pgd", "uae")  # made once per ε from the given model
ONLINE = ("online-uae", "online-pgd")  # made in every fine-tuning step against the model being trained
DEFAULT_ARMS = ("none", "copy", "noise", "nomi", "pgd", "uae")
# One ε by default, the budget where UAEs helped over-fitting dense and sparse autoencoders: with 5 seeds, the six
# default arms cost the 30 fine-tunes that two ε at 3 seeds did, and Holm over 5 comparisons still decides changes
# of about 1-3% at the seed spreads of the bundled models (docs/trial.md).
DEFAULT_EPS = (0.3,)


@dataclass(frozen=True)
class Arm:
    """One arm: its ``kind`` (one of ``ARMS``) and, for the kinds in ``PER_EPS``, its ``eps``."""

    kind: str
    eps: float | None = None

    @property
    def online(self) -> bool:
        return self.kind in ONLINE

    @property
    def key(self) -> str:
        """``none``, ``copy`` or ``<kind>@<eps>``, e.g. ``uae@0.3``."""
        return self.kind if self.eps is None else f"{self.kind}@{self.eps:g}"


def plan_arms(arms: Sequence[str], eps: Sequence[float]) -> list[Arm]:
    """The arms to run, ``none`` first (always run: it is the reference), then ``copy``, then per ε in the order
    given: noise, nomi, pgd, uae, online-uae, online-pgd. Unknown or repeated names and ε, and ``eps <= 0``,
    raise ``ValueError``."""
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
