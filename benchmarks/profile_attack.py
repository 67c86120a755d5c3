"""Where the time of one default attack goes: torch.profiler's table of operators, by self CPU time.

    python benchmarks/profile_attack.py [--batch 256] [--mine-steps 2] [--rows 15]

ConvAutoencoder trained on the embedded MNIST digits, ``MinMaxAttack(Reconstruction(model))`` with the
default settings on one batch of held-out digits, after a warm-up call. Also prints the operator groups
that the README's performance section quotes: statistics networks (batched matmuls and their ReLUs),
the model (convolutions, pooling), the projection (dense matmul) and the optimisers.
"""

from __future__ import annotations

import argparse

from torch.profiler import ProfilerActivity, profile
from trained_models import trained_autoencoders

from uae_plugin import MinMaxAttack, Reconstruction
from uae_plugin.experiments.data import mnist_split

GROUPS = {
    "statistics networks (bmm, baddbmm, ReLU, gather)": (
        "aten::bmm",
        "aten::baddbmm",
        "aten::threshold_backward",
        "aten::clamp_min",
        "aten::gather",
        "aten::scatter_add_",
        "aten::logsumexp",
    ),
    "model (convolutions, pooling)": (
        "aten::mkldnn_convolution",
        "aten::convolution_backward",
        "aten::_convolution",
        "aten::max_pool2d_with_indices",
        "aten::max_pool2d_with_indices_backward",
    ),
    "projection (x @ P and its gradient)": ("aten::mm",),
    "optimisers (Adam on theta and delta)": ("aten::_fused_adam_", "Optimizer.step#Adam.step"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--mine-steps", type=int, default=None)
    parser.add_argument("--rows", type=int, default=15)
    args = parser.parse_args()
    data = mnist_split(seed=0)
    model = trained_autoencoders(data["x_train"], ("conv AE",))["conv AE"]
    x = data["x_test"][: args.batch]
    attack = MinMaxAttack(Reconstruction(model), mine_steps=args.mine_steps, seed=0)
    attack(x[:8])
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        attack(x)
    averages = prof.key_averages()
    print(averages.table(sort_by="self_cpu_time_total", row_limit=args.rows))
    total = sum(e.self_cpu_time_total for e in averages)
    print("| part | share of self CPU time |\n|---|---|")
    for part, names in GROUPS.items():
        share = sum(e.self_cpu_time_total for e in averages if e.key in names) / total
        print(f"| {part} | {share:.0%} |")


if __name__ == "__main__":
    main()
