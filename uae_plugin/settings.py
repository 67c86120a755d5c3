"""Named settings of the MinMax attack: the authors' ``reference`` and our defaults."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from .estimators import check_estimator, concrete_estimator
from .validation import check_count, check_non_negative, check_positive

DELTA_OPTIMIZERS = ("sgd", "adam")


@dataclass(frozen=True)
class MinMaxSettings:
    """Every knob of :class:`~uae_plugin.MinMaxAttack` (docs/algorithm.md, section 4).

    eps: L-inf bound on delta. The default, 0.1, measured best for augmentation
    (``benchmarks/new_user_defaults.py``: harmless where the paper's 1.0 made
    retrained autoencoders worse); the reference preset keeps the paper's 1.0.
    steps: outer MinMax iterations T. mine_steps: inner Adam steps K on the
    statistics networks per outer step. mine_lr: their Adam learning rate.
    step_size: alpha, the step on delta. delta_optimizer: "adam" (default) or
    "sgd" (plain gradient descent, the reference's). beta, c0, gamma_power:
    dual ascent ``c <- max(0, (1 - beta t^-gamma_power) c + beta max(f, 0))``.
    The default c0 is 10 (the reference's 1e-3): the exact MI term is tens of
    nats while reconstruction gaps are hundredths, and from 1e-3 the dual ascent
    never caught up within T = 40, so at eps 0.1 only 27% (conv AE) and 55%
    (dense AE) of the attacks succeeded; from 10 all do, with lower MI
    (``benchmarks/dual_start.py``).
    n_pairs, pair_dim: projection mode's N projections to k dimensions.
    hidden, out: statistics-network widths. conv_filters: 2x2 filters in
    front of map-valued pairs (0: none). pool: average-pool conv maps to at
    most pool x pool (None: full size). hidden_activation: ReLU between the
    two linear layers of a branch (the reference has none). init_scale:
    delta starts uniform in [-init_scale, init_scale] (None: eps).
    estimator: "gaussian" (closed form, exact for projection pairs), "mine"
    (the paper's DV bound) or "auto" (gaussian where MI is minimised, mine for
    the supervised attack, which maximises it); see :mod:`uae_plugin.estimators`. centre: pixel-centre
    projection inputs and centre conv maps, so pairs carry dependence and not
    shared brightness (the reference does not). mi_weight: weight w of the MI
    term, ``F = c max(f, 0) + w I``; 0 is the no-MI ablation.
    """

    eps: float = 0.1
    steps: int = 40
    mine_steps: int = 2
    mine_lr: float = 1e-3
    step_size: float = 0.05
    delta_optimizer: str = "adam"
    beta: float = 0.1
    c0: float = 10.0
    gamma_power: float = 0.25
    n_pairs: int = 64
    pair_dim: int = 16
    hidden: int = 64
    out: int = 10
    conv_filters: int = 0
    pool: int | None = 8
    hidden_activation: bool = True
    init_scale: float | None = None
    estimator: str = "auto"
    centre: bool = True
    mi_weight: float = 1.0

    def validated(self) -> MinMaxSettings:
        check_positive(self.eps, "eps")
        check_count(self.steps, "steps")
        check_count(self.mine_steps, "mine_steps", minimum=0)
        check_positive(self.mine_lr, "mine_lr")
        check_positive(self.step_size, "step_size")
        if self.delta_optimizer not in DELTA_OPTIMIZERS:
            raise ValueError(f"delta_optimizer must be one of {DELTA_OPTIMIZERS}, got {self.delta_optimizer!r}")
        check_positive(self.beta, "beta")
        check_non_negative(self.c0, "c0")
        check_non_negative(self.gamma_power, "gamma_power")
        check_count(self.n_pairs, "n_pairs", minimum=2)
        check_count(self.pair_dim, "pair_dim", minimum=2)
        check_count(self.hidden, "hidden")
        check_count(self.out, "out")
        check_count(self.conv_filters, "conv_filters", minimum=0)
        if self.pool is not None:
            check_count(self.pool, "pool", minimum=2)
        if self.init_scale is not None:
            check_non_negative(self.init_scale, "init_scale")
        check_estimator(self.estimator)
        if not isinstance(self.centre, bool):
            raise TypeError(f"centre must be True or False, got {self.centre!r}")
        check_non_negative(self.mi_weight, "mi_weight")
        return self


# The authors' settings (IBM/UAE, data-reconstruction script): docs/algorithm.md, section 4.
REFERENCE = MinMaxSettings(
    eps=1.0,  # every published run
    steps=40,  # T for autoencoders (20 for SimCLR, 1000 for supervised)
    mine_steps=20,  # K inner MINE steps
    mine_lr=1.5e-5,  # Adam on the statistics network
    step_size=0.01,  # alpha, plain gradient descent
    delta_optimizer="sgd",
    beta=0.1,
    c0=1e-3,
    gamma_power=0.25,  # gamma_t = t^(-1/4)
    n_pairs=500,  # random projections ...
    pair_dim=128,  # ... to 128 dimensions
    hidden=512,
    out=10,
    conv_filters=16,  # Conv2d(16, 2x2) on each map in conv mode
    pool=None,  # full-size maps
    hidden_activation=False,  # Linear(512) -> Linear(10), no activation between
    init_scale=None,  # delta ~ U[-eps, eps]
    estimator="mine",  # the DV bound ...
    centre=False,  # ... on uncentred projections
    mi_weight=1.0,
)

DEFAULT = MinMaxSettings()

PRESETS: dict[str, MinMaxSettings] = {"default": DEFAULT, "reference": REFERENCE}


def resolve_settings(
    preset: str | MinMaxSettings, overrides: dict[str, Any], maximize_mi: bool = False
) -> MinMaxSettings:
    """A preset by name (or a settings object) with the given fields replaced, ``estimator="auto"`` made concrete."""
    if isinstance(preset, MinMaxSettings):
        base = preset
    elif preset in PRESETS:
        base = PRESETS[preset]
    else:
        raise ValueError(f"preset must be one of {sorted(PRESETS)} or a MinMaxSettings, got {preset!r}")
    known = {f.name for f in fields(MinMaxSettings)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise TypeError(f"unknown MinMaxAttack setting(s) {unknown}; known: {sorted(known)}")
    settings = replace(base, **overrides).validated()
    return replace(settings, estimator=concrete_estimator(settings.estimator, maximize_mi))
