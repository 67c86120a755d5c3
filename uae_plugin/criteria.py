"""Attack criteria ``f_x(x')``: when the model handles ``x'`` no worse than ``x``.

A criterion wraps the user's model and gives, for a batch of candidates,
the per-sample gap ``f_x(x')`` (success when the task says so) and the task
loss that a plain PGD baseline would maximise.

| criterion | f_x(x') | success |
|---|---|---|
| :class:`Reconstruction` | ``||x - g(x')||^2 - ||x - g(x)||^2`` | ``f <= 0`` |
| :class:`Contrastive` | ``L(x') - L(x)``, ``L`` NT-Xent over views of one sample | ``f <= 0`` |
| :class:`Classification` | ``max(Z_y(x') - max_{j!=y} Z_j(x'), -kappa)`` | label flipped |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ._extras import require
from .contrastive_views import ViewSampler
from .validation import check_labels, check_model_output, error_summary


@dataclass
class Evaluation:
    """The criterion at a batch of candidates: ``gap: [B]`` float32, ``success: [B]`` bool.

    The attack differentiates ``sum_i w_i gap_i`` (``w_i = c_i 1[gap_i > 0]``). By default autograd runs from
    ``gap`` (which then carries its graph). A criterion whose gap is a closed-form function of the model's
    output sets ``output`` (the output, with its graph) and ``output_grad``, ``d gap_i / d output_i`` divided by
    the number ``output_grad_scale``: autograd then runs through the model only (:meth:`seed`). ``output``
    without ``output_grad``, or an ``output_grad`` of another shape, is refused when the evaluation is made."""

    gap: torch.Tensor
    success: torch.Tensor
    output: torch.Tensor | None = None
    output_grad: torch.Tensor | None = None
    output_grad_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.output is None:
            return
        if self.output_grad is None:
            raise ValueError(
                "Evaluation: output is set but output_grad is not; give output_grad (d gap / d output, divided by "
                "output_grad_scale), or leave output unset to have gap differentiated by autograd"
            )
        if self.output_grad.shape != self.output.shape:
            raise ValueError(
                f"Evaluation: output_grad has shape {tuple(self.output_grad.shape)} and output "
                f"{tuple(self.output.shape)}; output_grad is d gap / d output, one value per output value"
            )

    def seed(self, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(tensor, grad_outputs)`` whose vector-Jacobian product is the gradient of ``sum_i w_i gap_i``, for
        ``weight [B]``: ``(gap, w)``, or ``(output, s w output_grad)`` (a new tensor: ``output_grad`` is left as
        it is, so a criterion may hand back the same one at every step)."""
        if self.output is None:
            return self.gap, weight
        w = (weight * self.output_grad_scale).view(-1, *([1] * (self.output_grad.dim() - 1)))
        return self.output, (self.output_grad * w).to(self.output.dtype)


class Criterion:
    """Base class. Subclasses set ``maximize_mi`` and ``needs_labels``.

    ``prepare`` runs once per attack on the clean batch and returns the state
    the other methods need; ``evaluations`` counts model rows evaluated. A
    ``RuntimeError`` of the model at the first call of ``prepare`` (the input
    does not fit it, e.g. the wrong channel count) becomes a ``ValueError``
    naming the input's shape and ``model_name`` (adapters set it to the user's
    model class).
    """

    maximize_mi: bool = False
    needs_labels: bool = False

    def __init__(self, model: nn.Module) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        scripted = isinstance(model, torch.jit.ScriptModule)
        self.model_name = model.original_name if scripted else type(model).__name__  # named in error messages
        self.evaluations = 0
        self.batch_shape: tuple[int, ...] | None = None  # the user's batch, named in errors (views are tiled)

    def check_input(self, x: torch.Tensor) -> None:
        """Refuse, before any model call, input the model cannot take: a model with convolutions needs
        images ``[B, C, H, W]``. Remembers ``x``'s shape for the messages of the first model call."""
        self.batch_shape = tuple(x.shape)
        convs = [m for m in self.model.modules() if isinstance(m, nn.Conv2d)]
        if x.dim() != 4 and convs:
            fix = "reshape it to [B, C, H, W]"
            if x.dim() == 3 and x.shape[0] == convs[0].in_channels:  # one image [C, H, W]: no batch axis
                fix = "add the batch axis, e.g. x.unsqueeze(0) for one image"
            elif x.dim() == 3:  # a batch of single-channel images [B, H, W]
                fix = "add the channel axis, e.g. x.unsqueeze(1)"
            raise ValueError(
                f"x must be images [B, C, H, W] for {self.model_name}, which has convolutions; "
                f"got shape {tuple(x.shape)}: {fix}"
            )

    def _forward(self, x: torch.Tensor, first: bool = False) -> torch.Tensor:
        """``model(x)``, checked to be one tensor; ``first``: the attack's first call, on the clean batch."""
        self.evaluations += x.shape[0]
        if not first:
            return check_model_output(self.model(x), "model")
        try:
            out = self.model(x)
        except torch.OutOfMemoryError:
            raise
        except RuntimeError as err:
            shape = self.batch_shape or tuple(x.shape)
            raise ValueError(
                f"the model ({self.model_name}) cannot run on input of shape {shape}: {error_summary(err)}; "
                "pass data in the shape the model expects (channels, size)"
            ) from err
        return check_model_output(out, "model")

    def config(self) -> dict[str, Any]:
        """The criterion as data: its class, the model's class and its options (subclasses add theirs)."""
        return {"criterion": type(self).__name__, "model": self.model_name}

    def prepare(self, x: torch.Tensor, y: torch.Tensor | None, seed: int) -> Any:
        raise NotImplementedError

    def evaluate(self, x_adv: torch.Tensor, state: Any) -> Evaluation:
        raise NotImplementedError

    def task_loss(self, x_adv: torch.Tensor, state: Any) -> torch.Tensor:
        raise NotImplementedError


def _squared_error(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """``||x - r||^2`` summed over each sample: ``[B]`` float32."""
    return _sum_of_squares(recon.float() - x.float())


def _sum_of_squares(diff: torch.Tensor) -> torch.Tensor:
    """``sum_j diff_j^2`` per sample, ``[B]``: one pass (the clean error and every gap take it so, so that
    ``x' = x`` gives a gap of exactly 0)."""
    return torch.linalg.vector_norm(diff.reshape(diff.shape[0], -1), dim=1).square()


class Reconstruction(Criterion):
    """Autoencoder ``g``: ``f_x(x') = ||x - g(x')||^2 - ||x - g(x)||^2`` (target is the clean x), and its
    derivative in the output, ``d f / d g(x') = 2 (g(x') - x)``, handed to the attack (:class:`Evaluation`).

    Args:
        autoencoder: maps ``[B, ...]`` to a tensor of the same shape.
    """

    def prepare(self, x: torch.Tensor, y: torch.Tensor | None, seed: int) -> dict:
        with torch.no_grad():
            recon = self._forward(x, first=True)
        if recon.shape != x.shape:
            raise ValueError(
                f"Reconstruction: the autoencoder's output shape {tuple(recon.shape)} differs "
                f"from its input shape {tuple(x.shape)}; pass a model that reconstructs x"
            )
        return {"x": x, "x32": x.float(), "clean": _squared_error(x, recon)}

    def task_loss(self, x_adv: torch.Tensor, state: dict) -> torch.Tensor:
        return _squared_error(state["x"], self._forward(x_adv))

    def evaluate(self, x_adv: torch.Tensor, state: dict) -> Evaluation:
        recon = self._forward(x_adv)
        diff = recon.detach().float() - state["x32"]
        gap = _sum_of_squares(diff).sub_(state["clean"])
        return Evaluation(gap, gap <= 0, output=recon, output_grad=diff, output_grad_scale=2.0)


class Contrastive(Criterion):
    """Contrastive encoder: ``f_x(x') = L(x') - L(x)``.

    ``L(z)`` is lightly's ``NTXentLoss`` over ``n_views`` pairs of kornia
    augmentations of the one sample ``z`` (the reference tiles the image 50
    times, temperature 0.5). The views' random parameters are drawn once per
    attack from the seed and shared by ``x`` and every ``x'`` (common random
    numbers), so the gap compares like with like. The loss runs per sample
    with ``torch.func.vmap``: no memory bank, no all-gather, no batch mates.

    Args:
        encoder: maps images ``[B, C, H, W]`` to embeddings ``[B, D]`` (or ``[B, D, 1, 1]``).
        n_views: pairs of views per sample (reference: 50).
        temperature: NT-Xent temperature (reference: 0.5).
        augment: a kornia ``AugmentationSequential``; default: SimCLR-style
            crop, colour jitter and blur suited to the channel count.
    """

    def __init__(
        self,
        encoder: nn.Module,
        n_views: int = 8,
        temperature: float = 0.5,
        augment: nn.Module | None = None,
    ) -> None:
        super().__init__(encoder)
        NTXentLoss = require("lightly.loss", "Contrastive").NTXentLoss
        require("kornia.augmentation", "Contrastive")  # its views; checked here, before any work

        if not isinstance(n_views, int) or n_views < 2:
            raise ValueError(f"n_views must be an int >= 2 (NT-Xent needs negatives), got {n_views!r}")
        self.views = ViewSampler(n_views, augment)
        self.loss = NTXentLoss(temperature=temperature, memory_bank_size=0, gather_distributed=False)
        self._options = {"n_views": n_views, "temperature": float(temperature)}
        self._options["augment"] = "default" if augment is None else repr(augment)

    def config(self) -> dict[str, Any]:
        return {**super().config(), **self._options}

    def _contrastive_loss(self, x: torch.Tensor, params: Any, first: bool = False) -> torch.Tensor:
        view0, view1 = self.views.apply(x, params)
        n = self.views.n_views
        z0 = self._forward(view0, first).reshape(x.shape[0], n, -1)
        z1 = self._forward(view1).reshape(x.shape[0], n, -1)
        return torch.func.vmap(self.loss)(z0.float(), z1.float())

    def prepare(self, x: torch.Tensor, y: torch.Tensor | None, seed: int) -> dict:
        params = self.views.draw(x, seed)
        with torch.no_grad():
            clean = self._contrastive_loss(x, params, first=True)
        return {"params": params, "clean": clean}

    def task_loss(self, x_adv: torch.Tensor, state: dict) -> torch.Tensor:
        return self._contrastive_loss(x_adv, state["params"])

    def evaluate(self, x_adv: torch.Tensor, state: dict) -> Evaluation:
        gap = self.task_loss(x_adv, state) - state["clean"]
        return Evaluation(gap, gap.detach() <= 0)


class Classification(Criterion):
    """Classifier logits ``Z``, the supervised extension (MI is maximised).

    Untargeted: ``f = max(Z_y - max_{j!=y} Z_j, -kappa)``, success when
    ``argmax Z != y``. Targeted (``targeted=True``, labels are targets t):
    ``f = max(max_{j!=t} Z_j - Z_t, -kappa)``, success when ``argmax Z == t``.
    The PGD baseline's task loss is the cross entropy (negated when targeted).
    """

    maximize_mi = True
    needs_labels = True

    def __init__(self, classifier: nn.Module, kappa: float = 0.0, targeted: bool = False) -> None:
        super().__init__(classifier)
        if kappa < 0:
            raise ValueError(f"kappa must be >= 0, got {kappa}")
        self.kappa, self.targeted = float(kappa), bool(targeted)

    def config(self) -> dict[str, Any]:
        return {**super().config(), "kappa": self.kappa, "targeted": self.targeted}

    def prepare(self, x: torch.Tensor, y: torch.Tensor | None, seed: int) -> dict:
        with torch.no_grad():
            logits = self._forward(x, first=True)
        check_labels(y, x.shape[0], logits)
        return {"y": y.to(x.device)}

    def _logits(self, x_adv: torch.Tensor) -> torch.Tensor:
        return self._forward(x_adv).float().reshape(x_adv.shape[0], -1)

    def task_loss(self, x_adv: torch.Tensor, state: dict) -> torch.Tensor:
        ce = F.cross_entropy(self._logits(x_adv), state["y"], reduction="none")
        return -ce if self.targeted else ce

    def evaluate(self, x_adv: torch.Tensor, state: dict) -> Evaluation:
        logits, y = self._logits(x_adv), state["y"]
        own = logits.gather(1, y[:, None]).squeeze(1)
        others = logits.scatter(1, y[:, None], float("-inf")).amax(dim=1)
        margin = others - own if self.targeted else own - others
        gap = torch.clamp(margin, min=-self.kappa)
        pred = logits.detach().argmax(dim=1)
        success = pred == y if self.targeted else pred != y
        return Evaluation(gap, success)
