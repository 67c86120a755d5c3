"""Counter-based random numbers keyed by (seed, sample key, stream, counter).

A UAE must not depend on the rest of its batch, so every random draw a sample
uses (initial perturbation, statistics-network weights, shuffled pairs) is a
pure function of its own key, computed for the whole batch at once:

    u = H(H(H(seed) ^ H(stream)) ^ key_b ^ H(counter)) / 2^32

with ``H`` the 32-bit integer finaliser "lowbias32" (C. Wellons). The integer
arithmetic is exact on every device, so CPU and CUDA draw the same numbers.
"""

from __future__ import annotations

import math

import torch

_MASK32 = 0xFFFFFFFF


def hash32(x: torch.Tensor) -> torch.Tensor:
    """lowbias32 finaliser on int64 values in [0, 2^32); returns the same range.

    ``(x * c) mod 2^32`` is ``(x * c) & (2^32 - 1)`` in int64: the product of two values below 2^32 wraps modulo
    2^64 (two's complement, as torch's int64 kernels multiply on CPU and CUDA), which keeps its low 32 bits
    exact; ``tests/test_rng.py`` checks the hash against Python's exact integers."""
    x = x & _MASK32
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _MASK32
    return x ^ (x >> 16)


def _scalar_hash(value: int, device: torch.device) -> torch.Tensor:
    return hash32(torch.tensor(value & _MASK32, dtype=torch.int64, device=device))


def check_seed_range(seed: int, name: str = "seed") -> int:
    """``seed`` taken as ``torch.manual_seed`` takes it: in ``[-2^63, 2^64)``, negative ones modulo 2^64."""
    if not -(2**63) <= seed < 2**64:
        raise ValueError(f"{name} must be in [-2**63, 2**64) as for torch.manual_seed, got {seed}")
    return seed % 2**64


def seed_hash(seed: int, device: torch.device) -> torch.Tensor:
    """``H(seed)`` for a seed below 2^32 (as every earlier release drew), ``H(H(lo) ^ H(hi ^ c))`` above, so
    that seeds 2^32 apart are not the same seed."""
    value = check_seed_range(seed)
    low = _scalar_hash(value & _MASK32, device)
    if value >> 32 == 0:
        return low
    return hash32(low ^ _scalar_hash((value >> 32) ^ 0x9E3779B9, device))


def content_keys(x: torch.Tensor) -> torch.Tensor:
    """One 32-bit key per row of ``x: [B, ...]``, a hash of the row's float32 bits.

    key_b = H(sum_j H(bits(x_bj) ^ H(j)) mod 2^32): a function of the sample's
    values only (-0.0 counts as 0.0), so it does not change with batch position or batch mates.
    """
    flat = x.detach().reshape(x.shape[0], -1).to(torch.float32) + 0.0  # -0.0 + 0.0 = +0.0: the value, not its sign bit
    bits = flat.view(torch.int32).to(torch.int64) & _MASK32
    positions = hash32(torch.arange(flat.shape[1], device=x.device, dtype=torch.int64))
    return hash32(hash32(bits ^ positions).sum(dim=1) & _MASK32)


def index_keys(index: torch.Tensor) -> torch.Tensor:
    """Keys for caller-given global sample indices ``index: [B]`` (int)."""
    return hash32(hash32(index.to(torch.int64) & _MASK32) ^ 0x9E3779B9)


class SampleRandom:
    """Per-sample random streams for one attack: ``keys: [B]`` int64, ``seed`` int.

    Each method takes a ``stream`` id (any int; combine a purpose and a step
    number with :func:`stream_id`) and returns ``[B, *shape]`` draws.
    """

    def __init__(self, seed: int, keys: torch.Tensor) -> None:
        self.keys = keys.to(torch.int64)
        self.device = keys.device
        self.seed_hash = seed_hash(seed, self.device)

    def _bits(self, stream: int, shape: tuple[int, ...]) -> torch.Tensor:
        n = math.prod(shape)
        base = hash32(self.seed_hash ^ _scalar_hash(stream, self.device))
        counters = hash32(torch.arange(n, device=self.device, dtype=torch.int64))
        mixed = hash32((base ^ self.keys)[:, None] ^ counters[None, :])
        return mixed.reshape(self.keys.shape[0], *shape)

    def uniform(self, stream: int, shape: tuple[int, ...]) -> torch.Tensor:
        """U[0, 1) float32 draws, 24-bit resolution."""
        return (self._bits(stream, shape) >> 8).to(torch.float32) * 2.0**-24

    def normal(self, stream: int, shape: tuple[int, ...]) -> torch.Tensor:
        """N(0, 1) float32 draws by Box-Muller: sqrt(-2 ln u1) cos(2 pi u2)."""
        u1 = ((self._bits(stream, shape) >> 8).to(torch.float32) + 1.0) * 2.0**-24
        u2 = self.uniform(stream ^ 0x5BD1E995, shape)
        return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)

    def permutation(self, stream: int, n: int) -> torch.Tensor:
        """A random permutation of range(n) per sample: ``[B, n]`` int64."""
        return torch.argsort(self._bits(stream, (n,)), dim=1)


def stream_id(purpose: int, step: int = 0, sub: int = 0) -> int:
    """Pack a purpose code, an outer step and an inner step into one stream id."""
    return (purpose * 1_000_003 + step * 10_007 + sub) & _MASK32
