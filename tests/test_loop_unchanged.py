"""The MinMax loop was rewritten to read as the algorithm; its results are bit-identical to the loop before.

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
def test_results_are_bit_identical_to_the_loop_before(name, setting, one_thread):
    before = torch.load(BEFORE, weights_only=True)[name]
    res = RUNS[name](*setting)
    for field, value in before.items():
        assert torch.equal(getattr(res, field), value), field
