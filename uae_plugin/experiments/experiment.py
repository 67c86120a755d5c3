"""The data-reconstruction experiment: does retraining on UAEs lower an autoencoder's test error?

Protocol, per model and seed (Hsu et al., AAAI 2022, Sec. 4.1, on the embedded MNIST digits):

1. pre-train ``g`` from a seeded init for ``pretrain_steps`` Adam steps on ``x_train``, minimising
   ``mean (x - g(x))^2`` (plus ``l1 mean |h|`` for :class:`SparseAutoencoder`);
2. from that ``g``, build one augmentation ``x'`` per training digit ``x``, by method:
   ``none`` (no augmentation), ``uae`` (``MinMaxAttack(Reconstruction(g))``), ``nomi`` (the same attack with
   ``mi_weight=0``: the no-MI ablation), ``noise`` (``matched_gaussian_noise``: ``||x' - x||_2`` equal to the
   UAE's), ``pgd`` (``UnsupervisedPGD``, L-inf ``pgd_eps``);
3. continue training ``g`` for ``retrain_steps`` Adam steps of ``batch_size`` rows drawn from
   ``x_train`` (``none``) or ``x_train ∪ {x'}``, the pair ``(x', target)`` with ``target = x``
   (``"clean"``) or ``x'`` (``"self"``);
4. report the test error ``mean_pixels (x - g(x))^2`` on ``x_test``.

Every method gets the same budget (same steps, batch size and batch-order seed), counted and stored
in the metrics. We continue training rather than retraining from the init: the augmentations are
adversarial *for the trained g*, which is how a plug-in augmentation is used, and retraining from
scratch would spend most of the budget re-learning what ``none`` already knows, so differences would
drown in the init-to-optimum path; ``none`` continues for the same steps, so extra training alone
earns no credit.

Example:
    >>> metrics = run_experiment(QUICK, progress=False)
    >>> print(format_table(metrics))
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .. import MinMaxAttack, Reconstruction, UnsupervisedPGD, generate_dataset, load_generated, matched_gaussian_noise
from .data import mnist_split
from .models import ConvAutoencoder, DenseAutoencoder, SparseAutoencoder, reconstruction_error
from .report import format_table

MODELS = {"conv": ConvAutoencoder, "dense": DenseAutoencoder, "sparse": SparseAutoencoder}
METHODS = ("none", "noise", "pgd", "nomi", "uae")
TARGETS = ("clean", "self")
__all__ = [
    "DEFAULT",
    "QUICK",
    "ExperimentConfig",
    "build_model",
    "format_table",
    "run_experiment",
    "run_with_images",
    "train_steps",
]


@dataclass(frozen=True)
class ExperimentConfig:
    """Sizes and settings; every field is JSON-serialisable (stored in the metrics).

    n_train/n_test: digits of the fixed split ``mnist_split(seed=data_seed)``; n_augment: training
    digits that get an augmentation (None: all). uae_*: ``MinMaxAttack`` steps T, L-inf eps,
    ``init_scale`` of delta_0, MINE steps K and the dual start ``c0`` (None: the attack's default;
    ``uae_eps``, ``uae_c0``: the paper's 1 and 1e-3 by default). pgd_*: ``UnsupervisedPGD`` eps and steps.
    target: "self" (x' -> x', default: an augmentation appended to the training set reconstructs
    itself, the regime where UAEs helped) or "clean" (x' -> x). sparse_l1: the code penalty weight.
    """

    n_train: int = 300
    n_test: int = 1000
    n_augment: int | None = None
    data_seed: int = 0
    seeds: tuple[int, ...] = (0, 1, 2)
    models: tuple[str, ...] = ("conv", "dense", "sparse")
    methods: tuple[str, ...] = METHODS
    pretrain_steps: int = 1500
    retrain_steps: int = 600
    batch_size: int = 64
    lr: float = 1e-3
    pgd_eps: float = 0.1
    pgd_steps: int = 10
    uae_steps: int = 80
    uae_eps: float = 1.0
    uae_init_scale: float | None = 0.5
    uae_mine_steps: int | None = None
    uae_c0: float | None = 1e-3
    target: str = "self"
    sparse_l1: float = 1e-2  # 36% of code units active on test digits (1e-3: 66%, 0: 77%)
    n_images: int = 8

    def __post_init__(self) -> None:
        for name, allowed, values in (("models", MODELS, self.models), ("methods", METHODS, self.methods)):
            bad = [v for v in values if v not in allowed]
            if bad or not values:
                raise ValueError(f"{name} must be a non-empty subset of {tuple(allowed)}, got {values!r}")
        if self.target not in TARGETS:
            raise ValueError(f"target must be one of {TARGETS}, got {self.target!r}")
        if not self.seeds:
            raise ValueError("seeds must be a non-empty tuple of ints")
        if self.n_augment is not None and not 1 <= self.n_augment <= self.n_train:
            raise ValueError(f"n_augment must be None or in [1, n_train={self.n_train}], got {self.n_augment}")


# Scarce data, an over-parameterised dense model: the regime where UAEs helped in earlier measurements.
DEFAULT = ExperimentConfig()
QUICK = ExperimentConfig(
    n_train=48, n_test=64, seeds=(0,), pretrain_steps=30, retrain_steps=10, batch_size=16, pgd_steps=3, uae_steps=5
)


def build_model(name: str, config: ExperimentConfig, seed: int) -> nn.Module:
    """A freshly initialised model ``name`` ("conv", "dense", "sparse"); the init depends only on ``seed``."""
    if name not in MODELS:
        raise ValueError(f"name must be one of {tuple(MODELS)}, got {name!r}")
    torch.manual_seed(seed)
    return SparseAutoencoder(l1=config.sparse_l1) if name == "sparse" else MODELS[name]()


def _loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``mean (target - g(input))^2``, plus ``l1 mean |h(input)|`` for a sparse model."""
    if isinstance(model, SparseAutoencoder):
        code = model.encode(inputs)
        return F.mse_loss(model.decode(code, inputs.shape), targets) + model.code_penalty(code)
    return F.mse_loss(model(inputs), targets)


def train_steps(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
    progress: str | None = None,
) -> int:
    """``steps`` Adam steps on batches of ``batch_size`` rows of ``(inputs, targets): [N, ...]``.

    Rows are drawn without replacement, epoch by epoch (a fresh permutation from ``seed`` each pass).
    Returns the number of gradient steps taken (the budget counter). ``progress``: a bar over the steps
    with that description (None: no bar).
    """
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.randperm(inputs.shape[0], generator=gen).split(batch_size)
    model.train()
    taken, k = 0, 0
    bar = tqdm(total=steps, unit="step", desc=progress, disable=progress is None, leave=False)
    while taken < steps:
        if k == len(order):
            order, k = torch.randperm(inputs.shape[0], generator=gen).split(batch_size), 0
        idx = order[k]
        k += 1
        loss = _loss(model, inputs[idx], targets[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        taken += 1
        bar.update(1)
    bar.close()
    model.eval()
    return taken


def continue_training(
    base: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    config: ExperimentConfig,
    seed: int,
    progress: str | None = None,
) -> tuple[nn.Module, int]:
    """A copy of the pre-trained ``base`` trained ``config.retrain_steps`` more steps on ``(inputs, targets)``:
    the equal budget every method gets. Returns the copy and the steps taken."""
    model = copy.deepcopy(base)
    steps = train_steps(model, inputs, targets, config.retrain_steps, config.batch_size, config.lr, seed, progress)
    return model, steps


def _uaes(
    model: nn.Module, x: torch.Tensor, config: ExperimentConfig, seed: int, folder: Path | None, mi_weight: float = 1.0
) -> dict:
    attack = MinMaxAttack(
        Reconstruction(model),
        eps=config.uae_eps,
        steps=config.uae_steps,
        mine_steps=config.uae_mine_steps,
        init_scale=config.uae_init_scale,
        mi_weight=mi_weight,
        seed=seed,
        **({} if config.uae_c0 is None else {"c0": config.uae_c0}),
    )
    if folder is not None:
        generate_dataset(attack, x, folder, progress=False)
        out = load_generated(folder)
        return {"adv": out["adv"], "success": out["success"]}
    res = attack(x, index=torch.arange(x.shape[0]))
    return {"adv": res.adv, "success": res.success}


def augmentations(model: nn.Module, x: torch.Tensor, config: ExperimentConfig, seed: int, folder: Path | None):
    """``{method: x' [N, ...]}`` for every method but "none", and the UAE success ``[N]`` bool."""
    uae = _uaes(model, x, config, seed, folder)
    aug = {"uae": uae["adv"], "noise": matched_gaussian_noise(x, uae["adv"], seed=seed)}
    if "nomi" in config.methods:
        nomi_folder = None if folder is None else folder.with_name(folder.name + "-nomi")
        aug["nomi"] = _uaes(model, x, config, seed, nomi_folder, mi_weight=0.0)["adv"]
    if "pgd" in config.methods:
        aug["pgd"] = UnsupervisedPGD(Reconstruction(model), eps=config.pgd_eps, steps=config.pgd_steps, seed=seed)(x)
    return aug, uae["success"]


def _l2(x: torch.Tensor, adv: torch.Tensor) -> float:
    return float((adv - x).reshape(x.shape[0], -1).norm(dim=1).mean())


@torch.no_grad()
def _images(model: nn.Module, x: torch.Tensor, aug: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Originals, each augmentation of them (uae, noise, pgd, nomi) and the pre-trained model's reconstructions
    of the originals and the UAEs: each ``[k, 1, 28, 28]``."""
    k = x.shape[0]
    return {"x": x, **{m: a[:k] for m, a in aug.items()}, "recon_x": model(x), "recon_uae": model(aug["uae"][:k])}


def run_model_seed(name: str, data: dict, config: ExperimentConfig, seed: int, out_dir: Path | None):
    """One model and seed: pre-train, augment, retrain each method. Returns (per-method record, images)."""
    x, x_test = data["x_train"], data["x_test"]
    src = x[: config.n_augment or x.shape[0]]
    t0 = time.perf_counter()
    base = build_model(name, config, seed)
    train_steps(base, x, x, config.pretrain_steps, config.batch_size, config.lr, seed)
    record: dict[str, Any] = {"pretrain_test_mse": reconstruction_error(base, x_test), "timings": {}}
    record["timings"]["pretrain_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    folder = None if out_dir is None else out_dir / "uaes" / f"{name}-seed{seed}"
    aug, success = augmentations(base, src, config, seed, folder)
    record["timings"]["augment_s"] = time.perf_counter() - t0
    record["uae_success_rate"] = float(success.float().mean())
    record["l2"] = {m: _l2(src, a) for m, a in aug.items()}
    images = _images(base, src[: config.n_images], aug)
    record["methods"] = {}
    for method in config.methods:
        t0 = time.perf_counter()
        inputs, targets = x, x
        if method != "none":
            inputs = torch.cat([x, aug[method]])
            targets = torch.cat([x, src if config.target == "clean" else aug[method]])
        model, steps = continue_training(base, inputs, targets, config, seed)
        record["methods"][method] = {
            "test_mse": reconstruction_error(model, x_test),
            "train_mse": reconstruction_error(model, x),
            "grad_steps": steps,
            "train_rows": int(inputs.shape[0]),
            "seconds": time.perf_counter() - t0,
        }
        if method == "uae":
            with torch.no_grad():
                images["recon_x_after_uae"] = model(images["x"])
    return record, images


def summarise(runs: dict[str, dict[int, dict]], config: ExperimentConfig) -> dict[str, Any]:
    """Per model and method: test MSE per seed, mean, std (n - 1), and ``100 (mean - mean_none) / mean_none`` %."""
    out: dict[str, Any] = {}
    for name, by_seed in runs.items():
        methods = {}
        for method in config.methods:
            errs = torch.tensor([by_seed[s]["methods"][method]["test_mse"] for s in config.seeds], dtype=torch.float64)
            methods[method] = {
                "test_mse": errs.tolist(),
                "mean": float(errs.mean()),
                "std": float(errs.std()) if len(errs) > 1 else 0.0,
                "grad_steps": [by_seed[s]["methods"][method]["grad_steps"] for s in config.seeds],
            }
        if "none" in methods:
            ref = methods["none"]["mean"]
            for entry in methods.values():
                entry["change_vs_none_pct"] = 100.0 * (entry["mean"] - ref) / ref
        out[name] = {"methods": methods, "seeds": {str(s): by_seed[s] for s in config.seeds}}
    return out


def run_with_images(
    config: ExperimentConfig = DEFAULT, out_dir: str | Path | None = None, progress: bool = True
) -> tuple[dict[str, Any], dict[str, dict[str, torch.Tensor]]]:
    """The experiment: ``(metrics, images)``; ``images[model]`` holds seed ``config.seeds[0]``'s picture tensors.

    With ``out_dir``, the UAEs are generated with :func:`generate_dataset` into ``out_dir/uaes/`` (resumable).
    """
    start = time.perf_counter()
    out = None if out_dir is None else Path(out_dir)
    data = mnist_split(config.n_train, config.n_test, seed=config.data_seed)
    runs: dict[str, dict[int, dict]] = {}
    images: dict[str, dict[str, torch.Tensor]] = {}
    total = len(config.models) * len(config.seeds)
    bar = tqdm(total=total, unit="run", desc="uae demo (model x seed)", disable=not progress)
    for name in config.models:
        runs[name] = {}
        for seed in config.seeds:
            bar.set_postfix_str(f"{name} seed {seed}: train, attack, retrain {len(config.methods)} ways")
            record, pics = run_model_seed(name, data, config, seed, out)
            runs[name][seed] = record
            images.setdefault(name, pics)
            bar.update(1)
            if progress:
                errs = ", ".join(f"{m} {r['test_mse']:.5f}" for m, r in record["methods"].items())
                bar.write(f"[uae demo] {name} seed {seed}: test MSE {errs}")
    bar.close()
    metrics = {"config": asdict(config), "models": summarise(runs, config), "wall_s": time.perf_counter() - start}
    return metrics, images


def run_experiment(config: ExperimentConfig = DEFAULT, out_dir: str | Path | None = None, progress: bool = True):
    """The experiment's JSON-serialisable metrics; with ``out_dir``, also writes the report there
    (``metrics.json``, ``uae_grid.png``, ``test_error.png``: see :func:`uae_plugin.experiments.report.write_report`)."""
    metrics, images = run_with_images(config, out_dir, progress)
    if out_dir is not None:
        from .report import write_report

        write_report(metrics, images, out_dir)
    return metrics
