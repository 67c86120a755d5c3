"""torchattacks' ``Attack.save`` contract for the MinMax adapters: the file ``Attack.load`` reads, the verbose line
and tuple, and what a "prediction" and a "broken" row are.

:class:`TorchattacksSave` is a mixin of :class:`uae_plugin.integrations.torchattacks.UAE` and ``MINEAttack``; it
imports torch only. Its host is a ``torchattacks.attack.Attack`` (``get_logits``, ``to_type``) whose ``__call__``
sets ``last_result`` (the :class:`uae_plugin.AttackResult`) and ``_x`` (the clean pixels ``[B, C, H, W]``), and
whose ``_eval()`` puts the model in eval mode and restores every module's flag after.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import torch

NO_LABEL = -1  # the "labels" UAE.save stores for loaders that yield images only
SAVE_TYPES = ("float", "int")  # torchattacks' save_type: float pixels, or uint8 (x * 255, truncated)
_SAVED = ("adv_inputs", "labels", "preds", "clean_inputs", "success", "mi", "linf", "l2", "broken")


class TorchattacksSave:
    """``save`` as ``torchattacks.Attack.save``, with per-sample ``success``, ``mi``, ``linf``, ``l2`` added."""

    def _prediction(self, adv: torch.Tensor) -> torch.Tensor:
        """``preds`` of :meth:`save` for ``adv`` as ``__call__`` returned it: torchattacks' ``argmax`` of the logits."""
        with torch.no_grad(), self._eval():
            return self.get_logits(adv).argmax(1)

    def _broken(self, adv: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``[B]`` bool, the attack succeeded on the row: torchattacks' rule, the prediction is not the label."""
        return self._prediction(adv) != labels.to(adv.device)

    def save(
        self,
        data_loader: Iterable,
        save_path: str | None = None,
        verbose: bool = True,
        return_verbose: bool = False,
        save_predictions: bool = False,
        save_clean_inputs: bool = False,
        save_type: str = "float",
    ) -> tuple[float, float, float] | None:
        """``torchattacks.Attack.save``: the same arguments, in the same order, with the same meaning.

        Attacks every batch of ``data_loader`` (``(images, labels)``, or images alone: labels ``NO_LABEL = -1``)
        and saves, for ``torchattacks.Attack.load``, ``adv_inputs`` and ``clean_inputs`` (if asked) in pixel space
        (``save_type="int"``: uint8 ``x * 255``), ``labels``, ``preds`` (if asked; see ``_prediction``) and
        ``save_type``, plus per-sample ``success``, ``mi`` (the estimator's ``I(x, x')``), ``linf``, ``l2``.
        ``verbose`` prints the progress, the rate of rows the attack did not break (torchattacks' robust accuracy),
        the success rate, mean MI and mean L2 of the broken rows. ``return_verbose``: returns torchattacks'
        ``(robust accuracy %, mean L2 of the broken rows, seconds of the last batch)``; else None.
        """
        if save_type not in SAVE_TYPES:
            raise ValueError(f"{save_type} is not a valid type. [Options: float, int]")
        parts: dict[str, list[torch.Tensor]] = {key: [] for key in _SAVED}
        batches = len(data_loader) if hasattr(data_loader, "__len__") else None
        for step, batch in enumerate(data_loader, start=1):
            start = time.perf_counter()
            images, *rest = batch if isinstance(batch, list | tuple) else (batch,)
            adv = self(images, rest[0] if rest else None)
            res, clean = self.last_result, self._x
            labels = torch.as_tensor(rest[0]) if rest else torch.full((len(clean),), NO_LABEL)
            delta = (res.adv - clean).flatten(1).float()
            values = (res.adv, labels, self._prediction(adv), clean, res.success, res.mi, *_norms(delta))
            for key, value in zip(_SAVED, (*values, self._broken(adv, labels)), strict=True):
                parts[key].append(value.detach().cpu())
            summary = self._summary(parts, time.perf_counter() - start)
            if verbose:
                done = f"{100 * step / batches:.2f} %" if batches else f"batch {step}"
                print(f"- Save progress: {done} / {summary[1]}", end="\r")
        if not parts["mi"]:
            raise ValueError("data_loader yielded no batches")
        if verbose:
            print()
        if save_path is not None:
            saved = {key: torch.cat(values) for key, values in parts.items() if key != "broken"}
            for key in ("adv_inputs", "clean_inputs"):
                saved[key] = self.to_type(saved[key].float(), save_type)
            drop = [key for key, keep in (("preds", save_predictions), ("clean_inputs", save_clean_inputs)) if not keep]
            torch.save({**{k: v for k, v in saved.items() if k not in drop}, "save_type": save_type}, save_path)
        return summary[0] if return_verbose else None

    @staticmethod
    def _summary(parts: dict[str, list[torch.Tensor]], seconds: float) -> tuple[tuple[float, float, float], str]:
        """torchattacks' ``(robust accuracy %, mean L2 of the broken rows, seconds)`` so far, and a line of them."""
        broken = torch.cat(parts["broken"])
        l2 = torch.cat(parts["l2"])[broken]
        numbers = (100 * float((~broken).float().mean()), float(l2.mean()) if len(l2) else float("nan"), seconds)
        success, mi = (float(torch.cat(parts[key]).float().mean()) for key in ("success", "mi"))
        line = (
            f"Robust accuracy: {numbers[0]:.2f} % / Success rate: {success:.2%} / Mean MI: {mi:.4f} / "
            f"L2: {numbers[1]:.5f} ({numbers[2]:.3f} s)"
        )
        return numbers, line


def _norms(delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row ``||delta||inf`` and ``||delta||2`` of ``delta: [B, D]``."""
    return delta.abs().amax(1), delta.norm(dim=1)
