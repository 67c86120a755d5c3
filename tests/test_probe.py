"""Linear-probe robustness (trial/probe.py) on real digits, with a fixed random conv encoder (mixed modes)."""

from __future__ import annotations

import sys
import time

import pytest
import torch
from torch import nn

from uae_plugin.experiments.data import mnist_split
from uae_plugin.trial.knn import encode
from uae_plugin.trial.probe import ATTACKS, PROBE_LR, PROBE_STEPS, ProbedEncoder, attack_classifier, fit_probe
from uae_plugin.trial.probe import probe_errors as errors

EPS_GRID = (0.01, 0.02, 0.05)  # a random encoder's probe is fragile: from 0.1 on nearly every digit falls
N_ATTACK = 200  # held-out rows attacked


def _encoder() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 16, 5, stride=2), nn.BatchNorm2d(16), nn.ReLU(),
        nn.Conv2d(16, 32, 5, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(3),
    )  # fmt: skip


def _flags(model: nn.Module) -> tuple[list[bool], list[bool]]:
    return [m.training for m in model.modules()], [p.requires_grad for p in model.parameters()]


@pytest.fixture(scope="module")
def setup():
    torch.set_num_threads(1)
    data = mnist_split(2000, N_ATTACK, seed=0)
    encoder = _encoder()
    encoder.train()
    encoder[1].eval()  # mixed modes: each module's flag must come back as it was
    encoder[0].weight.requires_grad_(False)  # mixed requires_grad flags too
    probe = fit_probe(encode(encoder, data["x_train"]), data["y_train"])
    return data, encoder, ProbedEncoder(encoder, probe)


@pytest.fixture(scope="module")
def pgd_errors(setup):
    data, _, h = setup
    x, y = data["x_test"], data["y_test"]
    out = {("clean", 0): float(errors(h, x, y).mean())}
    for eps in (*EPS_GRID, 0.3):
        for steps in (5, 20):
            adv = attack_classifier(h, x, y, eps, steps=steps)
            assert float((adv - x).abs().max()) <= eps + 1e-6 and float(adv.min()) >= 0 and float(adv.max()) <= 1
            out[(eps, steps)] = float(errors(h, adv, y).mean())
    print("\nerrors:", {k: round(v, 3) for k, v in out.items()})
    return out


def test_probe_classifies_digits_and_is_a_frozen_deterministic_linear_layer(setup):
    data, encoder, h = setup
    assert (PROBE_STEPS, PROBE_LR) == (300, 0.01)
    assert float(errors(h, data["x_test"], data["y_test"]).mean()) < 0.2  # chance: 0.9
    probe = h.probe
    assert isinstance(probe, nn.Linear) and probe.out_features == 10 and not probe.training
    assert not any(p.requires_grad for p in probe.parameters())
    f = encode(encoder, data["x_train"][:500])
    rng = torch.get_rng_state()
    a, b = fit_probe(f, data["y_train"][:500], steps=20), fit_probe(f, data["y_train"][:500], steps=20)
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    assert not torch.equal(a.weight, fit_probe(f, data["y_train"][:500], steps=20, seed=1).weight)
    with pytest.raises(ValueError, match="features must be"):
        fit_probe(f[0], data["y_train"][:1])


def test_adversarial_error_is_at_least_clean_and_grows_with_eps(pgd_errors):
    e = pgd_errors
    assert e[("clean", 0)] <= e[(EPS_GRID[0], 20)]
    assert e[(0.01, 20)] < e[(0.02, 20)] < e[(0.05, 20)]  # the attack is not masked: more budget, more errors
    assert e[(0.3, 20)] >= 0.95


def test_more_pgd_steps_do_not_lower_the_error(pgd_errors):
    for eps in EPS_GRID:
        assert pgd_errors[(eps, 20)] >= pgd_errors[(eps, 5)]


def test_encoder_is_untouched_and_attacks_are_deterministic(setup):
    data, encoder, h = setup
    x, y = data["x_test"][:32], data["y_test"][:32]
    state = {k: v.clone() for k, v in encoder.state_dict().items()}
    flags = _flags(h)
    first = attack_classifier(h, x, y, 0.05, seed=3)
    assert torch.equal(first, attack_classifier(h, x, y, 0.05, seed=3))
    assert not torch.equal(first, attack_classifier(h, x, y, 0.05, seed=4))
    errors(h, x, y)
    assert all(torch.equal(v, encoder.state_dict()[k]) for k, v in state.items())
    assert _flags(h) == flags and all(p.grad is None for p in h.parameters())


def test_autoattack_standard_is_at_least_as_strong_as_pgd_and_restores_the_model(setup):
    data, encoder, h = setup
    x, y, eps = data["x_test"][:8], data["y_test"][:8], 0.02
    state = {k: v.clone() for k, v in encoder.state_dict().items()}
    flags, rng = _flags(h), torch.get_rng_state()
    start = time.perf_counter()
    adv = attack_classifier(h, x, y, eps, attack="autoattack")
    print(f"\nautoattack standard, 8 rows: {time.perf_counter() - start:.2f} s")
    assert float((adv - x).abs().max()) <= eps + 1e-6 and float(adv.min()) >= 0 and float(adv.max()) <= 1
    aa, pgd = float(errors(h, adv, y).mean()), float(errors(h, attack_classifier(h, x, y, eps), y).mean())
    print(f"autoattack error {aa:.3f}, pgd-20 error {pgd:.3f}")
    assert aa >= pgd - 1 / 8
    assert _flags(h) == flags and all(p.grad is None for p in h.parameters())
    assert all(torch.equal(v, encoder.state_dict()[k]) for k, v in state.items())
    assert torch.equal(torch.get_rng_state(), rng)


def test_unknown_attack_and_missing_extra_are_refused(setup, monkeypatch):
    data, _, h = setup
    x, y = data["x_test"][:2], data["y_test"][:2]
    assert ATTACKS == ("pgd", "autoattack")
    with pytest.raises(ValueError, match=r"attack must be one of \('pgd', 'autoattack'\), got 'fgsm'"):
        attack_classifier(h, x, y, 0.1, attack="fgsm")
    monkeypatch.setitem(sys.modules, "torchattacks", None)
    with pytest.raises(ImportError, match=r"^attack='autoattack' needs torchattacks, which is not installed"):
        attack_classifier(h, x, y, 0.1, attack="autoattack")
