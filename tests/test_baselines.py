import torch

from uae_plugin import (
    BinarySearchPenalty,
    MinMaxAttack,
    Reconstruction,
    UnsupervisedPGD,
    matched_gaussian_noise,
)


def test_binary_search_runs_searches_times_the_model_evaluations_of_minmax(conv_ae, digits):
    x = digits[:8]
    minmax = MinMaxAttack(Reconstruction(conv_ae), steps=5, seed=0)(x)
    search = BinarySearchPenalty(Reconstruction(conv_ae), searches=3, steps=5, seed=0)(x)
    assert search.model_evaluations == 3 * minmax.model_evaluations
    assert search.mi_history.shape == (15, 8)


def test_binary_search_raises_c_tenfold_until_first_success(conv_ae, digits):
    # With c fixed near 0 nothing pushes the gap down: c must grow by 10 per failed search.
    res = BinarySearchPenalty(Reconstruction(conv_ae), searches=2, steps=2, c0=1e-6, seed=0)(digits[:4])
    failed = ~res.success
    assert failed.any()  # the branch under test
    assert torch.allclose(res.c[failed], torch.full_like(res.c[failed], 1e-4))


def test_binary_search_succeeds_on_conv_autoencoder(conv_ae, digits):
    res = BinarySearchPenalty(Reconstruction(conv_ae), searches=9, seed=0)(digits[:16])
    assert res.success_rate >= 0.9


def test_unsupervised_pgd_raises_reconstruction_error_within_the_ball(conv_ae, digits):
    x = digits[:16]
    adv = UnsupervisedPGD(Reconstruction(conv_ae), eps=0.1, steps=10)(x)
    with torch.no_grad():
        err = lambda z: (conv_ae(z) - x).pow(2).flatten(1).sum(1)  # noqa: E731
        assert torch.all(err(adv) > err(x))
    assert float((adv - x).abs().max()) <= 0.1 + 1e-6
    assert float(adv.min()) >= 0 and float(adv.max()) <= 1


def test_matched_noise_has_the_l2_size_of_the_reference(digits):
    x = digits[:8]
    reference = torch.clamp(x + 0.05 * torch.randn_like(x), 0, 1)
    noisy = matched_gaussian_noise(x, reference)
    size = lambda z: (z - x).flatten(1).norm(dim=1)  # noqa: E731
    assert torch.allclose(size(noisy), size(reference), rtol=1e-3)  # matched after clipping
    assert not torch.equal(noisy, reference)
