"""SimCLR (timm resnet10t, lightly NTXentLoss + SimCLRProjectionHead, Lightning) with and without UAEs, 3 seeds.

    python examples/simclr_uae.py            # MNIST digits + Animal-MNIST silhouettes, seeds 0, 1, 2
    python examples/simclr_uae.py --quick    # tiny sizes, one seed, for CI
    python examples/simclr_uae.py --jobs 1   # one process with --threads threads (default: 2 processes x 1 thread)

The backbone is a half-width timm resnet10t (channels 32-256, SimCLR's small-image stem with stride 2: 28x28 ->
14x14 into the first stage) trained for 300 steps of 64 pairs: the size at which plain SimCLR beats raw pixels on
kNN on MNIST within a 2-core budget (the "raw pixels" row: the same kNN, probe and PGD on the flattened pixels).
Six training methods with the same budget (optimizer steps x batch of two lightly SimCLRTransform views):
"plain" SimCLR; "offline" -- UAEs of every training image from the trained plain model (UAESimCLR.generate_uaes,
the paper's protocol), then a fresh model trained on train + successful UAEs; "online" -- UAESimCLR(uae="online"):
each step adds the NT-Xent loss of UAE views of part of the batch; "online-nomi" -- the same with mi_weight=0 (the
attack objective without its mutual-information term: the no-MI ablation); "noise" -- the same term with the UAE
attack's random start and no attack (uniform noise of the same size: the control); "rocl" -- the same term with
RoCL's instance-wise PGD views (torchattacks.PGD maximising NT-Xent in an L-inf ball). Each frozen backbone is scored
on a held-out split by cosine kNN, a linear probe (L-BFGS logistic regression) and that probe's accuracy under
white-box L-inf PGD. Labels are used only for scoring. Writes results.md, metrics.json and accuracy.png to --out.
"""

from __future__ import annotations

import logging
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import pytorch_lightning as pl
import timm
import torch
from lightly.transforms import SimCLRTransform
from table_script import parse_arguments, write_outputs  # examples/table_script.py
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import Normalize
from torchvision.transforms.functional import to_pil_image
from tqdm.auto import tqdm

from uae_plugin.experiments.data import animal_mnist_split, mnist_split
from uae_plugin.experiments.ssl_evaluation import (
    LinearProbe,
    encode,
    knn_accuracy,
    probe_accuracy,
    robust_probe_accuracy,
)
from uae_plugin.integrations.lightly import UAESimCLR, small_image_stem

METHODS = ("raw pixels", "plain", "offline", "online", "online-nomi", "noise", "rocl")
FULL = {
    "datasets": ("mnist", "animals"),
    "seeds": (0, 1, 2),
    "n_train": 500,
    "n_test": 1000,
    "n_robust": 200,
    "steps": 300,
    "batch": 64,
    "backbone": {"name": "resnet10t", "channels": (32, 64, 128, 256), "stem_width": 16, "stem_stride": 2},
    "model": {"hidden_dim": 256, "out_dim": 64, "lr": 0.2},
    "views": {"min_scale": 0.5, "cj_strength": 0.5},  # lightly's SimCLRTransform (no blur; flips: HORIZONTAL_FLIPS)
    "adversary_fraction": 0.125,  # of each batch given an extra online / noise / rocl view
    "online_uae": {"eps": 0.3, "steps": 3, "n_views": 2},  # MI: the default estimator ("auto": Gaussian closed form)
    "offline_uae": {"eps": 0.3, "steps": 6, "n_views": 2},
    "rocl": {"eps": 0.1, "steps": 3},
    "robust": {"eps": (0.05, 0.1), "steps": 7},
}
QUICK = {
    **FULL,
    "datasets": ("mnist", "animals"),
    "seeds": (0,),
    "n_train": 64,
    "n_test": 64,
    "n_robust": 32,
    "steps": 3,
    "batch": 16,
    "model": {**FULL["model"], "hidden_dim": 64, "out_dim": 32},
    "adversary_fraction": 0.25,
    "online_uae": {**FULL["online_uae"], "steps": 1},
    "offline_uae": {**FULL["offline_uae"], "steps": 1},
    "rocl": {**FULL["rocl"], "steps": 1},
    "robust": {**FULL["robust"], "steps": 2},
}
SPLITS = {"mnist": mnist_split, "animals": animal_mnist_split}
HORIZONTAL_FLIPS = {"mnist": 0.0, "animals": 0.5}  # a mirrored digit is another symbol; a mirrored animal is not


class TwoViews(Dataset):
    """``([v0, v1], 0)`` per image: lightly's ``SimCLRTransform`` on the image as a PIL image (labels unused)."""

    def __init__(self, x: torch.Tensor, transform: SimCLRTransform) -> None:
        self.x, self.transform = x, transform

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.transform(to_pil_image(self.x[i])), 0


def backbone(spec: dict) -> nn.Module:
    """``timm.create_model(spec["name"], num_classes=0, in_chans=1, **rest)`` with SimCLR's small-image stem of stride
    ``spec["stem_stride"]`` (``rest``: timm ResNet options such as ``channels`` and ``stem_width``)."""
    rest = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.items() if k not in ("name", "stem_stride")}
    model = timm.create_model(spec["name"], pretrained=False, num_classes=0, in_chans=1, **rest)
    return small_image_stem(model, spec["stem_stride"])


def method_options(method: str, cfg: dict) -> tuple[str | None, dict]:
    """``UAESimCLR``'s ``uae`` mode and its attack options for a training method of ``METHODS``."""
    return {
        "plain": ("offline", cfg["offline_uae"]),  # plain SimCLR steps; "offline" keeps generate_uaes for later
        "offline": (None, {}),  # plain SimCLR on train + UAE(train)
        "online": ("online", cfg["online_uae"]),
        "online-nomi": ("online", {**cfg["online_uae"], "mi_weight": 0.0}),  # F = c max(f, 0): no MI term
        "noise": ("noise", cfg["online_uae"]),
        "rocl": ("rocl", cfg["rocl"]),
    }[method]


def train(x: torch.Tensor, method: str, seed: int, cfg: dict, stats: dict, flip: float) -> UAESimCLR:
    """One SimCLR run of ``cfg["steps"]`` steps of ``cfg["batch"]`` pairs on ``x`` (pixels in [0, 1])."""
    pl.seed_everything(seed, verbose=False)
    uae, options = method_options(method, cfg)
    model = UAESimCLR(
        backbone(cfg["backbone"]), uae=uae, uae_fraction=cfg["adversary_fraction"], seed=seed, **cfg["model"], **stats,
        **options,
    )  # fmt: skip
    transform = SimCLRTransform(input_size=28, gaussian_blur=0.0, hf_prob=flip, normalize=stats, **cfg["views"])
    loader = DataLoader(
        TwoViews(x, transform), cfg["batch"], shuffle=True, drop_last=True,
        generator=torch.Generator().manual_seed(seed),
    )  # fmt: skip
    trainer = pl.Trainer(
        max_steps=cfg["steps"], accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(model, loader)
    return model.eval()


def score(encoder: nn.Module, data: dict[str, torch.Tensor], cfg: dict, seed: int) -> dict[str, float]:
    """kNN and linear-probe accuracy of the frozen ``encoder`` (pixels -> features), and the probe's accuracy
    under L-inf PGD."""
    train_f, test_f = encode(encoder, data["x_train"]), encode(encoder, data["x_test"])
    probe = LinearProbe(train_f.shape[1], 10).fit(train_f, data["y_train"])
    robust = data["x_test"][: cfg["n_robust"]], data["y_test"][: cfg["n_robust"]]
    scores = {
        "knn": knn_accuracy(train_f, data["y_train"], test_f, data["y_test"]),
        "linear": probe_accuracy(encoder, probe, data["x_test"], data["y_test"]),
        "linear_robust_subset": probe_accuracy(encoder, probe, *robust),
    }
    for eps in cfg["robust"]["eps"]:
        scores[f"linear_pgd_{eps}"] = robust_probe_accuracy(
            encoder, probe, *robust, eps=eps, steps=cfg["robust"]["steps"], seed=seed
        )
    return scores


def run_one(name: str, seed: int, cfg: dict) -> list[dict]:
    """Every method of ``METHODS`` on one (data set, seed) split: one row each, raw pixels first."""
    data = SPLITS[name](n_train=cfg["n_train"], n_test=cfg["n_test"], seed=seed)
    x = data["x_train"]
    stats = {"mean": [float(x.mean())], "std": [float(x.std())]}
    flip = HORIZONTAL_FLIPS[name]
    rows = [{"data": name, "seed": seed, "method": "raw pixels", **score(nn.Flatten(), data, cfg, seed),
             "train_seconds": 0.0}]  # fmt: skip
    started = time.perf_counter()

    def record(method: str, model: UAESimCLR, extra: dict) -> None:
        nonlocal started
        seconds = time.perf_counter() - started
        encoder = nn.Sequential(Normalize(stats["mean"], stats["std"]), model.backbone)
        rows.append({"data": name, "seed": seed, "method": method, **score(encoder, data, cfg, seed),
                     "train_seconds": seconds, **extra})  # fmt: skip
        started = time.perf_counter()

    plain = train(x, "plain", seed, cfg, stats, flip)
    record("plain", plain, {})
    uaes = plain.generate_uaes(x, only_successful=True)  # a failed attack is no UAE: retrain on train + UAE(train)
    linf = (uaes - x[plain.offline_success]).flatten(1).abs().amax(1)
    extra = {"uae_success_rate": float(plain.offline_success.float().mean()), "n_uaes": len(uaes),
             "uae_linf_mean": float(linf.mean()) if len(uaes) else 0.0}  # fmt: skip
    record("offline", train(torch.cat([x, uaes]), "offline", seed, cfg, stats, flip), extra)
    for method in METHODS[METHODS.index("online") :]:
        record(method, train(x, method, seed, cfg, stats, flip), {})
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    out = []
    for name in dict.fromkeys(r["data"] for r in rows):
        for method in METHODS:
            runs = [r for r in rows if (r["data"], r["method"]) == (name, method)]
            cell = {"data": name, "method": method, "n": len(runs)}
            for metric in (k for k in runs[0] if k in ("knn", "linear", "train_seconds") or "pgd" in k):
                t = torch.tensor([r[metric] for r in runs], dtype=torch.float64)
                cell[metric] = float(t.mean())
                cell[metric + "_std"] = float(t.std(unbiased=False)) if len(runs) > 1 else 0.0
            out.append(cell)
    return out


def metric_names(cfg: dict) -> dict[str, str]:
    """Summary key -> column title, in table order."""
    pgd = {f"linear_pgd_{eps}": f"probe under PGD ε={eps}" for eps in cfg["robust"]["eps"]}
    return {"knn": "kNN accuracy", "linear": "linear probe", **pgd}


def markdown(summary: list[dict], cfg: dict) -> str:
    names = metric_names(cfg)
    lines = [
        f"| data | method | {' | '.join(names.values())} | train s | seeds |",
        "|---|---" + "|---" * len(names) + "|---|---|",
    ]
    for s in summary:
        cells = [f"{s[m]:.3f} ± {s[m + '_std']:.3f}" for m in names]
        lines.append(f"| {s['data']} | {s['method']} | {' | '.join(cells)} | {s['train_seconds']:.0f} | {s['n']} |")
    return "\n".join(lines)


def plot(summary: list[dict], cfg: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(s["data"] for s in summary))
    metrics = list(metric_names(cfg).items())
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.6))
    width = 0.8 / len(METHODS)
    for ax, (metric, title) in zip(axes, metrics, strict=True):
        for m, method in enumerate(METHODS):
            cells = [next(s for s in summary if (s["data"], s["method"]) == (n, method)) for n in names]
            xs = [i + (m - (len(METHODS) - 1) / 2) * width for i in range(len(names))]
            ax.bar(xs, [c[metric] for c in cells], width, yerr=[c[metric + "_std"] for c in cells], capsize=3,
                   label=method, color="0.6" if method == "raw pixels" else None)  # fmt: skip
        ax.set_xticks(range(len(names)), names)
        ax.set_ylim(0, 1)
        ax.set_title(title)
    axes[0].set_ylabel("held-out accuracy (mean ± std over seeds)")
    axes[-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def quiet_worker(threads: int) -> None:
    """A worker process: ``threads`` torch threads, no Lightning banners."""
    torch.set_num_threads(threads)
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)


def run_all(cfg: dict, jobs: int, threads: int) -> list[dict]:
    """Every (data set, seed) cell, in ``jobs`` spawned processes of ``threads // jobs`` torch threads each; rows in
    cell order. Each cell seeds its own runs, so the rows do not depend on ``jobs`` (up to float summation order)."""
    cells = [(name, seed) for name in cfg["datasets"] for seed in cfg["seeds"]]
    t0, done = time.perf_counter(), {}
    bar = tqdm(total=len(cells), unit="run", desc=f"SimCLR (data x seed, {len(METHODS) - 1} methods each)")
    if jobs == 1:
        quiet_worker(threads)
        for name, seed in cells:
            done[name, seed] = run_one(name, seed, cfg)
            bar.update(1)
            bar.write(f"{name} seed={seed}: done at {time.perf_counter() - t0:.0f} s")
    else:
        context = multiprocessing.get_context("spawn")  # fork after torch threads have started can hang
        with ProcessPoolExecutor(jobs, context, quiet_worker, (max(1, threads // jobs),)) as pool:
            futures = {pool.submit(run_one, name, seed, cfg): (name, seed) for name, seed in cells}
            for future in as_completed(futures):
                done[futures[future]] = future.result()
                name, seed = futures[future]
                bar.update(1)
                bar.write(f"{name} seed={seed}: done at {time.perf_counter() - t0:.0f} s")
    bar.close()
    return [row for cell in cells for row in done[cell]]


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv, __doc__, "simclr_uae", "simclr-uae-report", threads=2, jobs=2)
    cfg = QUICK if args.quick else FULL
    t0 = time.perf_counter()
    rows = run_all(cfg, args.jobs, args.threads)
    summary = summarise(rows)
    table = markdown(summary, cfg)
    elapsed = time.perf_counter() - t0
    metrics = {"settings": cfg, "summary": summary, "runs": rows, "seconds": elapsed}
    write_outputs(args.out, table, metrics, lambda path: plot(summary, cfg, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
