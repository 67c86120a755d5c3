"""torchattacks ``Attack`` subclasses running :class:`uae_plugin.MinMaxAttack`: :class:`UAE` and :class:`MINEAttack`.

They attack pixels in [0, 1] (``||x' - x||inf <= eps``); the model sees ``model(normalize(x'))``, and with
``set_normalization_used`` images go in and come out normalised (torchattacks' rule). ``atk.last_result``: the
last :class:`uae_plugin.AttackResult` (pixel-space ``adv``, ``success``, ``mi``, ``gap``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from uae_plugin import AttackResult, Classification, Contrastive, Criterion, MinMaxAttack, Reconstruction
from uae_plugin._extras import require

Attack = require("torchattacks.attack", "uae_plugin.integrations.torchattacks").Attack

NO_LABEL = -1  # the "labels" UAE.save stores for loaders that yield images only
_SAVED = ("adv_inputs", "labels", "clean_inputs", "success", "mi", "linf", "l2")


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


class _MinMaxAdapter(Attack):
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
        if self.normalization_used is not None:  # torchattacks undid it: pixels, up to round-off
            if x.is_floating_point() and x.numel() and not bool(((x > -1e-4) & (x < 1 + 1e-4)).all()):
                raise ValueError("images leave [0, 1] once set_normalization_used is undone: pass normalised images")
            x = x.clamp(0.0, 1.0)
        self.last_result, self._x = self._engine()(x, self._labels(x, labels)), x
        return self.last_result.adv

    def _change_model_mode(self, given_training: bool) -> None:
        """No-op: the inner attack sets the modes and restores every module's flag (torchattacks' restore is lossy)."""

    _recover_model_mode = _change_model_mode


class UAE(_MinMaxAdapter):
    """Unsupervised adversarial examples (Hsu et al., AAAI 2022) as a torchattacks attack. Distance: L-inf.

    Per sample ``min_delta max_{c>=0} c max(f_x(x + delta), 0) + I(x, x + delta)``, ``||delta||inf <= eps``,
    ``x + delta`` in [0, 1]; ``f_x`` is the reconstruction-error gap of an autoencoder (``task="reconstruction"``)
    or the NT-Xent gap of an encoder (``task="contrastive"``; ``n_views``, ``temperature``, ``augment`` go to
    :class:`uae_plugin.Contrastive`); ``I`` is a per-sample MINE estimate. Labels are ignored. ``**settings``:
    :class:`uae_plugin.MinMaxSettings` fields, ``preset``, ``progress``. Shape: images ``[B, C, H, W]`` in
    [0, 1] (normalised if ``set_normalization_used``) -> ``[B, C, H, W]``.

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

    def save(
        self, data_loader: Iterable, save_path: str | None = None, verbose: bool = True, save_clean_inputs: bool = False
    ) -> dict[str, float]:
        """UAEs for a loader of ``images`` or ``(images, labels)``, saved for ``torchattacks.Attack.load``.

        The file holds ``adv_inputs`` (pixels), ``labels`` (the loader's; ``NO_LABEL = -1`` for images only),
        per-sample ``success``, ``mi``, ``linf``, ``l2`` (of ``adv - x``), ``save_type``, and ``clean_inputs``
        if asked. Prints and returns the means of ``success`` (the success rate), ``mi``, ``linf``, ``l2``.
        """
        parts, start = {key: [] for key in _SAVED}, time.perf_counter()
        for batch in data_loader:
            images, *rest = batch if isinstance(batch, list | tuple) else (batch,)
            self(images)
            res, clean = self.last_result, self._x
            labels = torch.as_tensor(rest[0]) if rest else torch.full((len(clean),), NO_LABEL)
            delta = (res.adv - clean).flatten(1).float()
            values = (res.adv, labels, clean, res.success, res.mi, delta.abs().amax(1), delta.norm(dim=1))
            for key, value in zip(_SAVED, values, strict=True):
                parts[key].append(value.detach().cpu())
        if not parts["mi"]:
            raise ValueError("data_loader yielded no batches")
        saved = {key: torch.cat(values) for key, values in parts.items() if key != "clean_inputs" or save_clean_inputs}
        s = {key: float(saved[key].float().mean()) for key in ("success", "mi", "linf", "l2")}
        s.update(samples=len(saved["mi"]), elapsed_s=time.perf_counter() - start)
        if verbose:
            print(
                f"- UAE save: {s['samples']} samples, {s['elapsed_s']:.1f} s / Success rate: {s['success']:.2%}"
                f" / Mean MI: {s['mi']:.4f} / Mean L-inf: {s['linf']:.4f} / Mean L2: {s['l2']:.4f}"
            )
        if save_path is not None:
            torch.save({**saved, "save_type": "float"}, save_path)
        return s


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
        modes = [(m, m.training) for m in self.model.modules()]  # the target helpers end with model.train()
        try:
            return self.get_target_label(x, labels.to(x.device)) if self.targeted else labels.detach().to(x.device)
        finally:
            for m, training in modes:
                m.training = training
