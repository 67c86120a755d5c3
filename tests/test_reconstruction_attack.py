import torch

from uae_plugin import REFERENCE, MinMaxAttack, Reconstruction, matched_gaussian_noise, mutual_information
from uae_plugin.pairs import first_conv2d

PAPER_EPS = {"eps": 1.0, "init_scale": 0.5}  # the paper's eps, delta_0 in +-0.5


def test_paper_eps_succeeds_on_conv_autoencoder_trained_on_mnist(conv_ae, digits):
    res = MinMaxAttack(Reconstruction(conv_ae), seed=0, **PAPER_EPS)(digits)
    assert res.success_rate >= 0.9


def test_conv_similarity_succeeds_on_conv_autoencoder(conv_ae, digits):
    res = MinMaxAttack(Reconstruction(conv_ae), similarity="conv", seed=0, **PAPER_EPS)(digits)
    assert res.success_rate >= 0.9


def test_projection_mode_succeeds_on_dense_autoencoder(dense_ae, digits):
    res = MinMaxAttack(Reconstruction(dense_ae), similarity="projection", seed=0, **PAPER_EPS)(digits)
    assert res.success_rate >= 0.9


def test_defaults_stay_in_the_default_ball_and_lower_the_information_kept(conv_ae, digits):
    x = digits[:32]
    res = MinMaxAttack(Reconstruction(conv_ae), seed=0)(x)
    assert float((res.adv - x).abs().max()) <= 0.1 + 1e-6
    ablation = MinMaxAttack(Reconstruction(conv_ae), seed=0, mi_weight=0.0)(x)
    assert float(res.mi.mean()) < float(mutual_information(x, ablation.adv).mean())


def test_successful_examples_reconstruct_no_worse_than_the_clean_sample(conv_ae, digits):
    x = digits[:32]
    res = MinMaxAttack(Reconstruction(conv_ae), seed=0)(x)
    with torch.no_grad():
        err_adv = (conv_ae(res.adv) - x).pow(2).flatten(1).sum(1)
        err_clean = (conv_ae(x) - x).pow(2).flatten(1).sum(1)
    assert res.success.any()
    assert torch.all(res.gap[res.success] <= 0)
    assert torch.allclose(res.gap, err_adv - err_clean, atol=1e-4)
    assert torch.all(err_adv[res.success] <= err_clean[res.success] + 1e-4)


def test_perturbation_stays_in_eps_ball_and_unit_box(conv_ae, digits):
    eps = 0.05
    res = MinMaxAttack(Reconstruction(conv_ae), eps=eps, steps=10, seed=0)(digits[:16])
    assert float((res.adv - digits[:16]).abs().max()) <= eps + 1e-6
    assert float(res.adv.min()) >= 0 and float(res.adv.max()) <= 1


def test_attack_lowers_estimated_mutual_information(conv_ae, digits):
    x = digits[:32]
    res = MinMaxAttack(Reconstruction(conv_ae), seed=0)(x)
    mi_clean = mutual_information(x, x, steps=200)
    mi_adv = mutual_information(x, res.adv, steps=200)
    assert float(mi_adv.mean()) < float(mi_clean.mean())
    assert float((mi_adv < mi_clean).float().mean()) >= 0.9


def test_uae_carries_less_information_than_gaussian_noise_of_its_size(conv_ae, digits):
    x = digits[:32]
    res = MinMaxAttack(Reconstruction(conv_ae), seed=0, **PAPER_EPS)(x)
    noise = matched_gaussian_noise(x, res.adv)
    assert float(mutual_information(x, res.adv, steps=200).mean()) < float(
        mutual_information(x, noise, steps=200).mean()
    )


def test_conv_similarity_uses_the_first_conv_layer(conv_ae):
    assert first_conv2d(conv_ae) is conv_ae.encoder[0]


def test_reference_preset_holds_the_authors_settings(conv_ae):
    attack = MinMaxAttack(Reconstruction(conv_ae), preset="reference")
    s = attack.settings
    assert s == REFERENCE
    assert (s.n_pairs, s.pair_dim, s.hidden, s.out) == (500, 128, 512, 10)
    assert (s.mine_steps, s.mine_lr, s.delta_optimizer, s.step_size) == (20, 1.5e-5, "sgd", 0.01)
    assert (s.beta, s.c0, s.gamma_power, s.steps, s.init_scale) == (0.1, 1e-3, 0.25, 40, None)


def test_reference_preset_runs_one_sample(conv_ae, digits):
    res = MinMaxAttack(Reconstruction(conv_ae), preset="reference", steps=3, mine_steps=2, seed=0)(digits[:1])
    assert res.mi_history.shape == (3, 1)
    assert res.model_evaluations == 1 + 4  # clean pass, then T + 1 iterates


def test_explicit_arguments_override_the_preset(conv_ae):
    attack = MinMaxAttack(Reconstruction(conv_ae), preset="reference", steps=7, hidden=32)
    assert attack.settings.steps == 7 and attack.settings.hidden == 32
    assert attack.settings.n_pairs == 500
