"""CachedEmbedder: hits are bit-identical and never reach the wrapped embedder."""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Sequence

import numpy as np
import pytest

from prefroute.embed import CachedEmbedder, Embedder
from prefroute.errors import EmbedderError


class CountingEmbedder:
    """Deterministic pseudo-random unit vectors; records every text it is asked for."""

    def __init__(self, spec: str = "fake:counting", dim: int = 16) -> None:
        self.spec = spec
        self.dim = dim
        self.calls: list[list[str]] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        rows = []
        for text in texts:
            digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
            seed = int.from_bytes(digest[:8], "big")
            rows.append(np.random.default_rng(seed).standard_normal(self.dim))
        out = np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    @property
    def seen(self) -> list[str]:
        return [t for call in self.calls for t in call]


def test_hits_are_identical_and_skip_the_embedder(tmp_path):
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner, tmp_path)
    assert isinstance(cached, Embedder)
    assert (cached.spec, cached.dim) == (inner.spec, inner.dim)
    texts = ["alpha", "beta", "gamma", "alpha", "ünïcödé ✓", "\ud800 lone surrogate"]
    first = cached.encode(texts)
    assert sorted(inner.seen) == sorted(set(texts)), "each distinct text embedded once"
    np.testing.assert_array_equal(first, inner.encode(texts))
    inner.calls.clear()

    second = cached.encode(texts)
    assert inner.calls == []
    np.testing.assert_array_equal(second, first)
    assert second.dtype == np.float32 and second.shape == (6, 16)
    assert (cached.hits, cached.misses) == (5, 5)
    assert len(cached) == 5


def test_only_new_texts_are_embedded_and_cache_outlives_the_process(tmp_path):
    inner = CountingEmbedder()
    CachedEmbedder(inner, tmp_path).encode(["a", "b"])
    inner.calls.clear()
    reopened = CachedEmbedder(inner, tmp_path)  # as a new process would
    out = reopened.encode(["b", "c", "a", "d"])
    assert inner.seen == ["c", "d"]
    np.testing.assert_array_equal(out, inner.encode(["b", "c", "a", "d"]))


def test_misses_are_stored_in_chunks(tmp_path):
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner, tmp_path, chunk_size=3)
    cached.encode([f"text {i}" for i in range(8)])
    assert [len(call) for call in inner.calls] == [3, 3, 2]


def test_empty_input_does_not_call_the_embedder(tmp_path):
    inner = CountingEmbedder()
    out = CachedEmbedder(inner, tmp_path).encode([])
    assert out.shape == (0, 16) and out.dtype == np.float32
    assert inner.calls == []


def test_one_file_per_embedder_identity(tmp_path):
    a = CachedEmbedder(CountingEmbedder("fake:a"), tmp_path)
    b = CachedEmbedder(CountingEmbedder("fake:b"), tmp_path)
    a.encode(["same text"])
    b.encode(["same text"])
    assert a.path != b.path and a.path.exists() and b.path.exists()
    assert b.misses == 1


def test_dim_change_under_the_same_spec_is_refused(tmp_path):
    CachedEmbedder(CountingEmbedder(dim=16), tmp_path).encode(["x"])
    with pytest.raises(EmbedderError, match="holds 16-dim vectors"):
        CachedEmbedder(CountingEmbedder(dim=8), tmp_path).encode(["y"])


def test_picklable_for_worker_processes(tmp_path):
    cached = CachedEmbedder(CountingEmbedder(), tmp_path)
    first = cached.encode(["p", "q"])
    clone = pickle.loads(pickle.dumps(cached))
    np.testing.assert_array_equal(clone.encode(["p", "q"]), first)


def test_wrapping_the_static_embedder_changes_nothing(static_embedder, real_prompts, tmp_path):
    cached = CachedEmbedder(static_embedder, tmp_path)
    direct = static_embedder.encode(real_prompts)
    np.testing.assert_array_equal(cached.encode(real_prompts), direct)
    np.testing.assert_array_equal(cached.encode(real_prompts), direct)
    assert cached.hits == len(set(real_prompts))
