"""Concrete autoencoder for unsupervised feature selection (Abid, Balin & Zou, ICML 2019).

A concrete selector layer picks ``k`` of the ``d`` input features; a small
MLP decoder reconstructs all ``d`` features from them. Selector neuron ``j``
holds logits ``log alpha_j: [d]``. In training it outputs

    y_j = sum_i m_ji x_i,   m_j = softmax((log alpha_j + g) / T),   g_i ~ Gumbel(0, 1) i.i.d.

(one Concrete / Gumbel-softmax sample per batch), and the temperature is
annealed exponentially from ``start_temp`` to ``min_temp`` over training,

    T(s) = start_temp * (min_temp / start_temp) ** (s / (steps - 1)),

so each ``m_j`` tends to a one-hot vector. In eval mode ``m_j`` *is* a
one-hot vector: the feature ``argmax_i log alpha_ji`` (duplicates resolved,
see :meth:`ConcreteAutoencoder.selected_features`), so ``y = x[:, idx]``
and the reconstruction depends on the ``k`` selected features only.

The model maps ``[B, d]`` (any ``[B, ...]`` with ``d`` values per row) in
[0, 1] to a sigmoid output of the same shape, so it can be the
``autoencoder`` of :class:`uae_plugin.Reconstruction`; attack it with
``similarity="projection"`` (tabular data has no convolution).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..validation import check_count, check_images, check_positive


class ConcreteAutoencoder(nn.Module):
    """Concrete selector of ``k`` features out of ``n_features``, then an MLP decoder back to ``n_features``.

    Args:
        n_features: d, the number of input features.
        k: features to select, ``1 <= k <= n_features``.
        hidden: widths of the decoder's hidden layers (LeakyReLU between them).

    Shape:
        x: ``[B, d]`` (or ``[B, ...]`` with ``d`` values per row); returns the same shape, values in (0, 1).
    """

    def __init__(self, n_features: int, k: int, hidden: tuple[int, ...] = (128, 128)) -> None:
        super().__init__()
        d = check_count(n_features, "n_features")
        k = check_count(k, "k")
        if k > d:
            raise ValueError(f"k must be <= n_features ({d}), got k={k}; select at most all features")
        widths = [k, *[check_count(h, "hidden") for h in hidden], d]
        self.n_features, self.k = d, k
        self.logits = nn.Parameter(torch.randn(k, d) * 0.01)  # log alpha
        self.register_buffer("temperature", torch.tensor(10.0))
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers.append(nn.Linear(a, b))
            layers.append(nn.LeakyReLU(0.2) if i < len(widths) - 2 else nn.Sigmoid())
        self.decoder = nn.Sequential(*layers)

    def selected_features(self) -> torch.Tensor:
        """The ``k`` distinct feature indices ``[k]`` int64 that eval mode uses, in selector-neuron order.

        Neuron j takes ``argmax_i log alpha_ji``; if two neurons want the same
        feature, the more confident one (larger softmax peak) keeps it and the
        other takes its best feature still free.
        """
        with torch.no_grad():
            probs = F.softmax(self.logits.float(), dim=1)
            chosen = torch.full((self.k,), -1, dtype=torch.int64)
            taken = torch.zeros(self.n_features, dtype=torch.bool)
            for j in torch.argsort(probs.max(dim=1).values, descending=True).tolist():
                p = probs[j].cpu().masked_fill(taken, -1.0)
                chosen[j] = int(p.argmax())
                taken[chosen[j]] = True
        return chosen.to(self.logits.device)

    def selection(self) -> torch.Tensor:
        """The selection matrix ``m: [k, d]``: Gumbel-softmax samples in training, one-hot rows in eval."""
        if not self.training:
            return F.one_hot(self.selected_features(), self.n_features).to(self.logits.dtype)
        uniform = torch.rand_like(self.logits).clamp(1e-10, 1.0)
        gumbel = -torch.log(-torch.log(uniform))
        return F.softmax((self.logits + gumbel) / self.temperature, dim=1)

    def select(self, x: torch.Tensor) -> torch.Tensor:
        """The selector's output ``y = x m^T: [B, k]`` (in eval: ``x[:, selected_features()]``)."""
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != self.n_features:
            raise ValueError(
                f"x must have {self.n_features} features per row, got shape {tuple(x.shape)}; "
                "pass the data the model was built for"
            )
        if not self.training:
            return flat[:, self.selected_features()]
        return flat @ self.selection().t()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.select(x)).reshape(x.shape)


def temperature_at(step: int, steps: int, start_temp: float, min_temp: float) -> float:
    """``start_temp * (min_temp / start_temp) ** (step / (steps - 1))``: start_temp at step 0, min_temp at the last."""
    if steps <= 1:
        return min_temp
    return start_temp * math.exp(math.log(min_temp / start_temp) * step / (steps - 1))


def train_concrete_autoencoder(
    model: ConcreteAutoencoder,
    x: torch.Tensor,
    steps: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    start_temp: float = 10.0,
    min_temp: float = 0.1,
    seed: int = 0,
) -> ConcreteAutoencoder:
    """Minimise ``mean ||x - g(x)||^2`` over ``steps`` Adam steps on random batches of ``x: [N, d]`` in [0, 1].

    The temperature follows :func:`temperature_at` from ``start_temp`` to
    ``min_temp``; batches and Gumbel noise come from ``seed`` alone (torch's
    global RNG is left as it was). Returns ``model`` in eval mode.
    """
    check_images(x)
    if not isinstance(model, ConcreteAutoencoder):
        raise TypeError(f"model must be a ConcreteAutoencoder, got {type(model).__name__}")
    if x.reshape(x.shape[0], -1).shape[1] != model.n_features:
        raise ValueError(f"x must have {model.n_features} features per row, got shape {tuple(x.shape)}")
    steps = check_count(steps, "steps")
    batch_size = check_count(batch_size, "batch_size")
    check_positive(lr, "lr")
    start_temp, min_temp = check_positive(start_temp, "start_temp"), check_positive(min_temp, "min_temp")
    flat = x.reshape(x.shape[0], -1).to(model.logits.device)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for step in range(steps):
            model.temperature.fill_(temperature_at(step, steps, start_temp, min_temp))
            rows = torch.randint(0, flat.shape[0], (min(batch_size, flat.shape[0]),), generator=gen)
            batch = flat[rows.to(flat.device)]
            loss = F.mse_loss(model(batch), batch)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model.eval()
