"""Small helpers every backend shares: input checking, batching, normalising."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


def as_texts(texts: Sequence[str]) -> list[str]:
    """Check ``texts`` is a sequence of str and return it as a list.

    NOTE: a bare ``str`` is a ``Sequence[str]`` too; encoding it would embed every
    character, so it is refused with a hint instead.
    """
    if isinstance(texts, str):
        raise TypeError("encode() takes a sequence of texts, not one str: use encode([text])")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(f"encode() texts[{i}]: expected str, got {type(text).__name__}")
    return out


def batches(n: int, size: int) -> Iterator[slice]:
    """Slices ``[0:size], [size:2*size], ...`` covering ``range(n)``."""
    if size < 1:
        raise ValueError(f"batch_size must be >= 1, got {size}")
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as float32. An all-zero row stays all zero.

    A text with no known token (static) or an empty text (api) has no direction,
    so it keeps the zero vector: its cosine with everything is 0, not NaN.
    """
    out = np.array(x, dtype=np.float32)  # a copy: the caller's array is left alone
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out
