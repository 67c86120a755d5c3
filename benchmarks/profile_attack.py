"""Where the time of one default attack goes: torch.profiler's table of operators, by self CPU time.

    OMP_NUM_THREADS=1 python benchmarks/profile_attack.py [--model conv|dense|strided] [--batch 256] [--rows 15]
                                                          [--estimator gaussian|mine] [--mine-steps 2]

An autoencoder trained on the embedded MNIST digits (``cost_ratio.models``: the bundled conv or dense one, or the
strided conv + batch-norm one), ``MinMaxAttack(Reconstruction(model))`` with the default settings on one batch of
held-out digits, after a warm-up call. Also prints the share of the self CPU time of each part of the loop:
the model (convolutions, batch norm, pooling, linear layers, activations and their backward), the closed-form
Gaussian MI (its value and its closed-form gradient), MINE's statistics networks
(``--estimator mine``), Adam, and the rest (the criterion's error, keep-best, the dual ascent, copies); and the
operator calls per step of the attack and of torchattacks PGD with the same T.
"""

from __future__ import annotations

import argparse

from cost_ratio import models
from pgd_floor import pgd_on_task_loss
from torch.profiler import ProfilerActivity, profile, record_function

from uae_plugin import MinMaxAttack, Reconstruction, unexplained
from uae_plugin.experiments.data import mnist_split

MODEL = (
    "aten::mkldnn_convolution",
    "aten::convolution_backward",
    "aten::_convolution",
    "aten::max_pool2d_with_indices",
    "aten::max_pool2d_with_indices_backward",
    "aten::native_batch_norm",
    "aten::native_batch_norm_backward",
    "aten::addmm",
    "aten::mm",
    "aten::clamp_min",
    "aten::threshold_backward",
    "aten::sigmoid",
    "aten::sigmoid_backward",
    "aten::fill_",
)
MI_LABELS = ("Gaussian MI", "Gaussian MI gradient")  # their CPU time with the ops inside them (labelled below)
STATISTICS_NETWORKS = ("aten::bmm", "aten::baddbmm", "aten::gather", "aten::scatter_add_", "aten::logsumexp")
ADAM = ("aten::_fused_adam_",)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("conv", "dense", "strided"), default="conv")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--estimator", choices=("gaussian", "mine"), default="gaussian")
    parser.add_argument("--mine-steps", type=int, default=None)
    parser.add_argument("--rows", type=int, default=15)
    args = parser.parse_args()
    data = mnist_split(seed=0)
    model = models(data["x_train"], [args.model])[args.model]
    x = data["x_test"][: args.batch]
    attack = MinMaxAttack(Reconstruction(model), mine_steps=args.mine_steps, estimator=args.estimator, seed=0)
    label_gaussian_mi()
    attack(x[:8])
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        attack(x)
    averages = prof.key_averages()
    print(averages.table(sort_by="self_cpu_time_total", row_limit=args.rows))
    total = sum(e.self_cpu_time_total for e in averages)
    parts = {
        "model (its layers, forward and backward)": sum(e.self_cpu_time_total for e in averages if e.key in MODEL),
        "Gaussian MI (its closed form and closed-form gradient)": sum(
            e.cpu_time_total for e in averages if e.key in MI_LABELS
        ),
        "statistics networks (MINE)": sum(e.self_cpu_time_total for e in averages if e.key in STATISTICS_NETWORKS),
        "Adam (on delta; with --estimator mine also the networks' fused Adam)": sum(
            e.self_cpu_time_total for e in averages if e.key in ADAM
        ),
    }
    parts["the rest (error, MI's small ops, keep-best, dual ascent, copies, autograd)"] = total - sum(parts.values())
    print(f"{type(model).__name__}, batch {args.batch}, estimator {args.estimator}\n")
    print("| part | share of self CPU time |\n|---|---|")
    for part, time in parts.items():
        print(f"| {part} | {time / total:.0%} |")
    pgd = pgd_on_task_loss(Reconstruction(model), x, 40)
    pgd()  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as pgd_prof:
        pgd()
    steps = attack.settings.steps
    print(
        f"\noperator calls per step (aten, nested included): UAE {_aten_calls(prof) / steps:.0f}, "
        f"torchattacks PGD {_aten_calls(pgd_prof) / 40:.0f}"
    )


def label_gaussian_mi() -> None:
    """Wrap the closed-form MI and its gradient in ``record_function`` labels, in this process only."""
    forward, gradient = unexplained.CleanPairs.mi_and_gradient, unexplained.Unexplained.gradient

    def labelled_forward(*args, **kwargs):
        with record_function(MI_LABELS[0]):
            return forward(*args, **kwargs)

    def labelled_gradient(*args, **kwargs):
        with record_function(MI_LABELS[1]):
            return gradient(*args, **kwargs)

    unexplained.CleanPairs.mi_and_gradient, unexplained.Unexplained.gradient = labelled_forward, labelled_gradient


def _aten_calls(prof) -> int:
    return sum(e.count for e in prof.key_averages() if e.key.startswith("aten::"))


if __name__ == "__main__":
    main()
