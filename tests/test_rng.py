import pytest
import torch

from uae_plugin.rng import SampleRandom, content_keys, hash32, index_keys


def test_content_keys_depend_on_values_not_position():
    x = torch.rand(5, 3, 4)
    assert torch.equal(content_keys(x)[2:3], content_keys(x[2:3]))
    assert torch.equal(content_keys(x.flip(0)), content_keys(x).flip(0))
    assert len(set(content_keys(x).tolist())) == 5


def test_draws_are_a_function_of_seed_and_key():
    keys = index_keys(torch.arange(4))
    r1, r2 = SampleRandom(7, keys), SampleRandom(7, keys[1:2])
    assert torch.equal(r1.uniform(3, (10,))[1], r2.uniform(3, (10,))[0])
    assert not torch.equal(SampleRandom(8, keys).uniform(3, (10,)), r1.uniform(3, (10,)))


def test_uniform_and_normal_have_the_right_moments():
    r = SampleRandom(0, index_keys(torch.arange(2)))
    u, n = r.uniform(1, (50_000,)), r.normal(2, (50_000,))
    assert 0 <= float(u.min()) and float(u.max()) < 1
    assert abs(float(u.mean()) - 0.5) < 0.01
    assert abs(float(n.mean())) < 0.02 and abs(float(n.std()) - 1) < 0.02


def test_permutation_is_a_permutation_per_sample():
    perm = SampleRandom(0, index_keys(torch.arange(3))).permutation(5, 7)
    assert torch.equal(perm.sort(dim=1).values, torch.arange(7).repeat(3, 1))


def _lowbias32(value: int) -> int:
    """The reference finaliser in Python's exact integers."""
    mask = 0xFFFFFFFF
    x = value & mask
    x ^= x >> 16
    x = (x * 0x7FEB352D) & mask
    x ^= x >> 15
    x = (x * 0x846CA68B) & mask
    return x ^ (x >> 16)


def test_hash32_equals_the_exact_integer_finaliser_across_the_32_bit_range():
    # the int64 products wrap past 2^63 for large inputs: the low 32 bits must still be exact
    values = [0, 1, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF]
    values += torch.randint(0, 2**32, (4096,), generator=torch.Generator().manual_seed(0)).tolist()
    got = hash32(torch.tensor(values, dtype=torch.int64)).tolist()
    assert got == [_lowbias32(v) for v in values]


def test_seeds_beyond_32_bits_are_mixed_in_not_cut_off():
    keys = content_keys(torch.rand(3, 8))
    draw = lambda seed: SampleRandom(seed, keys).uniform(1, (5,))  # noqa: E731
    assert not torch.equal(draw(0), draw(2**32))
    assert not torch.equal(draw(7), draw(7 + 2**40))
    assert torch.equal(draw(-1), draw(2**64 - 1))  # torch.manual_seed's reading of a negative seed
    with pytest.raises(ValueError, match=r"seed must be in \[-2\*\*63, 2\*\*64\)"):
        draw(2**64)


def test_a_negative_zero_pixel_is_the_value_zero():
    x = torch.rand(2, 6)
    x[:, :3] = 0.0
    assert torch.equal(content_keys(x), content_keys(torch.where(x == 0, -0.0, x)))


def test_a_numpy_integer_seed_is_the_same_seed_as_the_int(dense_ae, digits):
    import numpy as np

    from uae_plugin import MinMaxAttack, Reconstruction

    want = MinMaxAttack(Reconstruction(dense_ae), seed=3, steps=2)(digits[:3])
    for seed in (np.int64(3), np.int32(3), np.uint64(3)):
        assert torch.equal(MinMaxAttack(Reconstruction(dense_ae), seed=seed, steps=2)(digits[:3]).adv, want.adv)
        assert torch.equal(MinMaxAttack(Reconstruction(dense_ae), steps=2)(digits[:3], seed=seed).adv, want.adv)
    with pytest.raises(TypeError, match="seed must be an int or None, got 3.0"):
        MinMaxAttack(Reconstruction(dense_ae), seed=3.0)
