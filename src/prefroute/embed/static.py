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

import copy
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property, partial
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from prefroute.embed._util import as_texts, batches, l2_normalise
from prefroute.embed.paths import TRAIN_EXTRA_HINT, cache_root, packaged_minilm_dir, publish_dir
from prefroute.embed.quiet import quiet_transformers
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
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def default_static_dir(cache_dir: str | os.PathLike[str] | None = None, *, pca_dims: int) -> Path:
    """Where the distilled default model lives: ``<root>/embedders/static-minilm-l6-v2-<dims>``."""
    return cache_root(cache_dir) / "embedders" / f"static-minilm-l6-v2-{pca_dims}"


class StaticEmbedder:
    """Mean of per-token static vectors, L2-normalised, float32.

    NOTE: a text with no known token (``""``, or only characters the vocabulary
    lacks) gets the zero vector, whose cosine with anything is 0.
    """

    def __init__(self, model: StaticModel, *, spec: str, batch_size: int = 256) -> None:
        self.model = model
        self.spec = spec
        self.batch_size = batch_size
        self.dim = int(model.dim)
        # Kept as stored (float16) for save(); float32 for encoding: numpy's float16
        # arithmetic is emulated and ~1.5x slower, and float32 sums are exact enough.
        self._stored = model.embedding
        self._vectors = np.asarray(model.embedding, dtype=np.float32)
        # Our own tokenizers, configured once and never changed afterwards: model2vec's
        # encode() re-sets truncation on every call, which fails ("Already borrowed")
        # when a server encodes from several threads at once.
        config = json.loads(model.tokenizer.to_str())
        self._tokenizer = _tokenizer(config, model.max_length)
        self._plain_tokenizer = _plain_text_variant(config, model.max_length)

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
        ``train`` extra; afterwards loading needs only numpy and tokenizers.
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

        A directory written by ``save`` keeps the spec it was saved under; any
        other directory gets ``static:<absolute dir>``, a hub model ``static:<name>``.
        """
        from model2vec import StaticModel

        raw = os.fspath(path_or_name)
        path = Path(raw).expanduser()
        if path.is_dir():
            try:
                model = StaticModel.from_pretrained(path, normalize=True)
            except Exception as exc:  # model2vec raises ValueError/OSError/safetensors errors
                raise EmbedderError(
                    f"{path} is not a model2vec directory (expected config.json, "
                    f"model.safetensors and tokenizer.json): {exc}"
                ) from exc
            marker = path / MARKER
            spec = _read_marker(marker)["spec"] if marker.is_file() else f"static:{path.resolve()}"
            return cls(model, spec=spec, batch_size=batch_size)
        if path.exists():
            raise EmbedderError(f"static:{raw}: {path} is a file; expected a model2vec directory")
        if not _HUB_ID.match(raw):
            raise EmbedderError(
                f"static:{raw}: no such directory {path.resolve()}; pass a local model2vec "
                "directory (e.g. one written by StaticEmbedder.save) or a hub name like "
                "'minishlab/potion-base-8M'"
            )
        try:
            model = StaticModel.from_pretrained(raw, normalize=True, force_download=False)
        except Exception as exc:  # huggingface_hub raises many kinds; all mean "not loadable"
            raise EmbedderError(
                f"could not load {raw!r} from the Hugging Face hub (no network? no such "
                f"model?): {type(exc).__name__}: {_first_line(exc)}. It is not a local "
                "directory either: pass a local model2vec directory as 'static:<dir>'"
            ) from exc
        return cls(model, spec=f"static:{raw}", batch_size=batch_size)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the model (as stored, float16) and its spec into ``path``; return it.

        ``StaticEmbedder.from_pretrained(path)`` then gives the same vectors under
        the same spec, with neither torch nor a network.
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        stored = copy.copy(self.model)
        stored.embedding = self._stored
        stored.save_pretrained(path)
        _write_marker(path, spec=self.spec, dim=self.dim, fingerprint=self.fingerprint)
        return path

    # -- use --------------------------------------------------------------------

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of the vectors and the vocabulary: equal fingerprints, equal encodings.

        NOTE: hashes the token list, not the tokenizer JSON, so upgrading the
        ``tokenizers`` package (which may re-serialise it) keeps the fingerprint.
        """
        h = hashlib.sha256()
        h.update(f"{self._stored.dtype}{self._stored.shape}".encode())
        h.update(np.ascontiguousarray(self._stored).tobytes())
        h.update("\n".join(self.model.tokens).encode("utf-8", "surrogatepass"))
        for extra in (self.model.weights, self.model.token_mapping):
            if extra is not None:
                h.update(np.ascontiguousarray(extra).tobytes())
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
        """Token ids per text; plain ASCII texts go through the lean tokenizer, if any."""
        if self._plain_tokenizer is None:
            groups = [(self._tokenizer, list(range(len(texts))))]
        else:
            plain = [t.isascii() and not _CONTROL.search(t) for t in texts]
            groups = [
                (self._plain_tokenizer, [i for i, p in enumerate(plain) if p]),
                (self._tokenizer, [i for i, p in enumerate(plain) if not p]),
            ]
        ids: list[list[int]] = [[] for _ in texts]
        for tokenizer, rows in groups:
            if rows:
                encoded = tokenizer.encode_batch_fast(
                    [texts[i] for i in rows], add_special_tokens=False
                )
                for i, encoding in zip(rows, encoded, strict=True):
                    ids[i] = encoding.ids
        return ids

    def _mean_vectors(self, texts: list[str]) -> np.ndarray:
        model = self.model
        if model.max_length is not None:  # model2vec's cheap pre-cut of very long texts
            cut = model.max_length * model.median_token_length
            texts = [t[:cut] for t in texts]
        ids = self._token_ids(texts)
        n = len(ids)
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=n)
        flat = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=int(lengths.sum()))
        if model.unk_token_id is not None:  # word-level vocabularies emit [UNK]: skip it
            keep = flat != model.unk_token_id
            if not keep.all():
                owner = np.repeat(np.arange(n), lengths)
                flat, lengths = flat[keep], np.bincount(owner[keep], minlength=n)
        columns = flat if model.token_mapping is None else model.token_mapping[flat]
        if n == 1 and model.weights is None:
            # One text (a server's request): the rows summed in token order, the very
            # bits the sparse product below gives, without its ~80 µs of set-up.
            total = np.add.reduce(self._vectors[columns], axis=0, keepdims=True)
            return total / np.float32(max(len(flat), 1))
        # Sum of token vectors as one sparse (texts x vocab) @ (vocab x dim) product:
        # ~10x faster than gathering a (tokens x dim) matrix and reducing it.
        from scipy.sparse import csr_matrix  # type: ignore[import-untyped]

        counts = np.ones(len(flat), np.float32) if model.weights is None else model.weights[flat]
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        bag = csr_matrix(
            (counts.astype(np.float32), columns, indptr), shape=(n, len(self._vectors))
        )
        sums = np.asarray(bag @ self._vectors, dtype=np.float32)
        return sums / np.maximum(lengths, 1)[:, None].astype(np.float32)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""ASCII control characters that BERT's text cleaning drops (tab and newlines it keeps)."""


def _tokenizer(config: dict[str, Any], max_length: int | None) -> Tokenizer:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(json.dumps(config))
    tokenizer.no_padding()
    if max_length is None:
        tokenizer.no_truncation()
    else:
        tokenizer.enable_truncation(max_length)
    return tokenizer


def _plain_text_variant(config: dict[str, Any], max_length: int | None) -> Tokenizer | None:
    """The tokenizer without BERT's Unicode normalisation, for ASCII text without controls.

    On such text BertNormalizer's accent stripping, CJK spacing and cleaning
    change nothing, but cost ~60% of the tokenizer's time (the default model,
    ~170 µs of a real prompt's tokenization); lowercasing alone gives the same
    ids (checked on every shipped plain prompt, tests/embed/test_static.py).
    None for other normalisers, whose equivalences are not known.
    """
    normalizer = config.get("normalizer") or {}
    if normalizer.get("type") != "BertNormalizer":
        return None
    lowercase = normalizer.get("lowercase", True)
    lean = {**config, "normalizer": {"type": "Lowercase"} if lowercase else None}
    return _tokenizer(lean, max_length)


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
