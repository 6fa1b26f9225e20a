"""minilm over ONNX Runtime: agreement with sentence-transformers, padding, truncation."""

from __future__ import annotations

import numpy as np
import pytest

from prefroute.embed import Embedder
from prefroute.embed.minilm import MiniLMEmbedder
from prefroute.embed.paths import packaged_minilm_dir
from prefroute.errors import EmbedderError
from prefroute.onnx_models import physical_cores


@pytest.fixture(scope="module")
def reference(real_prompts) -> np.ndarray:
    """sentence-transformers' fp32 vectors for the real prompts (torch, in this process)."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(packaged_minilm_dir()), device="cpu")
    return model.encode(real_prompts, batch_size=32, normalize_embeddings=True)


def test_int8_agrees_with_sentence_transformers_fp32(minilm_int8, real_prompts, reference):
    vectors = minilm_int8.encode(real_prompts)
    cosine = (vectors * reference).sum(axis=1)
    assert cosine.min() > 0.98, np.asarray(real_prompts)[cosine.argmin()][:200]
    assert cosine.mean() > 0.99


def test_fp32_matches_sentence_transformers(minilm_fp32, real_prompts, reference):
    cosine = (minilm_fp32.encode(real_prompts) * reference).sum(axis=1)
    assert cosine.min() > 0.9999


def test_shapes_norms_and_spec(minilm_int8):
    assert isinstance(minilm_int8, Embedder)
    assert minilm_int8.spec == "minilm:onnx-int8"
    assert minilm_int8.dim == 384
    assert minilm_int8.encode([]).shape == (0, 384)
    vectors = minilm_int8.encode(("a tuple", "of prompts", ""))
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_order_is_kept_although_batches_are_sorted_by_length(minilm_fp32, real_prompts):
    texts = real_prompts[:70]
    batched = MiniLMEmbedder(minilm_fp32.model_dir, variant="onnx-fp32", batch_size=8)
    one_by_one = np.concatenate([minilm_fp32.encode([t]) for t in texts])
    np.testing.assert_allclose(batched.encode(texts), one_by_one, atol=1e-5)


def test_int8_vectors_barely_depend_on_batch_companions(minilm_int8, real_prompts):
    # Dynamic int8 scales activations per batch, so a text's vector moves slightly
    # with the other texts in its batch; fp32 is the variant for bit-stable vectors.
    texts = real_prompts[:60]
    one_by_one = np.concatenate([minilm_int8.encode([t]) for t in texts])
    assert (minilm_int8.encode(texts) * one_by_one).sum(axis=1).min() > 0.98


def test_pads_to_batch_longest_and_truncates_at_max_length(minilm_fp32):
    tokenizer = minilm_fp32._tokenizer
    assert tokenizer.padding is None, "the packaged tokenizer pads to 128; we must not"
    assert tokenizer.truncation["max_length"] == 256
    head = " ".join(["word"] * 150)
    a, b = minilm_fp32.encode([head + " apples and pears", head + " quantum field theory"])
    assert a @ b < 0.9999, "tokens 150-160 must count: truncation is at 256, not 128"
    tail = " ".join(["word"] * 300)
    c, d = minilm_fp32.encode([tail + " apples", tail + " quantum field theory"])
    np.testing.assert_allclose(c, d, atol=1e-6)  # both cut at 256 tokens


def test_short_max_length(minilm_fp32):
    short = MiniLMEmbedder(minilm_fp32.model_dir, variant="onnx-fp32", max_length=8)
    a, b = short.encode(["one two three four five six seven", "one two three four five six eight"])
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert short.cache_id != minilm_fp32.cache_id


def test_threads_default_to_physical_cores(minilm_fp32):
    options = minilm_fp32._session.get_session_options()
    assert minilm_fp32.num_threads is None
    assert options.intra_op_num_threads == physical_cores()
    assert options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    one = MiniLMEmbedder(minilm_fp32.model_dir, variant="onnx-fp32", num_threads=1)
    assert one._session.get_session_options().intra_op_num_threads == 1


def test_bad_variant_and_missing_files(minilm_int8, tmp_path):
    with pytest.raises(EmbedderError, match="unknown minilm variant"):
        MiniLMEmbedder(minilm_int8.model_dir, variant="onnx-int4")
    with pytest.raises(EmbedderError, match=r"model-int8\.onnx is missing"):
        MiniLMEmbedder(tmp_path)
