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


# A new user's own module of autoencoders, written to their folder by the command-line tests.
USER_MODULE = """
import torch
from torch import nn


class SilhouetteAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.ReLU())
        self.dec = nn.Sequential(nn.ConvTranspose2d(8, 1, 4, stride=2, padding=1), nn.Sigmoid())

    def forward(self, x):
        return self.dec(self.enc(x))


class ColourAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1), nn.Sigmoid())

    def forward(self, x):
        return self.net(x)
"""
