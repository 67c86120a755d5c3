"""``RandomUAE``: unsupervised adversarial examples as a kornia intensity augmentation.

Each row that kornia's gate selects (probability ``p``) is replaced by its UAE

    x' = clip(x + delta, 0, 1),  ||delta||_inf <= eps,
    delta = argmin I(x, x + delta)  s.t.  f_x(x + delta) <= 0

found by :class:`uae_plugin.MinMaxAttack` against the user's model; the other
rows pass through unchanged. Only the selected rows are attacked, so the work
(model evaluations) scales with ``p``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from uae_plugin import AttackResult, Contrastive, Criterion, MinMaxAttack, Reconstruction
from uae_plugin._extras import require
from uae_plugin.online import model_device, replace_rows
from uae_plugin.validation import unit_range

IntensityAugmentationBase2D = require(
    "kornia.augmentation", "uae_plugin.integrations.kornia"
).IntensityAugmentationBase2D

TASKS = ("reconstruction", "contrastive")
_CONTRASTIVE_OPTIONS = ("n_views", "temperature", "augment")
_SEED_BOUND = 2**31 - 1  # seeds drawn from torch's global RNG lie in [0, 2^31 - 1)


class RandomUAE(IntensityAugmentationBase2D):
    r"""Replace each selected image by an unsupervised adversarial example (Hsu et al., AAAI 2022).

    For each row kornia selects with probability ``p``,
    ``x' = argmin_{||x'-x||_inf <= eps, x' in [0,1]} I(x, x')  s.t.  f_x(x') <= 0``, solved by
    ``MinMaxAttack(criterion, eps, steps, similarity, seed, **settings)`` with

    - ``task="reconstruction"``: ``f_x(x') = ||x - g(x')||^2 - ||x - g(x)||^2`` (:class:`uae_plugin.Reconstruction`);
    - ``task="contrastive"``: ``f_x(x') = L(x') - L(x)``, NT-Xent over views (:class:`uae_plugin.Contrastive`;
      ``n_views``, ``temperature``, ``augment`` in ``settings`` go to it).

    Behaviour:

    - **Work scales with p.** kornia hands ``apply_transform`` the whole batch with the gate in
      ``params["batch_prob"]``; only the gated rows are sliced out and attacked (all rows when ``p == 1``,
      as kornia's own fast path does). ``p=0`` never calls the model.
    - **Per-sample randomness.** ``generate_parameters`` draws one seed per call (``params["seed"]``, fixed
      when ``seed`` is given, else from torch's global RNG, so ``aug(x, params=aug._params)`` replays the
      call). Each row's draws (delta_0, MINE initialisation) are keyed by (seed, a hash of its values), so a
      row's result does not depend on its position or batch mates. ``same_on_batch=True`` keys every row
      by one shared stream (the same delta_0 draw and statistics-network start for all rows) and, as in
      kornia, attacks all rows or none.
    - **The model is a reference, not a submodule.** It lives inside the ``MinMaxAttack`` (a plain object),
      so ``parameters()``, ``state_dict()`` and ``.to()`` of this augmentation never see it: the augmentation
      must not train, save or move the user's model. The attack runs on the model's device.
    - **The model is borrowed**: eval mode and frozen during the attack, its ``training`` and
      ``requires_grad`` flags restored after. Works inside ``torch.no_grad()``; raises ``RuntimeError``
      under ``torch.inference_mode()`` (autograd is needed).
    - **One range rule with the core and torchattacks** (:func:`uae_plugin.validation.unit_range`): attacked
      rows within ``UNIT_RANGE_SLACK`` (0.3) of [0, 1] are clamped into it, so it composes after kornia's noise
      (``RandomGaussianNoise(std=0.05)``); rows further out (normalised images, e.g. after ``Normalize``)
      raise ``ValueError`` with the fix (undo the normalisation, or put ``Normalize`` after ``RandomUAE``);
      NaN or Inf raise ``ValueError``, integer images ``TypeError``. Any float dtype: the attack runs in the
      model's dtype and the rows come back in the input's.
    - **torch.compile**: inside a compiled training step the attack runs eagerly (``torch.compiler.disable``,
      one graph break: its loop has data-dependent steps), so ``fullgraph=True`` cannot hold; compile the
      user's model instead, the attack calls it compiled.
    - Attacked rows carry no gradient to the input; skipped rows pass through with an identity gradient.
    - ``last_result`` (:class:`uae_plugin.AttackResult` of the attacked rows, or ``None``) and
      ``last_rows`` (``[B]`` bool) describe the last call. Static options live in ``flags`` and the repr;
      to change them build a new ``RandomUAE``.

    Args:
        model: autoencoder ``[B, C, H, W] -> [B, C, H, W]`` or encoder ``[B, C, H, W] -> [B, D]``.
        task: "reconstruction" or "contrastive".
        p: probability that a row is replaced, in [0, 1].
        eps: L-inf bound on ``x' - x`` (> 0; None: the preset's, 0.1 by default; the paper uses 1.0).
        steps: MinMax iterations T (None: the preset's, 40). Cost per attacked row: T + 2 model passes
            (times 2 n_views for "contrastive").
        same_on_batch: one random stream and one gate decision for the whole batch.
        keepdim: kornia's: keep ``(C, H, W)`` / ``(H, W)`` input shapes.
        seed: int for reproducible attacks; None draws a seed per call from torch's global RNG.
        similarity: MI pairs, "projection" or "conv" or a callable (see :class:`uae_plugin.MinMaxAttack`).
        estimator: "gaussian" (closed form), "mine" (DV bound) or None (the preset's: gaussian).
        **settings: other ``MinMaxAttack`` keywords (``mine_steps``, ``preset``, ``step_size``, ...).

    Shape:
        input ``(B, C, H, W)`` float in [0, 1] (or ``(C, H, W)``, ``(H, W)``); output ``(B, C, H, W)``.

    Example:
        >>> aug = AugmentationSequential(RandomResizedCrop((28, 28)), RandomUAE(autoencoder, p=0.5, steps=20))
        >>> x_aug = aug(x)  # about half the rows replaced by UAEs of the cropped digits
    """

    def __init__(
        self,
        model: nn.Module,
        task: str = "reconstruction",
        p: float = 0.5,
        eps: float | None = None,
        steps: int | None = None,
        same_on_batch: bool = False,
        keepdim: bool = False,
        seed: int | None = None,
        similarity: str | nn.Module | Callable[[torch.Tensor], torch.Tensor] = "projection",
        estimator: str | None = None,
        **settings: Any,
    ) -> None:
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
        if not isinstance(task, str) or task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        super().__init__(p=float(p), same_on_batch=bool(same_on_batch), p_batch=1.0, keepdim=keepdim)
        criterion: Criterion
        if task == "contrastive":
            criterion = Contrastive(model, **{k: settings.pop(k) for k in _CONTRASTIVE_OPTIONS if k in settings})
        else:
            criterion = Reconstruction(model)
        # A plain object, not an nn.Module: the model inside it is not registered (see the class docstring).
        self._attack = MinMaxAttack(
            criterion, eps=eps, steps=steps, similarity=similarity, seed=seed, estimator=estimator, **settings
        )
        self.seed = seed
        self.last_result: AttackResult | None = None
        self.last_rows: torch.Tensor | None = None
        self.flags = {
            "model": type(model).__name__,
            "task": task,
            "eps": self._attack.eps,
            "steps": self._attack.settings.steps,
            "similarity": similarity,
            "estimator": self._attack.settings.estimator,
            "seed": seed,
        }

    @property
    def model(self) -> nn.Module:
        """The user's model (a reference; not a submodule of this augmentation)."""
        return self._attack.criterion.model

    def generate_parameters(self, batch_shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
        """``{"seed": [1] int64}``: ``seed`` when given, else one draw from torch's global RNG."""
        if self.seed is not None:
            return {"seed": torch.tensor([self.seed], dtype=torch.long)}
        return {"seed": torch.randint(0, _SEED_BOUND, (1,), dtype=torch.long)}

    def _selected_rows(self, input: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[B]`` bool: the rows kornia's gate applies the transform to."""
        batch = input.shape[0]
        if self.p == 1.0 and self.p_batch == 1.0:  # kornia's static fast path ignores batch_prob
            return torch.ones(batch, dtype=torch.bool, device=input.device)
        gate = torch.atleast_1d(params["batch_prob"] > 0.5).to(input.device)
        return gate.expand(batch) if gate.numel() == 1 else gate

    def transform_tensor(
        self, input: torch.Tensor, *, shape: torch.Tensor | None = None, match_channel: bool = True
    ) -> torch.Tensor:
        """kornia's input standardisation, after a check that names the fix for integer images."""
        if torch.is_tensor(input) and not input.is_floating_point():
            raise TypeError(
                f"RandomUAE needs float images in [0, 1], got dtype {input.dtype}; "
                "convert with x.float() / 255 for 8-bit images"
            )
        return super().transform_tensor(input, shape=shape, match_channel=match_channel)

    def apply_transform(
        self,
        input: torch.Tensor,
        params: dict[str, torch.Tensor],
        flags: dict[str, Any],
        transform: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``input: (B, C, H, W)`` -> the same with the gated rows replaced by their UAEs."""
        seed = params["seed"] if "seed" in params else self.generate_parameters(tuple(input.shape))["seed"]
        return self._replace_rows(input, self._selected_rows(input, params), seed)

    @torch.compiler.disable  # a loop with data-dependent steps: in a compiled step it runs eagerly, as one break
    def _replace_rows(self, input: torch.Tensor, rows: torch.Tensor, seed: torch.Tensor) -> torch.Tensor:
        """``input`` with the rows ``[B]`` bool replaced by their UAEs, found on the model's device and dtype."""
        self.last_rows = rows

        def attack(chosen: torch.Tensor) -> AttackResult:
            x = unit_range(chosen, "RandomUAE")  # normalised images refused, noise tails clamped: before any move
            x = x.to(model_device(self.model, x))
            index = torch.zeros(x.shape[0], dtype=torch.long, device=x.device) if self.same_on_batch else None
            return self._attack(x, index=index, seed=int(seed.reshape(-1)[0]))

        out, self.last_result = replace_rows(input, rows, attack, input.device)
        return out
