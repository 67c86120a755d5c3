"""The similarity measures dependence: estimates against pairs whose per-sample MI is known."""

import math
import warnings

import pytest
import torch
from torch import nn

from uae_plugin import REFERENCE, MinMaxAttack, Reconstruction, mutual_information
from uae_plugin.estimators import GaussianEstimator, mine_saturated
from uae_plugin.experiments.ground_truth import correlated_images, true_mi
from uae_plugin.measure import SaturationWarning
from uae_plugin.pairs import ProjectionPairs

K = 16  # the default pair_dim: the Gaussian estimate is the MI of one projection pair of k values


@pytest.mark.parametrize("rho", [0.3, 0.6, 0.9, 0.99])
def test_gaussian_estimate_of_projection_pairs_matches_the_closed_form_truth(rho):
    x, other = correlated_images(64, rho, seed=1)
    estimate = float(mutual_information(x, other).mean())
    assert estimate == pytest.approx(true_mi(rho, K), rel=0.1)


@pytest.mark.parametrize("rho", [0.3, 0.6, 0.9, 0.99])
def test_gaussian_estimate_of_conv_maps_matches_the_truth_per_map_value(rho):
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 8, 3, padding=1)
    x, other = correlated_images(64, rho, seed=2)
    estimate = float(mutual_information(x, other, similarity="conv", model=conv).mean())
    assert estimate == pytest.approx(true_mi(rho, 1), rel=0.1)


def test_independent_images_score_about_zero_with_both_pair_sources():
    torch.manual_seed(0)
    conv = nn.Conv2d(1, 8, 3, padding=1)
    x, other = correlated_images(64, 0.0, seed=3)
    assert float(mutual_information(x, other).mean()) < 0.05
    assert float(mutual_information(x, other, similarity="conv", model=conv).mean()) < 0.01


def test_centring_removes_the_shared_brightness_that_uncentred_projections_measure():
    x, other = correlated_images(16, 0.0, seed=4)  # independent, both around 0.5

    def pair_correlation(centre):
        pairs = ProjectionPairs(64, K, seed=0, centre=centre)
        a, b = pairs(x).flatten(1), pairs(other).flatten(1)
        return float(torch.nn.functional.cosine_similarity(a, b, dim=1).mean())

    assert pair_correlation(centre=False) > 0.9  # the reference's pairs: independent images look alike
    assert abs(pair_correlation(centre=True)) < 0.1


def test_real_digits_against_noise_itself_and_a_brightness_change(digits):
    x = digits[:32]
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    independent = mutual_information(x, noise)
    itself = mutual_information(x, x)
    affine = mutual_information(x, 0.5 * x + 0.3)
    assert float(independent.max()) < 0.1
    assert float(itself.min()) > 50.0  # ceiling (k/2) log(1e6) = 110 nats for identical samples
    assert torch.allclose(affine, itself, rtol=1e-3)  # a brightness change carries the same information


def test_gaussian_estimate_is_differentiable_and_lowered_by_its_gradient(digits):
    x = digits[:8]
    other = (x + 0.05 * torch.randn_like(x)).clamp(0, 1).requires_grad_(True)
    est = GaussianEstimator(K)
    mi = est.bound(x.reshape(8, 1, -1), other.reshape(8, 1, -1))
    (grad,) = torch.autograd.grad(mi.sum(), other)
    assert torch.isfinite(grad).all() and float(grad.abs().sum()) > 0
    stepped = (other - 1e-3 * grad / grad.flatten(1).norm(dim=1).view(-1, 1, 1, 1)).detach()
    assert bool((est.bound(x.reshape(8, 1, -1), stepped.reshape(8, 1, -1)) < mi.detach()).all())


def test_mine_estimates_near_log_n_are_flagged_as_saturated(digits):
    x = digits[:8]
    with pytest.warns(SaturationWarning, match="log N"):
        mi = mutual_information(x, x, estimator="mine", steps=200)
    assert float(mi.max()) <= math.log(64) + 0.1  # the ceiling, far below the truth (infinite)
    assert mine_saturated(torch.tensor([0.89, 0.91]) * math.log(64), 64).tolist() == [False, True]


def test_mine_on_independent_noise_is_not_flagged(digits):
    x = digits[:8]
    noise = torch.rand(x.shape, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SaturationWarning)
        mutual_information(x, noise, estimator="mine", steps=50)


def test_attack_result_flags_saturated_mine_estimates_and_never_gaussian_ones(conv_ae, digits):
    x = digits[:8]
    mine = MinMaxAttack(Reconstruction(conv_ae), eps=0.01, steps=4, estimator="mine", mine_steps=20, seed=0)(x)
    assert torch.equal(mine.saturated, mine_saturated(mine.mi, 64))
    gaussian = MinMaxAttack(Reconstruction(conv_ae), eps=0.01, steps=4, seed=0)(x)
    assert not bool(gaussian.saturated.any()) and float(gaussian.mi.min()) > math.log(64)


def test_attack_mi_is_the_yardstick_of_the_returned_example(conv_ae, digits):
    x = digits[:16]
    res = MinMaxAttack(Reconstruction(conv_ae), steps=10, seed=0)(x)
    assert torch.allclose(res.mi, mutual_information(x, res.adv), rtol=1e-4, atol=1e-5)


def test_reference_preset_keeps_the_authors_pair_source_and_estimator(conv_ae):
    attack = MinMaxAttack(Reconstruction(conv_ae), preset="reference")
    assert attack.settings.estimator == "mine" and attack.settings.centre is False
    assert REFERENCE.n_pairs == 500 and REFERENCE.pair_dim == 128


def test_gaussian_estimator_with_a_pair_source_of_ones_own_is_refused_before_any_work(conv_ae):
    calls = []
    hook = conv_ae.register_forward_hook(lambda *a: calls.append(1))
    try:
        with pytest.raises(ValueError, match="estimator='gaussian'.*similarity"):
            MinMaxAttack(
                Reconstruction(conv_ae), similarity=lambda x: x.reshape(x.shape[0], 4, -1), estimator="gaussian"
            )
        with pytest.raises(ValueError, match="estimator must be one of"):
            MinMaxAttack(Reconstruction(conv_ae), estimator="club")
        with pytest.raises(ValueError, match="mi_weight"):
            MinMaxAttack(Reconstruction(conv_ae), mi_weight=-1.0)
    finally:
        hook.remove()  # conv_ae is shared by the session: a hook left on it breaks torch.jit.script later
    assert calls == []
