"""torchattacks ``Attack`` subclasses running :class:`uae_plugin.MinMaxAttack`: :class:`UAE` and :class:`MINEAttack`.

They attack pixels in [0, 1] (``||x' - x||inf <= eps``); the model sees ``model(normalize(x'))``, and with
``set_normalization_used`` images go in and come out normalised (torchattacks' rule). ``atk.last_result``: the
last :class:`uae_plugin.AttackResult` (pixel-space ``adv``, ``success``, ``mi``, ``gap``). ``atk.save``: torchattacks'
``Attack.save`` contract, in :mod:`.torchattacks_save`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from uae_plugin import AttackResult, Classification, Contrastive, Criterion, MinMaxAttack, Reconstruction
from uae_plugin._extras import require
from uae_plugin.validation import unit_range

from .torchattacks_save import NO_LABEL, SAVE_TYPES, TorchattacksSave

Attack = require("torchattacks.attack", "uae_plugin.integrations.torchattacks").Attack

__all__ = ["MINEAttack", "NO_LABEL", "SAVE_TYPES", "UAE"]


class _PixelModel(nn.Module):
    """``x`` in [0, 1] -> ``model(normalize(x))`` (reconstructions back to pixels); ``train`` as torchattacks."""

    def __init__(self, attack: Attack, reconstruct: bool) -> None:
        super().__init__()
        self.model, self.attack, self.reconstruct = attack.model, attack, reconstruct

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.attack.get_logits(x)
        return self.attack.inverse_normalize(out) if self.reconstruct and self.attack.normalization_used else out

    def train(self, mode: bool = True) -> _PixelModel:
        super().train(mode)
        keep = {"BatchNorm": self.attack._batchnorm_training, "Dropout": self.attack._dropout_training}
        for m in self.model.modules() if mode else ():
            m.training = all(on or kind not in type(m).__name__ for kind, on in keep.items())
        return self


class _MinMaxAdapter(TorchattacksSave, Attack):
    """A :class:`MinMaxAttack` on ``self._criterion(_PixelModel)``, rebuilt when a field in ``_live`` changes."""

    _fields = ("eps", "steps", "mine_steps", "similarity", "estimator", "seed")
    _live = (*_fields, "targeted", "_model_training", "task", "kappa")  # a change rebuilds the MinMaxAttack

    def __init__(self, name: str, model: nn.Module, fields: dict[str, Any], settings: dict[str, Any]) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if "model_training" in settings:
            raise TypeError("model_training is not a setting of a torchattacks attack: use set_model_training_mode")
        super().__init__(name, model)
        self.__dict__.update(fields)  # plain values: torchattacks' __setattr__ only looks for nested attacks
        self.last_result: AttackResult | None = None
        self._settings, self._key, self._x = settings, None, None
        self._engine()  # every argument checked before any work
        unset = [name for name in ("eps", "steps", "mine_steps") if getattr(self, name) is None]
        for name in unset:  # the preset's value (one source of defaults), shown in the repr like every other field
            setattr(self, name, getattr(self._minmax.settings, name))
        if unset:
            self._engine()

    def _engine(self) -> MinMaxAttack:
        key = (self.model, *(getattr(self, name, None) for name in self._live))
        if key != self._key:
            criterion = self._criterion(_PixelModel(self, getattr(self, "task", None) == "reconstruction"))
            criterion.model_name = type(self.model).__name__  # errors name the user's model, not the wrapper
            fields = {name: getattr(self, name) for name in self._fields}
            self._minmax = MinMaxAttack(criterion, model_training=self._model_training, **fields, **self._settings)
            self._key = key
        return self._minmax

    def _labels(self, x: torch.Tensor, labels: Any) -> torch.Tensor | None:
        return None  # the labels the criterion needs for pixels x: none, given ones are ignored

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Adversarial ``images [B, C, H, W]``, pixels in [0, 1]; ``labels [B]`` as ``_labels`` says."""
        x = torch.as_tensor(images, device=self.device).detach()
        if x.is_floating_point() and x.dim() >= 2 and x.numel() and x.device.type != "meta":  # the rest: the core
            x = unit_range(x, type(self).__name__)
        self.last_result, self._x = self._engine()(x, self._labels(x, labels)), x
        return self.last_result.adv

    @contextmanager
    def _eval(self) -> Iterator[nn.Module]:
        """The model in eval mode, each module's ``training`` flag restored after (torchattacks' restore is lossy)."""
        modes = [(m, m.training) for m in self.model.modules()]
        try:
            yield self.model.eval()
        finally:
            for m, training in modes:
                m.training = training

    def _change_model_mode(self, given_training: bool) -> None:
        """No-op: the inner attack sets the modes and restores every module's flag (torchattacks' restore is lossy)."""

    _recover_model_mode = _change_model_mode


class UAE(_MinMaxAdapter):
    """Unsupervised adversarial examples (Hsu et al., AAAI 2022) as a torchattacks attack. Distance: L-inf.

    Per sample ``min_delta max_{c>=0} c max(f_x(x + delta), 0) + I(x, x + delta)``, ``||delta||inf <= eps``,
    ``x + delta`` in [0, 1]; ``f_x`` is the reconstruction-error gap of an autoencoder (``task="reconstruction"``)
    or the NT-Xent gap of an encoder (``task="contrastive"``; ``n_views``, ``temperature``, ``augment`` go to
    :class:`uae_plugin.Contrastive`); ``I`` is a per-sample MI estimate (``estimator``: the exact Gaussian form
    by default, or MINE). Labels are ignored. ``**settings``: :class:`uae_plugin.MinMaxSettings` fields,
    ``preset``, ``progress``. Shape: images ``[B, C, H, W]`` in [0, 1] (normalised if ``set_normalization_used``)
    -> ``[B, C, H, W]``.

    Example:
        >>> atk = UAE(autoencoder, seed=0)  # eps, steps, mine_steps: the preset's (0.1, 40, 2)
        >>> adv_images = atk(images); atk.last_result.success
    """

    def __init__(
        self,
        model: nn.Module,
        eps: float | None = None,
        steps: int | None = None,
        mine_steps: int | None = None,
        task: str = "reconstruction",
        similarity: Any = "projection",
        seed: int | None = None,
        estimator: str | None = None,
        **settings: Any,
    ) -> None:
        if task not in ("reconstruction", "contrastive"):
            raise ValueError(f"task must be 'reconstruction' or 'contrastive', got {task!r}")
        views = ("n_views", "temperature", "augment") if task == "contrastive" else ()
        self._options = {key: settings.pop(key) for key in views if key in settings}
        fields = {"eps": eps, "steps": steps, "mine_steps": mine_steps, "similarity": similarity, "seed": seed}
        fields["estimator"] = estimator
        super().__init__("UAE", model, {**fields, "task": task}, settings)

    def _criterion(self, pixel_model: _PixelModel) -> Criterion:
        return Contrastive(pixel_model, **self._options) if self.task == "contrastive" else Reconstruction(pixel_model)

    def _prediction(self, adv: torch.Tensor) -> torch.Tensor:
        """An autoencoder's "prediction" of ``x'``: its reconstruction ``g(x')`` in pixels; an encoder's: ``f(x')``."""
        with torch.no_grad(), self._eval():
            out = self.get_logits(adv)
        return self.inverse_normalize(out) if self.task == "reconstruction" and self.normalization_used else out

    def _broken(self, adv: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """A UAE breaks its row where it succeeds (``f_x(x') <= 0``): no labels are involved."""
        return self.last_result.success


class MINEAttack(_MinMaxAdapter):
    """The supervised MinMax attack with MINE similarity (Hsu et al., AAAI 2022). Distance: L-inf.

    Per sample ``min_delta max_{c>=0} c max(f(x + delta), 0) - I(x, x + delta)``, Carlini-Wagner margin
    ``f = max(Z_y - max_{j!=y} Z_j, -kappa)`` (targeted: ``max(max_{j!=t} Z_j - Z_t, -kappa)``): flips the
    label while keeping as much information about ``x`` as it can. Targeted modes are torchattacks'
    (``set_mode_targeted_by_label``, ``_random``, ``_least_likely``, ``_by_function``).
    Shape: images ``[B, C, H, W]`` in [0, 1], labels ``[B]`` (required) -> ``[B, C, H, W]``.

    Example:
        >>> atk = MINEAttack(classifier, eps=0.3, steps=100, seed=0)  # unset: the preset's (0.1, 40, 2)
        >>> adv_images = atk(images, labels)
    """

    def __init__(
        self,
        model: nn.Module,
        eps: float | None = None,
        steps: int | None = None,
        mine_steps: int | None = None,
        kappa: float = 0.0,
        similarity: Any = "projection",
        seed: int | None = None,
        estimator: str | None = None,
        **settings: Any,
    ) -> None:
        fields = {"eps": eps, "steps": steps, "mine_steps": mine_steps, "similarity": similarity, "seed": seed}
        fields["estimator"] = estimator
        super().__init__("MINEAttack", model, {**fields, "kappa": kappa}, settings)
        self.supported_mode = ["default", "targeted"]

    def _criterion(self, pixel_model: _PixelModel) -> Criterion:
        return Classification(pixel_model, kappa=self.kappa, targeted=self.targeted)

    def _labels(self, x: torch.Tensor, labels: Any) -> torch.Tensor:
        if not torch.is_tensor(labels):
            raise ValueError(f"labels [B] are required by MINEAttack: call atk(images, labels), got {labels!r}")
        with self._eval():  # the target helpers end with model.train()
            return self.get_target_label(x, labels.to(x.device)) if self.targeted else labels.detach().to(x.device)
