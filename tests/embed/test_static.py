"""The default static embedder: shape, norms, meaning, determinism, persistence."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import huggingface_hub.constants
import numpy as np
import pytest

from prefroute.embed import Embedder, get_embedder
from prefroute.embed.static import MARKER, StaticEmbedder, default_static_dir
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
    small = StaticEmbedder(static_embedder.table, spec="static", batch_size=7)
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


def test_matches_model2vec_and_is_thread_safe(static_embedder, real_prompts, embed_cache_root):
    # model2vec's own encode() re-sets tokenizer truncation per call and fails with
    # "Already borrowed" under concurrent threads; ours must not, and must agree with it.
    from concurrent.futures import ThreadPoolExecutor

    from model2vec import StaticModel

    model = StaticModel.from_pretrained(default_static_dir(embed_cache_root, pca_dims=256))
    reference = model.encode(real_prompts).astype(np.float32)
    ours = static_embedder.encode(real_prompts)
    np.testing.assert_allclose(ours, reference, atol=2e-3)  # model2vec sums in float16

    def chunk(i: int) -> bool:
        texts = real_prompts[i * 5 : (i + 1) * 5]
        return np.array_equal(static_embedder.encode(texts), ours[i * 5 : (i + 1) * 5])

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(chunk, range(len(real_prompts) // 5)))


def test_normalising_apart_gives_the_full_tokenizers_ids(static_embedder, real_prompts):
    # Plain ASCII is only lowercased, the rest normalised by BERT's own normaliser, and
    # texts holding an added token take the whole tokenizer: the ids are its ids.
    texts = [
        *real_prompts,
        *("Café crème", "naïve 日本語 text", "a bell\x07inside", "tab\tand\r\nnewlines"),
        *("MiXeD CaSe ÀÉÎ", "", "   ", "x" * 5000),
        *("fill the [PAD] here", "[pad] lowercased", "[UNK]x[PAD]", "Ünïcode [UNK] too"),
    ]
    assert static_embedder._lowercase_plain is True, "the default model normalises like BERT"
    full = static_embedder._full_tokenizer().encode_batch_fast(texts, add_special_tokens=False)
    assert static_embedder._encode(texts) == [encoding.ids for encoding in full]


def test_light_loader_matches_model2vecs_loader_bit_for_bit(
    static_embedder, real_prompts, long_prompts, embed_cache_root
):
    """The default model read with safetensors + tokenizers equals model2vec's own load."""
    from model2vec import StaticModel

    where = default_static_dir(embed_cache_root, pca_dims=256)
    model = StaticModel.from_pretrained(where, normalize=True)
    theirs = StaticEmbedder.from_model2vec(model, spec="static")
    assert static_embedder.tokens == tuple(model.tokens)
    assert static_embedder._unk_token_id == model.unk_token_id
    assert static_embedder._cut == model.max_length * model.median_token_length
    stored = static_embedder.table.stored
    assert stored.dtype == model.embedding.dtype and stored.tobytes() == model.embedding.tobytes()
    assert static_embedder.table.vectors.dtype == np.float32  # built for batches
    # the fingerprint the distillation recorded (model2vec-loaded), and the same vectors
    recorded = json.loads((where / MARKER).read_text())["fingerprint"]
    assert static_embedder.fingerprint == theirs.fingerprint == recorded
    texts = real_prompts + long_prompts
    np.testing.assert_array_equal(static_embedder.encode(texts), theirs.encode(texts))


def test_loading_a_local_model_imports_no_model2vec(static_embedder, tmp_path):
    saved = static_embedder.save(tmp_path / "embedder")
    code = (
        "import json, sys\n"
        "sys.modules['model2vec'] = None  # any 'import model2vec' now raises\n"
        "from prefroute.embed.static import StaticEmbedder\n"
        f"e = StaticEmbedder.from_pretrained({str(saved)!r})\n"
        "print(json.dumps(e.encode(['route this prompt']).tolist()))\n"
        "print(sorted(m for m in ('huggingface_hub', 'httpx', 'yaml', 'joblib', 'tqdm', 'polars')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    vector, heavy = out.stdout.strip().splitlines()
    assert heavy == "[]"
    np.testing.assert_array_equal(
        np.array(json.loads(vector), dtype=np.float32),
        static_embedder.encode(["route this prompt"]),
    )


EDGES = [
    "x" * 5000,  # one word longer than any piece
    " " * 3000 + "word " * 900,  # leading spaces
    "a  b   c\t\td\n\ne " * 600,  # runs of spaces, tabs and newlines between the pieces
    "Café naïve résumé " * 400,  # accents, non-ASCII pieces between plain ones
    "plain words here " * 80 + "日本語のテキスト" * 300,  # CJK with no space at all
    "word " * 300 + " \u0301accent " * 400,  # combining marks right after a space
    "ΟΔΥΣΣΕΥΣ Σίσυφος " * 300,  # Greek capitals: final sigma at piece ends
    "[PAD] and [UNK] tokens " * 400,  # added tokens, matched before normalising
    "ok " * 600 + "\x07bell " * 400,  # control characters: the full tokenizer's pieces
    '[{"text":"Visma","coords":[[20,732],[56,732]]},' * 120,  # no whitespace: punctuation
    '{"a":[1,2,3],"b":"[PAD]"},' * 300,  # an added token that a cut could split
    "q" * 958 + "[PAD]" + "z" * 300 + " more words" * 300,  # ... where a piece would end
    "short tail",
    "",
]


def test_long_texts_are_tokenised_only_as_far_as_counts(static_embedder, long_prompts):
    """Pieces cut before spaces give the ids of the whole (cut) text, the first max_length
    of them, while the prompts that reach max_length are tokenised only part way: both
    through ``PlainWordPiece`` (``_token_ids``) and through the library by pieces
    (``_piece_ids``, for texts holding an added token and other tokenizers)."""
    texts = long_prompts + EDGES
    cut = [t[: static_embedder._cut] for t in texts]
    full = static_embedder._full_tokenizer().encode_batch_fast(cut, add_special_tokens=False)
    limit = static_embedder._max_length
    assert static_embedder._token_ids(texts) == [e.ids[:limit] for e in full]  # one batch
    seen: list[int] = []
    encode = static_embedder._encode

    def counting(pieces: list[str]) -> list[list[int]]:
        seen.append(sum(map(len, pieces)))
        return encode(pieces)

    static_embedder._encode = counting  # type: ignore[method-assign]
    try:
        read = []
        for text, encoding in zip(texts, full, strict=True):
            seen.clear()
            assert static_embedder._piece_ids([text[: static_embedder._cut]]) == [encoding.ids]
            read.append(sum(seen))
    finally:
        del static_embedder._encode
    reaching = [
        (chars, len(c)) for chars, c, e in zip(read, cut, full, strict=True) if len(e.ids) == limit
    ]
    assert len(reaching) >= 20  # most of the long real prompts reach the truncation
    assert all(chars <= n for chars, n in reaching)
    # Measured on these prompts: 78% of the characters a full pass tokenises.
    assert sum(chars for chars, _ in reaching) < 0.85 * sum(n for _, n in reaching)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_other_stored_dtypes_save_back_unchanged(static_embedder, tmp_path, dtype):
    """float32 files are kept as they are; float64 ones, which float32 cannot hold, too."""
    from safetensors.numpy import load_file, save_file

    saved = static_embedder.save(tmp_path / "embedder")
    vectors = static_embedder.table.vectors.astype(dtype)
    if dtype == "float64":
        vectors[:, 0] += 1e-12  # below float32's precision: only the original keeps it
    save_file({"embeddings": vectors}, str(saved / "model.safetensors"))
    loaded = StaticEmbedder.from_pretrained(saved)
    assert loaded.table.stored.dtype == np.dtype(dtype)
    assert loaded.table.stored.tobytes() == vectors.tobytes()
    again = loaded.save(tmp_path / "again")
    assert load_file(str(again / "model.safetensors"))["embeddings"].tobytes() == vectors.tobytes()
    texts = ["route this prompt", "and this one"]
    np.testing.assert_allclose(loaded.encode(texts), static_embedder.encode(texts), atol=1e-6)


def test_the_table_is_mapped_and_one_text_needs_no_float32_copy(
    static_embedder, real_prompts, tmp_path
):
    """A server scores one text at a time: that reads rows of the mapped file, never the
    whole float32 table, and gives the bits a batch (which builds that table) gives."""
    from prefroute.embed.static import _mapping

    loaded = StaticEmbedder.from_pretrained(static_embedder.save(tmp_path / "embedder"))
    stored = loaded.table.stored
    assert not stored.flags.writeable and _mapping(stored) is not None
    assert loaded.fingerprint == static_embedder.fingerprint
    texts = real_prompts[:60]
    one_by_one = np.concatenate([loaded.encode([text]) for text in texts])
    assert "vectors" not in vars(loaded.table)
    np.testing.assert_array_equal(one_by_one, loaded.encode(texts))
    assert "vectors" in vars(loaded.table)


def test_rows_are_the_bits_of_the_float32_table(static_embedder):
    """``rows`` (one text's path: float16 rows through a lookup table) and ``vectors``
    (a batch's: numpy's cast of the whole table) agree bit for bit on every row."""
    table = static_embedder.table
    assert table.stored.dtype == np.float16
    ids = np.arange(len(table.stored))
    assert np.array_equal(table.rows(ids).view(np.uint32), table.vectors[ids].view(np.uint32))
    assert table.rows(ids[:0]).shape == (0, table.stored.shape[1])
