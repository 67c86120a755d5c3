"""torchattacks ``PGD`` on a criterion's task loss: the cost floor a UAE is measured against.

torchattacks attacks classifiers: it maximises the cross entropy of ``model(x')`` at the given labels.
:class:`TaskLossLogits` turns any uae_plugin criterion into such a model, returning the logits
``[0, L(x')]`` per sample, so the cross entropy at label 0, ``log(1 + exp L(x'))``, rises with the task
loss ``L`` (reconstruction error, or NT-Xent over the sample's views). Each PGD step then costs one
forward and backward pass of the user's model, which is the floor for any attack on it.
"""

from __future__ import annotations

import time

import torch
import torchattacks
from torch import nn

from uae_plugin import Criterion


class TaskLossLogits(nn.Module):
    """``x' [B, ...] -> [B, 2]`` logits ``(0, L(x'))`` for one clean batch (its state is fixed here)."""

    def __init__(self, criterion: Criterion, x: torch.Tensor, seed: int = 0) -> None:
        super().__init__()
        self.model = criterion.model  # a submodule, so torchattacks finds its device and mode
        self.criterion = criterion
        self.state = criterion.prepare(x, None, seed)
        # torchattacks puts the model back into the wrapper's mode after an attack: mirror the user's
        # model, or a wrapper left in train mode would switch an eval-mode encoder's batch norm to train.
        self.train(criterion.model.training)

    def forward(self, x_adv: torch.Tensor) -> torch.Tensor:
        loss = self.criterion.task_loss(x_adv, self.state)
        return torch.stack((torch.zeros_like(loss), loss), dim=1)


def pgd_on_task_loss(criterion: Criterion, x: torch.Tensor, steps: int, eps: float = 0.1):
    """``run() -> x'``: ``torchattacks.PGD(eps, alpha=2.5 eps / steps, steps)`` on the task loss of ``x``."""
    attack = torchattacks.PGD(TaskLossLogits(criterion, x), eps=eps, alpha=2.5 * eps / steps, steps=steps)
    labels = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    return lambda: attack(x, labels)


def time_pgd(criterion: Criterion, x: torch.Tensor, steps: int, eps: float = 0.1, repeats: int = 3) -> float:
    """Best wall time of ``repeats`` runs of ``torchattacks.PGD(steps=steps)`` on ``x`` (seconds)."""
    return best_time(pgd_on_task_loss(criterion, x, steps, eps), repeats)


def best_time(run, repeats: int) -> float:
    """The smallest wall time of ``repeats`` calls of ``run()`` (seconds): the least disturbed run."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)
