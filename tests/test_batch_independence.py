import torch

from uae_plugin import Contrastive, MinMaxAttack, Reconstruction


def _same(a, b):
    assert torch.allclose(a.adv, b.adv, atol=1e-4), float((a.adv - b.adv).abs().max())
    assert torch.equal(a.success, b.success)
    assert torch.allclose(a.mi, b.mi, atol=1e-3)
    assert torch.allclose(a.gap, b.gap, atol=1e-3)


def _rows(res, rows):
    return type(res)(
        adv=res.adv[rows],
        success=res.success[rows],
        mi=res.mi[rows],
        gap=res.gap[rows],
        c=res.c[rows],
        mi_history=res.mi_history[:, rows],
        gap_history=res.gap_history[:, rows],
        model_evaluations=0,
    )


def test_a_row_of_a_batch_matches_that_sample_attacked_alone(conv_ae, digits):
    attack = MinMaxAttack(Reconstruction(conv_ae), steps=15, seed=3)
    x = digits[:12]
    batch = attack(x)
    for i in (0, 5, 11):
        _same(_rows(batch, slice(i, i + 1)), attack(x[i : i + 1]))


def test_result_does_not_depend_on_order_within_the_batch(conv_ae, digits):
    attack = MinMaxAttack(Reconstruction(conv_ae), steps=10, seed=3)
    x = digits[:8]
    order = torch.randperm(8, generator=torch.Generator().manual_seed(0))
    _same(_rows(attack(x), order), attack(x[order]))


def test_global_indices_make_shards_equal_one_run(conv_ae, digits):
    attack = MinMaxAttack(Reconstruction(conv_ae), steps=10, seed=3)
    x = digits[:10]
    whole = attack(x, index=torch.arange(10))
    shard = attack(x[6:], index=torch.arange(6, 10))
    _same(_rows(whole, slice(6, 10)), shard)


def test_same_seed_repeats_and_another_seed_differs(conv_ae, digits):
    x = digits[:4]
    first = MinMaxAttack(Reconstruction(conv_ae), steps=5, seed=1)(x)
    again = MinMaxAttack(Reconstruction(conv_ae), steps=5, seed=1)(x)
    other = MinMaxAttack(Reconstruction(conv_ae), steps=5, seed=2)(x)
    assert torch.equal(first.adv, again.adv)
    assert not torch.equal(first.adv, other.adv)


def test_contrastive_row_matches_that_sample_attacked_alone(digits):
    torch.manual_seed(0)
    encoder = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, stride=2), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.LazyLinear(16)
    )
    encoder(digits[:1])
    attack = MinMaxAttack(Contrastive(encoder, n_views=4), steps=5, seed=0)
    x = digits[:6]
    batch = attack(x)
    _same(_rows(batch, slice(4, 5)), attack(x[4:5]))


def test_seed_given_to_the_call_replaces_the_attack_seed(conv_ae, digits):
    x = digits[:4]
    by_call = MinMaxAttack(Reconstruction(conv_ae), steps=5, seed=1)(x, seed=2)
    by_attack = MinMaxAttack(Reconstruction(conv_ae), steps=5, seed=2)(x)
    assert torch.equal(by_call.adv, by_attack.adv)
