"""Small helpers shared by several test files."""

from __future__ import annotations

import torch
from torch import nn


class CountedCalls(nn.Module):
    """Wraps a model and counts its forward calls in ``calls``."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.calls = inner, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.inner(x)


def correctly_classified(classifier: nn.Module, mnist: dict, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` test digits, keeping those ``classifier`` gets right."""
    x, y = mnist["x_test"][:n], mnist["y_test"][:n]
    with torch.no_grad():
        keep = classifier(x).argmax(1) == y
    return x[keep], y[keep]
