"""The throughput benchmark's figure: samples/s against batch size and against ``mine_steps``."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_sweeps(sweep: dict, path: Path) -> None:
    """Two panels from ``{"batch": {b: rate}, "mine_steps": {k: rate}}``, written to ``path`` (PNG)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    batches, rates = zip(*sweep["batch"].items(), strict=True)
    left.plot(batches, rates, "o-")
    left.set(xscale="log", xlabel="batch size", ylabel="UAEs per second", title="default settings, T=40")
    left.set_xticks(batches, [str(b) for b in batches])
    ks, rates = zip(*sweep["mine_steps"].items(), strict=True)
    right.plot(ks, rates, "o-")
    right.set(xlabel="mine_steps K", ylabel="UAEs per second", title="batch 256, T=40")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.suptitle("MinMaxAttack on a ConvAutoencoder (MNIST), CPU")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
