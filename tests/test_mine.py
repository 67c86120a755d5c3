import math

import torch

from uae_plugin.mine import MineEstimator, dv_bound
from uae_plugin.rng import SampleRandom


def _correlated_gaussians(rhos: torch.Tensor, n: int, d: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(len(rhos), n, d, generator=gen)
    noise = torch.randn(len(rhos), n, d, generator=gen)
    r = rhos[:, None, None]
    return a, r * a + torch.sqrt(1 - r**2) * noise


def test_dv_bound_recovers_mutual_information_of_correlated_gaussians():
    # I = -d/2 log(1 - rho^2) for d independent dimensions with correlation rho.
    rhos, d = torch.tensor([0.0, 0.5, 0.8, 0.9]), 2
    truth = -d / 2 * torch.log(1 - rhos**2)
    a, b = _correlated_gaussians(rhos, n=1024, d=d, seed=0)
    mine = MineEstimator(SampleRandom(0, torch.arange(4)), (d,), 1024, hidden=64, lr=1e-3)
    mine.fit(a, b, steps=800)
    with torch.no_grad():
        estimate = torch.stack([mine.bound(a, b, step=r) for r in range(1, 9)]).mean(0)
    tolerance = torch.clamp(0.1 * truth, min=0.15)  # stated tolerance: 0.15 nats or 10%
    assert torch.all((estimate - truth).abs() <= tolerance), (estimate, truth)


def test_dv_bound_is_log_mean_exp_in_float32():
    joint = torch.tensor([[1.0, 3.0]], dtype=torch.bfloat16)
    marginal = torch.tensor([[0.0, 2.0]], dtype=torch.bfloat16)
    expected = 2.0 - (math.log(math.exp(0.0) + math.exp(2.0)) - math.log(2))
    out = dv_bound(joint, marginal)
    assert out.dtype == torch.float32
    assert abs(float(out) - expected) < 1e-5


def test_each_sample_has_its_own_statistics_network():
    a, b = _correlated_gaussians(torch.tensor([0.5, 0.5]), n=64, d=2, seed=1)
    mine = MineEstimator(SampleRandom(0, torch.tensor([3, 4])), (2,), 64, hidden=8, lr=1e-2)
    mine.net.bound(a, b, torch.arange(64).repeat(2, 1))[0].backward()
    for name, p in mine.net.named_parameters():
        assert p.grad[1].abs().sum() == 0, f"sample 0's estimate reached sample 1's {name}"
