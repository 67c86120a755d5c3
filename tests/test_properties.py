"""Properties of ``MinMaxAttack`` that hold for every input, checked by hypothesis over random cases.

Cases: batches B in 1..3, C in {1, 3} channels, H and W in 4..12, float32 and float64, eps in (0.01, 1],
any seed, pixels partly saturated at 0 and 1 (where the [0, 1] box binds). The model is a tiny seeded conv
autoencoder (or classifier) for that channel count and dtype. For every case:

- ``||adv - x||_inf <= eps`` and ``adv`` in [0, 1]; ``adv`` has x's shape, dtype and device;
  ``success``, ``mi`` and ``gap`` have shape [B]; the reported gap is ``f_x(adv)`` and ``success`` says
  ``gap <= 0`` (Reconstruction) or that the label flipped at ``adv`` (Classification);
- the same seed twice gives identical results;
- the model comes back bit-identical: ``state_dict``, every ``requires_grad`` and every ``training`` flag
  (it starts in train mode with one sub-module in eval mode and one parameter frozen);
- with ``index=``, each row of a batch equals that row attacked alone (batch independence).

Examples are derandomized, so a CI run always checks the same cases.
"""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from uae_plugin import Classification, MinMaxAttack, Reconstruction

PROPERTY = settings(max_examples=30, deadline=None, derandomize=True, database=None)
TINY = {"steps": 2, "mine_steps": 1, "n_pairs": 8, "pair_dim": 4, "hidden": 8}
BOUND_SLACK = 1e-6


@st.composite
def cases(draw, min_batch=1):
    """A batch ``x: [B, C, H, W]`` in [0, 1] (about a third of the pixels saturated), eps, seed and model seed."""
    batch = draw(st.integers(min_batch, 3))
    channels = draw(st.sampled_from([1, 3]))
    height, width = draw(st.integers(4, 12)), draw(st.integers(4, 12))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    data_seed = draw(st.integers(0, 2**31 - 1))
    gen = torch.Generator().manual_seed(data_seed)
    x = torch.rand(batch, channels, height, width, generator=gen, dtype=dtype)
    saturate = torch.rand(x.shape, generator=gen) < 0.3
    x = torch.where(saturate, x.round(), x)
    return {
        "x": x,
        "eps": draw(st.floats(0.01, 1.0, exclude_min=True)),
        "seed": draw(st.integers(0, 2**31 - 1)),
        "model_seed": draw(st.integers(0, 2**16)),
    }


def seeded(layers, seed: int, dtype: torch.dtype) -> nn.Module:
    """``nn.Sequential(*layers())`` with weights from ``seed``, leaving torch's global RNG as it was."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return nn.Sequential(*layers()).to(dtype)


def tiny_autoencoder(channels: int, seed: int, dtype: torch.dtype) -> nn.Module:
    """Conv2d(C, 4) - ReLU - Conv2d(4, C) - Sigmoid, 3x3 same-padding convolutions."""
    return seeded(
        lambda: [nn.Conv2d(channels, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, channels, 3, padding=1), nn.Sigmoid()],
        seed,
        dtype,
    )


def tiny_classifier(channels: int, classes: int, seed: int, dtype: torch.dtype) -> nn.Module:
    """Conv2d(C, 4) - ReLU - 2x2 average pool - Linear(16, classes): logits for any H, W."""
    return seeded(
        lambda: (
            [nn.Conv2d(channels, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten()]
            + [nn.Linear(16, classes)]
        ),
        seed,
        dtype,
    )


def reconstruction_attack(case: dict, model: nn.Module) -> MinMaxAttack:
    return MinMaxAttack(Reconstruction(model), eps=case["eps"], seed=case["seed"], **TINY)


def check_bounds_and_shapes(x: torch.Tensor, res, eps: float) -> None:
    assert (res.adv - x).abs().max().item() <= eps + BOUND_SLACK
    assert res.adv.min().item() >= 0.0 and res.adv.max().item() <= 1.0
    assert res.adv.shape == x.shape and res.adv.dtype == x.dtype and res.adv.device == x.device
    for name in ("success", "mi", "gap"):
        assert getattr(res, name).shape == (x.shape[0],), name
    assert res.success.dtype == torch.bool
    assert bool(torch.isfinite(res.mi).all()) and bool(torch.isfinite(res.gap).all())


def squared_error(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    return (x.float() - recon.float()).pow(2).reshape(x.shape[0], -1).sum(dim=1)


@PROPERTY
@given(cases())
def test_reconstruction_uae_stays_in_the_eps_ball_and_the_unit_box(case):
    x = case["x"]
    model = tiny_autoencoder(x.shape[1], case["model_seed"], x.dtype).eval()
    res = reconstruction_attack(case, model)(x)
    check_bounds_and_shapes(x, res, case["eps"])
    with torch.no_grad():
        gap = squared_error(x, model(res.adv)) - squared_error(x, model(x))
    assert torch.allclose(res.gap, gap, rtol=1e-4, atol=1e-5), (res.gap, gap)
    assert torch.equal(res.success, res.gap <= 0)


@PROPERTY
@given(cases())
def test_the_same_seed_twice_gives_identical_results(case):
    x = case["x"]
    model = tiny_autoencoder(x.shape[1], case["model_seed"], x.dtype)
    first = reconstruction_attack(case, model)(x)
    again = reconstruction_attack(case, model)(x)
    for name in ("adv", "success", "mi", "gap"):
        assert torch.equal(getattr(first, name), getattr(again, name)), name


@PROPERTY
@given(cases(), st.data())
def test_the_model_comes_back_bit_identical_with_its_flags(case, data):
    x = case["x"]
    model = tiny_autoencoder(x.shape[1], case["model_seed"], x.dtype).train()
    model[data.draw(st.sampled_from([1, 3]), label="module in eval mode")].eval()
    params = list(model.parameters())
    params[data.draw(st.integers(0, len(params) - 1), label="frozen parameter")].requires_grad_(False)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [p.requires_grad for p in params]
    modes = [m.training for m in model.modules()]

    reconstruction_attack(case, model)(x)

    after = model.state_dict()
    assert list(after) == list(state)
    for key, value in state.items():
        assert after[key].dtype == value.dtype and torch.equal(after[key], value), key
    assert [p.requires_grad for p in params] == grads
    assert [m.training for m in model.modules()] == modes
    assert all(p.grad is None for p in params)


@PROPERTY
@given(cases(min_batch=2))
def test_with_index_each_row_of_a_batch_equals_that_row_attacked_alone(case):
    x = case["x"]
    attack = reconstruction_attack(case, tiny_autoencoder(x.shape[1], case["model_seed"], x.dtype))
    batch = attack(x, index=torch.arange(x.shape[0]))
    for i in range(x.shape[0]):  # tolerances of tests/test_batch_independence.py: batched float rounding only
        alone = attack(x[i : i + 1], index=torch.tensor([i]))
        assert torch.allclose(alone.adv, batch.adv[i : i + 1], atol=1e-4), i
        assert torch.allclose(alone.mi, batch.mi[i : i + 1], atol=1e-3), i
        assert torch.allclose(alone.gap, batch.gap[i : i + 1], atol=1e-3), i
        if abs(float(batch.gap[i])) > 1e-3:  # a gap within rounding of 0 may be decided either way
            assert bool(alone.success) == bool(batch.success[i]), i


@PROPERTY
@given(cases(), st.integers(2, 5), st.data())
def test_classification_uae_stays_in_bounds_and_success_means_the_label_flipped(case, classes, data):
    x = case["x"]
    y = torch.tensor(data.draw(st.lists(st.integers(0, classes - 1), min_size=x.shape[0], max_size=x.shape[0])))
    model = tiny_classifier(x.shape[1], classes, case["model_seed"], x.dtype).eval()
    res = MinMaxAttack(Classification(model), eps=case["eps"], seed=case["seed"], **TINY)(x, y)
    check_bounds_and_shapes(x, res, case["eps"])
    with torch.no_grad():
        flipped = model(res.adv).argmax(dim=1) != y
    assert torch.equal(res.success, flipped)
