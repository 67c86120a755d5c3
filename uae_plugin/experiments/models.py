"""Small reference models for MNIST-sized inputs, and the loops that train them.

These are what the examples, tests and benchmarks attack; any ``nn.Module``
works with the attack itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvAutoencoder(nn.Module):
    """Conv autoencoder ``[B, 1, 28, 28] -> [B, 1, 28, 28]`` (sigmoid output).

    Its first layer, Conv2d(1, 16, 3), gives the 16 maps of 28x28 that the
    reference's "conv" similarity uses for MNIST.
    """

    def __init__(self, channels: int = 1) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 8, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(8, 16, 2, stride=2),
            nn.ReLU(),
            nn.ConvTranspose2d(16, channels, 2, stride=2),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class StridedConvAutoencoder(nn.Module):
    """Strided conv autoencoder with batch norm ``[B, 1, 28, 28] -> [B, 1, 28, 28]`` (sigmoid output).

    Encoder: Conv2d(1, 16, 3, stride 2) -> BN -> ReLU -> Conv2d(16, 32, 3, stride 2) -> BN -> ReLU (32 x 7 x 7);
    the decoder mirrors it with transposed convolutions. The kind of model on which UAE
    augmentation with the paper's settings measured most harmful.
    """

    def __init__(self, channels: int = 1) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, 16, 3, stride=2, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.ConvTranspose2d(16, channels, 4, stride=2, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class DenseAutoencoder(nn.Module):
    """Dense autoencoder ``d -> hidden -> d`` on flattened inputs, output reshaped like the input."""

    def __init__(self, features: int = 784, hidden: int = 128) -> None:
        super().__init__()
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(features, hidden), nn.ReLU())
        self.decoder = nn.Sequential(nn.Linear(hidden, features), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x)).reshape(x.shape)


class SmallClassifier(nn.Module):
    """A small CNN classifier ``[B, 1, 28, 28] -> [B, 10]`` logits."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * 7 * 7, 64),
            nn.ReLU(),
            nn.Linear(64, classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _batches(n: int, batch_size: int, gen: torch.Generator):
    order = torch.randperm(n, generator=gen)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def _fit(model: nn.Module, loss_fn, n: int, epochs: int, lr: float, batch_size: int, seed: int) -> nn.Module:
    """Adam on ``loss_fn(batch_indices)`` over shuffled mini-batches; returns the model in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for idx in _batches(n, batch_size, gen):
            loss = loss_fn(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


def train_autoencoder(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor | None = None,
    epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
) -> nn.Module:
    """Minimise ``mean ||target - g(input)||^2`` with Adam; targets default to the inputs."""
    targets = inputs if targets is None else targets
    return _fit(
        model, lambda i: F.mse_loss(model(inputs[i]), targets[i]), inputs.shape[0], epochs, lr, batch_size, seed
    )


def train_classifier(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    epochs: int = 5,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
) -> nn.Module:
    """Minimise the cross entropy with Adam."""
    return _fit(
        model, lambda i: F.cross_entropy(model(inputs[i]), labels[i]), inputs.shape[0], epochs, lr, batch_size, seed
    )


@torch.no_grad()
def reconstruction_error(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> float:
    """Mean squared error per pixel of ``model`` on ``x``."""
    model.eval()
    total = sum(
        F.mse_loss(model(x[i : i + batch_size]), x[i : i + batch_size], reduction="sum").item()
        for i in range(0, x.shape[0], batch_size)
    )
    return total / x.numel()


class SparseAutoencoder(DenseAutoencoder):
    """Sparse autoencoder ``d -> hidden -> d``: a :class:`DenseAutoencoder` trained with an L1 penalty on its code.

    Training loss: ``mean_pixels (x - g(x))^2 + l1 * mean_{b,j} |h_j(x_b)|``, with ``h(x): [B, hidden]``
    the ReLU code. ``forward`` is the plain reconstruction, so attacks see an ordinary autoencoder;
    the training loop adds :meth:`code_penalty` of :meth:`encode`.

    Example:
        >>> ae = SparseAutoencoder(l1=1e-2); h = ae.encode(x); recon = ae.decode(h, x.shape)
        >>> loss = F.mse_loss(recon, x) + ae.code_penalty(h)
    """

    def __init__(self, features: int = 784, hidden: int = 128, l1: float = 1e-2) -> None:
        super().__init__(features, hidden)
        if not l1 >= 0:
            raise ValueError(f"l1 must be >= 0, got {l1!r}")
        self.l1 = float(l1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code ``h(x): [B, hidden]`` (non-negative)."""
        return self.encoder(x)

    def decode(self, code: torch.Tensor, shape: torch.Size | tuple[int, ...]) -> torch.Tensor:
        """``g`` from the code, reshaped to ``shape`` (the input's)."""
        return self.decoder(code).reshape(shape)

    def code_penalty(self, code: torch.Tensor) -> torch.Tensor:
        """``l1 * mean |h|`` over the batch and code units: a scalar."""
        return self.l1 * code.abs().mean()
