"""The MinMax loop was rewritten to read as the algorithm; its results equal the loop before.

Bit-identical on the machine that wrote the reference; another CPU's float kernels (OpenBLAS core type, vector
width) round differently in the last bits (measured: at most 3e-8 on the default attack's pixels, 3e-5 on
a gap of the reference preset), so floats are compared to float32 rounding and flags exactly.

``tests/data/minmax_results_before_loop_cleanup.pt`` holds the results of the earlier loop (t = 1..T+1 with a
sentinel, the binary search through ``run(c_init=..., dual_ascent=False)``) for five configurations on seeded,
untrained reference models and 8 held-out digits, one thread.
"""

from pathlib import Path

import pytest
import torch

from uae_plugin import BinarySearchPenalty, Classification, MinMaxAttack, Reconstruction
from uae_plugin.experiments.data import mnist_split
from uae_plugin.experiments.models import ConvAutoencoder, DenseAutoencoder, SmallClassifier

BEFORE = Path(__file__).parent / "data" / "minmax_results_before_loop_cleanup.pt"


@pytest.fixture(scope="module")
def setting():
    data = mnist_split(seed=0)
    torch.manual_seed(0)
    conv = ConvAutoencoder()
    torch.manual_seed(1)
    dense = DenseAutoencoder()
    torch.manual_seed(2)
    classifier = SmallClassifier()
    return data["x_test"][:8], data["y_test"][:8], conv, dense, classifier


RUNS = {
    "default": lambda x, y, conv, dense, clf: MinMaxAttack(Reconstruction(conv), steps=6, seed=0)(x),
    "mine conv": lambda x, y, conv, dense, clf: MinMaxAttack(
        Reconstruction(conv), steps=6, seed=0, estimator="mine", similarity="conv"
    )(x),
    "reference": lambda x, y, conv, dense, clf: MinMaxAttack(
        Reconstruction(dense), steps=4, seed=0, preset="reference"
    )(x),
    "classification": lambda x, y, conv, dense, clf: MinMaxAttack(Classification(clf), steps=6, seed=0)(x, y),
    "binary search": lambda x, y, conv, dense, clf: BinarySearchPenalty(
        Reconstruction(conv), searches=2, steps=3, seed=0
    )(x),
}


@pytest.mark.parametrize("name", list(RUNS))
def test_results_equal_the_loop_before(name, setting, one_thread):
    before = torch.load(BEFORE, weights_only=True)[name]
    res = RUNS[name](*setting)
    for field, value in before.items():
        got = getattr(res, field)
        if value.is_floating_point():
            torch.testing.assert_close(got, value, rtol=1e-4, atol=1e-4, msg=field)
        else:
            assert torch.equal(got, value), field
