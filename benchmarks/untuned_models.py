"""Models nobody here tuned, as a user would write them in their own module (for ``trial_untuned.py``)."""

from __future__ import annotations

from torch import nn


class SilhouetteAE(nn.Module):
    """A strided conv autoencoder for 1-channel 28x28 images: 2 stride-2 convolutions down, 2 transposed up."""

    def __init__(self, channels: int = 1) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, 16, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2, padding=1)
        )
        self.decoder = nn.Sequential(
            nn.ReLU(),
            nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(16, channels, 4, stride=2, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return self.decoder(self.encoder(x))


class ColourAE(SilhouetteAE):
    """The same architecture for 3-channel images."""

    def __init__(self) -> None:
        super().__init__(channels=3)
