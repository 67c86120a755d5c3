"""Linear-probe robustness of a frozen encoder, the protocol of RobustSSL, AdvCL, DynACL and DeACL.

1. Fit a linear probe on the clean features of the frozen encoder ``f``:
   ``W, b = argmin_{W, b} mean_i CE(W f(x_i) + b, y_i)``.
2. Attack the classifier ``h(x) = W f(x) + b`` end to end (through the encoder) under L-inf:
   ``x'_i = argmax_{||x' - x_i||_inf <= eps, x' in [0, 1]} CE(h(x'), y_i)`` (PGD-20 with a random start, or AutoAttack).
3. Adversarial error ``mean_i 1[argmax h(x'_i) != y_i]`` (:func:`probe_errors` on ``x'``; on ``x`` the clean error).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._extras import require
from ..baselines import UnsupervisedPGD
from ..criteria import Classification
from ..model_guard import borrowed
from ..validation import check_positive
from .rows import batches, on_device_of

# Full-batch Adam on standardised features, so one step size suits any encoder's feature scale. On digit features
# (288 and 1,568 dims, 4,000 rows) 300 steps at 0.01 gave the lowest held-out error of the grid {100, 300, 1000} x
# {0.01, 0.05, 0.1} in 0.5-1.5 s on one CPU thread; larger budgets drive the training CE to 0 (the data are
# separable) and only overfit. The fixed budget is the early stopping that keeps the weights finite.
PROBE_STEPS = 300
PROBE_LR = 0.01
ATTACKS = ("pgd", "autoattack")
_BATCH = 256  # rows per forward pass in probe_errors
CONSTANT_FEATURE = 1e-4  # a feature whose spread is below this share of the largest spread is constant


def fit_probe(
    features: torch.Tensor, labels: torch.Tensor, *, steps: int = PROBE_STEPS, lr: float = PROBE_LR, seed: int = 0
) -> nn.Linear:
    """Multinomial logistic regression ``argmin_{W, b} mean_i CE(W f_i + b, y_i)`` on frozen features.

    ``features: [N, D]`` float, ``labels: [N]`` int in ``[0, K)`` with ``K = max(labels) + 1``. Fitted full batch
    by Adam on the standardised features ``z = (f - mu) / sigma``; the standardisation is folded into the returned
    layer (``W = W_z / sigma``, ``b = b_z - W mu``), which takes raw features. A feature constant on the training
    rows (``sigma <= CONSTANT_FEATURE max sigma``) gets weight 0: dividing by its ~0 spread would give it a huge
    weight that reads only perturbations (logit gaps of 1e4 on noisy digits, which saturate PGD's cross entropy).
    The initial weights are drawn from ``seed`` inside ``torch.random.fork_rng`` (the caller's RNG is untouched),
    so the result is deterministic.
    Returns an ``nn.Linear(D, K)`` float32 on the features' device, in eval mode, ``requires_grad=False``.
    """
    if features.dim() != 2 or labels.shape != features.shape[:1]:
        raise ValueError(f"features must be [N, D] and labels [N], got {tuple(features.shape)}, {tuple(labels.shape)}")
    f, y = features.detach().float(), labels.detach().to(features.device, torch.int64)
    mu, sigma = f.mean(dim=0), f.std(dim=0)
    constant = sigma <= CONSTANT_FEATURE * sigma.max()  # e.g. ReLU(bias) on a blank background
    sigma = torch.where(constant, torch.ones_like(sigma), sigma)
    z = (f - mu) / sigma
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        probe = nn.Linear(f.shape[1], int(y.max()) + 1)  # drawn on the CPU, then moved
    probe = probe.to(f.device)
    opt = torch.optim.Adam(probe.parameters(), lr=lr)
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(probe(z), y).backward()
            opt.step()
    opt.zero_grad(set_to_none=True)  # no stale .grad on the returned layer
    with torch.no_grad():
        probe.weight[:, constant] = 0.0  # no weight on what never varied: it would read only perturbations
        probe.weight.div_(sigma)
        probe.bias.sub_(probe.weight @ mu)
    return probe.eval().requires_grad_(False)


class ProbedEncoder(nn.Module):
    """The classifier ``h(x) = probe(encoder(x).flatten(1))``: images ``[B, C, H, W]`` -> logits ``[B, K]``."""

    def __init__(self, encoder: nn.Module, probe: nn.Linear) -> None:
        super().__init__()
        self.encoder, self.probe = encoder, probe

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.probe(self.encoder(x).flatten(1).to(self.probe.weight.dtype))


def probe_errors(classifier: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``[B]`` float32 0/1: ``1[argmax h(x_i) != y_i]`` for ``x: [B, C, H, W]``, ``y: [B]``; its mean is the error.

    Runs under ``no_grad`` with the classifier borrowed (eval mode; every flag restored after), 256 rows a pass."""
    with torch.no_grad(), borrowed(classifier):
        pred = torch.cat([classifier(on_device_of(classifier, b)).argmax(dim=1) for b in batches(x, _BATCH)])
    return (pred != y.to(pred.device)).float()


def _n_classes(classifier: nn.Module, x: torch.Tensor) -> int:
    if isinstance(classifier, ProbedEncoder):
        return classifier.probe.out_features
    with torch.no_grad(), borrowed(classifier):
        return int(classifier(x[:1]).shape[1])


def attack_classifier(
    classifier: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    *,
    attack: str = "pgd",
    steps: int = 20,
    seed: int = 0,
) -> torch.Tensor:
    """``x'`` maximising ``CE(h(x'), y)`` over ``||x' - x||_inf <= eps`` and ``[0, 1]``: ``[B, C, H, W]``.

    ``"pgd"``: the core's :class:`UnsupervisedPGD` on ``Classification(classifier)``, ``steps`` iterations of step
    ``2.5 eps / steps`` from a uniform random start keyed by ``seed`` and each row's values.
    ``"autoattack"``: torchattacks' AutoAttack, version ``"standard"`` (APGD-CE, APGD-T, FAB-T, Square; its own
    budgets, ``steps`` is unused), with the classes read from the probe. It runs with the classifier borrowed (eval,
    ``requires_grad=False``, so FAB's ``backward`` writes no parameter ``.grad``; each module's own flags come
    back after, which torchattacks' blanket ``model.train()`` would not do) and inside ``fork_rng`` (it reseeds the
    global generators). ``x'`` is on the classifier's device.
    """
    if attack not in ATTACKS:
        raise ValueError(f"attack must be one of {ATTACKS}, got {attack!r}")
    eps = check_positive(eps, "eps")
    x = on_device_of(classifier, x)
    y = y.to(x.device)
    if attack == "pgd":
        return UnsupervisedPGD(Classification(classifier), eps=eps, steps=steps, random_start=True, seed=seed)(x, y)
    torchattacks = require("torchattacks", "attack='autoattack'")
    n_classes = _n_classes(classifier, x)
    devices = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), borrowed(classifier), torch.enable_grad():
        adv = torchattacks.AutoAttack(
            classifier, norm="Linf", eps=eps, version="standard", n_classes=n_classes, seed=seed
        )(x, y)
    return torch.min(torch.max(adv.detach(), x - eps), x + eps).clamp(0, 1).to(x.dtype)
