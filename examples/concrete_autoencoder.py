"""Concrete-autoencoder feature selection (Abid et al. 2019) with and without UAE augmentation.

    python examples/concrete_autoencoder.py            # Mice Protein + MNIST, K in (10, 50), seeds 0, 1, 2
    python examples/concrete_autoencoder.py --quick    # tiny sizes, one seed, for CI
    python examples/concrete_autoencoder.py --uae-eps 0.5 --uae-steps 80   # a larger UAE budget

For each data set, K and seed: "plain" trains a ConcreteAutoencoder on the
train split; "uae" attacks that model with MinMaxAttack(Reconstruction(cae),
similarity="projection"), one UAE per training row, and trains a fresh CAE
with the same step budget on train + UAEs (input and target the same rows).
Each method's K selected features are scored by the test accuracy of
ExtraTreesClassifier(n_estimators=100, random_state=seed) fit on those
features of the train split. Writes results.md, metrics.json and
accuracy.png to --out.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from table_script import parse_arguments, write_outputs  # examples/table_script.py

from uae_plugin import MinMaxAttack, Reconstruction
from uae_plugin.concrete_autoencoder import ConcreteAutoencoder, train_concrete_autoencoder
from uae_plugin.tabular_data import mice_protein_split, mnist_flat_split

FULL = {
    "seeds": (0, 1, 2),
    "ks": (10, 50),
    "mnist": {"n_train": 2000, "n_test": 1000},
    "cae_steps": 3000,
    "batch_size": 64,
    "hidden": (128, 128),
    "attack": {"eps": 0.1, "steps": 20, "mine_steps": 2},
}
QUICK = {
    "seeds": (0,),
    "ks": (10,),
    "mnist": {"n_train": 300, "n_test": 200},
    "cae_steps": 150,
    "batch_size": 64,
    "hidden": (64,),
    "attack": {"eps": 0.1, "steps": 5, "mine_steps": 1},
}
ATTACK_CHUNK = 500


def load(name: str, seed: int, cfg: dict) -> dict[str, torch.Tensor]:
    if name == "mice":
        return mice_protein_split(test_fraction=0.3, seed=seed)
    return mnist_flat_split(seed=seed, **cfg["mnist"])


def train_cae(x: torch.Tensor, k: int, seed: int, cfg: dict) -> ConcreteAutoencoder:
    torch.manual_seed(seed)
    model = ConcreteAutoencoder(x.shape[1], k, hidden=cfg["hidden"])
    return train_concrete_autoencoder(model, x, cfg["cae_steps"], batch_size=cfg["batch_size"], seed=seed)


def make_uaes(model: ConcreteAutoencoder, x: torch.Tensor, seed: int, cfg: dict) -> tuple[torch.Tensor, float]:
    """One UAE per row of ``x``; returns them and the attack's success rate."""
    attack = MinMaxAttack(Reconstruction(model), similarity="projection", seed=seed, **cfg["attack"])
    adv, success = [], []
    for start in range(0, x.shape[0], ATTACK_CHUNK):
        res = attack(x[start : start + ATTACK_CHUNK], index=torch.arange(start, min(start + ATTACK_CHUNK, x.shape[0])))
        adv.append(res.adv.detach())
        success.append(res.success)
    return torch.cat(adv), float(torch.cat(success).float().mean())


def accuracy(features: torch.Tensor, data: dict[str, torch.Tensor], seed: int) -> float:
    from sklearn.ensemble import ExtraTreesClassifier

    idx = features.cpu().numpy()
    clf = ExtraTreesClassifier(n_estimators=100, random_state=seed)
    clf.fit(data["x_train"].numpy()[:, idx], data["y_train"].numpy())
    return float(clf.score(data["x_test"].numpy()[:, idx], data["y_test"].numpy()))


def run_one(name: str, k: int, seed: int, cfg: dict) -> list[dict]:
    data = load(name, seed, cfg)
    plain = train_cae(data["x_train"], k, seed, cfg)
    uaes, success = make_uaes(plain, data["x_train"], seed, cfg)
    augmented = train_cae(torch.cat([data["x_train"], uaes]), k, seed, cfg)
    rows = []
    for method, model in (("plain", plain), ("uae", augmented)):
        features = model.selected_features()
        rows.append(
            {
                "data": name,
                "k": k,
                "seed": seed,
                "method": method,
                "accuracy": accuracy(features, data, seed),
                "features": features.tolist(),
                "uae_success_rate": success if method == "uae" else None,
            }
        )
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault((r["data"], r["k"], r["method"]), []).append(r["accuracy"])
    out = []
    for (name, k, method), accs in groups.items():
        t = torch.tensor(accs, dtype=torch.float64)
        std = float(t.std(unbiased=False)) if len(accs) > 1 else 0.0
        out.append({"data": name, "k": k, "method": method, "mean": float(t.mean()), "std": std, "n": len(accs)})
    return out


def markdown(summary: list[dict]) -> str:
    lines = ["| data | K | method | accuracy (mean ± std) | seeds |", "|---|---|---|---|---|"]
    for s in summary:
        lines.append(f"| {s['data']} | {s['k']} | {s['method']} | {s['mean']:.3f} ± {s['std']:.3f} | {s['n']} |")
    return "\n".join(lines)


def plot(summary: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({(s["data"], s["k"]) for s in summary})
    methods = ("plain", "uae")
    fig, ax = plt.subplots(figsize=(1.6 * len(groups) + 2, 3.5))
    for m, method in enumerate(methods):
        cells = [next(s for s in summary if (s["data"], s["k"], s["method"]) == (*g, method)) for g in groups]
        xs = [i + (m - 0.5) * 0.38 for i in range(len(groups))]
        ax.bar(xs, [c["mean"] for c in cells], 0.38, yerr=[c["std"] for c in cells], capsize=3, label=method)
    ax.set_xticks(range(len(groups)), [f"{name}\nK={k}" for name, k in groups])
    ax.set_ylabel("ExtraTrees test accuracy")
    ax.set_ylim(0, 1)
    ax.legend()
    ax.set_title("Concrete AE features: plain vs UAE")
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
    for name in ("mice", "mnist"):
        for k in cfg["ks"]:
            for seed in cfg["seeds"]:
                rows.extend(run_one(name, k, seed, cfg))
                print(f"{name} K={k} seed={seed}: done at {time.perf_counter() - t0:.0f} s", flush=True)
    summary = summarise(rows)
    table = markdown(summary)
    elapsed = time.perf_counter() - t0
    metrics = {"settings": cfg, "summary": summary, "runs": rows, "seconds": elapsed}
    write_outputs(args.out, table, metrics, lambda path: plot(summary, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
