"""lightly's SimCLR with UAEs as a LightningModule: :class:`UAESimCLR` and its small-image stem.

The transform that makes its UAE views, :class:`UAETransform`, lives in :mod:`.lightly_transform`; this module
re-exports it, so ``from uae_plugin.integrations.lightly import UAETransform`` works.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from uae_plugin._extras import require

from .lightly_transform import PIXEL_TOLERANCE, UAETransform
from .rocl import RoCLTransform

_NEEDED_BY = "uae_plugin.integrations.lightly"
pl = require("pytorch_lightning", _NEEDED_BY)
timm = require("timm", _NEEDED_BY)
NTXentLoss = require("lightly.loss", _NEEDED_BY).NTXentLoss
SimCLRProjectionHead = require("lightly.models.modules", _NEEDED_BY).SimCLRProjectionHead

__all__ = ["PIXEL_TOLERANCE", "UAESimCLR", "UAETransform", "small_image_stem"]


def small_image_stem(model: nn.Module, stride: int = 1) -> nn.Module:
    """SimCLR's CIFAR-10 stem (Chen et al. 2020, app. B.9) for a timm ResNet: first conv 3x3 ``stride``, no max-pool.

    ``stride=1`` keeps the input size (28x28 -> 28x28 into the first stage, as in the paper); ``stride=2`` halves it
    (14x14), about 3.3x cheaper for resnet18 on a CPU. The ImageNet stem divides by 4 (28x28 -> 7x7).
    """
    if not isinstance(conv1 := getattr(model, "conv1", None), nn.Module) or not hasattr(model, "maxpool"):
        raise ValueError(f"small_images=True needs a timm ResNet (conv1, maxpool), got {type(model).__name__}")
    if isinstance(stride, bool) or stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride!r}")
    if isinstance(conv1, nn.Conv2d):
        model.conv1 = nn.Conv2d(conv1.in_channels, conv1.out_channels, 3, stride=stride, padding=1, bias=False)
    else:  # deep stem (resnet*t, resnet*d): its first conv is 3x3 stride 2
        next(m for m in conv1.modules() if isinstance(m, nn.Conv2d)).stride = (stride, stride)
    model.maxpool = nn.Identity()
    return model


class UAESimCLR(pl.LightningModule):
    """lightly's SimCLR recipe (timm backbone, ``SimCLRProjectionHead``, ``NTXentLoss``, SGD) trained with UAEs.

    ``uae="online"``: loss ``L(z0, z1) + uae_weight * L(z_other[:k], f(UAE(x_view[:k])))``, ``k = ceil(uae_fraction
    * B)``, ``x_view`` the view ``uae_view``. ``uae="offline"``: plain SimCLR steps; :meth:`generate_uaes` gives
    ``UAE(train)`` to append to the training set and retrain (the paper's protocol). ``uae="rocl"``: the same
    online term with RoCL's instance-wise L-inf PGD views instead of UAEs (:class:`RoCLTransform`, the common
    alternative, for comparison; ``**uae_options`` are its eps, steps, alpha, mean, std, seed). ``uae="noise"``: the
    same term with views ``clip(x + U[-s, s], 0, 1)``, ``s`` the UAE attack's start scale (``init_scale``, default
    eps): the attack's random start without the attack, the control that shows what the MinMax steps add.
    ``uae=None``: plain SimCLR.
    Batches are ``([x0, x1], ...)`` (lightly's ``SimCLRTransform``). ``backbone``: a timm name, created with
    ``num_classes=0`` and ``in_chans`` (``small_images``: :func:`small_image_stem` with ``stem_stride``, for
    28x28/32x32), or a module
    with ``num_features``. ``lr``: SGD, momentum 0.9, weight decay 5e-4 (lightly's benchmarks). ``**uae_options``:
    :class:`UAETransform` arguments (eps, steps, mean, std, seed, n_views, MinMax settings).

    Example:
        >>> model = UAESimCLR("resnet18", in_chans=1, mean=[0.1307], std=[0.3081], steps=5)
        >>> pl.Trainer(max_steps=100).fit(model, loader)   # loader yields ([x0, x1], y)
    """

    def __init__(
        self,
        backbone: str | nn.Module = "resnet18",
        in_chans: int = 3,
        small_images: bool = True,
        stem_stride: int = 1,
        hidden_dim: int = 512,
        out_dim: int = 128,
        temperature: float = 0.5,
        memory_bank_size: int | Sequence[int] = 0,
        lr: float = 0.06,
        uae: str | None = "online",
        uae_fraction: float = 0.5,
        uae_view: int = 1,
        uae_weight: float = 1.0,
        **uae_options: Any,
    ) -> None:
        super().__init__()
        if uae not in ("online", "offline", "rocl", "noise", None):
            raise ValueError(f"uae must be 'online', 'offline', 'rocl', 'noise' or None, got {uae!r}")
        if isinstance(uae_fraction, bool) or not isinstance(uae_fraction, (int, float)) or not 0 < uae_fraction <= 1:
            raise ValueError(f"uae_fraction must be in (0, 1], got {uae_fraction!r}")
        if isinstance(uae_view, bool) or uae_view not in (0, 1):
            raise ValueError(f"uae_view must be 0 or 1 (which of the two views to attack), got {uae_view!r}")
        self.save_hyperparameters(ignore=["backbone"] if isinstance(backbone, nn.Module) else [])
        if isinstance(backbone, str):
            if not timm.is_model(backbone):
                raise ValueError(f"backbone {backbone!r} is not a timm model name; see timm.list_models()")
            backbone = timm.create_model(backbone, pretrained=False, num_classes=0, in_chans=in_chans)
            backbone = small_image_stem(backbone, stem_stride) if small_images else backbone
        elif not isinstance(backbone, nn.Module):
            raise TypeError(f"backbone must be a timm model name or an nn.Module, got {type(backbone).__name__}")
        feature_dim = getattr(backbone, "num_features", None)  # timm's convention for the pooled feature size D
        if not isinstance(feature_dim, int):
            raise ValueError("backbone must have an int num_features (its output size D), as timm models do")
        self.backbone = backbone
        self.projection_head = SimCLRProjectionHead(feature_dim, hidden_dim, out_dim)
        self.criterion = NTXentLoss(temperature=temperature, memory_bank_size=memory_bank_size)
        self.offline_success: torch.Tensor | None = None
        self.rocl_transform = RoCLTransform(temperature=temperature, **uae_options) if uae == "rocl" else None
        self.uae_transform = None
        if uae in ("online", "offline", "noise"):
            self.uae_transform = UAETransform(self, temperature=temperature, **uae_options)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images ``[B, C, H, W]`` -> projections ``z: [B, out_dim]``."""
        return self.projection_head(self.backbone(x).flatten(start_dim=1))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        views = batch[0] if isinstance(batch, (list, tuple)) and batch else None
        if not isinstance(views, (list, tuple)) or len(views) != 2 or not all(torch.is_tensor(v) for v in views):
            raise TypeError("batch must be ([x0, x1], ...) with two view tensors, as lightly's SimCLRTransform gives")
        n, hp = views[0].shape[0], self.hparams
        z = (self(views[0]), self(views[1]))
        loss = self.criterion(z[0], z[1])
        if hp.uae in ("online", "rocl", "noise"):
            k = min(n, max(2, math.ceil(hp.uae_fraction * n)))
            positives = z[1 - hp.uae_view][:k]
            if hp.uae == "online":
                adv = self.uae_transform(views[hp.uae_view][:k])
                rate = self.uae_transform.last_result.success.float().mean()
                self.log("uae_success_rate", rate, batch_size=k, sync_dist=True)  # the global rate under DDP
            elif hp.uae == "rocl":
                adv = self.rocl_transform(self, views[hp.uae_view][:k], positives)
            else:
                adv = self.noise_views(views[hp.uae_view][:k])
            loss_uae = self.criterion(positives, self(adv))
            loss = loss + hp.uae_weight * loss_uae
            self.log("loss_uae", loss_uae, batch_size=k)
        self.log("train_loss", loss, batch_size=n)
        return loss

    def noise_views(self, views: torch.Tensor) -> torch.Tensor:
        """Normalised views of ``clip(x + u, 0, 1)``, ``u ~ U[-s, s]`` i.i.d. (torch's RNG), ``x`` the views' pixels."""
        scale = self.uae_transform.attack.start_scale
        x = self.uae_transform.unnormalize(views)
        noisy = (x + torch.empty_like(x).uniform_(-scale, scale)).clamp(0.0, 1.0)
        return self.uae_transform.normalize(noisy).detach().to(views.dtype)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=0.9, weight_decay=5e-4)

    def generate_uaes(self, data: Tensor | Iterable, batch_size: int = 256, only_successful: bool = False) -> Tensor:
        """The offline protocol: ``UAE(train)`` from the trained model, to append to ``train`` and retrain.

        ``data``: pixels ``[N, C, H, W]`` in [0, 1] (before ``SimCLRTransform``), or an iterable of such batches or
        ``(x, ...)`` tuples. Returns UAEs ``[N, C, H, W]`` in [0, 1] on the CPU (only successful ones with
        ``only_successful``); sets ``offline_success: [N]`` bool. Sample i's randomness is keyed by its position i.
        """
        if self.hparams.uae not in ("online", "offline"):
            built = f"uae={self.hparams.uae!r}"
            raise RuntimeError(f"generate_uaes needs uae='offline' or 'online'; this model was built with {built}")
        if torch.is_tensor(data):
            data = data.split(batch_size) if data.dim() == 4 else [data]
        elif not isinstance(data, Iterable):
            raise TypeError(f"data must be a tensor [N, C, H, W] or an iterable of batches, got {type(data).__name__}")
        advs, success, start = [], [], 0
        for x in data:
            x = self.uae_transform.check(x[0] if isinstance(x, (list, tuple)) else x, "data").to(self.device)
            res = self.uae_transform.attack_pixels(x, index=torch.arange(start, start + x.shape[0]))
            advs.append(res.adv.detach().cpu())
            success.append(res.success.cpu())
            start += x.shape[0]
        adv, self.offline_success = torch.cat(advs), torch.cat(success)
        return adv[self.offline_success] if only_successful else adv
