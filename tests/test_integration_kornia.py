"""RandomUAE as a kornia augmentation, on real kornia containers and real MNIST digits."""

import pytest
import torch
from kornia.augmentation import AugmentationSequential, RandomGaussianNoise, RandomResizedCrop

from uae_plugin import MinMaxAttack, Reconstruction
from uae_plugin.integrations.kornia import RandomUAE

STEPS = 3
PASSES_PER_ROW = STEPS + 2  # one clean pass, then T + 1 iterates


class _CallCounter:
    """Counts rows through a model's forward, via a forward hook."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.rows = 0
        self.handle = model.register_forward_hook(self._hook)

    def _hook(self, module, inputs, output) -> None:
        self.rows += inputs[0].shape[0]


def _tiny_encoder(x: torch.Tensor) -> torch.nn.Module:
    torch.manual_seed(0)
    encoder = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, stride=2), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(16)
    )
    encoder(x[:1])
    return encoder.eval()


def test_after_a_crop_in_augmentation_sequential_output_has_shape_range_and_eps_of_the_crop(conv_ae, digits):
    x = digits[:8]
    seq = AugmentationSequential(
        RandomResizedCrop((28, 28), scale=(0.6, 1.0)), RandomUAE(conv_ae, p=1.0, eps=0.2, steps=STEPS, seed=0)
    )
    torch.manual_seed(0)
    out = seq(x)
    cropped = seq[0](x, params=seq[0]._params)
    assert out.shape == x.shape
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert float((out - cropped).abs().max()) <= 0.2 + 1e-6
    assert not torch.equal(out, cropped)


def test_after_kornia_gaussian_noise_the_output_is_back_in_unit_range(conv_ae, digits):
    seq = AugmentationSequential(RandomGaussianNoise(std=0.05, p=1.0), RandomUAE(conv_ae, p=1.0, steps=STEPS, seed=0))
    torch.manual_seed(0)
    noisy = seq[0](digits[:64], params=None)
    assert float(noisy.min()) < 0.0 and float(noisy.max()) > 1.0  # the noise leaves [0, 1]: the case tested
    out = seq(digits[:64])
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_normalised_images_from_kornia_normalize_are_refused_with_the_fix_as_by_the_core_and_torchattacks(
    conv_ae, digits
):
    from kornia.augmentation import Normalize

    from uae_plugin.integrations.torchattacks import UAE

    seq = AugmentationSequential(
        Normalize(mean=torch.tensor([0.5]), std=torch.tensor([0.5])), RandomUAE(conv_ae, p=1.0)
    )
    fix = r"must have values in \[0, 1\], got range \[-1, 1\]; undo the normalisation before attacking"
    for attack in (seq, UAE(conv_ae, steps=2), MinMaxAttack(Reconstruction(conv_ae), steps=2)):
        with pytest.raises(ValueError, match=fix):
            attack((digits[:4] - 0.5) / 0.5 if attack is not seq else digits[:4])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_float64_and_float16_images_are_attacked_in_the_model_dtype_and_returned_in_theirs(conv_ae, digits, dtype):
    x = digits[:2].to(dtype)
    expected = RandomUAE(conv_ae, p=1.0, steps=STEPS, seed=0)(x.float())  # the same values, in the model's dtype
    out = RandomUAE(conv_ae, p=1.0, steps=STEPS, seed=0)(x)
    assert out.dtype == dtype
    assert torch.allclose(out.float(), expected, atol=1e-3 if dtype == torch.float16 else 1e-6)


def test_a_compiled_training_step_containing_random_uae_runs_and_trains(conv_ae, digits):
    from uae_plugin.experiments.models import ConvAutoencoder

    torch.manual_seed(0)
    student = ConvAutoencoder()
    aug = AugmentationSequential(RandomGaussianNoise(std=0.05, p=1.0), RandomUAE(conv_ae, p=0.5, steps=2, seed=0))

    def step(x):
        loss = (student(aug(x)) - x).pow(2).mean()
        loss.backward()
        return loss

    loss = torch.compile(step, backend="aot_eager")(digits[:8])
    assert torch.isfinite(loss) and aug[1].last_result is not None
    assert all(float(p.grad.abs().sum()) > 0 for p in student.parameters())


def test_random_uae_traces_as_two_graphs_around_one_break_for_the_attack(conv_ae, digits):
    explained = torch._dynamo.explain(RandomUAE(conv_ae, p=1.0, steps=2, seed=0))(digits[:4])
    assert (explained.graph_count, explained.graph_break_count) == (2, 1)


def test_p_zero_leaves_input_unchanged_and_never_calls_the_model(conv_ae, digits):
    x = digits[:8]
    counter = _CallCounter(conv_ae)
    try:
        out = RandomUAE(conv_ae, p=0.0, steps=STEPS)(x)
    finally:
        counter.handle.remove()
    assert torch.equal(out, x)
    assert counter.rows == 0


def test_p_one_attacks_every_row_within_eps_and_unit_range(conv_ae, digits):
    x = digits[:8]
    aug = RandomUAE(conv_ae, p=1.0, eps=0.3, steps=STEPS, seed=0)
    out = aug(x)
    assert bool(aug.last_rows.all()) and aug.last_result.adv.shape[0] == 8
    assert float((out - x).abs().max()) <= 0.3 + 1e-6
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert all(not torch.equal(out[i], x[i]) for i in range(8))


def test_only_the_gated_rows_are_attacked_and_the_others_pass_through(conv_ae, digits):
    x = digits[:16]
    aug = RandomUAE(conv_ae, p=0.5, steps=STEPS, seed=0)
    torch.manual_seed(1)
    out = aug(x)
    rows = aug.last_rows
    assert 0 < int(rows.sum()) < 16
    assert torch.equal(out[~rows], x[~rows])
    assert all(not torch.equal(out[i], x[i]) for i in torch.nonzero(rows).flatten().tolist())
    assert aug.last_result.model_evaluations == int(rows.sum()) * PASSES_PER_ROW


def test_p_quarter_costs_about_a_quarter_of_p_one_in_model_evaluations(conv_ae, digits):
    x = digits[:32]
    full = RandomUAE(conv_ae, p=1.0, steps=STEPS, seed=0)
    full(x)
    full_cost = full.last_result.model_evaluations
    quarter = RandomUAE(conv_ae, p=0.25, steps=STEPS, seed=0)
    torch.manual_seed(0)
    costs = []
    for _ in range(4):
        quarter(x)
        costs.append(0 if quarter.last_result is None else quarter.last_result.model_evaluations)
    ratio = sum(costs) / len(costs) / full_cost
    assert 0.15 <= ratio <= 0.35, ratio


def test_a_rows_result_does_not_depend_on_its_position_in_the_batch(conv_ae, digits):
    x = digits[:8]
    aug = RandomUAE(conv_ae, p=1.0, steps=STEPS, seed=3)
    order = torch.randperm(8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(aug(x)[order], aug(x[order]), atol=1e-4)
    assert torch.allclose(aug(x)[5:6], aug(x[5:6]), atol=1e-4)


def test_replaying_the_drawn_params_reproduces_the_call(conv_ae, digits):
    x = digits[:4]
    aug = RandomUAE(conv_ae, p=1.0, steps=STEPS)
    torch.manual_seed(0)
    first = aug(x)
    assert torch.equal(aug(x, params=aug._params), first)
    assert not torch.equal(aug(x), first)  # a fresh draw of the seed gives another attack


def test_same_on_batch_keys_every_row_by_one_shared_stream(conv_ae, digits):
    x = digits[:4]
    out = RandomUAE(conv_ae, p=1.0, steps=STEPS, seed=5, same_on_batch=True)(x)
    shared = MinMaxAttack(Reconstruction(conv_ae), steps=STEPS, seed=5)(x, index=torch.zeros(4, dtype=torch.long))
    content_keyed = RandomUAE(conv_ae, p=1.0, steps=STEPS, seed=5)(x)
    assert torch.allclose(out, shared.adv, atol=1e-5)
    assert not torch.allclose(out, content_keyed, atol=1e-3)


def test_same_on_batch_attacks_all_rows_or_none(conv_ae, digits):
    aug = RandomUAE(conv_ae, p=0.5, steps=1, same_on_batch=True, seed=0)
    torch.manual_seed(0)
    gates = []
    for _ in range(6):
        aug(digits[:4])
        gates.append(aug.last_rows)
    assert all(bool(g.all()) or not bool(g.any()) for g in gates)
    assert any(bool(g.all()) for g in gates) and any(not bool(g.any()) for g in gates)


def test_model_is_not_in_parameters_or_state_dict(conv_ae):
    aug = RandomUAE(conv_ae)
    assert aug.model is conv_ae
    assert list(aug.parameters()) == []
    assert len(aug.state_dict()) == 0
    assert conv_ae not in list(aug.modules())


def test_to_float64_does_not_move_the_model_and_the_output_follows_the_input_dtype(conv_ae, digits):
    aug = RandomUAE(conv_ae, p=1.0, steps=STEPS, seed=0).to(torch.float64)
    out = aug(digits[:2].double())
    assert all(p.dtype == torch.float32 for p in conv_ae.parameters())
    assert out.dtype == torch.float64


def test_works_inside_an_outer_no_grad(conv_ae, digits):
    x = digits[:4]
    with torch.no_grad():
        out = RandomUAE(conv_ae, p=1.0, eps=0.3, steps=STEPS, seed=0)(x)
    assert all(not torch.equal(out[i], x[i]) for i in range(4))


def test_inference_mode_raises_a_clear_error(conv_ae, digits):
    aug = RandomUAE(conv_ae, p=1.0, steps=STEPS)
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        aug(digits[:2])


def test_model_train_mode_is_restored_after_the_attack(conv_ae, digits):
    conv_ae.train()
    try:
        RandomUAE(conv_ae, p=1.0, steps=STEPS, seed=0)(digits[:2])
        assert all(m.training for m in conv_ae.modules())
        assert all(p.requires_grad for p in conv_ae.parameters())
    finally:
        conv_ae.eval()


def test_repr_shows_the_static_options(conv_ae):
    text = repr(RandomUAE(conv_ae, p=0.3, eps=0.5, steps=7, seed=2))
    for part in ("RandomUAE(", "p=0.3", "model=ConvAutoencoder", "task=reconstruction", "eps=0.5", "steps=7"):
        assert part in text, text
    assert "similarity=projection" in text and "seed=2" in text


def test_contrastive_task_runs_the_ntxent_criterion_with_its_options(digits):
    x = digits[:2]
    aug = RandomUAE(_tiny_encoder(x), task="contrastive", p=1.0, eps=0.5, steps=STEPS, seed=0, n_views=4)
    out = aug(x)
    assert float((out - x).abs().max()) <= 0.5 + 1e-6
    assert aug.last_result.model_evaluations == 2 * 2 * 4 * PASSES_PER_ROW  # rows x (view0, view1) x n_views


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"p": -0.1}, ValueError, "p must"),
        ({"p": 1.5}, ValueError, "p must"),
        ({"p": True}, ValueError, "p must"),
        ({"task": "segmentation"}, ValueError, "task must"),
        ({"eps": 0.0}, ValueError, "eps must"),
        ({"eps": -1.0}, ValueError, "eps must"),
        ({"steps": 0}, ValueError, "steps must"),
        ({"bogus_setting": 1}, TypeError, "bogus_setting"),
    ],
)
def test_bad_options_raise_a_clear_error_at_construction(conv_ae, kwargs, error, name):
    with pytest.raises(error, match=name):
        RandomUAE(conv_ae, **kwargs)


def test_a_model_that_is_not_a_module_raises_type_error():
    with pytest.raises(TypeError, match="model must be"):
        RandomUAE(lambda x: x)


def test_nan_input_raises_before_the_model_is_called(conv_ae, digits):
    x = digits[:2].clone()
    x[0, 0, 0, 0] = float("nan")
    counter = _CallCounter(conv_ae)
    try:
        with pytest.raises(ValueError, match="NaN"):
            RandomUAE(conv_ae, p=1.0, steps=STEPS)(x)
    finally:
        counter.handle.remove()
    assert counter.rows == 0


def test_a_batch_far_outside_unit_range_is_refused_with_the_fix(conv_ae, digits):
    aug = RandomUAE(conv_ae, p=1.0, steps=2, seed=0)
    with pytest.raises(ValueError, match=r"RandomUAE input must have values in \[0, 1\].*use x / 255"):
        aug(digits[:4] * 255)
