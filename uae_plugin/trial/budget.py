"""The default fine-tuning budget and test score of a reconstruction trial.

Every arm continues training a copy of the user's trained model for the same number of Adam steps, with the same
batch size, learning rate and batch-order seed; only the training rows differ. Equal steps (not equal epochs) is
the fair budget: an augmented arm sees each clean row less often, so an augmentation earns credit only if its
rows are worth the clean-data steps they take. The default number of steps is two passes over the clean
training set (at least ``MIN_STEPS``): enough for an augmentation to act, short enough that arms × seeds
fine-tunes stay minutes on a CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..model_guard import borrowed
from .rows import Data, batches, count, on_device_of, take

DEFAULT_BATCH_SIZE = 64
# A tenth of Adam's default: 1e-3 damages a converged batch-norm model (+23% to +121% test MSE after 10 steps; 1e-4
# leaves it no worse: benchmarks/fine_tune_damage.py).
DEFAULT_LR = 1e-4
DEFAULT_EPOCHS = 2
MIN_STEPS = 100
SCORE_BATCH = 256

Fit = Callable[..., nn.Module]  # fit(model, data, *, steps, seed[, targets][, augment]) -> model
Loss = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]  # loss(model, inputs, targets) -> scalar
Augment = Callable[[nn.Module, torch.Tensor, int], torch.Tensor]  # augment(model, x, step) -> inputs
Score = Callable[[nn.Module, Data], float]  # score(model, x_test) -> float, lower is better


def default_steps(n_train: int, batch_size: int = DEFAULT_BATCH_SIZE) -> int:
    """``max(MIN_STEPS, ceil(DEFAULT_EPOCHS * n_train / batch_size))``: two passes over the clean rows."""
    return max(MIN_STEPS, math.ceil(DEFAULT_EPOCHS * n_train / batch_size))


def batch_order(n: int, batch_size: int, steps: int, seed: int) -> Iterator[torch.Tensor]:
    """``steps`` batches of row indices of ``range(n)``, drawn without replacement epoch by epoch (a fresh
    permutation from ``seed`` each pass): the same order for every model given the same ``n`` and ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    taken = 0
    while taken < steps:
        for idx in torch.randperm(n, generator=gen).split(batch_size):
            if taken == steps:
                return
            yield idx
            taken += 1


class AdamFit:
    """``fit(model, data, *, steps, seed, targets=None, augment=None)``: ``steps`` Adam steps (``lr``) on batches of
    ``batch_size`` rows of ``data`` (:func:`batch_order`), each minimising ``loss(model, inputs, targets)``; under
    ``torch.manual_seed(seed)`` (dropout and other draws of the model), the caller's RNG state restored after.
    Returns ``model`` in eval mode.

    - ``targets``: rows aligned with ``data`` (a denoising fit: an augmented row is trained towards its clean
      source); default: each row is its own target.
    - ``augment(model, x, step) -> inputs``: an online augmentation, called on every batch with the model as it is
      at that step (e.g. rows replaced by attacks against it); the targets stay the batch's rows.

    The default ``loss`` is the reconstruction error ``mean (t - g(x))^2`` of the inputs against the targets.
    """

    def __init__(self, lr: float = DEFAULT_LR, batch_size: int = DEFAULT_BATCH_SIZE, loss: Loss | None = None) -> None:
        self.lr, self.batch_size = lr, batch_size
        self.loss = loss if loss is not None else reconstruction_loss

    def __repr__(self) -> str:
        return (
            f"AdamFit(lr={self.lr:g}, batch_size={self.batch_size}, loss={getattr(self.loss, '__name__', self.loss)})"
        )

    def __call__(
        self,
        model: nn.Module,
        data: Data,
        *,
        steps: int,
        seed: int,
        targets: Data | None = None,
        augment: Augment | None = None,
    ) -> nn.Module:
        opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model.train()
            for step, idx in enumerate(batch_order(count(data), self.batch_size, steps, seed)):
                x = on_device_of(model, take(data, idx))
                target = x if targets is None else on_device_of(model, take(targets, idx))
                inputs = x if augment is None else augment(model, x, step)
                loss = self.loss(model, inputs, target)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        return model.eval()


def reconstruction_loss(model: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean (t - g(x))^2`` over the batch's elements (``t = x`` unless the fit denoises)."""
    return F.mse_loss(model(x), target)


@torch.no_grad()
def reconstruction_error(model: nn.Module, x_test: Data) -> float:
    """The default score: the mean squared error per element, ``Σ (x - g(x))^2 / numel``, over ``x_test``, with
    the model in eval mode (restored after)."""
    total, elements = 0.0, 0
    with borrowed(model):
        for x in batches(x_test, SCORE_BATCH):
            x = on_device_of(model, x)
            total += float(F.mse_loss(model(x).float(), x.float(), reduction="sum"))
            elements += x.numel()
    return total / elements
