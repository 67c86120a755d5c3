"""The plan of a trial: its arms, seeds, budget, fit and metrics, built from ``run_trial``'s arguments after every
check that can be made before any work (each error names the argument, what was expected and the cause).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .._extras import require
from ..criteria import Contrastive, Criterion, Reconstruction
from ..generation import tensor_digest
from ..minmax import MinMaxAttack
from ..validation import check_count, check_positive
from .arms import Arm, plan_arms
from .augment import augmented_rows
from .budget import AdamFit, default_steps
from .checks import check_labels, check_model_takes, check_seeds, describe_callable, digest_rows
from .metrics import DEFAULT_METRICS, METRICS, TEST_ATTACKS, Robustness, TrialMetrics, check_test_eps
from .rows import Data, check_data, count, take

TASKS = ("reconstruction", "contrastive")
TARGETS = ("self", "clean")
RESERVED_OPTIONS = ("eps", "seed")  # set by the trial per arm
DEFAULT_SEEDS = (0, 1, 2, 3, 4)  # 5 seeds: Holm over the default arms still decides changes of a few % (trial.md)


def criterion_for(task: str, model: nn.Module) -> Criterion:
    """The attack's criterion of a trial's ``task`` on ``model``: ``Contrastive`` or ``Reconstruction``."""
    return Contrastive(model) if task == "contrastive" else Reconstruction(model)


@dataclass
class Plan:
    """What a trial will do (the checked arguments of :func:`~uae_plugin.run_trial`)."""

    task: str
    arms: list[Arm]
    seeds: list[int]
    steps: int
    fit: Callable[..., nn.Module]
    metrics: TrialMetrics
    criterion: Criterion
    rows: torch.Tensor
    target: str
    attack_options: dict[str, Any]
    attack_seed: int
    online_steps: int
    online_fraction: float
    n_augment: int | None
    progress: bool
    n_train: int
    n_test: int

    @property
    def metric_names(self) -> list[str]:
        return self.metrics.names

    @property
    def offline_eps(self) -> list[float]:
        return sorted({a.eps for a in self.arms if a.eps is not None and not a.online})

    def criterion_of(self, model: nn.Module) -> Criterion:
        """The attack's criterion on ``model`` (the online arms wrap the model being trained)."""
        return criterion_for(self.task, model)

    def todo(self, store: Any) -> list[tuple[Arm, int]]:
        return [(a, s) for a in self.arms for s in self.seeds if not store.done(a.key, s, self.metric_names)]

    def config(self) -> dict[str, Any]:
        """The trial's settings, JSON-ready (in the report)."""
        return {
            "task": self.task,
            "model": self.criterion.model_name,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "steps": self.steps,
            "fit": describe_callable(self.fit),
            "lr": getattr(self.fit, "lr", None),
            "batch_size": getattr(self.fit, "batch_size", None),
            "metrics": self.metric_names,
            "metric_settings": self.metrics.describe(),
            "target": self.target,
            "n_augment": self.n_augment,
            "attack_options": self.attack_options,
            "attack_seed": self.attack_seed,
            "online": {"steps": self.online_steps, "fraction": self.online_fraction},
            "eps": sorted({a.eps for a in self.arms if a.eps is not None}),
            "seeds": self.seeds,
            "arms": [a.key for a in self.arms],
        }

    def identity(self, model: nn.Module, x_train: Data, x_test: Data) -> dict[str, Any]:
        """What a trial folder must match to be resumed: the model, the data, and every setting a score depends
        on (not the arms, seeds or metrics asked: more of them only add fine-tunes)."""
        config = self.config()
        for k in ("metrics", "eps", "seeds", "arms"):
            config.pop(k)
        return {
            **config,
            "model_sha256": tensor_digest(model.state_dict().values()),
            "x_train_sha256": digest_rows(x_train),
            "x_test_sha256": digest_rows(x_test),
        }


def _accepts(f: Callable[..., Any], keyword: str) -> bool:
    try:
        params = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return True  # a builtin or C callable: let it say so itself
    return any(p.name == keyword or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _scores(score: Any) -> dict[str, Callable[..., float]]:
    """The user's scores by metric name: none, ``{"clean": score}``, or the dict given."""
    if score is None:
        return {}
    if callable(score) and not isinstance(score, dict):
        return {"clean": score}
    if not isinstance(score, dict) or not score:
        raise TypeError(f"score must be a callable or a non-empty dict of named callables, got {type(score).__name__}")
    for name, f in score.items():
        if not isinstance(name, str) or not callable(f):
            raise TypeError(f"score must map metric names (str) to callables, got {name!r}: {type(f).__name__}")
    return dict(score)


def _metric_names(metrics: Any, custom: dict[str, Any], task: str) -> list[str]:
    if metrics is None:
        names = list(custom) if len(custom) > 1 or "clean" not in custom and custom else list(DEFAULT_METRICS)
    elif isinstance(metrics, str) or not metrics:
        raise ValueError(
            f"metrics must be a non-empty sequence of names, e.g. ('clean', 'adversarial'), got {metrics!r}"
        )
    else:
        names = list(metrics)
    names += [n for n in custom if n not in names]
    unknown = [n for n in names if n not in METRICS and n not in custom]
    if unknown:
        raise ValueError(f"metrics: unknown metric {unknown[0]!r}; choose from {', '.join(METRICS)} or pass a score")
    if len(set(names)) != len(names):
        raise ValueError(f"metrics must not repeat a name, got {names}")
    if "knn" in names and "knn" not in custom and task != "contrastive":
        raise ValueError("metrics: 'knn' scores an encoder's features: it needs task='contrastive'")
    return names


def _check_extras(names: list[str], custom: dict[str, Any], task: str, test_attack: str) -> None:
    """The optional packages and the task a built-in metric needs, before any work."""
    builtin = [n for n in names if n not in custom]
    if "corruption" in builtin:
        require("kornia.augmentation", "the corruption metric")
    if test_attack == "autoattack" and "adversarial" in builtin:
        if task != "contrastive":
            raise ValueError("test_attack: 'autoattack' attacks a classifier: it needs task='contrastive' (a probe)")
        require("torchattacks", "test_attack='autoattack'")


def _check_metrics(names: list[str], custom: dict[str, Any], task: str, x_test: Data, labels: bool) -> None:
    """Refuse, before any work, a built-in metric these data cannot give, with the fix."""
    builtin = [n for n in names if n not in custom]
    if task == "contrastive" and builtin and not labels:
        raise ValueError(
            f"metrics {builtin} of a contrastive trial score a linear probe or kNN on the encoder's features, which "
            "need class labels: pass y_train and y_test, or your own score(model, x_test) -> float"
        )
    if "corruption" in builtin:
        from .corruptions import check_corruptible

        check_corruptible(take(x_test, torch.arange(min(2, count(x_test)))), "x_test")


@dataclass(frozen=True)
class Settings:
    """The arguments of ``run_trial`` that can be checked without the model or the data."""

    task: str
    seeds: list[int]
    arms: list[Arm]
    target: str
    test_eps: float
    online_steps: int
    online_fraction: float
    robust_rows: int | None
    scores: dict[str, Callable[..., float]]
    metrics: list[str]
    attack_options: dict[str, Any]


def _share(value: Any, name: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValueError(f"{name} must be {what} in (0, 1], got {value!r}")
    return float(value)


def check_settings(**a: Any) -> Settings:
    """Check everything in ``a`` (``run_trial``'s keyword arguments) that needs neither the model nor the data;
    each error names the argument, what was expected and the cause. The command line calls it before it reads
    any data."""
    task = a["task"]
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if a["target"] not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}, got {a['target']!r}")
    if a["target"] == "clean" and task != "reconstruction":
        raise ValueError(
            "target: 'clean' (train an augmented row to reconstruct its clean source) needs task='reconstruction'"
        )
    robust_rows = None if a["robust_rows"] is None else check_count(a["robust_rows"], "robust_rows")
    for name in ("steps", "n_augment"):
        if a[name] is not None:
            check_count(a[name], name)
    check_count(a["batch_size"], "batch_size")
    check_positive(a["lr"], "lr")
    if a["fit"] is not None and not callable(a["fit"]):
        raise TypeError(f"fit must be callable, got {type(a['fit']).__name__}")
    options = dict(a["attack_options"] or {})
    reserved = [k for k in RESERVED_OPTIONS if k in options]
    if reserved:
        raise ValueError(f"attack_options must not set {reserved[0]!r}: the trial sets it (use eps= and attack_seed=)")
    if a["test_attack"] not in TEST_ATTACKS:
        raise ValueError(f"test_attack must be one of {TEST_ATTACKS}, got {a['test_attack']!r}")
    custom = _scores(a["score"])
    metrics = _metric_names(a["metrics"], custom, task)
    _check_extras(metrics, custom, task, a["test_attack"])
    return Settings(
        task, check_seeds(a["seeds"]), plan_arms(a["arms"], a["eps"]), a["target"], check_test_eps(a["test_eps"]),
        check_count(a["online_steps"], "online_steps"),
        _share(a["online_fraction"], "online_fraction", "a share of each batch"), robust_rows, custom, metrics,
        options,
    )  # fmt: skip


def _checked_fit(settings: Settings, fit: Any, lr: float, batch_size: int) -> Callable[..., nn.Module]:
    """The fit to use; one that cannot take what the online arms or ``target="clean"`` pass it is refused."""
    fit = _default_fit(settings.task, fit, lr, batch_size)
    needs = {"augment": any(arm.online for arm in settings.arms), "targets": settings.target == "clean"}
    for keyword, needed in needs.items():
        if needed and not _accepts(fit, keyword):
            why = "the online arms pass it an augment hook" if keyword == "augment" else "target='clean' passes it"
            raise ValueError(
                f"fit {describe_callable(fit)} takes no {keyword}= keyword, and {why}; add it or drop them"
            )
    return fit


def plan_trial(model: nn.Module, x_train: Data, x_test: Data, **a: Any) -> Plan:
    """Check ``run_trial``'s arguments ``a`` and build its :class:`Plan`; nothing is read but two rows of each
    data set (the model must take them), nothing is trained."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    settings = check_settings(**a)
    check_data(x_train, "x_train")
    check_data(x_test, "x_test")
    n_train, n_test = count(x_train), count(x_test)
    steps = default_steps(n_train, a["batch_size"]) if a["steps"] is None else a["steps"]
    y_train, y_test = a["y_train"], a["y_test"]
    labels = y_train is not None and y_test is not None
    if labels:
        y_train, y_test = check_labels(y_train, n_train, "y_train"), check_labels(y_test, n_test, "y_test")
    _check_metrics(settings.metrics, settings.scores, settings.task, x_test, labels)
    fit = _checked_fit(settings, a["fit"], a["lr"], a["batch_size"])
    criterion = criterion_for(settings.task, model)
    check_model_takes(criterion, x_train, "x_train")
    check_model_takes(criterion, x_test, "x_test")
    for e in {arm.eps for arm in settings.arms if arm.eps is not None}:
        MinMaxAttack(criterion, **{**settings.attack_options, "eps": e, "seed": a["attack_seed"]})  # refuses now
    robust = Robustness(settings.test_eps, attack=a["test_attack"], seed=a["attack_seed"], rows=settings.robust_rows)
    metrics = TrialMetrics(settings.task, settings.metrics, settings.scores, robust, n_test, x_train, y_train, y_test)
    return Plan(
        settings.task, settings.arms, settings.seeds, steps, fit, metrics, criterion,
        augmented_rows(n_train, a["n_augment"]), settings.target, settings.attack_options, a["attack_seed"],
        settings.online_steps, settings.online_fraction, a["n_augment"], a["progress"], n_train, n_test,
    )  # fmt: skip


def _default_fit(task: str, fit: Any, lr: float, batch_size: int) -> Callable[..., nn.Module]:
    """The user's fit, or the task's default (contrastive: SimCLR with lightly's NT-Xent, needs ``[lightly]``)."""
    if fit is not None:
        return fit
    if task == "reconstruction":
        return AdamFit(lr=lr, batch_size=batch_size)
    from .contrastive import SimCLRLoss

    return AdamFit(lr=lr, batch_size=batch_size, loss=SimCLRLoss())
