"""Borrow the user's model for an attack and give it back as it was."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def borrowed(model: nn.Module, training: bool = False) -> Iterator[nn.Module]:
    """Freeze ``model`` for the duration of an attack, then restore it.

    Inside: every parameter has ``requires_grad=False`` (gradients flow to the
    input only, so no ``.grad`` is ever written) and every module is in
    ``eval`` mode (``training=False``, e.g. batch norm uses running statistics) or
    ``train`` mode. On exit, also when the attack raises, each module's
    ``training`` flag and each parameter's ``requires_grad`` flag are put back
    one by one (mixed modes survive). Parameter values are never written; in
    train mode, buffers the forward passes update (batch-norm running
    statistics) are copied back to their values before the attack.
    """
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()] if training else []
    try:
        model.train(training)
        for p, _ in flags:
            p.requires_grad_(False)
        yield model
    finally:
        for m, was_training in modes:
            m.training = was_training
        for p, required in flags:
            p.requires_grad_(required)
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
