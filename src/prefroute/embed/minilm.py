"""all-MiniLM-L6-v2 through ONNX Runtime: a real transformer encoder without torch.

The packaged MiniLM is exported to ONNX once (torch, the ``train`` extra) with
mean pooling inside the graph, then dynamically quantised to int8. Encoding
needs only onnxruntime and tokenizers.

Specs: ``minilm`` = ``minilm:onnx-int8`` (default), ``minilm:onnx-fp32``.

Quantisation: per-channel int8 weights for every linear layer except the six
feed-forward output projections (``layer.N/output/dense``, matched by
``prefroute.onnx_models.BERT_FFN_OUTPUT``), kept fp32. Their
inputs (GELU outputs) have outliers; quantising them dropped the cosine to the
fp32 model to 0.886 on the worst of 1,600 real prompts, keeping them fp32 raises
it to 0.989 (mean 0.997) for +10 MB (33 MB vs 23 MB).

NOTE: dynamic int8 picks activation scales per batch, so a text's int8 vector
moves slightly with its batch companions (cosine >= 0.98 to the same text encoded
alone). Batching is kept for throughput; use ``minilm:onnx-fp32`` (vectors equal
to 1e-7 however batched) where vectors must be bit-for-bit reproducible.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prefroute.embed._util import as_texts, batches, l2_normalise
from prefroute.embed.factory import MINILM_VARIANTS as VARIANTS
from prefroute.embed.paths import TRAIN_EXTRA_HINT, cache_root, packaged_minilm_dir, publish_dir
from prefroute.embed.quiet import quiet_transformers
from prefroute.errors import EmbedderError
from prefroute.onnx_models import (
    BERT_FFN_OUTPUT,
    export_onnx,
    inference_session,
    load_tokenizer,
    mean_pooled,
    quantize_int8,
    run_by_length,
)

DEFAULT_VARIANT = VARIANTS[0]
DEFAULT_MAX_LENGTH = 256
"""sentence-transformers' ``max_seq_length`` for this model, so vectors agree with it."""

BUILD = "minilm-l6-v2-onnx-v1"
"""Name of the built directory; bump it when the export recipe changes."""

MARKER = "prefroute-embedder.json"


def default_minilm_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the ONNX export lives: ``<root>/embedders/minilm-l6-v2-onnx-v1``."""
    return cache_root(cache_dir) / "embedders" / BUILD


class MiniLMEmbedder:
    """Mean-pooled, L2-normalised all-MiniLM-L6-v2 vectors from an ONNX model.

    Texts are tokenised in chunks, sorted by length and batched so each batch pads
    only to its own longest text; vectors come back in input order.

    NOTE: ``max_length`` changes the vectors of longer texts but not the spec;
    keep the default unless training and serving both set it.
    """

    def __init__(
        self,
        model_dir: str | os.PathLike[str],
        *,
        variant: str = DEFAULT_VARIANT,
        max_length: int = DEFAULT_MAX_LENGTH,
        batch_size: int = 32,
        num_threads: int | None = None,
    ) -> None:
        if variant not in VARIANTS:
            raise EmbedderError(f"unknown minilm variant {variant!r}; expected one of {VARIANTS}")
        self.model_dir = Path(model_dir)
        self.variant = variant
        self.max_length = max_length
        self.batch_size = batch_size
        self.num_threads = num_threads
        self.spec = f"minilm:{variant}"
        onnx_path = self.model_dir / f"model-{variant.removeprefix('onnx-')}.onnx"
        tokenizer_path = self.model_dir / "tokenizer.json"
        for needed in (onnx_path, tokenizer_path):
            if not needed.is_file():
                raise EmbedderError(
                    f"{needed} is missing; rebuild the export with "
                    f"MiniLMEmbedder.default() (needs {TRAIN_EXTRA_HINT})"
                )

        try:
            self._session = inference_session(onnx_path, num_threads)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise EmbedderError(f"cannot load {onnx_path}: {exc}; delete it to rebuild") from exc
        dim = self._session.get_outputs()[0].shape[-1]
        self.dim = int(dim) if isinstance(dim, int) else 384
        # Truncate where sentence-transformers does.
        self._tokenizer = load_tokenizer(tokenizer_path, max_length)

    def __repr__(self) -> str:
        return f"MiniLMEmbedder(spec={self.spec!r}, dim={self.dim}, max_length={self.max_length})"

    @classmethod
    def default(
        cls,
        variant: str = DEFAULT_VARIANT,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> MiniLMEmbedder:
        """The ``minilm:<variant>`` embedder from the cache root, exporting it first if absent."""
        target = default_minilm_dir(cache_dir)
        if not (target / MARKER).is_file():
            export_packaged_minilm(target)
        return cls(target, variant=variant, **options)

    @property
    def cache_id(self) -> str:
        """What ``CachedEmbedder`` keys on: the spec plus what else changes the vectors."""
        return f"{self.spec};max_length={self.max_length};build={BUILD}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised float32 row per text, shape (len(texts), dim)."""
        texts = as_texts(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        chunk = 64 * self.batch_size  # bounds tokenizer memory on 500k-text inputs
        for part in batches(len(texts), chunk):
            out[part] = self._encode_chunk(texts[part])
        return l2_normalise(out)

    def _encode_chunk(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        return run_by_length(self._session, [e.ids for e in encodings], self.batch_size)


# -- export (train extra) ----------------------------------------------------------


def export_packaged_minilm(target: Path) -> Path:
    """Export the packaged MiniLM to ONNX (fp32 and int8) into ``target``, atomically.

    Takes ~10 s on 2 cores; needs torch, transformers and onnx (the ``train`` extra).
    """
    try:
        import onnx  # noqa: F401  (quantize_int8 needs it)
        import torch
        import transformers
    except ImportError as exc:
        raise EmbedderError(
            "the minilm embedder is exported to ONNX once from all-MiniLM-L6-v2, which "
            f"needs torch and onnx ({exc}): {TRAIN_EXTRA_HINT}"
        ) from None
    source = packaged_minilm_dir()

    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    fp32, int8 = tmp / "model-fp32.onnx", tmp / "model-int8.onnx"
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    try:
        console = Console(stderr=True)
        console.print(f"prefroute: exporting all-MiniLM-L6-v2 to ONNX in {target} (once)")
        with Progress(*columns, console=console) as progress, quiet_transformers():
            task = progress.add_task("exporting to ONNX", total=None)
            encoder = transformers.AutoModel.from_pretrained(source, attn_implementation="eager")
            export_onnx(torch, mean_pooled(torch, encoder.eval()), fp32, "sentence_embedding")
            progress.update(task, total=1, completed=1)

            task = progress.add_task("quantising to int8", total=None)
            keep_fp32 = quantize_int8(fp32, int8, keep_fp32=BERT_FFN_OUTPUT)
            shutil.copyfile(source / "tokenizer.json", tmp / "tokenizer.json")
            info = {
                "format": 1,
                "kind": "minilm",
                "build": BUILD,
                "base_model": "sentence-transformers/all-MiniLM-L6-v2",
                "dim": 384,
                "fp32_nodes_in_int8": keep_fp32,
            }
            (tmp / MARKER).write_text(json.dumps(info, indent=2) + "\n")
            progress.update(task, total=1, completed=1)
        return publish_dir(tmp, target)
    except EmbedderError:
        raise
    except Exception as exc:
        raise EmbedderError(f"exporting {source} to ONNX in {target} failed: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
