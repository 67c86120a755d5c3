"""The report of the data-reconstruction experiment: a Markdown table, ``metrics.json`` and two pictures.

``metrics`` is what :func:`uae_plugin.experiments.experiment.run_experiment` returns:
``metrics["models"][model]["methods"][method] = {"mean", "std", "change_vs_none_pct", "test_mse", ...}``.
matplotlib is imported only inside the picture functions (Agg backend: no display needed).

Example:
    >>> metrics, images = run_with_images(QUICK)
    >>> write_report(metrics, images, "demo-out/"); print(format_table(metrics))
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

GRID_DIGITS = 4  # digits per cell of the grid
GRID_COLUMNS = (  # (key in the images, column title); columns whose key is missing are left out
    ("x", "clean x"),
    ("uae", "UAE x'"),
    ("noise", "noise, UAE's L2"),
    ("pgd", "PGD (ε 0.1)"),
    ("nomi", "no-MI ablation"),
)


def format_table(metrics: dict[str, Any]) -> str:
    """Markdown: model, method, test MSE ``mean ± std`` over seeds, change vs "none" in %, UAE success, L2."""
    lines = [
        "| model | method | test MSE (mean ± std) | change vs none | UAE success | mean L2 of x' − x |",
        "|---|---|---|---|---|---|",
    ]
    for model, entry in metrics["models"].items():
        seeds = entry["seeds"].values()
        success = sum(s["uae_success_rate"] for s in seeds) / len(seeds)
        for method, m in entry["methods"].items():
            change = m.get("change_vs_none_pct")
            change_s = "—" if change is None or method == "none" else f"{change:+.2f}%"
            l2 = [s["l2"][method] for s in seeds if method in s["l2"]]
            l2_s = f"{sum(l2) / len(l2):.2f}" if l2 else "—"
            succ_s = f"{100 * success:.1f}%" if method == "uae" else ""
            lines.append(f"| {model} | {method} | {m['mean']:.5f} ± {m['std']:.5f} | {change_s} | {succ_s} | {l2_s} |")
    return "\n".join(lines)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _strip(images: torch.Tensor) -> torch.Tensor:
    """``[k, 1, H, W]`` -> one image ``[H, k W + (k - 1)]``: the k digits side by side, 1-pixel white gaps."""
    k, _, h, _ = images.shape
    gap = torch.ones(h, 1)
    parts = []
    for i in range(k):
        parts += [images[i, 0].detach().float().cpu(), gap]
    return torch.cat(parts[:-1], dim=1)


def plot_grid(images: dict[str, dict[str, torch.Tensor]], path: str | Path, seed: int | None = None) -> None:
    """One row per model, one column per kind of example (clean, UAE, matched noise, PGD, no-MI ablation); each
    cell shows the same training digits side by side. Every row is labelled with its model."""
    plt = _plt()
    cols = [(key, title) for key, title in GRID_COLUMNS if all(key in pics for pics in images.values())]
    models = list(images)
    k = min(GRID_DIGITS, next(iter(images.values()))["x"].shape[0])
    fig, axes = plt.subplots(
        len(models), len(cols), figsize=(0.5 * k * len(cols) + 0.8, 0.75 * len(models) + 0.9), squeeze=False
    )
    for r, model in enumerate(models):
        for c, (key, title) in enumerate(cols):
            ax = axes[r, c]
            ax.imshow(_strip(images[model][key][:k]).numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(title, fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{model} AE", fontsize=9, rotation=0, ha="right", va="center")
    which = "" if seed is None else f", seed {seed}"
    fig.suptitle(f"The same training digits and their augmentations (pre-trained model{which})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def relative_change(metrics: dict[str, Any]) -> dict[str, dict[str, tuple[float, float]]]:
    """Per model and method (none left out): mean and std over seeds of ``100 (mse_s - none_s) / mean(none)``,
    the change of test MSE against no augmentation, paired by seed."""
    out: dict[str, dict[str, tuple[float, float]]] = {}
    for model, entry in metrics["models"].items():
        none = torch.tensor(entry["methods"]["none"]["test_mse"], dtype=torch.float64)
        out[model] = {}
        for method, m in entry["methods"].items():
            if method == "none":
                continue
            change = 100 * (torch.tensor(m["test_mse"], dtype=torch.float64) - none) / none.mean()
            out[model][method] = (float(change.mean()), float(change.std()) if len(change) > 1 else 0.0)
    return out


def plot_test_error(metrics: dict[str, Any], path: str | Path) -> None:
    """Grouped bars: the change of test MSE against no augmentation in % (methods within each model), error bars
    the std over seeds of the per-seed change; a line at 0; negative is better."""
    plt = _plt()
    change = relative_change(metrics)
    models = list(change)
    methods = list(next(iter(change.values())))
    seeds = len(next(iter(metrics["models"].values()))["methods"]["none"]["test_mse"])
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(2.0 + 1.9 * len(models), 3.6))
    for j, method in enumerate(methods):
        xs = [i + (j - (len(methods) - 1) / 2) * width for i in range(len(models))]
        means = [change[m][method][0] for m in models]
        stds = [change[m][method][1] for m in models]
        ax.bar(xs, means, width, yerr=stds, capsize=3, label=method)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(models)))
    ax.set_xticklabels([f"{m} AE" for m in models])
    ax.set_ylabel("test MSE change vs none (%)")
    ax.set_title(
        f"Retraining on train + augmentations: change against none\n(mean ± std over {seeds} seeds; below 0 is better)",
        fontsize=9,
    )
    ax.legend(fontsize=7, ncol=len(methods), loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(metrics: dict[str, Any], images: dict[str, dict[str, torch.Tensor]], out_dir: str | Path) -> Path:
    """Write ``metrics.json``, ``uae_grid.png`` and ``test_error.png`` into ``out_dir`` (created); returns it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True))
    plot_grid(images, out / "uae_grid.png", seed=metrics["config"]["seeds"][0])
    plot_test_error(metrics, out / "test_error.png")
    return out
