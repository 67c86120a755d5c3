"""Train lightly's SimCLR with UAE views on real MNIST digits with Lightning, then kNN-probe a held-out split.

    python examples/lightly_simclr.py            # UAESimCLR vs plain SimCLR, 2,000 digits, 1,000 held out
    python examples/lightly_simclr.py --tiny     # a few seconds, for CI

Views come from lightly's ``SimCLRTransform`` (normalised with the MNIST statistics); ``UAESimCLR`` (timm
``resnet10t`` created with ``num_classes=0``, ``SimCLRProjectionHead``, ``NTXentLoss``) adds, each step, the NT-Xent
loss of UAEs of the second view of part of the batch (``uae="online"``). Afterwards it generates offline UAEs of
some training digits (the paper's protocol: append them to the training set and retrain) and reports a cosine kNN
accuracy of the backbone features on held-out digits; labels are used only for this evaluation.
"""

from __future__ import annotations

import argparse
import time

import pytorch_lightning as pl
import torch
from lightly.transforms import SimCLRTransform
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import Normalize
from torchvision.transforms.functional import to_pil_image

from uae_plugin.experiments.data import mnist_split
from uae_plugin.experiments.ssl_evaluation import encode, knn_accuracy
from uae_plugin.integrations.lightly import UAESimCLR

MNIST_NORMALIZE = {"mean": [0.1307], "std": [0.3081]}  # the usual MNIST statistics


class TwoViews(Dataset):
    """``([v0, v1], label)``: lightly's SimCLRTransform applied to each digit as a PIL image."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y
        self.transform = SimCLRTransform(
            input_size=28, min_scale=0.5, cj_strength=0.5, gaussian_blur=0.0, hf_prob=0.0, normalize=MNIST_NORMALIZE
        )

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.transform(to_pil_image(self.x[i])), self.y[i]


class History(pl.Callback):
    """Per-step training loss and success rate of the online UAE views."""

    def __init__(self) -> None:
        self.loss, self.success = [], []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.loss.append(float(outputs["loss"]))
        if "uae_success_rate" in trainer.callback_metrics:
            self.success.append(float(trainer.callback_metrics["uae_success_rate"]))


def backbone_knn_accuracy(model: UAESimCLR, data: dict[str, torch.Tensor]) -> float:
    """Cosine kNN (k = 10) of the backbone's features: train digits are the bank, test digits the queries."""
    encoder = torch.nn.Sequential(Normalize(MNIST_NORMALIZE["mean"], MNIST_NORMALIZE["std"]), model.backbone)
    bank, queries = encode(encoder, data["x_train"]), encode(encoder, data["x_test"])
    return knn_accuracy(bank, data["y_train"], queries, data["y_test"], k=10)


def train(uae: str | None, data: dict[str, torch.Tensor], args: argparse.Namespace) -> tuple[UAESimCLR, History]:
    pl.seed_everything(args.seed, verbose=False)
    model = UAESimCLR(
        args.backbone, in_chans=1, small_images=args.small_images, hidden_dim=128, out_dim=64, lr=0.06, uae=uae,
        uae_fraction=args.fraction, eps=1.0, steps=args.attack_steps, n_views=args.views, seed=args.seed,
        **MNIST_NORMALIZE,
    )  # fmt: skip
    loader = DataLoader(TwoViews(data["x_train"], data["y_train"]), batch_size=args.batch, shuffle=True, drop_last=True)
    history = History()
    trainer = pl.Trainer(
        max_steps=args.max_steps, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=True, enable_model_summary=False, callbacks=[history],
    )  # fmt: skip
    trainer.fit(model, loader)
    return model, history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--backbone", default="resnet10t", help="timm model name")
    parser.add_argument("--small-images", action="store_true", help="3x3 stride-1 stem, no max-pool (slower)")
    parser.add_argument("--max-steps", type=int, default=150)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--attack-steps", type=int, default=5, help="MinMax steps T per online attack")
    parser.add_argument("--views", type=int, default=4, help="pairs of views in the attack's NT-Xent")
    parser.add_argument("--fraction", type=float, default=0.25, help="fraction of each batch given a UAE view")
    parser.add_argument("--offline", type=int, default=64, help="training digits to turn into offline UAEs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    n_train, n_test = 2000, 1000
    if args.tiny:
        n_train, n_test, args.max_steps, args.batch, args.attack_steps, args.views, args.offline = (
            64,
            64,
            4,
            16,
            2,
            2,
            8,
        )

    data = mnist_split(n_train=n_train, n_test=n_test, seed=args.seed)
    runs = [("UAESimCLR (online UAEs)", "online")] + ([] if args.tiny else [("plain SimCLR", None)])
    for name, uae in runs:
        t0 = time.perf_counter()
        model, history = train(uae, data, args)
        elapsed = time.perf_counter() - t0
        losses = history.loss
        what = "loss (NT-Xent + UAE term)" if uae else "loss (NT-Xent)"
        print(f"{name}: {len(losses)} steps in {elapsed:.1f} s, {what} {losses[0]:.3f} -> {sum(losses[-5:]) / 5:.3f}")
        if history.success:
            rate = sum(history.success) / len(history.success)
            print(f"  online UAE views: success rate {rate:.1%} (f_x(x') <= 0), mean over steps")
        print(f"  kNN accuracy (k=10) on {n_test} held-out digits: {backbone_knn_accuracy(model, data):.1%}")
        if uae is not None:
            uaes = model.generate_uaes(data["x_train"][: args.offline])
            print(
                f"  offline UAEs of {len(uaes)} training digits: success rate "
                f"{model.offline_success.float().mean():.1%}, mean |x' - x|_inf "
                f"{(uaes - data['x_train'][: args.offline]).flatten(1).abs().amax(1).mean():.3f}"
            )


if __name__ == "__main__":
    main()
