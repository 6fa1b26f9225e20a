"""Spec string → embedder: the one place a spec is parsed.

static                  model2vec distilled from the packaged all-MiniLM-L6-v2 (default)
static:<dir>            any local model2vec directory (e.g. a router artifact's embedder/)
static:<owner/name>     a model2vec model on the Hugging Face hub
minilm                  = minilm:onnx-int8
minilm:onnx-int8        all-MiniLM-L6-v2, ONNX Runtime, int8 weights
minilm:onnx-fp32        the same, fp32 (reference quality, ~2x slower)
api:<model>             an OpenAI-compatible /v1/embeddings endpoint
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from prefroute.errors import EmbedderError

if TYPE_CHECKING:
    from prefroute.embed import Embedder

DEFAULT_SPEC = "static"
MINILM_VARIANTS = ("onnx-int8", "onnx-fp32")  # the first is the default
VALID_SPECS = (
    "static",
    "static:<model2vec dir or hub name>",
    "minilm",
    "minilm:onnx-int8",
    "minilm:onnx-fp32",
    "api:<model>",
)
CACHED_BY_DEFAULT = ("minilm", "api")
"""Kinds wrapped in ``CachedEmbedder`` unless ``cache=False``.

Not ``static``, measured on real prompts (benchmarks/embed.py, 2 busy cores): a
miss costs the encode plus a write (single-prompt p50 0.18 -> 0.36 ms), a serving
router sees mostly new prompts, and the file grows 1 KB per distinct prompt. A
batch job that re-embeds the same large data set (decontamination on every
``data stats``) should pass ``cache=True``: warm hits read ~120k prompts/s
against ~3k/s for tokenising them again.
"""


def get_embedder(
    spec: str = DEFAULT_SPEC,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    cache: bool | None = None,
) -> Embedder:
    """Build the embedder a spec names.

    ``cache_dir`` is the cache root for built models and cached vectors (default
    ``PREFROUTE_CACHE_DIR`` or the user cache dir). ``cache`` wraps the embedder
    in an on-disk ``CachedEmbedder``; ``None`` means yes for ``minilm`` and
    ``api``, no for ``static``.
    """
    if not isinstance(spec, str):
        raise EmbedderError(f"embedder spec must be a str, got {type(spec).__name__}")
    kind, colon, arg = spec.strip().partition(":")
    embedder: Embedder
    if kind == "static" and not colon:
        from prefroute.embed.static import StaticEmbedder

        embedder = StaticEmbedder.default(cache_dir=cache_dir)
    elif kind == "static" and arg:
        from prefroute.embed.static import StaticEmbedder

        embedder = StaticEmbedder.from_pretrained(arg)
    elif kind == "minilm" and (not colon or arg in MINILM_VARIANTS):
        from prefroute.embed.minilm import MiniLMEmbedder

        embedder = MiniLMEmbedder.default(arg or MINILM_VARIANTS[0], cache_dir=cache_dir)
    elif kind == "api" and arg:
        from prefroute.embed.api import ApiEmbedder

        embedder = ApiEmbedder(arg)
    else:
        raise EmbedderError(
            f"unknown embedder spec {spec!r}; expected one of: {', '.join(VALID_SPECS)}"
        )
    if cache if cache is not None else kind in CACHED_BY_DEFAULT:
        from prefroute.embed.cache import CachedEmbedder, vector_cache_dir

        return CachedEmbedder(embedder, vector_cache_dir(cache_dir))
    return embedder
