"""UAE throughput against the authors' one-at-a-time regime, our own per-sample loop and torchattacks PGD.

    python benchmarks/throughput.py [--plot benchmarks/throughput.png] [--quick]

In one process, on the same models and data: a ConvAutoencoder trained on the embedded MNIST digits
(``Reconstruction``, batch 256, T=40) and a timm resnet18 encoder on the digits padded to 32x32
(``Contrastive`` with 2 pairs of views, untrained weights; a smaller batch and T because one CPU
step of resnet18 on 4 views of 256 images takes seconds). For each it prints samples/s and the
quality columns (success rate, exact MI(x, adv): ``mutual_information``, Gaussian estimator) of

- torchattacks ``PGD`` on the same task loss with the same T (the model's own gradient cost),
- the default UAE attack (closed-form Gaussian MI) batched, the same attack one sample at a time,
- the default attack with ``estimator="mine"`` (2 MINE steps per outer step), batched, and
- ``preset="reference"`` one sample at a time (the authors' regime; a few samples, it is slow),

and the three ratios the performance goals are stated in; then a PNG of throughput against batch size and
against ``mine_steps``. (The peak RSS of ``uae generate`` is ``benchmarks/generate_memory.py``'s.)
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from pgd_floor import best_time, time_pgd
from throughput_plot import plot_sweeps

from uae_plugin import Contrastive, Criterion, MinMaxAttack, Reconstruction, mutual_information
from uae_plugin.experiments.data import mnist_split
from uae_plugin.experiments.models import ConvAutoencoder, train_autoencoder


@dataclass
class Case:
    """One model: its criterion factory, a batch, T, and how many samples the per-sample loops run."""

    name: str
    criterion: object  # () -> Criterion
    x: torch.Tensor
    steps: int
    loop_samples: int
    reference_samples: int


def _one_at_a_time(attack: MinMaxAttack, x: torch.Tensor):
    parts = [attack(x[i : i + 1]) for i in range(x.shape[0])]
    return torch.cat([p.adv for p in parts]), torch.cat([p.success for p in parts])


def _mi(x: torch.Tensor, adv: torch.Tensor) -> float:
    return float(mutual_information(x, adv).mean())


def measure(case: Case, repeats: int) -> dict:
    """Times, success rates and fresh MI of the four runs of one case; rates in samples/s."""
    x, steps = case.x, case.steps
    crit: Criterion = case.criterion()
    attack = MinMaxAttack(crit, steps=steps, seed=0)
    attack(x[:2])  # warm-up: first-call allocations and the projection matrix
    out = {}
    results = []
    out["pgd"] = {"rate": x.shape[0] / time_pgd(crit, x, steps, repeats=repeats)}
    loop_x = x[: case.loop_samples]
    pgd_loop = sum(time_pgd(crit, loop_x[i : i + 1], steps, repeats=1) for i in range(loop_x.shape[0]))
    out["pgd_loop"] = {"rate": loop_x.shape[0] / pgd_loop}
    batched = best_time(lambda: results.append(attack(x)), repeats)
    res = results[-1]
    out["batched"] = {"rate": x.shape[0] / batched, "success": res.success_rate, "mi": _mi(x, res.adv)}
    mine_attack = MinMaxAttack(crit, steps=steps, seed=0, estimator="mine")
    mine_attack(x[:2])
    mine_results = []
    mine_time = best_time(lambda: mine_results.append(mine_attack(x)), repeats)
    mine_res = mine_results[-1]
    out["mine"] = {"rate": x.shape[0] / mine_time, "success": mine_res.success_rate, "mi": _mi(x, mine_res.adv)}
    loop = []
    loop_time = best_time(lambda: loop.append(_one_at_a_time(attack, loop_x)), 1)
    adv, success = loop[-1]
    out["loop"] = {"rate": loop_x.shape[0] / loop_time, "success": float(success.float().mean())}
    out["loop"]["mi"] = _mi(loop_x, adv)
    ref_x = x[: case.reference_samples]
    reference = MinMaxAttack(case.criterion(), steps=steps, seed=0, preset="reference")
    ref = []
    ref_time = best_time(lambda: ref.append(_one_at_a_time(reference, ref_x)), 1)
    adv, success = ref[-1]
    out["reference"] = {"rate": ref_x.shape[0] / ref_time, "success": float(success.float().mean())}
    out["reference"]["mi"] = _mi(ref_x, adv)
    out["batched_on_reference_samples"] = {"mi": _mi(ref_x, res.adv[: ref_x.shape[0]])}
    out["batched_on_reference_samples"]["success"] = float(res.success[: ref_x.shape[0]].float().mean())
    return out


def print_case(case: Case, m: dict) -> None:
    b, n_loop, n_ref = case.x.shape[0], case.loop_samples, case.reference_samples
    rows = [
        ("torchattacks PGD, batched (floor)", b, m["pgd"]),
        ("torchattacks PGD, one at a time", n_loop, m["pgd_loop"]),
        ("UAE default (gaussian MI), batched", b, m["batched"]),
        ("UAE estimator='mine', batched", b, m["mine"]),
        ("UAE default, one at a time", n_loop, m["loop"]),
        ("UAE reference, one at a time", n_ref, m["reference"]),
        (f"UAE default, batched: its first {n_ref}", n_ref, {**m["batched_on_reference_samples"], "rate": None}),
    ]
    print(f"\n### {case.name}, T={case.steps}, batch {b}\n")
    print("| run | samples | samples/s | success | exact MI(x, adv) |\n|---|---|---|---|---|")
    for label, n, r in rows:
        rate = "" if r["rate"] is None else f"{r['rate']:.2f}"
        success = f"{r['success']:.1%}" if "success" in r else ""
        mi = f"{r['mi']:.3f}" if "mi" in r else ""
        print(f"| {label} | {n} | {rate} | {success} | {mi} |")
    batched = m["batched"]["rate"]
    print(
        f"\n- batched default / reference one at a time: **{batched / m['reference']['rate']:.0f}x** (goal >= 100x)"
        f"\n- batched / our own one-at-a-time loop: **{batched / m['loop']['rate']:.1f}x** (goal >= 20x); "
        f"the same ratio for PGD, the model's own batching gain: {m['pgd']['rate'] / m['pgd_loop']['rate']:.1f}x"
        f"\n- UAE time / torchattacks PGD time: **{m['pgd']['rate'] / batched:.2f}x** (goal <= 1.2x); "
        f"with estimator='mine': {m['pgd']['rate'] / m['mine']['rate']:.2f}x",
        flush=True,
    )


def sweeps(model: torch.nn.Module, x: torch.Tensor, steps: int, batches, mine_steps) -> dict:
    """Samples/s of the default attack against batch size, and of estimator="mine" against mine_steps."""
    by_batch, by_mine = {}, {}
    for b in batches:
        attack = MinMaxAttack(Reconstruction(model), steps=steps, seed=0)
        attack(x[:1])
        by_batch[b] = b / best_time(lambda a=attack, b=b: a(x[:b]), 2 if b < 64 else 1)
    for k in mine_steps:
        attack = MinMaxAttack(Reconstruction(model), steps=steps, mine_steps=k, seed=0, estimator="mine")
        attack(x[:1])
        by_mine[k] = x.shape[0] / best_time(lambda a=attack: a(x), 1)
    return {"batch": by_batch, "mine_steps": by_mine}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", type=Path, default=Path("benchmarks/throughput.png"))
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of the batched runs (best kept)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script, measures nothing")
    args = parser.parse_args()
    q = args.quick
    torch.manual_seed(0)
    data = mnist_split(seed=0)
    conv = train_autoencoder(ConvAutoencoder(), data["x_train"], epochs=1 if q else 3, seed=0)
    resnet = timm.create_model("resnet18", in_chans=1, num_classes=0).eval()
    digits = data["x_test"][: 8 if q else 256]
    print(f"torch {torch.__version__}, timm {timm.__version__}, {torch.get_num_threads()} CPU threads")
    cases = [
        Case(
            "ConvAutoencoder, Reconstruction",
            lambda: Reconstruction(conv),
            digits,
            3 if q else 40,
            2 if q else 32,
            1 if q else 3,
        ),
        Case(
            "timm resnet18 (32x32, untrained), Contrastive(n_views=2)",
            lambda: Contrastive(resnet, n_views=2),
            F.pad(digits[: 4 if q else 64], (2, 2, 2, 2)),
            2 if q else 20,
            2 if q else 8,
            1 if q else 2,
        ),
    ]
    for case in cases:
        print_case(case, measure(case, 1 if q else args.repeats))

    batches = (1, 4) if q else (1, 4, 16, 64, 256)
    mine = (0, 1) if q else (0, 1, 2, 5, 10, 20)
    sweep = sweeps(conv, digits, 3 if q else 40, batches, mine)
    print("\n### Sweeps (conv AE)\n\n| batch | samples/s |\n|---|---|")
    print("\n".join(f"| {b} | {r:.1f} |" for b, r in sweep["batch"].items()))
    print(f"\n| mine_steps, estimator='mine' (batch {digits.shape[0]}) | samples/s |\n|---|---|")
    print("\n".join(f"| {k} | {r:.1f} |" for k, r in sweep["mine_steps"].items()))
    plot_sweeps(sweep, args.plot)
    print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
