"""model2vec static embeddings: the default embedder, ~0.1 ms a prompt, no torch.

A static model is a token → vector table (here distilled from all-MiniLM-L6-v2:
each token run through MiniLM once, then PCA to 256 dims and SIF-weighted), so
encoding is a tokenizer call and a mean of rows. It is a few MB, loads in well
under a second and needs neither torch nor a network, which is why routers copy
it into their artifact (``StaticEmbedder.save``).

Specs:
    ``static``               the distilled MiniLM, built once into the cache root
    ``static:<dir>``         any local model2vec directory
    ``static:<owner/name>``  a model2vec model on the Hugging Face hub
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property, partial
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from prefroute.embed._util import as_texts, batches, l2_normalise
from prefroute.embed.paths import TRAIN_EXTRA_HINT, cache_root, packaged_minilm_dir, publish_dir
from prefroute.embed.quiet import quiet_transformers
from prefroute.embed.wordpiece import ASCII_CONTROL, PlainWordPiece
from prefroute.errors import EmbedderError

if TYPE_CHECKING:
    from model2vec import StaticModel
    from rich.progress import Progress
    from tokenizers import Tokenizer  # type: ignore[import-untyped]

DEFAULT_PCA_DIMS = 256
"""256 of MiniLM's 384 dims: on 1,600 real prompts it agreed with MiniLM as well as
384 (kNN@10 overlap 0.27 vs 0.27; 128 gave 0.26) at 1.5x the speed of 384."""

MARKER = "prefroute-embedder.json"
"""Written by ``save``: the spec the vectors were made under, so a copy loaded from
an artifact directory keeps the spec (and cache entries) of the original."""

BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_MAX_LENGTH = 512
"""model2vec's truncation (in tokens) for a model whose config names none."""
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_BLOCK_ROWS = 4096
"""Rows converted or hashed at a time (2 MB of float16 for the default model)."""


def default_static_dir(cache_dir: str | os.PathLike[str] | None = None, *, pca_dims: int) -> Path:
    """Where the distilled default model lives: ``<root>/embedders/static-minilm-l6-v2-<dims>``."""
    return cache_root(cache_dir) / "embedders" / f"static-minilm-l6-v2-{pca_dims}"


@dataclass(frozen=True)
class StaticLayout:
    """The files of a model2vec directory, as model2vec itself writes them."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def weights(self) -> Path:
        return self.root / "model.safetensors"

    @property
    def tokenizer(self) -> Path:
        return self.root / "tokenizer.json"

    @property
    def marker(self) -> Path:
        return self.root / MARKER


@dataclass(frozen=True, eq=False)
class TokenTable:
    """A model2vec model as encoding needs it: a vector per token and a tokenizer.

    ``stored`` is the vectors as the files hold them (float16 for the default
    model), read from a model2vec directory as a read-only memory map of
    model.safetensors: only the rows a text touches count in a process's memory
    (a server scoring one prompt at a time touches a few MB of the 15). ``vectors``
    is the float32 table the sparse sum of a batch needs (30 MB), made on first
    use; one text's rows are cast on their own, to the same bits.
    ``weights`` and ``token_mapping`` are model2vec's optional per-token weights and
    token -> row map (vocabulary-quantised models); ``config`` is config.json.

    NOTE: a mapped file must not be rewritten in place while it is in use (saving
    writes a new file; replacing a directory is safe).
    """

    stored: np.ndarray
    tokenizer_json: str
    config: Mapping[str, Any]
    weights: np.ndarray | None = None
    token_mapping: np.ndarray | None = None

    @property
    def max_length(self) -> int | None:
        """Tokens per text that count (model2vec's truncation); None: all of them."""
        value = self.config.get("max_length", DEFAULT_MAX_LENGTH)
        return None if value is None else int(value)

    @property
    def stored_dtype(self) -> np.dtype[Any]:
        return self.stored.dtype

    @cached_property
    def vectors(self) -> np.ndarray:
        """The whole table as float32 (exact from float16; rounded from float64)."""
        return np.asarray(self.stored, dtype=np.float32)

    def rows(self, ids: np.ndarray) -> np.ndarray:
        """The float32 vectors of ``ids``: the same bits as ``vectors[ids]``."""
        return self.stored[ids].astype(np.float32, copy=False)

    def stored_blocks(self, rows: int = _BLOCK_ROWS) -> Iterator[np.ndarray]:
        """``stored`` a block of rows at a time, each C-contiguous: a few MB at most in
        memory. A memory map's pages are given back after each block (the file stays
        in the page cache), so hashing the table does not leave it all resident."""
        for start in range(0, len(self.stored), rows):
            yield np.ascontiguousarray(self.stored[start : start + rows])
            _release(self.stored)

    @classmethod
    def read(cls, path: Path) -> TokenTable:
        """Read a model2vec directory with safetensors and the stdlib: no model2vec, no hub.

        The same arrays, tokenizer and settings model2vec's ``from_pretrained``
        reads, so encodings are bit-identical (tests/embed/test_static.py).
        """
        from safetensors import safe_open

        layout = StaticLayout(path)
        missing = [
            p.name for p in (layout.config, layout.weights, layout.tokenizer) if not p.is_file()
        ]
        if missing:
            raise EmbedderError(
                f"{path} is not a model2vec directory (expected config.json, "
                f"model.safetensors and tokenizer.json): no {', '.join(missing)}"
            )
        try:
            config = json.loads(layout.config.read_text("utf-8"))
            with safe_open(str(layout.weights), framework="numpy") as tensors:
                names = set(tensors.keys())
                stored = _mapped(layout.weights, "embeddings")
                if stored is None:
                    stored = tensors.get_tensor("embeddings")
                weights = tensors.get_tensor("weights") if "weights" in names else None
                mapping = tensors.get_tensor("mapping") if "mapping" in names else None
            tokenizer_json = layout.tokenizer.read_text("utf-8")
        except Exception as exc:  # JSON, safetensors and OS errors all mean "not loadable"
            raise EmbedderError(
                f"{path} is not a model2vec directory (expected config.json, "
                f"model.safetensors and tokenizer.json): {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(config, dict):
            raise EmbedderError(f"{layout.config}: expected a JSON object, got {config!r:.60}")
        return cls(stored, tokenizer_json, config, weights, mapping)

    @classmethod
    def from_model2vec(cls, model: StaticModel) -> TokenTable:
        """The table of a model2vec ``StaticModel`` already in memory (e.g. from the hub)."""
        config = {**model.config, "max_length": model.max_length}
        return cls(
            model.embedding, model.tokenizer.to_str(), config, model.weights, model.token_mapping
        )


class StaticEmbedder:
    """Mean of per-token static vectors, L2-normalised, float32.

    NOTE: a text with no known token (``""``, or only characters the vocabulary
    lacks) gets the zero vector, whose cosine with anything is 0.
    """

    def __init__(self, table: TokenTable, *, spec: str, batch_size: int = 256) -> None:
        self.table = table
        self.spec = spec
        self.batch_size = batch_size
        self.dim = int(table.stored.shape[1])
        self._max_length = table.max_length
        # Our own tokenizer, configured once and never changed afterwards: model2vec's
        # encode() re-sets truncation on every call, which fails ("Already borrowed")
        # when a server encodes from several threads at once. Its normaliser runs
        # apart (``_normalise``), so one tokenizer (~10 MB) serves every text.
        from tokenizers import pre_tokenizers

        tokenizer = _tokenizer(table.tokenizer_json, self._max_length)
        self._splits_at_whitespace = _splits_at_whitespace(tokenizer)
        self._cuts_at_punctuation = isinstance(
            tokenizer.pre_tokenizer, pre_tokenizers.BertPreTokenizer
        )
        self._normalizer = tokenizer.normalizer
        self._lowercase_plain = _lowercase_plain(self._normalizer)
        self._added = tuple(t.content for t in tokenizer.get_added_tokens_decoder().values())
        tokenizer.normalizer = None
        self._lean = tokenizer
        self._wordpiece = (
            None
            if self._lowercase_plain is None or not self._splits_at_whitespace
            else PlainWordPiece.of(
                tokenizer, lowercase=self._lowercase_plain, odd_ids=self._odd_word_ids
            )
        )
        self._full_lock = threading.Lock()
        self._full: Tokenizer | None = None
        self.tokens = _tokens_by_id(tokenizer)
        if table.token_mapping is None and len(self.tokens) != len(table.stored):
            raise EmbedderError(
                f"{spec}: {len(self.tokens)} tokens but {len(table.stored)} vectors; "
                "the model files do not belong together"
            )
        self._unk_token_id = _unk_token_id(tokenizer)
        # model2vec's cheap pre-cut of very long texts, in characters
        median = int(np.median([len(token) for token in self.tokens]))
        self._cut = None if self._max_length is None else self._max_length * median

    def __repr__(self) -> str:
        return f"StaticEmbedder(spec={self.spec!r}, dim={self.dim})"

    # -- building and loading -------------------------------------------------

    @classmethod
    def default(
        cls,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        pca_dims: int = DEFAULT_PCA_DIMS,
        batch_size: int = 256,
    ) -> StaticEmbedder:
        """The ``static`` embedder: load the distilled MiniLM, distilling it first if absent.

        Distilling runs once per cache root (~20 s on 2 cores) and needs the
        ``train`` extra; afterwards loading needs only numpy, safetensors and tokenizers.
        """
        target = default_static_dir(cache_dir, pca_dims=pca_dims)
        if not (target / MARKER).is_file():
            distill_packaged_minilm(target, pca_dims=pca_dims)
        return cls.from_pretrained(target, batch_size=batch_size)

    @classmethod
    def from_pretrained(
        cls, path_or_name: str | os.PathLike[str], *, batch_size: int = 256
    ) -> StaticEmbedder:
        """Load a local model2vec directory, or a model2vec model from the Hugging Face hub.

        A local directory is read directly (``TokenTable.read``: safetensors and
        tokenizers, no model2vec); only a hub name needs model2vec. A directory
        written by ``save`` keeps the spec it was saved under; any other directory
        gets ``static:<absolute dir>``, a hub model ``static:<name>``.
        """
        raw = os.fspath(path_or_name)
        path = Path(raw).expanduser()
        if path.is_dir():
            table = TokenTable.read(path)
            marker = StaticLayout(path).marker
            spec = _read_marker(marker)["spec"] if marker.is_file() else f"static:{path.resolve()}"
            return cls(table, spec=spec, batch_size=batch_size)
        if path.exists():
            raise EmbedderError(f"static:{raw}: {path} is a file; expected a model2vec directory")
        if not _HUB_ID.match(raw):
            raise EmbedderError(
                f"static:{raw}: no such directory {path.resolve()}; pass a local model2vec "
                "directory (e.g. one written by StaticEmbedder.save) or a hub name like "
                "'minishlab/potion-base-8M'"
            )
        from model2vec import StaticModel

        try:
            model = StaticModel.from_pretrained(raw, normalize=True, force_download=False)
        except Exception as exc:  # huggingface_hub raises many kinds; all mean "not loadable"
            raise EmbedderError(
                f"could not load {raw!r} from the Hugging Face hub (no network? no such "
                f"model?): {type(exc).__name__}: {_first_line(exc)}. It is not a local "
                "directory either: pass a local model2vec directory as 'static:<dir>'"
            ) from exc
        return cls.from_model2vec(model, spec=f"static:{raw}", batch_size=batch_size)

    @classmethod
    def from_model2vec(
        cls, model: StaticModel, *, spec: str, batch_size: int = 256
    ) -> StaticEmbedder:
        """Wrap a model2vec ``StaticModel`` in memory, naming its vectors ``spec``."""
        return cls(TokenTable.from_model2vec(model), spec=spec, batch_size=batch_size)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model as a model2vec directory (vectors as stored) and its spec; return it.

        ``StaticEmbedder.from_pretrained(path)`` then gives the same vectors under
        the same spec, with neither torch nor a network; model2vec reads it too.
        """
        from safetensors.numpy import save_file

        layout = StaticLayout(Path(path))
        layout.root.mkdir(parents=True, exist_ok=True)
        table = self.table
        arrays = {"embeddings": table.stored}
        if table.weights is not None:
            arrays["weights"] = table.weights
        if table.token_mapping is not None:
            arrays["mapping"] = table.token_mapping
        # A new file put in place: a table mapped from the old one (saving over the
        # directory it was loaded from) keeps reading the old one's bytes.
        fresh = layout.weights.with_name(f".{layout.weights.name}.{uuid.uuid4().hex[:8]}")
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(fresh))
        os.replace(fresh, layout.weights)
        layout.tokenizer.write_text(table.tokenizer_json, "utf-8")
        config = {**table.config, "embedding_dtype": np.dtype(table.stored_dtype).name}
        layout.config.write_text(json.dumps(config, indent=4), "utf-8")
        _write_marker(layout.root, spec=self.spec, dim=self.dim, fingerprint=self.fingerprint)
        return layout.root

    # -- use --------------------------------------------------------------------

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of the vectors and the vocabulary: equal fingerprints, equal encodings.

        NOTE: hashes the token list, not the tokenizer JSON, so upgrading the
        ``tokenizers`` package (which may re-serialise it) keeps the fingerprint.
        The table is hashed a block at a time, never copied whole.
        """
        h = hashlib.sha256()
        shape = (len(self.table.stored), self.dim)
        h.update(f"{np.dtype(self.table.stored_dtype)}{shape}".encode())
        for block in self.table.stored_blocks():
            h.update(block.data.cast("B"))
        h.update("\n".join(self.tokens).encode("utf-8", "surrogatepass"))
        for extra in (self.table.weights, self.table.token_mapping):
            if extra is not None:
                h.update(np.ascontiguousarray(extra).data.cast("B"))
        return h.hexdigest()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised float32 row per text, shape (len(texts), dim).

        The same vectors as model2vec's ``StaticModel.encode`` (same truncation,
        unknown tokens dropped, mean of token vectors), computed in float32 and
        safe to call from several threads at once.
        """
        texts = as_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for part in batches(len(texts), self.batch_size):
            out[part] = self._mean_vectors(texts[part])
        return l2_normalise(out)

    def _token_ids(self, texts: list[str]) -> list[list[int]]:
        """The ids model2vec's encode sums per text: those of the text cut to ``_cut``
        characters, truncated to ``max_length`` tokens.

        For BERT's WordPiece (the default model) ``PlainWordPiece`` gives them, its
        plain ASCII words in Python and the rest by the library (``_odd_word_ids``);
        a text holding an added token ("[MASK]"), or a tokenizer of another kind,
        goes through ``_piece_ids``.
        """
        if self._cut is not None:
            texts = [t[: self._cut] for t in texts]
        if self._wordpiece is None:
            return self._piece_ids(texts)
        limit = self._max_length
        rows = [
            None if any(a in t for a in self._added) else self._wordpiece.ids(t, limit)
            for t in texts
        ]
        rest = [i for i, row in enumerate(rows) if row is None]
        for i, row in zip(rest, self._piece_ids([texts[i] for i in rest]), strict=True):
            rows[i] = row
        return rows  # type: ignore[return-value]  # every None was filled

    def _odd_word_ids(self, word: str) -> list[int] | None:
        """A word that is not plain ASCII, normalised and tokenised by the library as it
        would be in its text; None if normalising makes an added token appear."""
        normalised = self._normalizer.normalize_str(word)
        if any(a in normalised for a in self._added):
            return None
        return self._lean.encode(normalised, add_special_tokens=False).ids

    def _piece_ids(self, texts: list[str]) -> list[list[int]]:
        """The ids of texts already cut to ``_cut``, the first ``max_length`` of them.

        Only the first ``max_length`` tokens count, so a long text is tokenised a
        piece at a time, each piece ending before whitespace (or, for BERT's
        pre-tokenizer, before punctuation, which it splits off too), until that many
        are in: such a tokenizer (``_splits_at_whitespace``) gives a text's tokens as
        its pieces' tokens one after another. A piece is sized from the characters
        per token seen so far; the first is ``2 * max_length`` characters, so texts
        below that are one call as before. A text that spells an added token
        ("[MASK]") is never cut, so no cut can split one.
        """
        limit = self._max_length
        if limit is None or not self._splits_at_whitespace:
            return self._encode(texts)
        ids: list[list[int]] = [[] for _ in texts]
        done = [0] * len(texts)  # characters tokenised so far
        size = [
            len(t) if any(a in t for a in self._added) else 2 * limit for t in texts
        ]  # characters in the next piece
        todo = list(range(len(texts)))
        while todo:
            pieces = []
            for i in todo:
                end = _piece_end(texts[i], done[i], size[i], self._cuts_at_punctuation)
                pieces.append(texts[i][done[i] : end])
                done[i] = end
            for i, piece_ids in zip(todo, self._encode(pieces), strict=True):
                ids[i] += piece_ids
            todo = [i for i in todo if len(ids[i]) < limit and done[i] < len(texts[i])]
            for i in todo:
                per_token = done[i] / max(len(ids[i]), 1)
                size[i] = max(64, int((limit - len(ids[i])) * per_token * 1.2))
        return [row[:limit] for row in ids]

    def _encode(self, texts: list[str]) -> list[list[int]]:
        """Token ids per text: the model's own normaliser, then the tokenizer without it.

        The same ids as the model's whole pipeline (a tokenizer normalises, then
        splits), except where an added token ("[MASK]") is written in the text:
        those are matched before normalising, so such texts take the full
        tokenizer, built on first need.

        NOTE: tried and dropped, measured on the 60 longest Arena-Hard and AlpacaEval
        prompts: sending only the stretches around non-ASCII characters through the
        normaliser (10% slower: more, smaller calls), and a per-word cache of ids (a
        new prompt's rare words miss: p99 0.87 ms against 0.77).
        """
        lean: list[str] = []
        lean_rows: list[int] = []
        full_rows: list[int] = []
        for i, text in enumerate(texts):
            normalised = self._normalise(text)
            if any(a in text or a in normalised for a in self._added):
                full_rows.append(i)
            else:
                lean.append(normalised)
                lean_rows.append(i)
        ids: list[list[int]] = [[] for _ in texts]
        if lean_rows:
            _fill(ids, lean_rows, self._lean.encode_batch_fast(lean, add_special_tokens=False))
        if full_rows:
            full = self._full_tokenizer()
            batch = [texts[i] for i in full_rows]
            _fill(ids, full_rows, full.encode_batch_fast(batch, add_special_tokens=False))
        return ids

    def _normalise(self, text: str) -> str:
        """The text as the model's normaliser leaves it.

        BERT's normaliser on ASCII text without control characters only lowercases
        (checked on every shipped plain prompt, tests/embed/test_static.py), which
        ``str.lower`` does for ~60% less of the tokenizer's time; it works character
        by character, so a text cut before whitespace normalises piece by piece.
        """
        if self._normalizer is None:
            return text
        if self._lowercase_plain is None:
            return self._normalizer.normalize_str(text)
        if text.isascii() and not ASCII_CONTROL.search(text):
            return text.lower() if self._lowercase_plain else text
        non_ascii = len(text) - len(text.encode("ascii", "ignore"))
        if not self._splits_at_whitespace or non_ascii * _MIN_PLAIN > len(text):
            return self._normalizer.normalize_str(text)
        # A few odd characters in a long text: BERT's normaliser works character by
        # character, so it runs on the stretches around them only (~10x less of it).
        return "".join(
            (part.lower() if self._lowercase_plain else part)
            if plain
            else self._normalizer.normalize_str(part)
            for plain, part in _stretches(text)
        )

    def _full_tokenizer(self) -> Tokenizer:
        """The model's whole tokenizer, normaliser included: for texts with added tokens."""
        with self._full_lock:
            if self._full is None:
                self._full = _tokenizer(self.table.tokenizer_json, self._max_length)
            return self._full

    def _mean_vectors(self, texts: list[str]) -> np.ndarray:
        table = self.table
        ids = self._token_ids(texts)
        n = len(ids)
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=n)
        flat = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
        if self._unk_token_id is not None:  # word-level vocabularies emit [UNK]: skip it
            keep = flat != self._unk_token_id
            if not keep.all():
                owner = np.repeat(np.arange(n), lengths)
                flat, lengths = flat[keep], np.bincount(owner[keep], minlength=n)
        columns = flat if table.token_mapping is None else table.token_mapping[flat]
        if n == 1 and table.weights is None:
            # One text (a server's request): the rows summed in token order, the very
            # bits the sparse product below gives, without its ~80 µs of set-up.
            total = np.add.reduce(table.rows(columns), axis=0, keepdims=True)
            return total / np.float32(max(len(flat), 1))
        # Sum of token vectors as one sparse (texts x vocab) @ (vocab x dim) product:
        # ~10x faster than gathering a (tokens x dim) matrix and reducing it.
        from scipy.sparse import csr_matrix  # type: ignore[import-untyped]

        counts = np.ones(len(flat), np.float32) if table.weights is None else table.weights[flat]
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        bag = csr_matrix((counts.astype(np.float32), columns, indptr), shape=(n, len(table.stored)))
        sums = np.asarray(bag @ table.vectors, dtype=np.float32)
        return sums / np.maximum(lengths, 1)[:, None].astype(np.float32)


_ODD = re.compile(r"[^\t\n\r\x20-\x7e]")
"""A character plain-ASCII lowercasing does not normalise as BERT does: non-ASCII, control."""
_WHITESPACE = " \t\n\r"
_WHITESPACE_RE = re.compile(r"[ \t\n\r]")
_PUNCTUATION = re.compile(r"[!-/:-@\[-`{-~]")
"""ASCII punctuation: BERT's pre-tokenizer makes each such character a word of its own."""
_WORD_END = re.compile(r"[ \t\n\r!-/:-@\[-`{-~]")
_MIN_PLAIN = 64
"""Plain stretches shorter than this are normalised with the odd ones around them:
fewer, longer calls of BERT's normaliser."""


_SAFETENSORS_DTYPES = {"F16": "<f2", "F32": "<f4", "F64": "<f8"}


def _mapped(weights: Path, name: str) -> np.ndarray | None:
    """Tensor ``name`` of a safetensors file as a read-only memory map, or None for a
    dtype numpy does not have (bfloat16: safetensors reads it whole then).

    The format: an 8-byte little-endian header length, the JSON header (dtype,
    shape, data offsets from the end of the header), the data.
    """
    import mmap

    with weights.open("rb") as f:
        size = int.from_bytes(f.read(8), "little")
        entry = json.loads(f.read(size))[name]
        dtype = _SAFETENSORS_DTYPES.get(entry["dtype"])
        if dtype is None:
            return None
        start, end = entry["data_offsets"]
        shape = tuple(entry["shape"])
        if end == start:
            return np.zeros(shape, dtype)
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    array = np.frombuffer(
        mapping, dtype, count=(end - start) // np.dtype(dtype).itemsize, offset=8 + size + start
    )
    return array.reshape(shape)


def _mapping(array: np.ndarray) -> Any:
    """The ``mmap.mmap`` an array's memory belongs to, or None."""
    import mmap

    base = array.base
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):  # np.frombuffer's view of the map
        base = base.obj
    return base if isinstance(base, mmap.mmap) else None


def _release(array: np.ndarray) -> None:
    """Give back the resident pages of a memory-mapped array (a no-op for other arrays)."""
    import mmap

    mapping = _mapping(array)
    if mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)


def _tokenizer(tokenizer_json: str, max_length: int | None) -> Tokenizer:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(tokenizer_json)
    tokenizer.no_padding()
    if max_length is None:
        tokenizer.no_truncation()
    else:
        tokenizer.enable_truncation(max_length)
    return tokenizer


def _fill(ids: list[list[int]], rows: list[int], encodings: list[Any]) -> None:
    """Put each encoding's ids at its row."""
    for i, encoding in zip(rows, encodings, strict=True):
        ids[i] = encoding.ids


def _lowercase_plain(normalizer: Any) -> bool | None:
    """For BERT's normaliser, whether it lowercases (all it does to plain ASCII); else None.

    Accent stripping, CJK spacing and cleaning change nothing on ASCII without
    control characters; other normalisers' equivalences are not known.
    """
    from tokenizers import normalizers

    if not isinstance(normalizer, normalizers.BertNormalizer):
        return None
    return bool(normalizer.lowercase)


def _splits_at_whitespace(tokenizer: Tokenizer) -> bool:
    """Whether a text's tokens are its pieces' tokens one after another, for pieces cut
    before ASCII whitespace (space, tab, newline, carriage return).

    True when words are split at whitespace before the model sees them (BERT's
    pre-tokenizer, or whitespace splitting), the normaliser works character by
    character (BERT's, lowercasing, none), and no added token holds a space.
    """
    from tokenizers import normalizers, pre_tokenizers

    splitting = (
        pre_tokenizers.BertPreTokenizer,
        pre_tokenizers.Whitespace,
        pre_tokenizers.WhitespaceSplit,
    )
    per_character = (normalizers.BertNormalizer, normalizers.Lowercase)
    normalizer = tokenizer.normalizer
    added = tokenizer.get_added_tokens_decoder().values()
    return (
        isinstance(tokenizer.pre_tokenizer, splitting)
        and (normalizer is None or isinstance(normalizer, per_character))
        and not any(any(c.isspace() for c in token.content) for token in added)
    )


def _piece_end(text: str, start: int, size: int, punctuation: bool) -> int:
    """Where a piece of ``text`` from ``start`` of about ``size`` characters ends: before
    ASCII whitespace (so the next piece starts with it), else before ASCII punctuation
    if ``punctuation`` (code, JSON), else after the word; or at the end of the text."""
    end = start + size
    if end >= len(text):
        return len(text)
    cut = max(text.rfind(c, start + 1, end) for c in _WHITESPACE)
    if punctuation and cut < end - _MIN_PLAIN:  # none near the end: JSON, code, tables
        mark = _PUNCTUATION.search(text, max(start + 1, end - _MIN_PLAIN), end)
        cut = cut if mark is None else mark.start()
    if cut == -1:  # one word longer than the piece: end after it
        after = (_WORD_END if punctuation else _WHITESPACE_RE).search(text, end)
        cut = -1 if after is None else after.start()
    return len(text) if cut == -1 else cut


def _stretches(text: str) -> list[tuple[bool, str]]:
    """``text`` as (plain?, stretch) in order, cut only before ASCII whitespace.

    A stretch that is not plain runs from the whitespace before an odd character
    (non-ASCII or control) to the whitespace after it; odd stretches less than
    ``_MIN_PLAIN`` characters apart join.
    """
    out: list[tuple[bool, str]] = []
    done = 0  # text[:done] is in out
    match = _ODD.search(text)
    while match is not None:
        start = max(text.rfind(c, done, match.start()) for c in _WHITESPACE)
        start = done if start == -1 else start
        after = _WHITESPACE_RE.search(text, match.end())
        end = len(text) if after is None else after.start()
        if out and not out[-1][0] and start - done < _MIN_PLAIN:
            out[-1] = (False, out[-1][1] + text[done:end])
        else:
            if start > done:
                out.append((True, text[done:start]))
            out.append((False, text[start:end]))
        done = end
        match = _ODD.search(text, end)
    if done < len(text):
        out.append((True, text[done:]))
    return out


def _tokens_by_id(tokenizer: Tokenizer) -> tuple[str, ...]:
    """The vocabulary in id order, as model2vec lists it (``StaticModel.tokens``)."""
    vocab = tokenizer.get_vocab()
    return tuple(sorted(vocab, key=vocab.__getitem__))


def _unk_token_id(tokenizer: Tokenizer) -> int | None:
    """The id of the unknown token, found the way model2vec finds it."""
    model = tokenizer.model
    if hasattr(model, "unk_token"):  # WordPiece, BPE, WordLevel
        return None if model.unk_token is None else tokenizer.token_to_id(model.unk_token)
    return json.loads(tokenizer.to_str())["model"].get("unk_id")  # Unigram


# -- distillation (train extra) -------------------------------------------------


def distill_packaged_minilm(target: Path, *, pca_dims: int = DEFAULT_PCA_DIMS) -> Path:
    """Distil the packaged all-MiniLM-L6-v2 into a model2vec directory at ``target``.

    Deterministic: the same packages give byte-identical files (eval-mode forward
    passes, eigendecomposition PCA with fixed signs). The directory appears
    atomically, so concurrent builders and readers are safe.
    """
    try:
        import torch
        import transformers
        from model2vec.distill import distill_from_model
    except ImportError as exc:
        raise EmbedderError(
            "the default static embedder is distilled once from all-MiniLM-L6-v2, which "
            f"needs torch ({exc}): {TRAIN_EXTRA_HINT}, or pass a local model2vec directory "
            "as 'static:<dir>' (for example the embedder/ directory of a router artifact)"
        ) from None
    source = packaged_minilm_dir()

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        console = Console(stderr=True)
        console.print(f"prefroute: distilling the static embedder into {target} (once)")
        with Progress(*columns, console=console) as progress, quiet_transformers():
            task = progress.add_task("loading all-MiniLM-L6-v2", total=None)
            torch.manual_seed(0)
            model = transformers.AutoModel.from_pretrained(source).eval()
            tokenizer = transformers.AutoTokenizer.from_pretrained(source, use_fast=True)
            progress.update(task, total=1, completed=1)
            with _tqdm_to_rich(progress):
                static = distill_from_model(
                    model,
                    tokenizer,  # type: ignore[arg-type]  # a fast tokenizer: use_fast=True
                    pca_dims=pca_dims,
                    device="cpu",
                )
            task = progress.add_task("saving", total=1)
            # Machine-independent files: no site-packages path in the config or card.
            static.config["tokenizer_name"] = BASE_MODEL
            static.base_model_name = BASE_MODEL
            static.save_pretrained(tmp)
            spec = "static" if pca_dims == DEFAULT_PCA_DIMS else f"static:{target.resolve()}"
            built = StaticEmbedder.from_pretrained(tmp)  # fingerprint what readers will see
            _write_marker(tmp, spec=spec, dim=built.dim, fingerprint=built.fingerprint)
            progress.update(task, completed=1)
        return publish_dir(tmp, target)
    except EmbedderError:
        raise
    except Exception as exc:
        raise EmbedderError(f"distilling {source} into {target} failed: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class _RichBar:
    """The slice of the tqdm API model2vec's distillation uses, drawn by rich."""

    def __init__(self, progress: Progress, *args: Any, total: float | None = None, **kw: Any):
        self._progress = progress
        self._task = progress.add_task("distilling token vectors", total=total)

    def update(self, n: float = 1) -> None:
        self._progress.advance(self._task, n)

    def close(self) -> None:
        pass


@contextmanager
def _tqdm_to_rich(progress: Progress) -> Iterator[None]:
    """Route model2vec's per-token progress bar to our rich Progress while distilling.

    NOTE: patches ``model2vec.distill.inference.tqdm`` only if it exists; if a
    later model2vec renames it, its own tqdm bar shows instead.
    """
    from model2vec.distill import inference

    original = getattr(inference, "tqdm", None)
    if original is not None:
        inference.tqdm = partial(_RichBar, progress)
    try:
        yield
    finally:
        if original is not None:
            inference.tqdm = original


def _write_marker(path: Path, *, spec: str, dim: int, fingerprint: str) -> None:
    info = {"format": 1, "kind": "static", "spec": spec, "dim": dim, "fingerprint": fingerprint}
    (path / MARKER).write_text(json.dumps(info, indent=2) + "\n")


def _read_marker(path: Path) -> dict[str, Any]:
    try:
        info = json.loads(path.read_text())
        if not isinstance(info.get("spec"), str):
            raise ValueError("no 'spec' string")
    except (OSError, ValueError) as exc:
        raise EmbedderError(f"{path}: unreadable embedder marker ({exc}); delete it") from exc
    return info


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
