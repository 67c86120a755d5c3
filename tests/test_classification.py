import torch
from support import correctly_classified

from uae_plugin import Classification, MinMaxAttack, UnsupervisedPGD, mutual_information


def _correct(classifier, mnist, n=64):
    return correctly_classified(classifier, mnist, n)


def test_supervised_attack_flips_labels_of_a_trained_classifier(classifier, mnist):
    x, y = _correct(classifier, mnist)
    res = MinMaxAttack(Classification(classifier), eps=0.3, steps=100, seed=0)(x, y)
    with torch.no_grad():
        flipped = classifier(res.adv).argmax(1) != y
    assert res.success_rate >= 0.9
    assert torch.equal(flipped, res.success)


def test_supervised_attack_keeps_more_information_than_pgd_at_same_eps(classifier, mnist):
    x, y = _correct(classifier, mnist)
    res = MinMaxAttack(Classification(classifier), eps=0.3, steps=100, seed=0)(x, y)
    pgd = UnsupervisedPGD(Classification(classifier), eps=0.3, steps=40)(x, y)
    mi_uae = mutual_information(x, res.adv, steps=200)
    mi_pgd = mutual_information(x, pgd, steps=200)
    assert float(mi_uae.mean()) > float(mi_pgd.mean())


def test_targeted_attack_reaches_the_target_class(classifier, mnist):
    x, y = _correct(classifier, mnist, n=16)
    target = (y + 1) % 10
    res = MinMaxAttack(Classification(classifier, targeted=True), eps=0.3, steps=100, seed=0)(x, target)
    with torch.no_grad():
        pred = classifier(res.adv).argmax(1)
    assert torch.equal(pred == target, res.success)
    assert res.success_rate >= 0.8


def test_classification_gap_is_the_carlini_wagner_margin(classifier, mnist):
    x, y = mnist["x_test"][:8], mnist["y_test"][:8]
    crit = Classification(classifier, kappa=0.5)
    state = crit.prepare(x, y, seed=0)
    with torch.no_grad():
        logits = classifier(x)
        ev = crit.evaluate(x, state)
    own = logits[torch.arange(8), y]
    others = logits.clone()
    others[torch.arange(8), y] = -float("inf")
    expected = torch.clamp(own - others.max(1).values, min=-0.5)
    assert torch.allclose(ev.gap, expected)
