"""Binary codes: the signs of a fingerprint embedding, 8 bits to a byte."""

from __future__ import annotations

import numpy as np

from soundalike.errors import ParameterError


def pack_codes(embeddings: np.ndarray) -> np.ndarray:
    """Signs of float embeddings [shape=(n, bits)] -> packed codes uint8 [shape=(n, bits / 8)].

    Bit ``i`` is 1 where coordinate ``i`` is positive (most significant bit first).
    """
    x = np.asarray(embeddings)
    if x.ndim != 2 or x.shape[1] % 8:
        raise ParameterError(f"need embeddings of shape (n, bits) with bits a multiple of 8, got {x.shape}")
    return np.packbits(x > 0, axis=1)


def unpack_codes(codes: np.ndarray, bits: int | None = None) -> np.ndarray:
    """Packed codes uint8 [shape=(n, B)] -> signs float32 [shape=(n, bits)] of +-1 (inverse of :func:`pack_codes`)."""
    c = np.atleast_2d(np.asarray(codes, dtype=np.uint8))
    return np.unpackbits(c, axis=1, count=bits).astype(np.float32) * 2 - 1


def _words(c: np.ndarray) -> np.ndarray:
    """Packed codes as 64-bit words when their width allows (8x fewer popcounts), else as bytes."""
    c = np.ascontiguousarray(c, dtype=np.uint8)
    return c.view(np.uint64) if c.shape[-1] % 8 == 0 else c


def hamming(a: np.ndarray, b: np.ndarray, *, block: int = 256) -> np.ndarray:
    """Bit differences between packed codes a [shape=(n, B)] and b [shape=(m, B)] -> int [shape=(n, m)]."""
    a = np.atleast_2d(np.asarray(a, dtype=np.uint8))
    b = np.atleast_2d(np.asarray(b, dtype=np.uint8))
    if a.shape[1] != b.shape[1]:
        raise ParameterError(f"codes of {a.shape[1]} and {b.shape[1]} bytes cannot be compared")
    wa, wb = _words(a), _words(b)
    out = np.empty((a.shape[0], b.shape[0]), dtype=np.int32)
    for i in range(0, a.shape[0], block):  # bounded memory: block x m x B bytes at a time
        x = np.bitwise_xor(wa[i : i + block, None, :], wb[None, :, :])
        out[i : i + block] = np.bitwise_count(x).sum(axis=2, dtype=np.int32)
    return out


def paired_hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit differences row by row between packed codes a and b [shape=(n, B)] -> int [shape=(n,)]."""
    return np.bitwise_count(np.bitwise_xor(_words(np.asarray(a, np.uint8)), _words(np.asarray(b, np.uint8)))).sum(
        axis=-1, dtype=np.int32)
