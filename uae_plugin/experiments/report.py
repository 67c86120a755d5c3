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

GRID_COLUMNS = (
    ("x", "x"),
    ("recon_x", "g(x)"),
    ("uae", "UAE x'"),
    ("recon_uae", "g(x')"),
    ("recon_x_after_uae", "g(x), UAE-retrained"),
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


def plot_grid(images: dict[str, dict[str, torch.Tensor]], path: str | Path) -> None:
    """One block per model: a row per digit, columns x, g(x), UAE x', g(x') (pre-trained g) and,
    if present, g(x) after retraining on UAEs. Each tensor ``[k, 1, H, W]`` in [0, 1]."""
    plt = _plt()
    cols = [(key, title) for key, title in GRID_COLUMNS if all(key in pics for pics in images.values())]
    rows = sum(pics["x"].shape[0] for pics in images.values())
    fig, axes = plt.subplots(rows, len(cols), figsize=(1.4 * len(cols), 1.2 * rows), squeeze=False)
    r = 0
    for model, pics in images.items():
        for i in range(pics["x"].shape[0]):
            for c, (key, title) in enumerate(cols):
                ax = axes[r, c]
                ax.imshow(
                    pics[key][i].detach().float().reshape(pics[key].shape[-2:]).numpy(), cmap="gray", vmin=0, vmax=1
                )
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0:
                    ax.set_title(title, fontsize=7)
                if c == 0 and i == 0:
                    ax.set_ylabel(model, fontsize=8)
            r += 1
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_test_error(metrics: dict[str, Any], path: str | Path) -> None:
    """Grouped bars: test MSE per method (bars) per model (groups), error bars = std over seeds."""
    plt = _plt()
    models = list(metrics["models"])
    methods = list(next(iter(metrics["models"].values()))["methods"])
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(models), 3.2))
    for j, method in enumerate(methods):
        means = [metrics["models"][m]["methods"][method]["mean"] for m in models]
        stds = [metrics["models"][m]["methods"][method]["std"] for m in models]
        xs = [i + (j - (len(methods) - 1) / 2) * width for i in range(len(models))]
        ax.bar(xs, means, width, yerr=stds, capsize=3, label=method)
    ax.set_xticks(range(len(models)))
    ax.set_xticklabels(models)
    ax.set_ylabel("test MSE per pixel")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_report(metrics: dict[str, Any], images: dict[str, dict[str, torch.Tensor]], out_dir: str | Path) -> Path:
    """Write ``metrics.json``, ``uae_grid.png`` and ``test_error.png`` into ``out_dir`` (created); returns it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True))
    plot_grid(images, out / "uae_grid.png")
    plot_test_error(metrics, out / "test_error.png")
    return out
