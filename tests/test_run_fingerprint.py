"""A generation folder resumes exactly the run that wrote it: the fingerprint is the run's configuration."""

import pytest
import torch

from uae_plugin import MinMaxAttack, Reconstruction
from uae_plugin.experiments.models import StridedConvAutoencoder, train_autoencoder
from uae_plugin.generation import generate_dataset, load_generated, run_fingerprint


@pytest.fixture(scope="module")
def batch_norm_ae(mnist):
    torch.manual_seed(0)
    return train_autoencoder(StridedConvAutoencoder(), mnist["x_train"][:256], epochs=1, seed=0)


def test_the_model_mode_is_part_of_the_run(batch_norm_ae, digits, tmp_path):
    x = digits[:8]
    evaluation = MinMaxAttack(Reconstruction(batch_norm_ae), steps=3, seed=0, model_training=False)
    training = MinMaxAttack(Reconstruction(batch_norm_ae), steps=3, seed=0, model_training=True)
    generate_dataset(evaluation, x, tmp_path, chunk_size=4, progress=False)
    with pytest.raises(ValueError, match="different run"):
        generate_dataset(training, x, tmp_path, chunk_size=4, progress=False)


def test_criterion_options_are_part_of_the_run(classifier, digits):
    from uae_plugin import Classification

    fingerprints = [
        run_fingerprint(MinMaxAttack(Classification(classifier, kappa=k), seed=0), digits[:4], 4) for k in (0.0, 1.0)
    ]
    assert fingerprints[0] != fingerprints[1]
    assert fingerprints[0]["config"]["criterion"] == {
        "criterion": "Classification",
        "model": "SmallClassifier",
        "kappa": 0.0,
        "targeted": False,
    }


def _pixels_as_pairs(x):
    return x.flatten(1).reshape(x.shape[0], 8, -1)


def test_a_run_with_a_callable_similarity_resumes(conv_ae, digits, tmp_path):
    x = digits[:8]

    def attack():
        return MinMaxAttack(Reconstruction(conv_ae), steps=3, seed=0, estimator="mine", similarity=_pixels_as_pairs)

    generate_dataset(attack(), x, tmp_path, chunk_size=4, progress=False)
    first = load_generated(tmp_path)
    kept = (tmp_path / "chunk-00000.pt").stat().st_mtime_ns
    (tmp_path / "chunk-00001.pt").unlink()
    generate_dataset(attack(), x, tmp_path, chunk_size=4, progress=False)  # a new attack object, same run
    assert (tmp_path / "chunk-00000.pt").stat().st_mtime_ns == kept
    assert all(torch.equal(first[k], v) for k, v in load_generated(tmp_path).items())


def test_an_unchanged_run_resumes_and_a_changed_setting_is_refused(conv_ae, digits, tmp_path):
    x = digits[:8]
    generate_dataset(MinMaxAttack(Reconstruction(conv_ae), steps=3, seed=0), x, tmp_path, chunk_size=4, progress=False)
    kept = (tmp_path / "chunk-00000.pt").stat().st_mtime_ns
    generate_dataset(MinMaxAttack(Reconstruction(conv_ae), steps=3, seed=0), x, tmp_path, chunk_size=4, progress=False)
    assert (tmp_path / "chunk-00000.pt").stat().st_mtime_ns == kept
    with pytest.raises(ValueError, match="different run"):
        changed = MinMaxAttack(Reconstruction(conv_ae), steps=3, seed=0, mi_weight=0.5)
        generate_dataset(changed, x, tmp_path, chunk_size=4, progress=False)
