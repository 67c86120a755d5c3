"""The MinMax UAE attack: ``min_delta max_{c >= 0} c max(f_x(x + delta), 0) +/- I(x, x + delta)``."""

from __future__ import annotations

import itertools
import numbers
from typing import Any

import torch
from torch.optim.adam import adam
from tqdm.auto import tqdm

from .criteria import Criterion
from .dual import DualAscent
from .iterate import IterateScorer
from .keep_best import KeepBest
from .model_guard import borrowed
from .pairs import Similarity
from .result import AttackResult
from .rng import SampleRandom, check_seed_range, content_keys, index_keys, stream_id
from .settings import MinMaxSettings, resolve_settings
from .similarity import resolve_similarity
from .validation import check_images, check_index, check_model_device

_DELTA_INIT_STREAM = 21


class MinMaxAttack:
    """Unsupervised adversarial examples by MinMax (Hsu et al., AAAI 2022); docs/algorithm.md.

    Solves, for every sample of a batch independently,

        min_{||delta||_inf <= eps, x + delta in [0, 1]}  max_{c >= 0}  F(delta, c),
        F = c max(f_x(x + delta), 0) + w I(x, x + delta)   (unsupervised criteria)
        F = c max(f_x(x + delta), 0) - w I(x, x + delta)   (Classification: MI is maximised)

    from delta_0 ~ U[-s, s] and c_0 = c0, by, for t = 1..T:

        delta_t = Proj(Adam step on delta_{t-1} along grad_delta F(delta_{t-1}, c_{t-1}))  # "sgd": - alpha grad
        theta_t = K Adam steps of the statistics networks on the pairs of x_t = x + delta_t  # "mine" only
        score x_t: f_x(x_t) and I(x, x_t) under theta_t
        keep x_t if it is the best iterate so far (KeepBest)
        c_t = max(0, (1 - beta t^-gamma) c_{t-1} + beta max(f_x(x_t), 0))

    Proj clamps delta to ``[max(-eps, -x), min(eps, 1 - x)]``.
    ``I`` is a per-sample estimate on pairs from ``similarity``, by
    ``estimator``: ``"gaussian"`` (default) the closed form
    ``-(k/2) log(1 - rho^2)``, ``rho`` the Pearson correlation of ``x`` and
    ``x + delta`` (exact for Gaussian projections to ``k`` dimensions), or
    ``"mine"``, the paper's DV bound from a statistics network per sample (all B
    run as one batched computation), which cannot exceed about ``log N``.
    ``w`` is ``mi_weight`` (0: the no-MI ablation). A sample's random draws are keyed by (seed, a hash of its
    values), or by (seed, ``index``) when given, so its result does not depend
    on its batch. The model is borrowed: parameters, ``.grad``, ``training``
    and ``requires_grad`` are as before after the call, also on error.

    Args:
        criterion: :class:`Reconstruction`, :class:`Contrastive` or :class:`Classification`.
        eps: L-inf bound on delta (default from the preset: 0.1, which measured harmless for
            augmentation in a 4,000-digit protocol; "reference": the paper's 1.0, where only the [0, 1]
            box binds and retrained autoencoders got worse). No setting helped a model that does not
            overfit (a conv autoencoder on 300 digits got worse with every augmentation, UAEs at eps
            0.1 included: docs/results.md); measure on your model with run_trial before adopting UAEs.
        steps: outer iterations T (default from the preset).
        mine_steps: inner MINE steps K (default from the preset).
        similarity: "projection", "conv", an ``nn.Conv2d`` of the model, or a
            callable ``x [B, ...] -> pairs [B, N, ...]`` (``estimator="mine"`` only).
        estimator: "gaussian", "mine" or "auto" (default from the preset: "auto",
            gaussian for unsupervised criteria and mine for Classification, which
            maximises MI; "reference": "mine" on uncentred projections).
        seed: int for reproducible draws; None draws one from torch's global RNG per call.
        preset: "default" or "reference" (the authors' exact settings), or a
            :class:`MinMaxSettings`.
        model_training: run the model in train mode during the attack (default eval). A batch-norm model then
            normalises each iterate by its own batch's statistics, so a row's gap and success hold for the batch
            it was scored in, not for the returned batch (whose rows may come from different iterates); dropout
            draws from torch's global RNG, so the same seed repeats only after ``torch.manual_seed``.
        progress: show a tqdm bar over outer steps.
        **settings: any other :class:`MinMaxSettings` field (step_size, mine_lr, ...).

    Shape:
        x: ``[B, ...]`` float in [0, 1] (any float dtype: the attack runs in the model's dtype, ``adv`` comes
        back in ``x``'s); y: ``[B]`` labels (Classification only).
        Returns an :class:`AttackResult` with ``adv [B, ...]``, ``success/mi/gap [B]``.

    Example:
        >>> attack = MinMaxAttack(Reconstruction(autoencoder), seed=0)
        >>> res = attack(x); res.adv, res.success, res.mi, res.gap
    """

    def __init__(
        self,
        criterion: Criterion,
        eps: float | None = None,
        steps: int | None = None,
        mine_steps: int | None = None,
        similarity: Similarity = "projection",
        seed: int | None = None,
        preset: str | MinMaxSettings = "default",
        estimator: str | None = None,
        model_training: bool = False,
        progress: bool = False,
        **settings: Any,
    ) -> None:
        if not isinstance(criterion, Criterion):
            raise TypeError(
                "criterion must be a uae_plugin criterion (Reconstruction, Contrastive, "
                f"Classification), got {type(criterion).__name__}; wrap the model, e.g. Reconstruction(model)"
            )
        self.criterion = criterion
        for name, value in (("eps", eps), ("steps", steps), ("mine_steps", mine_steps), ("estimator", estimator)):
            if value is not None:
                settings[name] = value
        self.settings = resolve_settings(preset, settings, criterion.maximize_mi)
        self.eps = self.settings.eps
        self.seed = _check_seed(seed)
        self.model_training = bool(model_training)
        self.progress = progress
        self.similarity = similarity
        self._pair_cache: tuple[int, Any] | None = None
        probe = resolve_similarity(similarity, criterion.model, self.settings, seed=0)  # fail early
        self._needs_images = probe.needs_images

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({type(self.criterion).__name__}, eps={self.eps}, "
            f"similarity={self.similarity!r}, seed={self.seed}, {self.settings})"
        )

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor | None = None, *, index: Any = None, seed: int | None = None
    ) -> AttackResult:
        """Attack ``x: [B, ...]`` in [0, 1]; ``index: [B]`` keys the per-sample randomness;
        ``seed`` replaces the attack's seed for this call."""
        return self.run(x, y, index=index, seed=seed)

    def _keys(self, x: torch.Tensor, index: Any) -> torch.Tensor:
        if index is None:
            return content_keys(x)
        return index_keys(check_index(index, x.shape[0], x.device))

    def _seed(self, seed: int | None) -> int:
        seed = _check_seed(seed)
        if seed is not None:
            return seed
        if self.seed is not None:
            return self.seed
        return int(torch.randint(0, 2**31 - 1, ()).item())

    def run(self, x: torch.Tensor, y: torch.Tensor | None = None, *, index: Any = None, seed: int | None = None):
        """The attack (as ``__call__``)."""
        return self.run_with_penalty(x, y, DualAscent(self.settings), index=index, seed=seed)

    def run_with_penalty(
        self, x: torch.Tensor, y: torch.Tensor | None, penalty: Any, *, index: Any = None, seed: int | None = None
    ) -> AttackResult:
        """The attack with the schedule of ``c`` given: ``penalty.start(B, device) -> c_0`` and
        ``penalty.update(c, gap, t) -> c_t`` (:mod:`uae_plugin.dual`; the binary-search baseline fixes ``c``)."""
        check_model_device(self.criterion.model, x)  # first: values on another device cannot be checked here
        check_images(x)
        self.criterion.check_input(x)
        if torch.is_inference_mode_enabled():
            raise RuntimeError(
                "MinMaxAttack needs autograd and cannot run under torch.inference_mode(); "
                "use torch.no_grad() instead, or call it outside"
            )
        if self.criterion.needs_labels and y is None:
            raise ValueError(f"y is required for {type(self.criterion).__name__}: pass labels [B]")
        if self._needs_images and x.dim() != 4:
            raise ValueError(f"x must be images [B, C, H, W] for similarity='conv', got shape {tuple(x.shape)}")
        keys = self._keys(x, index)
        seed = self._seed(seed)
        given = x.detach()
        dtype = model_dtype(self.criterion.model, x.dtype)
        x = given.to(dtype)  # a clone of an inference tensor too
        with borrowed(self.criterion.model, self.model_training), torch.enable_grad():
            return self._minmax(x.clone() if x.is_inference() else x, y, keys, seed, penalty, given)

    def _within_eps_of(self, x: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
        """``adv`` in ``x``'s dtype and in the eps-ball around ``x`` as the user gave it: ``clamp(adv, lo, hi)``,
        ``lo`` the smallest value of ``x``'s dtype at or above ``max(x - eps, 0)``, ``hi`` the largest at or below
        ``min(x + eps, 1)`` (both worked out in float64; float32 on MPS). Needed where a half
        precision shows: a bfloat16 model attacks ``x`` rounded to bfloat16 (up to 2^-9 per pixel), and
        bfloat16 or float16 data take the UAE rounded to their own dtype, either of which can leave the ball."""
        wide = x.to(torch.float32 if x.device.type == "mps" else torch.float64)
        low, high = (wide - self.eps).clamp_(min=0.0), (wide + self.eps).clamp_(max=1.0)
        lo, hi = low.to(x.dtype), high.to(x.dtype)
        lo = torch.where(lo.to(wide.dtype) < low, torch.nextafter(lo, torch.ones_like(lo)), lo)
        hi = torch.where(hi.to(wide.dtype) > high, torch.nextafter(hi, torch.zeros_like(hi)), hi)
        return torch.clamp(adv.to(x.dtype), lo, hi)

    def _minmax(
        self, x: torch.Tensor, y: torch.Tensor | None, keys: torch.Tensor, seed: int, penalty: Any, given: torch.Tensor
    ) -> AttackResult:
        """T iterations of: step on delta, fit the statistics networks, score, keep the best, update c; the kept
        UAEs in the dtype of the data ``given`` (``x`` is it in the model's dtype)."""
        s = self.settings
        crit = self.criterion
        evaluations_before = crit.evaluations
        rand = SampleRandom(seed, keys)
        score = self.scorer(x, y, rand, seed)
        estimator = score.estimator
        x32 = x.detach().float()
        iterate = self._start(x32, rand)  # x_t = x + delta_t itself is optimised: Adam's step is the same
        delta_opt = _delta_optimizer(iterate, s)
        box = self._box(x32)
        c = penalty.start(x.shape[0], x.device)
        best = self.keep_best(x)
        mi_hist, gap_hist = [], []

        scored = score(iterate, 0, graph=True)
        for t in tqdm(range(1, s.steps + 1), desc="MinMax", leave=False, disable=not self.progress):
            # 1. step on delta: one step on F(delta_{t-1}, c_{t-1}), then the projection onto the feasible set
            self._descend(iterate, scored.gradient(c), delta_opt, box)
            # 2.-3. fit the statistics networks on the pairs of x_t (none for the closed form), score x_t
            scored = score(iterate, t, graph=t < s.steps)  # the last iterate is only scored: no graph
            ev, mi = scored.evaluation, scored.mi
            # 4. keep x_t where it beats the best iterate so far
            best.update(scored.adv, ev.success, ev.gap, mi, estimator.saturated(mi))
            mi_hist.append(mi)
            gap_hist.append(ev.gap.detach())
            # 5. update c
            c = penalty.update(c, ev.gap, t)

        result = best.result(c, torch.stack(mi_hist), torch.stack(gap_hist), 0)
        if max(torch.finfo(x.dtype).eps, torch.finfo(given.dtype).eps) <= torch.finfo(torch.float32).eps:
            result.adv = result.adv.to(given.dtype)
        else:  # a half precision: the rounding can leave the ball; gap, success and MI then told at what is returned
            result.adv = self._within_eps_of(given, result.adv)
            rescored = score(result.adv.float(), 0, graph=False)
            result.gap, result.success, result.mi = rescored.evaluation.gap, rescored.evaluation.success, rescored.mi
        result.model_evaluations = crit.evaluations - evaluations_before
        return result

    def scorer(self, x: torch.Tensor, y: torch.Tensor | None, rand: SampleRandom, seed: int) -> IterateScorer:
        """What scores this attack's iterates of ``x`` (in the model's dtype): the criterion prepared on ``x``, the
        clean pairs and their estimator, and the signed MI weight ``s``."""
        s, crit = self.settings, self.criterion
        state = crit.prepare(x, y, seed)
        measure = self._similarity(seed)
        with torch.no_grad():
            clean_pairs = measure.pairs(x)
        estimator = measure.estimator(rand, clean_pairs)
        mi_sign = (-1.0 if crit.maximize_mi else 1.0) * s.mi_weight
        return IterateScorer(crit, state, measure.pairs, estimator, clean_pairs, mi_sign, x.dtype, s.mine_steps)

    def keep_best(self, x: torch.Tensor) -> KeepBest:
        """The per-sample choice of the returned iterate for this attack's criterion, MI weight and estimator
        (a Gaussian estimate of 0 means independence; a MINE estimate of 0 means an untrained network)."""
        s = self.settings
        return KeepBest(x, self.criterion.maximize_mi, s.mi_weight, exact=s.estimator == "gaussian")

    def _similarity(self, seed: int):
        """Pair source and estimator for ``seed``; the last one is cached (a projection matrix is costly)."""
        if self._pair_cache is None or self._pair_cache[0] != seed:
            source = resolve_similarity(self.similarity, self.criterion.model, self.settings, seed)
            self._pair_cache = (seed, source)
        return self._pair_cache[1]

    @property
    def start_scale(self) -> float:
        """``s = min(init_scale, eps)`` (``init_scale`` None: ``eps``): delta_0 is drawn from U[-s, s]."""
        return self.eps if self.settings.init_scale is None else min(self.settings.init_scale, self.eps)

    def _start(self, x: torch.Tensor, rand: SampleRandom) -> torch.Tensor:
        """``x_0 = x + delta_0``, delta_0 ~ U[-s, s] per sample (s = init_scale, default eps), in [0, 1]."""
        u = rand.uniform(stream_id(_DELTA_INIT_STREAM), tuple(x.shape[1:]))
        return torch.clamp(x + (2.0 * u - 1.0) * self.start_scale, 0.0, 1.0)

    def _box(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The feasible set of ``x' = x + delta`` as per-pixel bounds: ``max(x - eps, 0) <= x' <= min(x + eps, 1)``.

        The intersection of the eps-ball and [0, 1] (both contain x), so one clamp to it equals the clamp of
        delta to the eps-ball followed by the clamp of ``x + delta`` to [0, 1]."""
        return torch.clamp(x - self.eps, min=0.0), torch.clamp(x + self.eps, max=1.0)

    def _descend(
        self,
        iterate: torch.Tensor,
        grad: torch.Tensor,
        delta_opt: DeltaAdam | None,
        box: tuple[torch.Tensor, torch.Tensor],
    ) -> None:
        """One step on ``x' = x + delta`` (on delta: x is fixed), then the projection onto
        ``||x' - x||_inf <= eps, x' in [0, 1]``."""
        s = self.settings
        with torch.no_grad():
            if delta_opt is not None:
                delta_opt.step(grad)
            else:
                iterate.sub_(s.step_size * grad)
            torch.clamp(iterate, box[0], box[1], out=iterate)


class DeltaAdam:
    """Adam on delta with torch's defaults (betas 0.9, 0.999, eps 1e-8), run on ``x + delta`` (the same step: x is
    fixed), at step t with gradient g:

        m = 0.9 m + 0.1 g,   v = 0.999 v + 0.001 g^2,   delta -= lr (m / (1 - 0.9^t)) / (sqrt(v / (1 - 0.999^t)) + eps)

    by ``torch.optim.adam.adam``, the function ``torch.optim.Adam.step`` runs, called with delta's state directly
    (fused on CPU and CUDA: one pass over delta per step), without the optimizer's per-step bookkeeping
    (parameter groups, hooks, ``.grad``)."""

    def __init__(self, delta: torch.Tensor, lr: float) -> None:
        self.delta, self.lr = delta, lr
        self.exp_avg = torch.zeros_like(delta, memory_format=torch.preserve_format)
        self.exp_avg_sq = torch.zeros_like(delta, memory_format=torch.preserve_format)
        self.fused = delta.device.type in ("cpu", "cuda")
        # torch keeps the step count on delta's device when fused, on the CPU otherwise
        self.step_count = torch.zeros((), dtype=torch.float32, device=delta.device if self.fused else "cpu")

    @torch.no_grad()
    def step(self, grad: torch.Tensor) -> None:
        adam(
            [self.delta],
            [grad],
            [self.exp_avg],
            [self.exp_avg_sq],
            [],
            [self.step_count],
            fused=self.fused,
            foreach=False,
            amsgrad=False,
            beta1=0.9,
            beta2=0.999,
            lr=self.lr,
            weight_decay=0.0,
            eps=1e-8,
            maximize=False,
        )


def _delta_optimizer(delta: torch.Tensor, s: MinMaxSettings) -> DeltaAdam | None:
    """Adam on delta, or None for plain gradient descent (``delta_optimizer="sgd"``)."""
    return DeltaAdam(delta, s.step_size) if s.delta_optimizer == "adam" else None


def model_dtype(model: torch.nn.Module, default: torch.dtype) -> torch.dtype:
    """The dtype the attack runs in: that of the model's first floating-point parameter or buffer, else ``default``."""
    tensors = itertools.chain(model.parameters(), model.buffers())
    return next((t.dtype for t in tensors if t.is_floating_point()), default)


def _check_seed(seed: Any) -> int | None:
    """``seed`` as a Python int (any integer type: ``int``, ``numpy.int64``, ...), or None."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise TypeError(f"seed must be an int or None, got {seed!r}")
    if seed is not None:
        seed = int(seed)
        check_seed_range(seed)
    return seed
