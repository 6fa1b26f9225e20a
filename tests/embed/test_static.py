"""The default static embedder: shape, norms, meaning, determinism, persistence."""

from __future__ import annotations

import gzip
import json

import huggingface_hub.constants
import numpy as np
import pytest

from prefroute.embed import Embedder, get_embedder
from prefroute.embed.static import MARKER, StaticEmbedder
from prefroute.errors import EmbedderError

PARAPHRASES = [
    ("What is the capital of France?", "Which city is the capital of France?"),
    ("How do I reverse a list in Python?", "What is the way to reverse a Python list?"),
    ("Write a poem about the ocean.", "Compose a short poem about the sea."),
    ("Solve for x: 2x + 3 = 11.", "Find x if 2x + 3 = 11."),
    ("Translate 'good morning' into Spanish.", "How do you say 'good morning' in Spanish?"),
    ("Explain how vaccines train the immune system.", "How do vaccines teach our immune system?"),
]


def check_rows(vectors: np.ndarray, n: int, dim: int) -> None:
    assert vectors.shape == (n, dim)
    assert vectors.dtype == np.float32
    assert np.all(np.isfinite(vectors))


def test_shape_dtype_and_unit_norm_on_real_prompts(static_embedder, real_prompts):
    assert isinstance(static_embedder, Embedder)
    assert static_embedder.spec == "static"
    assert static_embedder.dim == 256
    vectors = static_embedder.encode(real_prompts)
    check_rows(vectors, len(real_prompts), 256)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_empty_input_and_empty_text(static_embedder):
    check_rows(static_embedder.encode([]), 0, 256)
    vectors = static_embedder.encode(["", "hello world"])
    assert not vectors[0].any(), "a text without tokens stays the zero vector"
    assert np.linalg.norm(vectors[1]) == pytest.approx(1.0, abs=1e-5)


def test_accepts_any_sequence_and_refuses_a_bare_str(static_embedder):
    texts = ["first prompt", "second prompt"]
    expected = static_embedder.encode(texts)
    np.testing.assert_array_equal(static_embedder.encode(tuple(texts)), expected)
    with pytest.raises(TypeError, match=r"encode\(\[text\]\)"):
        static_embedder.encode("first prompt")
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        static_embedder.encode(["ok", 3])  # type: ignore[list-item]


def test_paraphrases_are_closer_than_unrelated_prompts(static_embedder):
    flat = [text for pair in PARAPHRASES for text in pair]
    sims = static_embedder.encode(flat) @ static_embedder.encode(flat).T
    for i in range(len(PARAPHRASES)):
        a, b = 2 * i, 2 * i + 1
        others = np.delete(sims[a], [a, b])
        assert sims[a, b] > others.max() + 0.1, PARAPHRASES[i]


def test_routellm_contaminated_prompts_find_their_mt_bench_twin(static_embedder, data_dir):
    evals = data_dir / "routellm-evals"
    with gzip.open(evals / "mt_bench_questions.jsonl.gz", "rt") as f:
        questions = [json.loads(line)["turns"][0] for line in f]
    with gzip.open(evals / "contaminated_mt_bench.jsonl.gz", "rt") as f:
        pairs = [json.loads(line) for line in f]
    q = static_embedder.encode(questions)
    t = static_embedder.encode([p["train_prompt"] for p in pairs])
    nearest = (t @ q.T).argmax(axis=1)
    assert [questions[i].strip() for i in nearest] == [p["eval_prompt"].strip() for p in pairs]


def test_deterministic_across_loads_and_batch_sizes(static_embedder, real_prompts):
    again = get_embedder("static")
    assert again is not static_embedder
    assert again.fingerprint == static_embedder.fingerprint
    np.testing.assert_array_equal(again.encode(real_prompts), static_embedder.encode(real_prompts))
    small = StaticEmbedder(static_embedder.model, spec="static", batch_size=7)
    np.testing.assert_allclose(
        small.encode(real_prompts), static_embedder.encode(real_prompts), atol=1e-6
    )
    # a server encodes one text at a time, on its own code path: the same bits
    one_by_one = np.concatenate([static_embedder.encode([t]) for t in real_prompts])
    np.testing.assert_array_equal(one_by_one, static_embedder.encode(real_prompts))


def test_save_then_load_keeps_spec_vectors_and_fingerprint(static_embedder, tmp_path):
    saved = static_embedder.save(tmp_path / "embedder")
    assert json.loads((saved / MARKER).read_text())["spec"] == "static"
    size = sum(p.stat().st_size for p in saved.iterdir())
    assert size < 20e6, "stored as float16: small enough to travel inside an artifact"
    loaded = get_embedder(f"static:{saved}")
    assert loaded.spec == "static"
    assert loaded.fingerprint == static_embedder.fingerprint
    texts = ["route this prompt", "and this one"]
    np.testing.assert_array_equal(loaded.encode(texts), static_embedder.encode(texts))


def test_plain_model2vec_dir_is_named_by_its_path(static_embedder, tmp_path):
    plain = static_embedder.save(tmp_path / "plain")
    (plain / MARKER).unlink()
    loaded = StaticEmbedder.from_pretrained(plain)
    assert loaded.spec == f"static:{plain.resolve()}"
    assert loaded.dim == 256


def test_missing_local_dir_is_a_clear_error(tmp_path):
    with pytest.raises(EmbedderError, match="no such directory"):
        get_embedder(f"static:{tmp_path / 'nope'}")
    with pytest.raises(EmbedderError, match="not a model2vec directory"):
        get_embedder(f"static:{tmp_path}")
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(EmbedderError, match="is a file"):
        get_embedder(f"static:{tmp_path / 'file.bin'}")


def test_hub_name_without_network_says_so(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # never touch the net
    with pytest.raises(EmbedderError) as info:
        get_embedder("static:minishlab/potion-base-8M")
    message = str(info.value)
    assert "could not load 'minishlab/potion-base-8M' from the Hugging Face hub" in message
    assert "no network?" in message and "local model2vec directory" in message


def test_default_is_built_once_then_only_loaded(static_embedder, embed_cache_root, monkeypatch):
    def no_rebuild(*args, **kwargs):
        raise AssertionError("the cached static model was distilled again")

    monkeypatch.setattr("prefroute.embed.static.distill_packaged_minilm", no_rebuild)
    again = StaticEmbedder.default(cache_dir=embed_cache_root)
    assert again.fingerprint == static_embedder.fingerprint


def test_matches_model2vec_and_is_thread_safe(static_embedder, real_prompts):
    # model2vec's own encode() re-sets tokenizer truncation per call and fails with
    # "Already borrowed" under concurrent threads; ours must not, and must agree with it.
    from concurrent.futures import ThreadPoolExecutor

    reference = static_embedder.model.encode(real_prompts).astype(np.float32)
    ours = static_embedder.encode(real_prompts)
    np.testing.assert_allclose(ours, reference, atol=2e-3)  # model2vec sums in float16

    def chunk(i: int) -> bool:
        texts = real_prompts[i * 5 : (i + 1) * 5]
        return np.array_equal(static_embedder.encode(texts), ours[i * 5 : (i + 1) * 5])

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(chunk, range(len(real_prompts) // 5)))


def test_plain_ascii_shortcut_gives_the_full_tokenizers_ids(static_embedder, real_prompts):
    # Plain ASCII skips BERT's Unicode normalisation; anything else must take the full path.
    texts = [
        *real_prompts,
        *("Café crème", "naïve 日本語 text", "a bell\x07inside", "tab\tand\r\nnewlines"),
        *("MiXeD CaSe ÀÉÎ", "", "   ", "x" * 5000),
    ]
    assert static_embedder._plain_tokenizer is not None, "the default model normalises like BERT"
    full = static_embedder._tokenizer.encode_batch_fast(texts, add_special_tokens=False)
    assert static_embedder._token_ids(texts) == [encoding.ids for encoding in full]
