"""BERT's pre-tokenizer and WordPiece in Python, for the plain ASCII words of a text.

The tokenizers library spends ~1 µs a token on a long prompt (it tracks offsets
and alignments the static embedder never reads): 0.35-0.65 ms for the 512
tokens the default model keeps. BERT's pre-tokenizer splits at whitespace and
makes each punctuation mark a word of its own, and BERT's normaliser works
character by character and only lowercases plain ASCII (printable, no control
characters). So a regular expression cutting at ASCII whitespace and ASCII
punctuation finds the words; a plain one gets its id from a dict, or from
WordPiece's greedy longest match run here (cached); any other word (an accent,
a curly quote, CJK) goes whole through the library's normaliser and tokenizer,
as it would in context, and is cached too. Same ids as the library
(tests/embed/test_wordpiece.py), a third of its time on the long prompts, and it
stops at the last token that counts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tokenizers import Tokenizer  # type: ignore[import-untyped]

_WORD = re.compile(r"[!-/:-@\[-`{-~]|[^ \t\n\r!-/:-@\[-`{-~]+")
"""One ASCII punctuation mark, or a run of characters that are neither it nor ASCII
whitespace: the cuts BERT's pre-tokenizer makes in any text, whatever else it cuts."""
ASCII_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""ASCII control characters, which BERT's normaliser drops (tab and newlines it keeps)."""
_MAX_CACHED = 1 << 14
"""Words kept per cache (split plain words, other words); a full cache starts over."""
_MAX_CACHED_CHARS = 48
"""Longer words are not cached (long runs of CJK or symbols rarely come back)."""

OddIds = Callable[[str], Sequence[int] | None]
"""The ids of a word that is not plain ASCII, by the library; None: give up on the text."""


class PlainWordPiece:
    """WordPiece ids of a text as the library gives them, plain words done in Python.

    Safe from several threads: the vocabulary is only read, and the caches are
    dicts whose every get and set is atomic.
    """

    def __init__(
        self,
        vocab: Mapping[str, int],
        *,
        unk_id: int,
        prefix: str,
        max_word_chars: int,
        lowercase: bool,
        odd_ids: OddIds,
    ) -> None:
        # a whole word longer than max_word_chars is [UNK] even where it is listed
        self._vocab = {
            t: i for t, i in vocab.items() if t.startswith(prefix) or len(t) <= max_word_chars
        }
        self._unk = (unk_id,)
        self._prefix = prefix
        self._max_word_chars = max_word_chars
        self._lowercase = lowercase
        self._odd_ids = odd_ids
        self._longest_word = max((len(t) for t in vocab if not t.startswith(prefix)), default=0)
        self._longest_piece = max(
            (len(t) - len(prefix) for t in vocab if t.startswith(prefix)), default=0
        )
        self._split: dict[str, tuple[int, ...]] = {}
        self._odd: dict[str, tuple[int, ...]] = {}

    @classmethod
    def of(cls, tokenizer: Tokenizer, *, lowercase: bool, odd_ids: OddIds) -> PlainWordPiece | None:
        """The Python twin of ``tokenizer`` (its normaliser BERT's, lowercasing or not, run
        by the caller inside ``odd_ids``), or None unless it is BERT's pre-tokenizer
        before a WordPiece model."""
        from tokenizers import models, pre_tokenizers

        model = tokenizer.model
        if not (
            isinstance(model, models.WordPiece)
            and isinstance(tokenizer.pre_tokenizer, pre_tokenizers.BertPreTokenizer)
        ):
            return None
        vocab = tokenizer.get_vocab(with_added_tokens=False)
        if model.unk_token not in vocab:
            return None  # the library fails on an unknown word then; leave such texts to it
        return cls(
            vocab,
            unk_id=vocab[model.unk_token],
            prefix=model.continuing_subword_prefix,
            max_word_chars=model.max_input_chars_per_word,
            lowercase=lowercase,
            odd_ids=odd_ids,
        )

    def ids(self, text: str, limit: int | None = None) -> list[int] | None:
        """The ids of ``text``, only the first ``limit`` of them if given; None where
        ``odd_ids`` gave up."""
        out: list[int] = []
        get, split = self._vocab.get, self._split.get
        if text.isascii() and not ASCII_CONTROL.search(text):
            for word in _WORD.findall(text.lower() if self._lowercase else text):
                found = get(word)
                if found is not None:
                    out.append(found)
                else:
                    out += split(word) or self._split_word(word)
                if limit is not None and len(out) >= limit:
                    return out[:limit]
            return out
        for word in _WORD.findall(text):
            if word.isascii() and word.isprintable():
                if self._lowercase:
                    word = word.lower()
                found = get(word)
                if found is not None:
                    out.append(found)
                else:
                    out += split(word) or self._split_word(word)
            else:
                odd = self._odd.get(word) or self._odd_word(word)
                if odd is None:
                    return None
                out += odd
            if limit is not None and len(out) >= limit:
                return out[:limit]
        return out

    def _odd_word(self, word: str) -> tuple[int, ...] | None:
        found = self._odd_ids(word)
        if found is None:
            return None
        ids = tuple(found)
        if ids and len(word) <= _MAX_CACHED_CHARS:  # () would miss the cache every time
            if len(self._odd) >= _MAX_CACHED:
                self._odd.clear()
            self._odd[word] = ids
        return ids

    def _split_word(self, word: str) -> tuple[int, ...]:
        """WordPiece's greedy longest match, left to right; ``[UNK]`` for the whole word if
        a piece is missing or the word is too long. No candidate is longer than the
        vocabulary's longest entry, so a long word costs its length, not its square."""
        get, prefix, n = self._vocab.get, self._prefix, len(word)
        pieces: tuple[int, ...] = self._unk
        if n <= self._max_word_chars:
            found: list[int] = []
            start = 0
            while start < n:
                end = min(n, start + (self._longest_piece if start else self._longest_word))
                while end > start:
                    piece = get(word[start:end] if start == 0 else prefix + word[start:end])
                    if piece is not None:
                        found.append(piece)
                        break
                    end -= 1
                else:
                    break  # no piece starts here: the whole word is unknown
                start = end
            if start == n:
                pieces = tuple(found)
        if len(word) <= _MAX_CACHED_CHARS:
            if len(self._split) >= _MAX_CACHED:
                self._split.clear()
            self._split[word] = pieces
        return pieces
