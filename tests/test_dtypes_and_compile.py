"""Any float dtype in, the same dtype out; a torch.compile'd model attacked like the eager one; honest messages."""

import warnings

import pytest
import torch
from torch import nn

from uae_plugin import MinMaxAttack, Reconstruction
from uae_plugin.experiments.models import ConvAutoencoder

TINY = dict(steps=3, seed=0)


def _error(model: nn.Module, x: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
    """``||x - g(adv)||^2 - ||x - g(x)||^2`` per row, with the model in its own dtype."""
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        err = [(model(v.to(dtype)).float() - x.float()).pow(2).flatten(1).sum(1) for v in (adv, x)]
    return err[0] - err[1]


def test_float64_data_is_attacked_in_the_model_dtype_and_returned_in_its_own(conv_ae, digits):
    x = digits[:4].double()
    res = MinMaxAttack(Reconstruction(conv_ae), **TINY)(x)
    expected = MinMaxAttack(Reconstruction(conv_ae), **TINY)(x.float())  # the same values, in float32
    assert res.adv.dtype == torch.float64
    assert torch.equal(res.adv, expected.adv.to(torch.float64)) and torch.equal(res.success, expected.success)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_data_get_their_uaes_in_their_dtype_within_eps_exactly_with_the_gap_told_there(
    conv_ae, digits, dtype
):
    """The attack runs in float32; its UAE rounded to bfloat16 was up to 0.1016 from the bfloat16 data at eps 0.1.
    The returned UAE is the float32 one rounded to the data's dtype, clamped to the representable values within
    eps; its gap, success and MI are measured at it (one more forward pass)."""
    x = (digits[:6] * 0.9 + 0.05).to(dtype)  # no pixel at 0 or 1, where the [0, 1] box would hide the rounding
    res = MinMaxAttack(Reconstruction(conv_ae), eps=0.1, **TINY)(x)
    in_float32 = MinMaxAttack(Reconstruction(conv_ae), eps=0.1, **TINY)(x.float())
    assert res.adv.dtype == dtype
    assert float((res.adv.double() - x.double()).abs().max()) <= 0.1  # exactly: no tolerance
    rounded = in_float32.adv.to(dtype)
    inside = (rounded.double() - x.double()).abs() <= 0.1
    assert bool((~inside).any())  # the rounding left the ball somewhere: the case is exercised
    assert torch.equal(res.adv[inside], rounded[inside])
    torch.testing.assert_close(res.gap, _error(conv_ae, x, res.adv), rtol=1e-4, atol=1e-5)
    assert torch.equal(res.success, res.gap <= 0)
    assert res.model_evaluations == in_float32.model_evaluations + 6


def test_a_float64_model_is_attacked_in_float64_and_float32_data_comes_back_float32(conv_ae, digits):
    model = ConvAutoencoder()
    model.load_state_dict(conv_ae.state_dict())
    model = model.double().eval()
    seen = []
    model.register_forward_pre_hook(lambda m, args: seen.append(args[0].dtype))
    res = MinMaxAttack(Reconstruction(model), **TINY)(digits[:2])
    assert res.adv.dtype == torch.float32 and set(seen) == {torch.float64}
    assert bool(((res.adv - digits[:2]).abs() <= 0.1 + 1e-6).all())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_a_narrower_model_keeps_the_uaes_within_eps_of_the_data_as_given(conv_ae, digits, dtype):
    """The attack runs on the data rounded to the model's dtype (2^-9 per pixel in bfloat16): the returned
    float32 UAEs are clamped back into the eps-ball around the float32 data (they were up to 0.1035 from it), and
    their gap is the one of what is returned."""
    model = ConvAutoencoder()
    model.load_state_dict(conv_ae.state_dict())
    model = model.to(dtype).eval()
    x = digits[:8] * 0.9 + 0.05  # no pixel at 0 or 1, where the [0, 1] box would hide the rounding
    res = MinMaxAttack(Reconstruction(model), eps=0.1, **TINY)(x)
    assert res.adv.dtype == torch.float32
    assert float((res.adv.double() - x.double()).abs().max()) <= 0.1
    assert bool(((res.adv >= 0) & (res.adv <= 1)).all())
    torch.testing.assert_close(res.gap, _error(model, x, res.adv), rtol=1e-2, atol=1e-3)  # bfloat16 sums
    assert torch.equal(res.success, res.gap <= 0)


def test_an_input_that_requires_grad_is_attacked_without_a_torch_warning(conv_ae, digits):
    x = digits[:2].clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = MinMaxAttack(Reconstruction(conv_ae), **TINY)(x)
    assert not res.adv.requires_grad and x.grad is None


def test_an_attack_on_a_torch_compiled_model_gives_the_uaes_of_the_eager_model(conv_ae, digits):
    x = digits[:4]
    eager = MinMaxAttack(Reconstruction(conv_ae), **TINY)(x)
    compiled = MinMaxAttack(Reconstruction(torch.compile(conv_ae, backend="aot_eager")), **TINY)(x)
    assert torch.allclose(compiled.adv, eager.adv, atol=1e-6)
    assert torch.equal(compiled.success, eager.success)


@pytest.mark.parametrize(
    ("shape", "fix"),
    [
        ((3, 32, 32), r"add the batch axis, e.g. x.unsqueeze\(0\) for one image"),
        ((5, 32, 32), r"add the channel axis, e.g. x.unsqueeze\(1\)"),
    ],
    ids=["one colour image", "a batch without channels"],
)
def test_a_rank_3_input_is_told_whether_it_lacks_the_batch_or_the_channel_axis(shape, fix):
    colour = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 3, 3, padding=1))
    with pytest.raises(ValueError, match=rf"got shape \({shape[0]}, 32, 32\): {fix}"):
        MinMaxAttack(Reconstruction(colour), **TINY)(torch.rand(shape))


def test_the_torchattacks_adapter_returns_float64_images_as_float64_with_the_core_uaes(conv_ae, digits):
    from uae_plugin.integrations.torchattacks import UAE

    x = digits[:2].double()
    adv = UAE(conv_ae, mine_steps=1, **TINY)(x)
    assert adv.dtype == torch.float64
    assert torch.equal(adv, MinMaxAttack(Reconstruction(conv_ae), mine_steps=1, **TINY)(x).adv)
