"""The attack's cost against torchattacks PGD with the same steps, interleaved, in one process.

    python benchmarks/cost_ratio.py [--repeats 5] [--batches 256 64] [--models conv dense strided]
                                    [--mine] [--train-steps 4] [--no-train] [--no-attack]

Attack table. On three autoencoders trained on the embedded MNIST digits (3 epochs from torch seed 0:
``ConvAutoencoder``, ``DenseAutoencoder`` and ``StridedConvAutoencoder``, Conv(1,16,3,s2)-BN-ReLU-
Conv(16,32,3,s2)-BN-ReLU-ConvT(32,16,4,2,1)-BN-ReLU-ConvT(16,1,4,2,1)-Sigmoid) and for each batch size, times
``--repeats`` rounds of, in turn: torchattacks ``PGD`` on the reconstruction loss with T = 40 steps
(``pgd_floor.time_pgd``; the clean pass of its loss wrapper is made before the clock starts) and the default
``MinMaxAttack(Reconstruction(model))`` (closed-form Gaussian MI, T = 40; its clean pass is timed), plus
``estimator="mine"`` with ``--mine``. Alternating them in every round keeps a busy machine from favouring one;
the best time of each is kept. Goal for the default: <= 1.1x PGD (issue 25).

Training-step table. One optimisation step of the autoencoder (Adam, MSE to the clean batch, train mode) on a
batch of 256 digits augmented by ``uae_plugin.integrations.kornia.RandomUAE(model, p=0.5, steps=5)`` against the
same step with the same rows replaced by ``uae_plugin.UnsupervisedPGD`` examples of 5 steps (eps 0.1, the core's PGD
with a random start, through ``uae_plugin.online.replace_rows`` as the trial's ``online-pgd`` arm; the rows are
those kornia's gate chose for the UAE step, drawn before the clock starts). Each side trains its own copy of the
model; ``--train-steps`` steps per round, the two sides alternating which goes first, best round of
``--repeats``. Goal: <= 1.15x.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import time

import torch
from pgd_floor import best_time, time_pgd
from torch import nn
from trained_models import trained_autoencoders

from uae_plugin import MinMaxAttack, Reconstruction, UnsupervisedPGD
from uae_plugin.experiments.data import mnist_split
from uae_plugin.experiments.models import StridedConvAutoencoder, train_autoencoder
from uae_plugin.online import replace_rows

NAMES = {"conv": "conv AE", "dense": "dense AE", "strided": "strided conv + BN AE"}


def models(x_train: torch.Tensor, kinds: list[str]) -> dict[str, nn.Module]:
    """The bundled conv and dense autoencoders (``trained_models``), and the strided conv + BN one, each 3 epochs."""
    bundled = trained_autoencoders(x_train, tuple(NAMES[k] for k in kinds if k != "strided"))
    out = {k: bundled[NAMES[k]] for k in kinds if k != "strided"}
    if "strided" in kinds:
        torch.manual_seed(0)
        out["strided"] = train_autoencoder(StridedConvAutoencoder(), x_train, epochs=3, seed=0)
    return out


def attack_table(model: nn.Module, x: torch.Tensor, repeats: int, mine: bool) -> dict[str, float]:
    """Best seconds of PGD, the default attack (and MINE), T = 40, interleaved."""
    attacks = {"default": MinMaxAttack(Reconstruction(model), steps=40, seed=0)}
    if mine:
        attacks["mine"] = MinMaxAttack(Reconstruction(model), steps=40, seed=0, estimator="mine")
    for attack in attacks.values():
        attack(x[:2])  # warm-up
    time_pgd(Reconstruction(model), x[:2], 2, repeats=1)
    times: dict[str, list[float]] = {"pgd": [], **{name: [] for name in attacks}}
    for _ in range(repeats):
        times["pgd"].append(time_pgd(Reconstruction(model), x, 40, repeats=1))
        for name, attack in attacks.items():
            times[name].append(best_time(lambda a=attack: a(x), 1))
    return {name: min(t) for name, t in times.items()}


def training_step_table(model: nn.Module, x: torch.Tensor, repeats: int, steps: int) -> dict[str, float]:
    """Best seconds of ``steps`` training steps with RandomUAE(p=0.5, steps=5) and with PGD-5 on the same rows."""
    from uae_plugin.integrations.kornia import RandomUAE

    uae_model, pgd_model = copy.deepcopy(model), copy.deepcopy(model)
    uae_opt = torch.optim.Adam(uae_model.parameters(), lr=1e-4)
    pgd_opt = torch.optim.Adam(pgd_model.parameters(), lr=1e-4)
    aug = RandomUAE(uae_model, p=0.5, steps=5)

    def train(net: nn.Module, opt: torch.optim.Optimizer, batch: torch.Tensor) -> None:
        net.train()
        loss = nn.functional.mse_loss(net(batch), x)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def gate(k: int) -> dict[str, torch.Tensor]:
        torch.manual_seed(k)  # kornia's gate and RandomUAE's seed come from torch's global RNG
        return aug.forward_parameters(x.shape)

    def uae_steps(first: int) -> None:
        for k in range(first, first + steps):
            train(uae_model, uae_opt, aug(x, params=params[k]))
            assert torch.equal(aug.last_rows, rows[k])

    def pgd_steps(first: int) -> None:
        for k in range(first, first + steps):
            pgd = UnsupervisedPGD(Reconstruction(pgd_model), eps=0.1, steps=5, seed=k)
            out, _ = replace_rows(x, rows[k], pgd, x.device)
            train(pgd_model, pgd_opt, out)

    rounds = [10_000, *range(0, repeats * steps, steps)]  # a warm-up round, then the timed ones
    params = {k: gate(k) for first in rounds for k in range(first, first + steps)}
    rows = {k: aug._selected_rows(x, p) for k, p in params.items()}
    uae_steps(rounds[0])
    pgd_steps(rounds[0])
    times: dict[str, list[float]] = {"pgd": [], "uae": []}
    for r, first in enumerate(rounds[1:]):
        for name in ("uae", "pgd") if r % 2 == 0 else ("pgd", "uae"):  # neither always first
            start = time.perf_counter()
            (uae_steps if name == "uae" else pgd_steps)(first)
            times[name].append(time.perf_counter() - start)
    return {name: min(t) / steps for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 64])
    parser.add_argument("--models", nargs="+", choices=list(NAMES), default=list(NAMES))
    parser.add_argument("--mine", action="store_true", help="also time estimator='mine'")
    parser.add_argument("--train-steps", type=int, default=4)
    parser.add_argument("--train-batch", type=int, default=256)
    parser.add_argument("--no-train", action="store_true", help="skip the training-step table")
    parser.add_argument("--no-attack", action="store_true", help="skip the attack table")
    args = parser.parse_args()
    data = mnist_split(seed=0)
    nets = models(data["x_train"], args.models)
    threads = os.environ.get("OMP_NUM_THREADS")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads (OMP_NUM_THREADS={threads}), "
        f"{platform.machine()}, {os.cpu_count()} CPUs, T = 40, best of {args.repeats} interleaved rounds"
    )
    header = "| model | batch | PGD s | default s | x PGD |" + (" mine s | x PGD |" if args.mine else "")
    if not args.no_attack:
        print("\n" + header + "\n|" + "---|" * (header.count("|") - 1))
    for batch in [] if args.no_attack else args.batches:
        x = data["x_test"][:batch]
        for kind, model in nets.items():
            best = attack_table(model, x, args.repeats, args.mine)
            line = f"| {NAMES[kind]} | {batch} | {best['pgd']:.3f} | {best['default']:.3f} | "
            line += f"{best['default'] / best['pgd']:.2f} |"
            if args.mine:
                line += f" {best['mine']:.3f} | {best['mine'] / best['pgd']:.2f} |"
            print(line, flush=True)
    if args.no_train:
        return
    print(
        f"\nTraining step, batch {args.train_batch}, p = 0.5, 5 attack steps, "
        f"best round of {args.repeats} x {args.train_steps} steps"
    )
    print("\n| model | PGD-5 step s | RandomUAE step s | x PGD |\n|---|---|---|---|")
    x = data["x_train"][: args.train_batch]
    for kind, model in nets.items():
        best = training_step_table(model, x, args.repeats, args.train_steps)
        print(
            f"| {NAMES[kind]} | {best['pgd']:.4f} | {best['uae']:.4f} | {best['uae'] / best['pgd']:.2f} |", flush=True
        )


if __name__ == "__main__":
    main()
