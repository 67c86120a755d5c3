"""``uae demo``: the trial (:func:`uae_plugin.run_trial`) on the bundled digits and reference autoencoders.

Per model (conv, dense, sparse): build it from ``model_seed``, pre-train it for ``pretrain_steps`` Adam steps on
``n_train`` real MNIST digits (``mean (x - g(x))^2``, plus ``l1 mean |h|`` for the sparse model), then run the
trial on it: every arm fine-tunes a copy for ``fit_steps`` steps with the same loss, scored by test MSE on
``n_test`` held-out digits. Scarce data (300 digits) and over-parameterised dense models: the regime where UAEs
helped in earlier measurements (docs/results.md).

Example:
    >>> reports = run_demo(QUICK, out_dir="demo-out/", progress=False)
    >>> print(reports["dense"].table())
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..trial import DEFAULT_ARMS, DEFAULT_EPS, DEFAULT_SEEDS, AdamFit, TrialReport, run_trial
from .data import mnist_split
from .models import ConvAutoencoder, DenseAutoencoder, SparseAutoencoder

MODELS = {"conv": ConvAutoencoder, "dense": DenseAutoencoder, "sparse": SparseAutoencoder}


@dataclass(frozen=True)
class DemoConfig:
    """Sizes and settings of the demo; every field is JSON-serialisable (stored in ``metrics.json``).

    n_train/n_test: digits of ``mnist_split(seed=data_seed)``. models: from ``conv, dense, sparse``, each built
    from ``model_seed`` and pre-trained ``pretrain_steps`` steps. seeds, eps, arms, fit_steps, attack_options:
    the trial's (:func:`uae_plugin.run_trial`). sparse_l1: the sparse model's code penalty weight.
    """

    n_train: int = 300
    n_test: int = 1000
    data_seed: int = 0
    models: tuple[str, ...] = ("conv", "dense", "sparse")
    model_seed: int = 0
    pretrain_steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-3
    sparse_l1: float = 1e-2  # 36% of code units active on test digits (1e-3: 66%, 0: 77%)
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    eps: tuple[float, ...] = DEFAULT_EPS
    arms: tuple[str, ...] = (*DEFAULT_ARMS, "online-pgd")  # online-uae too would pass 5 minutes on 2 cores
    fit_steps: int = 200
    attack_options: dict[str, Any] = field(default_factory=dict)
    metrics: tuple[str, ...] = ("clean", "adversarial", "corruption")
    test_eps: float = 0.1  # the digits convention (MNIST L-inf 0.1-0.3); 8/255 is the natural-image one
    robust_rows: int | None = 100  # the robustness metrics on 100 of the test digits: the demo stays in minutes

    def __post_init__(self) -> None:
        bad = [m for m in self.models if m not in MODELS]
        if bad or not self.models:
            raise ValueError(f"models must be a non-empty subset of {tuple(MODELS)}, got {self.models!r}")


DEFAULT = DemoConfig()
QUICK = DemoConfig(
    n_train=48,
    n_test=64,
    seeds=(0, 1),
    pretrain_steps=30,
    fit_steps=10,
    eps=(0.3,),
    attack_options={"steps": 5},
    robust_rows=16,
)


def autoencoder_loss(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean (t - g(x))^2``, plus ``l1 mean |h(x)|`` for a :class:`SparseAutoencoder` (``t``: the fit's target)."""
    if isinstance(model, SparseAutoencoder):
        code = model.encode(x)
        return F.mse_loss(model.decode(code, x.shape), target) + model.code_penalty(code)
    return F.mse_loss(model(x), target)


def pretrained(name: str, x_train: torch.Tensor, config: DemoConfig) -> nn.Module:
    """Model ``name`` from ``config.model_seed``, pre-trained with the fit every arm continues."""
    torch.manual_seed(config.model_seed)
    model = SparseAutoencoder(l1=config.sparse_l1) if name == "sparse" else MODELS[name]()
    fit = AdamFit(lr=config.lr, batch_size=config.batch_size, loss=autoencoder_loss)
    return fit(model, x_train, steps=config.pretrain_steps, seed=config.model_seed)


def run_demo(config: DemoConfig = DEFAULT, out_dir: str | Path | None = None, progress: bool = True):
    """``{model: TrialReport}``; with ``out_dir``, each model's trial folder ``out_dir/<model>/`` (resumable, with
    its report and pictures) and ``out_dir/metrics.json`` and ``out_dir/report.md`` for all models."""
    data = mnist_split(config.n_train, config.n_test, seed=config.data_seed)
    out = None if out_dir is None else Path(out_dir)
    fit = AdamFit(lr=config.lr, batch_size=config.batch_size, loss=autoencoder_loss)
    reports: dict[str, TrialReport] = {}
    for name in config.models:
        if progress:
            print(f"uae demo: {name} autoencoder: pre-train {config.pretrain_steps} steps, then the trial", flush=True)
        model = pretrained(name, data["x_train"], config)
        reports[name] = run_trial(
            model,
            data["x_train"],
            data["x_test"],
            fit=fit,
            arms=config.arms,
            eps=config.eps,
            seeds=config.seeds,
            steps=config.fit_steps,
            attack_options=dict(config.attack_options),
            metrics=config.metrics,
            test_eps=config.test_eps,
            robust_rows=config.robust_rows,
            out=None if out is None else out / name,
            progress=progress,
        )
    if out is not None:
        metrics = {"config": asdict(config), "models": {m: r.to_dict() for m, r in reports.items()}}
        (out / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True))
        (out / "report.md").write_text(format_reports(reports) + "\n")
    return reports


def format_reports(reports: dict[str, TrialReport]) -> str:
    """Every model's trial table under a heading."""
    return "\n\n".join(f"## {name} autoencoder\n\n{report.table()}" for name, report in reports.items())
