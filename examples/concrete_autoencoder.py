"""Concrete-autoencoder feature selection (Abid et al. 2019) with and without UAE augmentation, and its controls.

    python examples/concrete_autoencoder.py            # Mice Protein + MNIST, K in (10, 50), seeds 0, 1, 2
    python examples/concrete_autoencoder.py --quick    # tiny sizes, one seed, for CI
    python examples/concrete_autoencoder.py --uae-eps 0.5 --uae-steps 80   # a larger UAE budget

For each data set, K and seed, "plain" trains a ConcreteAutoencoder on the
train split. That CAE is then perturbed, one x' per training row, in four ways:

- "uae": MinMaxAttack(Reconstruction(cae), similarity="projection") with its
  default closed-form Gaussian MI term (eps 0.1, 20 steps unless --uae-eps /
  --uae-steps say otherwise);
- "nomi": the same attack with mi_weight=0.0 (the no-MI ablation);
- "noise": matched_gaussian_noise of the UAEs' L2 size, row by row;
- "pgd": UnsupervisedPGD(Reconstruction(cae)), maximising the reconstruction
  error, with eps equal to the attack's eps and 10 steps.

Each of these trains a fresh CAE with the same step budget (and seed) on
train + its x' (input and target the same rows). Each method's K selected
features are scored by the test accuracy of
ExtraTreesClassifier(n_estimators=100, random_state=seed) fit on those
features of the train split. Per augmentation the run records the mean exact
MI mutual_information(x, x') (nats), the mean L2 norm of x' - x, and the share
of rows whose x' the plain CAE reconstructs no worse than x (the UAE criterion
||x - g(x')||^2 <= ||x - g(x)||^2; for "uae" and "nomi" the attack's success
rate). Accuracy std is over seeds (population). Writes results.md,
metrics.json and accuracy.png to --out.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from table_script import parse_arguments, write_outputs  # examples/table_script.py
from tqdm.auto import tqdm

from uae_plugin import MinMaxAttack, Reconstruction, UnsupervisedPGD, matched_gaussian_noise, mutual_information
from uae_plugin.experiments.concrete_autoencoder import ConcreteAutoencoder, train_concrete_autoencoder
from uae_plugin.experiments.tabular_data import mice_protein_split, mnist_flat_split

FULL = {
    "seeds": (0, 1, 2),
    "ks": (10, 50),
    "mnist": {"n_train": 2000, "n_test": 1000},
    "cae_steps": 3000,
    "batch_size": 64,
    "hidden": (128, 128),
    "attack": {"eps": 0.1, "steps": 20, "mine_steps": 2},
    "pgd_steps": 10,
}
QUICK = {
    "seeds": (0,),
    "ks": (10,),
    "mnist": {"n_train": 300, "n_test": 200},
    "cae_steps": 150,
    "batch_size": 64,
    "hidden": (64,),
    "attack": {"eps": 0.1, "steps": 5, "mine_steps": 1},
    "pgd_steps": 10,
}
ATTACK_CHUNK = 500
METHODS = ("plain", "uae", "nomi", "noise", "pgd")
AUGMENTED = METHODS[1:]


def load(name: str, seed: int, cfg: dict) -> dict[str, torch.Tensor]:
    if name == "mice":
        return mice_protein_split(test_fraction=0.3, seed=seed)
    return mnist_flat_split(seed=seed, **cfg["mnist"])


def train_cae(x: torch.Tensor, k: int, seed: int, cfg: dict) -> ConcreteAutoencoder:
    torch.manual_seed(seed)
    model = ConcreteAutoencoder(x.shape[1], k, hidden=cfg["hidden"])
    return train_concrete_autoencoder(model, x, cfg["cae_steps"], batch_size=cfg["batch_size"], seed=seed)


def make_uaes(
    model: ConcreteAutoencoder, x: torch.Tensor, seed: int, cfg: dict, mi_weight: float = 1.0
) -> tuple[torch.Tensor, float]:
    """One UAE per row of ``x`` (``mi_weight=0.0``: the no-MI ablation); returns them and the attack's success rate."""
    attack = MinMaxAttack(
        Reconstruction(model), similarity="projection", seed=seed, mi_weight=mi_weight, **cfg["attack"]
    )
    adv, success = [], []
    for start in range(0, x.shape[0], ATTACK_CHUNK):
        res = attack(x[start : start + ATTACK_CHUNK], index=torch.arange(start, min(start + ATTACK_CHUNK, x.shape[0])))
        adv.append(res.adv.detach())
        success.append(res.success)
    return torch.cat(adv), float(torch.cat(success).float().mean())


def augmentations(model: ConcreteAutoencoder, x: torch.Tensor, seed: int, cfg: dict) -> tuple[dict, dict]:
    """``{method: x' [N, D]}`` for every augmented method, and the success rate of the two MinMax attacks."""
    uae, uae_success = make_uaes(model, x, seed, cfg)
    nomi, nomi_success = make_uaes(model, x, seed, cfg, mi_weight=0.0)
    pgd = UnsupervisedPGD(Reconstruction(model), eps=cfg["attack"]["eps"], steps=cfg["pgd_steps"], seed=seed)(x)
    aug = {"uae": uae, "nomi": nomi, "noise": matched_gaussian_noise(x, uae, seed=seed), "pgd": pgd.detach()}
    return aug, {"uae": uae_success, "nomi": nomi_success}


def mean_mi(x: torch.Tensor, x_other: torch.Tensor) -> float:
    """Mean over rows of the exact per-sample MI ``I(x_b, x'_b)`` in nats."""
    chunks = [
        mutual_information(x[i : i + ATTACK_CHUNK], x_other[i : i + ATTACK_CHUNK])
        for i in range(0, len(x), ATTACK_CHUNK)
    ]
    return float(torch.cat(chunks).double().mean())


def mean_l2(x: torch.Tensor, x_other: torch.Tensor) -> float:
    """Mean over rows of ``||x'_b - x_b||_2``."""
    return float((x_other - x).double().norm(dim=1).mean())


@torch.no_grad()
def reconstruction_gap(model: ConcreteAutoencoder, x: torch.Tensor, x_other: torch.Tensor) -> torch.Tensor:
    """The UAE criterion per row, ``||x - g(x')||^2 - ||x - g(x)||^2`` by ``model`` (``<= 0``: no worse), ``[N]``."""
    return (x - model(x_other)).pow(2).sum(dim=1) - (x - model(x)).pow(2).sum(dim=1)


def accuracy(features: torch.Tensor, data: dict[str, torch.Tensor], seed: int) -> float:
    from sklearn.ensemble import ExtraTreesClassifier

    idx = features.cpu().numpy()
    clf = ExtraTreesClassifier(n_estimators=100, random_state=seed)
    clf.fit(data["x_train"].numpy()[:, idx], data["y_train"].numpy())
    return float(clf.score(data["x_test"].numpy()[:, idx], data["y_test"].numpy()))


def run_one(name: str, k: int, seed: int, cfg: dict) -> list[dict]:
    data = load(name, seed, cfg)
    x = data["x_train"]
    models = {"plain": train_cae(x, k, seed, cfg)}
    aug, success = augmentations(models["plain"], x, seed, cfg)
    gaps = {method: reconstruction_gap(models["plain"], x, x_other) for method, x_other in aug.items()}
    for method in AUGMENTED:
        models[method] = train_cae(torch.cat([x, aug[method]]), k, seed, cfg)
    rows = []
    for method in METHODS:
        features = models[method].selected_features()
        rows.append(
            {
                "data": name,
                "k": k,
                "seed": seed,
                "method": method,
                "accuracy": accuracy(features, data, seed),
                "features": features.tolist(),
                "mi": mean_mi(x, aug[method]) if method in aug else None,
                "l2": mean_l2(x, aug[method]) if method in aug else None,
                "linf": float((aug[method] - x).abs().max()) if method in aug else None,
                "no_worse": float((gaps[method] <= 0).double().mean()) if method in aug else None,
                "mean_gap": float(gaps[method].double().mean()) if method in aug else None,
                "attack_success_rate": success.get(method),
            }
        )
    return rows


def _mean(values: list) -> float | None:
    return None if values[0] is None else float(torch.tensor(values, dtype=torch.float64).mean())


def summarise(rows: list[dict]) -> list[dict]:
    """Per data set, K and method: accuracy mean and std (population, over seeds), mean MI, L2 and attack success."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["data"], r["k"], r["method"]), []).append(r)
    out = []
    for (name, k, method), runs in groups.items():
        t = torch.tensor([r["accuracy"] for r in runs], dtype=torch.float64)
        std = float(t.std(unbiased=False)) if len(runs) > 1 else 0.0
        out.append(
            {
                "data": name,
                "k": k,
                "method": method,
                "mean": float(t.mean()),
                "std": std,
                "n": len(runs),
                "mi": _mean([r["mi"] for r in runs]),
                "l2": _mean([r["l2"] for r in runs]),
                "no_worse": _mean([r["no_worse"] for r in runs]),
                "mean_gap": _mean([r["mean_gap"] for r in runs]),
                "attack_success_rate": _mean([r["attack_success_rate"] for r in runs]),
            }
        )
    return out


def _cell(value: float | None, form: str) -> str:
    return "—" if value is None else format(value, form)


def markdown(summary: list[dict]) -> str:
    lines = [
        "| data | K | method | accuracy (mean ± std) | MI(x, x') nats | L2(x' − x) | x' no worse | seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        lines.append(
            f"| {s['data']} | {s['k']} | {s['method']} | {s['mean']:.3f} ± {s['std']:.3f} | {_cell(s['mi'], '.2f')} "
            f"| {_cell(s['l2'], '.3f')} | {_cell(s['no_worse'], '.0%')} | {s['n']} |"
        )
    return "\n".join(lines)


def plot(summary: list[dict], path: Path, attack: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({(s["data"], s["k"]) for s in summary})
    width = 0.8 / len(METHODS)
    fig, ax = plt.subplots(figsize=(2.2 * len(groups) + 2, 3.8))
    for m, method in enumerate(METHODS):
        cells = [next(s for s in summary if (s["data"], s["k"], s["method"]) == (*g, method)) for g in groups]
        xs = [i + (m - (len(METHODS) - 1) / 2) * width for i in range(len(groups))]
        ax.bar(xs, [c["mean"] for c in cells], width, yerr=[c["std"] for c in cells], capsize=2, label=method)
    ax.set_xticks(range(len(groups)), [f"{name}\nK={k}" for name, k in groups])
    ax.set_ylabel("ExtraTrees test accuracy")
    ax.set_ylim(0, 1.12)  # headroom for the legend above the bars
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.legend(ncol=len(METHODS), fontsize="small", loc="upper center")
    ax.set_title(f"Concrete AE features: plain, UAE (ε {attack['eps']}, T {attack['steps']}) and its controls")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def positive(kind: type) -> Callable[[str], float]:
    """An argparse type: ``kind(text)`` if it is > 0, else an argparse error naming the value."""

    def convert(text: str) -> float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return convert


def budget_options(parser: argparse.ArgumentParser) -> None:
    """``--uae-eps`` and ``--uae-steps``: a larger UAE budget than the table's (eps 0.1, 20 steps)."""
    parser.add_argument("--uae-eps", type=positive(float), help="UAE L-inf bound (default 0.1; δ0 ~ U[-eps, eps])")
    parser.add_argument("--uae-steps", type=positive(int), help="MinMax steps T per UAE (default 20)")


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv, __doc__, "concrete_autoencoder", "concrete-ae-report", threads=1, extra=budget_options)
    cfg = QUICK if args.quick else FULL
    budget = {"eps": args.uae_eps, "steps": args.uae_steps}
    cfg = {**cfg, "attack": {**cfg["attack"], **{k: v for k, v in budget.items() if v is not None}}}
    t0 = time.perf_counter()
    rows = []
    cells = [(name, k, seed) for name in ("mice", "mnist") for k in cfg["ks"] for seed in cfg["seeds"]]
    bar = tqdm(cells, unit="run", desc="concrete AE (data x K x seed)")
    for name, k, seed in bar:
        bar.set_postfix_str(f"{name} K={k} seed={seed}: plain, then 4 augmentations")
        rows.extend(run_one(name, k, seed, cfg))
        bar.write(f"{name} K={k} seed={seed}: done at {time.perf_counter() - t0:.0f} s")
    summary = summarise(rows)
    table = markdown(summary)
    elapsed = time.perf_counter() - t0
    metrics = {"settings": cfg, "summary": summary, "runs": rows, "seconds": elapsed}
    write_outputs(args.out, table, metrics, lambda path: plot(summary, path, cfg["attack"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
