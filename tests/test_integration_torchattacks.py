"""UAE and MINEAttack as real torchattacks attacks, on real MNIST digits."""

import pytest
import torch
import torchattacks
from support import correctly_classified
from torch import nn
from torch.utils.data import DataLoader, TensorDataset
from torchattacks.attack import Attack

from uae_plugin.experiments.models import ConvAutoencoder
from uae_plugin.integrations.torchattacks import NO_LABEL, UAE, MINEAttack

MEAN, STD = 0.1307, 0.3081  # the usual MNIST normalisation
FAST = dict(steps=8, mine_steps=2, seed=0)
TINY = dict(steps=2, mine_steps=1, seed=0)


class _ExpectsNormalised(nn.Module):
    """An autoencoder of normalised images: ``z -> normalize(g(denormalize(z)))``; records its inputs."""

    def __init__(self, autoencoder):
        super().__init__()
        self.autoencoder, self.seen = autoencoder, []

    def forward(self, z):
        self.seen.append(z.detach())
        return (self.autoencoder(z * STD + MEAN) - MEAN) / STD


def _moded_autoencoder():
    """A fresh autoencoder with batch norm and dropout in front, and a record of each module's mode per call."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.BatchNorm2d(1), nn.Dropout(0.1), ConvAutoencoder())
    model.modes = []
    model.register_forward_pre_hook(lambda m, _: m.modes.append([sub.training for sub in m.modules()]))
    return model


def _correct(classifier, mnist, n=16):
    return correctly_classified(classifier, mnist, n)


def _predict(classifier, x):
    with torch.no_grad():
        return classifier(x).argmax(1)


# --- UAE -------------------------------------------------------------------------------------------------------


def test_uae_is_a_torchattacks_attack_whose_examples_succeed_within_eps_and_the_unit_box(conv_ae, digits):
    x = digits[:8]
    atk = UAE(conv_ae, eps=0.3, **FAST)
    adv = atk(x)
    assert isinstance(atk, Attack)
    assert float((adv - x).abs().max()) <= 0.3 + 1e-6
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0
    assert atk.last_result.success_rate >= 0.75
    assert torch.equal(adv, atk.last_result.adv)


def test_uae_ignores_labels(conv_ae, mnist):
    x, y = mnist["x_test"][:4], mnist["y_test"][:4]
    atk = UAE(conv_ae, eps=0.3, **TINY)
    assert torch.equal(atk(x), atk(x, y))


def test_uae_refuses_targeted_modes(conv_ae):
    with pytest.raises(ValueError, match="Targeted mode is not supported"):
        UAE(conv_ae, **TINY).set_mode_targeted_by_label(quiet=True)


def test_a_changed_eps_field_takes_effect_on_the_next_call(conv_ae, digits):
    x = digits[:4]
    atk = UAE(conv_ae, eps=0.5, **TINY)
    atk.eps = 0.05
    assert float((atk(x) - x).abs().max()) <= 0.05 + 1e-6


def test_contrastive_task_attacks_an_encoder_within_eps(digits):
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    x = digits[:4]
    adv = UAE(encoder, eps=0.2, task="contrastive", n_views=2, **TINY)(x)
    assert float((adv - x).abs().max()) <= 0.2 + 1e-6
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0


def test_contrastive_options_reach_the_contrastive_criterion():
    with pytest.raises(ValueError, match="n_views"):
        UAE(nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten()), task="contrastive", n_views=1)


# --- normalisation -----------------------------------------------------------------------------------------------


def test_with_normalization_the_model_sees_normalised_images_and_eps_bounds_pixels(conv_ae, digits):
    x = digits[:6]
    model = _ExpectsNormalised(conv_ae)
    atk = UAE(model, eps=0.2, **FAST)
    atk.set_normalization_used(mean=[MEAN], std=[STD])
    atk((x - MEAN) / STD)
    pixels = atk.last_result.adv
    assert float(pixels.min()) >= 0.0 and float(pixels.max()) <= 1.0
    assert float((pixels - x).abs().max()) <= 0.2 + 1e-5
    assert min(float(z.min()) for z in model.seen) < -0.4  # a pixel 0 reaches the model as -MEAN / STD
    with torch.no_grad():  # the gap the attack reports is the pixel-space reconstruction gap of the user's model
        expected = (conv_ae(pixels) - x).pow(2).flatten(1).sum(1) - (conv_ae(x) - x).pow(2).flatten(1).sum(1)
    assert torch.allclose(atk.last_result.gap, expected, atol=1e-3)


def test_with_normalization_images_come_back_normalised_as_in_torchattacks(conv_ae, digits):
    x = digits[:4]
    atk = UAE(_ExpectsNormalised(conv_ae), eps=0.2, **TINY)
    atk.set_normalization_used(mean=[MEAN], std=[STD])
    adv = atk((x - MEAN) / STD)
    assert torch.allclose(adv * STD + MEAN, atk.last_result.adv, atol=1e-6)


def test_with_normalization_the_reconstruction_gap_is_measured_in_pixels(conv_ae, digits):
    x = digits[:4]
    atk = UAE(_ExpectsNormalised(conv_ae), eps=0.2, **TINY)
    atk.set_normalization_used(mean=[MEAN], std=[STD])
    atk((x - MEAN) / STD)
    with torch.no_grad():
        error = lambda z: (conv_ae(z) - x).pow(2).flatten(1).sum(1)  # noqa: E731
        expected = error(atk.last_result.adv) - error(x)
    assert torch.allclose(atk.last_result.gap, expected, atol=1e-3)


def test_with_normalization_unnormalised_images_are_refused(conv_ae, digits):
    atk = UAE(_ExpectsNormalised(conv_ae), **TINY)
    atk.set_normalization_used(mean=[MEAN], std=[STD])
    with pytest.raises(ValueError, match=r"UAE input must have values in \[0, 1\], got range .*use x / 255"):
        atk(digits[:2] * 255)


# --- model modes -------------------------------------------------------------------------------------------------


def test_model_runs_in_eval_mode_and_is_given_back_in_train_mode(digits):
    model = _moded_autoencoder().train()
    UAE(model, **TINY)(digits[:2])
    assert model.modes and not any(any(modes) for modes in model.modes)
    assert all(m.training for m in model.modules())


def test_set_model_training_mode_trains_the_model_but_keeps_batchnorm_and_dropout_in_eval(digits):
    model = _moded_autoencoder().eval()
    atk = UAE(model, **TINY)
    atk.set_model_training_mode(model_training=True)
    atk(digits[:2])
    top, batchnorm, dropout, autoencoder = model.modes[-1][:4]
    assert (top, batchnorm, dropout, autoencoder) == (True, False, False, True)
    assert not any(m.training for m in model.modules())


def test_set_model_training_mode_can_train_batchnorm_too(digits):
    model = _moded_autoencoder().eval()
    atk = UAE(model, **TINY)
    atk.set_model_training_mode(model_training=True, batchnorm_training=True)
    atk(digits[:2])
    assert model.modes[-1][1:3] == [True, False]


def test_mixed_module_modes_are_restored_exactly(digits):
    model = _moded_autoencoder().train()
    model[0].eval()
    modes = [m.training for m in model.modules()]
    UAE(model, **TINY)(digits[:2])
    assert [m.training for m in model.modules()] == modes


# --- save / load -------------------------------------------------------------------------------------------------


def test_save_of_an_images_only_loader_loads_back_with_torchattacks(conv_ae, digits, tmp_path):
    x = digits[:6]
    atk = UAE(conv_ae, eps=0.3, **TINY)
    atk.save(DataLoader(x, batch_size=4), tmp_path / "uae.pt", verbose=False)
    expected = torch.cat([atk(x[:4]), atk(x[4:])])
    adv, labels = (torch.cat(t) for t in zip(*Attack.load(tmp_path / "uae.pt", batch_size=4), strict=True))
    assert torch.equal(adv, expected)
    assert labels.dtype == torch.int64 and bool((labels == NO_LABEL).all())


def test_save_of_an_images_and_labels_loader_keeps_labels_and_clean_inputs(conv_ae, mnist, tmp_path):
    x, y = mnist["x_test"][:6], mnist["y_test"][:6]
    atk = UAE(conv_ae, eps=0.3, **TINY)
    atk.save(DataLoader(TensorDataset(x, y), batch_size=4), tmp_path / "uae.pt", verbose=False, save_clean_inputs=True)
    loaded = Attack.load(tmp_path / "uae.pt", batch_size=100, load_clean_inputs=True)
    adv, labels, clean = next(iter(loaded))
    assert torch.equal(labels, y) and torch.equal(clean, x)
    assert float((adv - x).abs().max()) <= 0.3 + 1e-6


def test_save_with_normalization_stores_pixel_space_images(conv_ae, digits, tmp_path):
    x = digits[:4]
    atk = UAE(_ExpectsNormalised(conv_ae), eps=0.2, **TINY)
    atk.set_normalization_used(mean=[MEAN], std=[STD])
    atk.save(DataLoader((x - MEAN) / STD, batch_size=4), tmp_path / "uae.pt", verbose=False)
    adv = next(iter(Attack.load(tmp_path / "uae.pt")))[0]
    assert float(adv.min()) >= 0.0 and float((adv - x).abs().max()) <= 0.2 + 1e-5


def test_save_prints_progress_success_rate_mi_and_returns_torchattacks_verbose_tuple(conv_ae, digits, capsys, tmp_path):
    path = tmp_path / "uae.pt"
    atk = UAE(conv_ae, eps=0.3, **TINY)
    numbers = atk.save(DataLoader(digits[:4], batch_size=2), path, True, True, False, True)
    out = capsys.readouterr().out
    assert "Save progress: 100.00 %" in out and "Success rate" in out and "Mean MI" in out and "L2" in out
    saved = torch.load(path, weights_only=True)
    rob_acc, l2, seconds = numbers
    assert rob_acc == pytest.approx(100 * (1 - float(saved["success"].float().mean())))
    broken = (saved["adv_inputs"] - saved["clean_inputs"]).flatten(1).norm(dim=1)[saved["success"]]
    assert l2 == pytest.approx(float(broken.mean()), rel=1e-5) and seconds > 0
    assert atk.save(DataLoader(digits[:2], batch_size=2), verbose=False) is None


def _pair_of_saves(atk, pgd, loader, tmp_path, *args):
    """The same positional arguments to our save and to torchattacks' PGD.save; both files, both returns."""
    ours, theirs = atk.save(loader, tmp_path / "ours.pt", *args), pgd.save(loader, tmp_path / "pgd.pt", *args)
    return torch.load(tmp_path / "ours.pt"), torch.load(tmp_path / "pgd.pt"), ours, theirs


@pytest.mark.parametrize("save_type", ["float", "int"])
def test_mine_attack_save_matches_torchattacks_pgd_save_field_by_field(classifier, mnist, tmp_path, save_type):
    x, y = _correct(classifier, mnist, 8)
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    atk, pgd = MINEAttack(classifier, eps=0.3, **FAST), torchattacks.PGD(classifier, eps=0.3, steps=2)
    ours, theirs, mine_numbers, pgd_numbers = _pair_of_saves(
        atk, pgd, loader, tmp_path, False, True, True, True, save_type
    )
    assert set(theirs) <= set(ours) and set(ours) - set(theirs) == {"success", "mi", "linf", "l2"}
    for key in theirs:
        if torch.is_tensor(theirs[key]):
            assert (ours[key].dtype, ours[key].shape) == (theirs[key].dtype, theirs[key].shape), key
        else:
            assert ours[key] == theirs[key] == save_type
    assert torch.equal(ours["labels"], y) and torch.equal(ours["clean_inputs"], theirs["clean_inputs"])
    assert torch.equal(ours["preds"], _predict(classifier, atk.to_type(ours["adv_inputs"], "float")))
    assert len(mine_numbers) == len(pgd_numbers) == 3 and all(isinstance(v, float) for v in mine_numbers)
    assert mine_numbers[0] == pytest.approx(100 * float((ours["preds"] == y).float().mean()))
    loaded = next(iter(Attack.load(tmp_path / "ours.pt", batch_size=8, load_predictions=True, load_clean_inputs=True)))
    assert [t.shape[0] for t in loaded] == [len(y)] * 4


def test_uae_save_in_torchattacks_order_keeps_clean_inputs_out_and_saves_reconstructions_as_predictions(
    conv_ae, digits, tmp_path
):
    atk = UAE(conv_ae, eps=0.3, **TINY)
    atk.save(DataLoader(digits[:4], batch_size=4), tmp_path / "uae.pt", False, True)  # verbose, return_verbose
    assert "clean_inputs" not in torch.load(tmp_path / "uae.pt")
    atk.save(DataLoader(digits[:4], batch_size=4), tmp_path / "uae.pt", False, False, True, False, "int")
    saved = torch.load(tmp_path / "uae.pt")
    assert saved["adv_inputs"].dtype == torch.uint8 and saved["save_type"] == "int"
    with torch.no_grad():
        assert torch.allclose(saved["preds"], conv_ae(atk.last_result.adv))


def test_save_refuses_an_unknown_save_type_before_any_work(conv_ae, digits):
    with pytest.raises(ValueError, match=r"double is not a valid type. \[Options: float, int\]"):
        UAE(conv_ae, **TINY).save(DataLoader(digits[:2]), save_type="double")


def test_save_refuses_an_empty_loader(conv_ae):
    with pytest.raises(ValueError, match="no batches"):
        UAE(conv_ae, **TINY).save([], verbose=False)


# --- MINEAttack --------------------------------------------------------------------------------------------------


def test_mine_attack_flips_labels_of_a_trained_classifier(classifier, mnist):
    x, y = _correct(classifier, mnist)
    atk = MINEAttack(classifier, eps=0.3, steps=20, mine_steps=2, seed=0)
    adv = atk(x, y)
    flipped = _predict(classifier, adv) != y
    assert float(flipped.float().mean()) >= 0.9
    assert torch.equal(flipped, atk.last_result.success)
    assert float((adv - x).abs().max()) <= 0.3 + 1e-6


def test_mine_attack_targeted_by_label_reaches_the_targets(classifier, mnist):
    x, y = _correct(classifier, mnist)
    target = (y + 1) % 10
    atk = MINEAttack(classifier, eps=0.3, steps=20, mine_steps=2, seed=0)
    atk.set_mode_targeted_by_label(quiet=True)
    reached = _predict(classifier, atk(x, target)) == target
    assert float(reached.float().mean()) >= 0.75


def test_mine_attack_targeted_by_function_attacks_the_mapped_labels(classifier, mnist):
    x, y = _correct(classifier, mnist)
    atk = MINEAttack(classifier, eps=0.3, steps=20, mine_steps=2, seed=0)
    atk.set_mode_targeted_by_function(lambda images, labels: (labels + 1) % 10, quiet=True)
    reached = _predict(classifier, atk(x, y)) == (y + 1) % 10
    assert float(reached.float().mean()) >= 0.75


def test_mine_attack_targeted_least_likely_reaches_the_least_likely_class(classifier, mnist):
    x, y = _correct(classifier, mnist)
    with torch.no_grad():
        least_likely = classifier(x).argmin(1)
    atk = MINEAttack(classifier, eps=0.3, steps=20, mine_steps=2, seed=0)
    atk.set_mode_targeted_least_likely(quiet=True)
    reached = _predict(classifier, atk(x, y)) == least_likely
    assert float(reached.float().mean()) >= 0.75


def test_mine_attack_requires_labels(classifier, digits):
    with pytest.raises(ValueError, match="labels"):
        MINEAttack(classifier, **TINY)(digits[:2])


def test_mine_attack_runs_inside_multiattack_next_to_torchattacks_pgd(classifier, mnist):
    x, y = _correct(classifier, mnist)
    mine = MINEAttack(classifier, eps=0.3, steps=2, mine_steps=2, seed=0)  # too few steps: PGD finishes the rest
    multi = torchattacks.MultiAttack([mine, torchattacks.PGD(classifier, eps=0.3, alpha=0.05, steps=10)])
    adv = multi(x, y)
    by_mine = mine.last_result.success
    assert adv.shape == x.shape and float((adv - x).abs().max()) <= 0.3 + 1e-6
    assert torch.equal(adv[by_mine], mine.last_result.adv[by_mine])
    assert float((_predict(classifier, adv) != y).float().mean()) >= 0.9


# --- bad input ---------------------------------------------------------------------------------------------------

BAD = [
    ("unknown task", UAE, dict(task="segmentation"), ValueError, "task must be"),
    ("eps zero", UAE, dict(eps=0.0), ValueError, "eps must be"),
    ("eps negative", MINEAttack, dict(eps=-0.1), ValueError, "eps must be"),
    ("steps zero", UAE, dict(steps=0), ValueError, "steps must be"),
    ("unknown setting", UAE, dict(stepsize=0.1), TypeError, "unknown MinMaxAttack setting"),
    ("view option without contrastive", UAE, dict(n_views=4), TypeError, "unknown MinMaxAttack setting"),
    ("model_training", UAE, dict(model_training=True), TypeError, "set_model_training_mode"),
    ("bad similarity", UAE, dict(similarity="cosine"), ValueError, "similarity must be"),
    ("kappa negative", MINEAttack, dict(kappa=-1.0), ValueError, "kappa must be"),
]


@pytest.mark.parametrize("case, cls, kwargs, error, message", BAD, ids=[c[0] for c in BAD])
def test_bad_arguments_are_refused_at_construction(case, cls, kwargs, error, message):
    with pytest.raises(error, match=message):  # at construction: before any batch is attacked
        cls(ConvAutoencoder(), **kwargs)


def test_a_model_that_is_not_a_module_is_refused():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        UAE(lambda x: x)


def test_images_outside_the_unit_box_are_refused(conv_ae, digits):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        UAE(conv_ae, **TINY)(digits[:2] * 2)
