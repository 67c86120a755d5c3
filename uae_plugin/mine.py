"""Per-sample MINE: B independent statistics networks trained as one batch.

MINE (Belghazi et al., 2018) lower-bounds mutual information with a
statistics network ``T_theta`` and the Donsker-Varadhan (DV) bound

    I(A; B) >= mean_i T(a_i, b_i) - log mean_i exp T(a_i, b_pi(i)),

``pi`` a random permutation, so the shuffled pairs sample the product of the
marginals. Every sample of a batch has its own network (weights carry a
leading batch dimension and are applied with batched matmuls and grouped
convolutions), so the estimate for sample b never sees another sample.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .estimators import mine_saturated
from .rng import SampleRandom, stream_id
from .settings import MinMaxSettings

# Purpose codes for the random streams this module draws from.
_INIT_STREAM = 11


def dv_bound(joint: torch.Tensor, marginal: torch.Tensor) -> torch.Tensor:
    """Donsker-Varadhan bound per sample.

    I_b = mean_i T_b(a_i, b_i) - (logsumexp_i T_b(a_i, b_pi(i)) - log N)

    joint, marginal: [B, N] statistics on paired and shuffled pairs. The
    log-mean-exp runs in float32 even under autocast. Returns [B] float32.
    """
    n = joint.shape[1]
    joint = joint.float()
    marginal = marginal.float()
    return joint.mean(dim=1) - (torch.logsumexp(marginal, dim=1) - math.log(n))


class StatisticsNetworks(nn.Module):
    """B independent statistics networks ``T_b(a, b) = w_b^T ReLU(h_b^A(a) + h_b^B(b))``.

    Each branch is ``h(u) = W2 s(W1 conv(u) + c1) + c2`` with ``conv`` an
    optional per-sample Conv2d (``conv_filters`` filters of 2x2, the
    reference's front for feature maps) and ``s`` the identity (reference) or a
    ReLU (``hidden_activation=True``). Pairs enter as ``[B, N, *element]``:
    ``element`` is ``(D,)`` for vectors or ``(H, W)`` for maps.
    Kernels use Glorot-uniform initialisation and zero biases (the Keras
    defaults of the reference), drawn per sample from ``rand``.
    """

    def __init__(
        self,
        rand: SampleRandom,
        element_shape: tuple[int, ...],
        hidden: int,
        out: int = 10,
        conv_filters: int = 0,
        hidden_activation: bool = True,
    ) -> None:
        super().__init__()
        self.batch = rand.keys.shape[0]
        self.element_shape = tuple(element_shape)
        self.conv_filters = conv_filters if len(element_shape) == 2 else 0
        self.hidden_activation = hidden_activation
        draw = _GlorotDraw(rand)
        for side in ("a", "b"):
            if self.conv_filters:
                h, w = element_shape
                conv_w = draw((self.conv_filters, 1, 2, 2), fan_in=4, fan_out=4 * self.conv_filters)
                self.register_parameter(f"conv_{side}", nn.Parameter(conv_w))
                self.register_parameter(f"conv_bias_{side}", nn.Parameter(draw.zeros((self.conv_filters,))))
                flat = self.conv_filters * (h - 1) * (w - 1)
            else:
                flat = math.prod(element_shape)
            # Weights are stored transposed, [B, fan_out, fan_in]: features run along the last axis as
            # [B, width, N], the layout in which CPU batched matmuls with narrow outputs are fastest.
            self.register_parameter(f"w1_{side}", nn.Parameter(_transposed(draw((flat, hidden), flat, hidden))))
            self.register_parameter(f"c1_{side}", nn.Parameter(draw.zeros((hidden, 1))))
            self.register_parameter(f"w2_{side}", nn.Parameter(_transposed(draw((hidden, out), hidden, out))))
            self.register_parameter(f"c2_{side}", nn.Parameter(draw.zeros((out, 1))))
        self.w3 = nn.Parameter(_transposed(draw((out, 1), out, 1)))

    def branch(self, u: torch.Tensor, side: str) -> torch.Tensor:
        """One branch on pairs ``u: [B, N, *element]``; returns ``h(u)`` as ``[B, out, N]``."""
        b, n = u.shape[:2]
        u = u.float()
        if self.conv_filters:
            h, w = self.element_shape
            maps = u.reshape(b, n, h, w).transpose(0, 1)  # [N, B, H, W]: samples as groups
            weight = getattr(self, f"conv_{side}").reshape(b * self.conv_filters, 1, 2, 2)
            bias = getattr(self, f"conv_bias_{side}").reshape(-1)
            maps = F.conv2d(maps, weight, bias, groups=b)  # [N, B*F, H-1, W-1]
            u = maps.reshape(n, b, -1).transpose(0, 1)
        else:
            u = u.reshape(b, n, -1)
        hidden = torch.baddbmm(getattr(self, f"c1_{side}"), getattr(self, f"w1_{side}"), u.transpose(1, 2))
        if self.hidden_activation:
            hidden = torch.relu(hidden)
        return torch.baddbmm(getattr(self, f"c2_{side}"), getattr(self, f"w2_{side}"), hidden)

    def forward(self, a: torch.Tensor, b: torch.Tensor, perm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Statistics on joint pairs ``(a_i, b_i)`` and shuffled pairs ``(a_i, b_perm(i))``.

        a, b: [B, N, *element]; perm: [B, N] int64. Returns two [B, N] tensors.
        """
        ha, hb = self.branch(a, "a"), self.branch(b, "b")  # [B, out, N]
        hb_shuffled = torch.gather(hb, 2, perm[:, None, :].expand_as(hb))
        both = torch.relu(torch.cat((ha + hb, ha + hb_shuffled), dim=2))  # one matmul for both sets
        joint, marginal = torch.bmm(self.w3, both).squeeze(1).split(a.shape[1], dim=1)
        return joint, marginal

    def bound(self, a: torch.Tensor, b: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
        """DV estimate ``I_b`` per sample, ``[B]`` float32 (see :func:`dv_bound`)."""
        return dv_bound(*self(a, b, perm))


def _transposed(weight: torch.Tensor) -> torch.Tensor:
    """``[B, fan_in, fan_out] -> [B, fan_out, fan_in]``, contiguous."""
    return weight.transpose(1, 2).contiguous()


class _GlorotDraw:
    """Glorot-uniform tensors ``U(-r, r)``, ``r = sqrt(6 / (fan_in + fan_out))``, per sample."""

    def __init__(self, rand: SampleRandom) -> None:
        self.rand = rand
        self.count = 0

    def __call__(self, shape: tuple[int, ...], fan_in: int, fan_out: int) -> torch.Tensor:
        self.count += 1
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        u = self.rand.uniform(stream_id(_INIT_STREAM, self.count), shape)
        return (2.0 * u - 1.0) * limit

    def zeros(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.zeros(self.rand.keys.shape[0], *shape, device=self.rand.device)


_PERM_STREAM = 12


def _fused_adam(device: torch.device) -> bool | None:
    """Adam's fused kernel (one pass over all parameters) where torch has it: about 25% off a MINE step on CPU."""
    return True if device.type in ("cpu", "cuda") else None


class MineEstimator:
    """B statistics networks with their Adam optimiser: ``theta <- theta + Adam(grad DV)``.

    ``fit`` runs ``steps`` ascent steps on ``sum_b I_b`` (a sum, not a mean, so
    each sample's gradient does not scale with the batch size), each with a
    fresh per-sample permutation; ``bound`` evaluates ``I_b`` with the current
    weights. Runs with autocast disabled: the estimate stays float32. A DV bound
    from ``N`` pairs cannot exceed about ``log N``: ``saturated`` flags estimates
    at or above ``0.9 log N`` (see :mod:`uae_plugin.estimators`).
    """

    name = "mine"

    def __init__(
        self,
        rand: SampleRandom,
        element_shape: tuple[int, ...],
        n_pairs: int,
        hidden: int,
        lr: float,
        out: int = 10,
        conv_filters: int = 0,
        hidden_activation: bool = True,
    ) -> None:
        self.rand = rand
        self.n_pairs = n_pairs
        self.net = StatisticsNetworks(rand, element_shape, hidden, out, conv_filters, hidden_activation)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr, fused=_fused_adam(rand.device))

    @classmethod
    def for_pairs(cls, rand: SampleRandom, pairs: torch.Tensor, settings: MinMaxSettings) -> MineEstimator:
        """Networks sized for ``pairs: [B, N, *element]`` with the widths and learning rate of ``settings``."""
        return cls(
            rand,
            tuple(pairs.shape[2:]),
            pairs.shape[1],
            settings.hidden,
            settings.mine_lr,
            settings.out,
            settings.conv_filters,
            settings.hidden_activation,
        )

    def _perm(self, step: int, sub: int) -> torch.Tensor:
        return self.rand.permutation(stream_id(_PERM_STREAM, step, sub), self.n_pairs)

    def fit(self, a: torch.Tensor, b: torch.Tensor, steps: int, step: int = 0) -> None:
        """Train on fixed pairs ``a, b: [B, N, *element]`` (no gradient reaches them)."""
        a, b = a.detach(), b.detach()
        with torch.autocast(a.device.type, enabled=False), torch.enable_grad():
            for sub in range(1, steps + 1):
                loss = -self.net.bound(a, b, self._perm(step, sub)).sum()
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()

    def bound(self, a: torch.Tensor, b: torch.Tensor, step: int = 0) -> torch.Tensor:
        """``I_b`` for pairs ``a, b``, differentiable in ``b``; ``[B]`` float32."""
        with torch.autocast(a.device.type, enabled=False):
            return self.net.bound(a, b, self._perm(step, 0))

    def bound_and_gradient(
        self, a: torch.Tensor, b: torch.Tensor, step: int = 0, scale: float | None = None
    ) -> tuple[torch.Tensor, None]:
        """``(bound(a, b, step), None)``: no closed-form gradient, ``I_b`` carries its graph
        (:meth:`~uae_plugin.estimators.GaussianEstimator.bound_and_gradient`)."""
        return self.bound(a, b, step), None

    def saturated(self, mi: torch.Tensor) -> torch.Tensor:
        """``I_b >= 0.9 log N``, ``[B]`` bool: at the bound's ceiling, not a measurement."""
        return mine_saturated(mi, self.n_pairs)
