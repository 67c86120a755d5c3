"""Bad input raises a clear error naming the argument, before the model is ever called."""

import pytest
import torch
from support import CountedCalls
from torch import nn

from uae_plugin import Classification, MinMaxAttack, Reconstruction
from uae_plugin.experiments.models import ConvAutoencoder, DenseAutoencoder


class _Shrinks(nn.Module):
    def forward(self, x):
        return x[..., :-1]


class _Tuple(nn.Module):
    def forward(self, x):
        return x, x


GOOD = torch.rand(2, 1, 28, 28)

CALL_CASES = [
    ("rank 1", torch.rand(784), ValueError, "rank >= 2"),
    ("conv needs images", torch.rand(2, 784), ValueError, r"\[B, C, H, W\]"),
    ("nan", torch.full((2, 1, 28, 28), float("nan")), ValueError, "NaN or Inf"),
    ("inf", GOOD.clone().index_fill_(0, torch.tensor([1]), float("inf")), ValueError, "NaN or Inf"),
    ("above one", GOOD * 2, ValueError, r"values in \[0, 1\]"),
    ("below zero", GOOD - 1, ValueError, r"values in \[0, 1\]"),
    ("uint8", (GOOD * 255).to(torch.uint8), TypeError, "float tensor"),
    ("int64", torch.zeros(2, 1, 28, 28, dtype=torch.int64), TypeError, "float tensor"),
    ("empty batch", torch.rand(0, 1, 28, 28), ValueError, "empty batch"),
    ("not a tensor", GOOD.numpy(), TypeError, "torch.Tensor"),
]


@pytest.mark.parametrize("case, x, error, message", CALL_CASES, ids=[c[0] for c in CALL_CASES])
def test_bad_batch_is_refused_before_the_model_runs(case, x, error, message):
    model = CountedCalls(ConvAutoencoder())
    attack = MinMaxAttack(Reconstruction(model), similarity="conv", steps=2, seed=0)
    with pytest.raises(error, match=message):
        attack(x)
    assert model.calls == 0


CONSTRUCTOR_CASES = [
    ("eps zero", dict(eps=0.0), ValueError, "eps must be"),
    ("eps negative", dict(eps=-0.1), ValueError, "eps must be"),
    ("eps nan", dict(eps=float("nan")), ValueError, "eps must be"),
    ("steps zero", dict(steps=0), ValueError, "steps must be"),
    ("steps float", dict(steps=2.5), ValueError, "steps must be"),
    ("mine_steps negative", dict(mine_steps=-1), ValueError, "mine_steps must be"),
    ("unknown similarity", dict(similarity="cosine"), ValueError, "similarity must be"),
    ("unknown preset", dict(preset="fastest"), ValueError, "preset must be"),
    ("unknown setting", dict(stepsize=0.1), TypeError, "unknown MinMaxAttack setting"),
    ("bad optimizer", dict(delta_optimizer="lbfgs"), ValueError, "delta_optimizer must be"),
    ("bad seed", dict(seed="0"), TypeError, "seed must be"),
]


@pytest.mark.parametrize("case, kwargs, error, message", CONSTRUCTOR_CASES, ids=[c[0] for c in CONSTRUCTOR_CASES])
def test_bad_setting_is_refused_at_construction(case, kwargs, error, message):
    with pytest.raises(error, match=message):
        MinMaxAttack(Reconstruction(ConvAutoencoder()), **kwargs)


def test_conv_similarity_without_a_conv_layer_is_refused():
    with pytest.raises(ValueError, match="has no"):
        MinMaxAttack(Reconstruction(DenseAutoencoder()), similarity="conv")


def test_autoencoder_whose_output_shape_differs_is_refused():
    with pytest.raises(ValueError, match="output shape"):
        MinMaxAttack(Reconstruction(_Shrinks()), steps=2)(GOOD)


def test_model_returning_a_tuple_is_refused():
    with pytest.raises(TypeError, match="single tensor"):
        MinMaxAttack(Reconstruction(_Tuple()), steps=2)(GOOD)


def test_criterion_needs_a_module():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        Reconstruction(lambda x: x)


def test_attack_needs_a_criterion():
    with pytest.raises(TypeError, match="criterion must be"):
        MinMaxAttack(ConvAutoencoder())


@pytest.mark.parametrize(
    "labels, error, message",
    [
        (None, ValueError, "y is required"),
        (torch.zeros(2), TypeError, "integer tensor"),
        (torch.zeros(3, dtype=torch.int64), ValueError, r"shape \[2\]"),
        (torch.tensor([0, 10]), ValueError, "class indices"),
    ],
    ids=["missing", "float", "wrong length", "out of range"],
)
def test_bad_labels_are_refused(classifier, labels, error, message):
    with pytest.raises(error, match=message):
        MinMaxAttack(Classification(classifier), steps=2)(GOOD, labels)


@pytest.mark.parametrize(
    "index, error, message",
    [
        (torch.tensor([0.0, 1.0]), TypeError, "index must hold integers"),
        (torch.tensor([0, 1, 2]), ValueError, r"index must have shape \[2\]"),
        (torch.tensor([-1, 0]), ValueError, "index must be >= 0"),
    ],
    ids=["float", "wrong length", "negative"],
)
def test_bad_index_is_refused(index, error, message):
    with pytest.raises(error, match=message):
        MinMaxAttack(Reconstruction(ConvAutoencoder()), steps=2)(GOOD, index=index)


def test_inference_mode_is_refused_with_a_clear_error():
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        MinMaxAttack(Reconstruction(ConvAutoencoder()), steps=2)(GOOD)


def test_attack_works_inside_no_grad(conv_ae):
    with torch.no_grad():
        res = MinMaxAttack(Reconstruction(conv_ae), steps=2, seed=0)(GOOD)
    assert res.adv.shape == GOOD.shape
