"""``PlainWordPiece`` gives the ids the tokenizers library gives, on real and odd text."""

from __future__ import annotations

from pathlib import Path

import pytest
from shipped_prompts import read_prompts
from test_static import EDGES

from prefroute.embed.wordpiece import PlainWordPiece

TRICKY = [
    "Café crème, naïve 日本語 text; ΟΔΥΣΣΕΥΣ Σίσυφος",  # accents, CJK, Greek final sigma
    "İstanbul \u212a Kelvin \u2126hm",  # characters whose lowercase is longer or ASCII
    "a\xa0b\u200bc\u3000d",  # Unicode spaces, a zero-width space: not ASCII whitespace
    "x;y(\u0301z) \u037e;",  # a combining mark after punctuation; Greek question mark
    "a\x0bb c\x0cd e\x07f\x7f",  # ASCII control characters inside words
    "it’s “quoted” — dash… •bullet",  # Unicode punctuation inside ASCII words
    "x" * 100 + " " + "y" * 101 + " Zzyzx-qwxv ##ing",  # the word-length limit, [UNK]
    "tab\tand\r\nnewlines  MiXeD CaSe",
    "",
]


@pytest.fixture(scope="module")
def arena_prompts(data_dir: Path) -> list[str]:
    """Real Chatbot Arena prompts, many of them not English (Thai, Russian, Chinese, emoji)."""
    return read_prompts(
        data_dir / "chatbot-arena-fastchat-sample" / "battles.jsonl.gz", "prompt", 100
    ) + read_prompts(data_dir / "vibecheck-llama3-70b-arena" / "battles.jsonl.gz", "prompt", 300)


def test_ids_are_the_librarys_on_real_and_odd_text(
    static_embedder, real_prompts, long_prompts, arena_prompts
):
    texts = [*real_prompts, *long_prompts, *arena_prompts, *EDGES, *TRICKY]
    texts = [t for t in texts if not any(a in t for a in static_embedder._added)]
    assert sum(not t.isascii() for t in texts) >= 50  # the library's share is exercised
    wordpiece = static_embedder._wordpiece
    assert isinstance(wordpiece, PlainWordPiece), "the default model is BERT's WordPiece"
    full = static_embedder._full_tokenizer()  # truncates at max_length, as encode does
    expected = [e.ids for e in full.encode_batch_fast(texts, add_special_tokens=False)]
    assert max(map(len, expected)) == static_embedder._max_length == 512
    for limit in (512, 7):
        got = [wordpiece.ids(t, limit) for t in texts]
        bad = [t[:40] for t, g, e in zip(texts, got, expected, strict=True) if g != e[:limit]]
        assert bad == [], f"limit {limit}"
