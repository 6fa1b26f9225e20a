"""all-MiniLM-L6-v2 through ONNX Runtime: a real transformer encoder without torch.

The packaged MiniLM is exported to ONNX once (torch, the ``train`` extra) with
mean pooling inside the graph, then dynamically quantised to int8. Encoding
needs only onnxruntime and tokenizers.

Specs: ``minilm`` = ``minilm:onnx-int8`` (default), ``minilm:onnx-fp32``.

Quantisation: per-channel int8 weights for every linear layer except the six
feed-forward output projections (``layer.N/output/dense``), kept fp32. Their
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
import logging
import os
import re
import shutil
import uuid
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prefroute.embed._util import as_texts, batches, l2_normalise
from prefroute.embed.factory import MINILM_VARIANTS as VARIANTS
from prefroute.embed.paths import TRAIN_EXTRA_HINT, cache_root, packaged_minilm_dir, publish_dir
from prefroute.embed.quiet import quiet_transformers
from prefroute.errors import EmbedderError

DEFAULT_VARIANT = VARIANTS[0]
DEFAULT_MAX_LENGTH = 256
"""sentence-transformers' ``max_seq_length`` for this model, so vectors agree with it."""

BUILD = "minilm-l6-v2-onnx-v1"
"""Name of the built directory; bump it when the export recipe changes."""

MARKER = "prefroute-embedder.json"
_FFN_OUTPUT = re.compile(r"layer\.\d+/output/dense/MatMul$")


def default_minilm_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the ONNX export lives: ``<root>/embedders/minilm-l6-v2-onnx-v1``."""
    return cache_root(cache_dir) / "embedders" / BUILD


def physical_cores() -> int:
    """Physical cores this process may run on: ONNX Runtime's best intra-op thread count.

    Hyper-threads share a core's vector units, so more threads than cores only
    adds contention.
    """
    if hasattr(os, "sched_getaffinity"):
        available = len(os.sched_getaffinity(0))
    else:  # macOS, Windows
        available = os.cpu_count() or 1
    cores: set[tuple[str, str]] = set()
    try:
        with open("/proc/cpuinfo") as f:
            socket = "0"
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "physical id":
                    socket = value.strip()
                elif key.strip() == "core id":
                    cores.add((socket, value.strip()))
    except OSError:
        pass
    return max(1, min(len(cores), available) if cores else available)


def inference_session(path: str | os.PathLike[str], num_threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session for small batches: one intra-op thread per
    physical core, sequential execution, every graph optimisation.

    Idle intra-op threads sleep instead of spinning: a router shares its cores
    with the HTTP server and other workers, and on a busy 2-core machine spinning
    threads made single-prompt p50 ~1.9x worse (37 ms vs 19.5 ms).
    """
    import onnxruntime as ort  # type: ignore[import-untyped]

    options = ort.SessionOptions()
    options.intra_op_num_threads = num_threads or physical_cores()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def load_tokenizer(path: str | os.PathLike[str], max_length: int) -> Any:
    """A ``tokenizers.Tokenizer`` from ``path`` that pads nothing and truncates at ``max_length``.

    The packaged tokenizer.json pads every text to 128 tokens and truncates at
    128; ``run_by_length`` pads each batch to its own longest text instead.
    """
    from tokenizers import Tokenizer  # type: ignore[import-untyped]

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    return tokenizer


def run_by_length(session: Any, ids: Sequence[Sequence[int]], batch_size: int) -> np.ndarray:
    """The first output of ``session(input_ids, attention_mask)`` per token-id row, in order.

    Rows are sorted by length and batched, so each batch is padded (0, masked out)
    only to its own longest row.
    """
    lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
    order = np.argsort(lengths, kind="stable")
    out: np.ndarray | None = None
    for batch in batches(len(ids), batch_size):
        rows = order[batch]
        width = int(lengths[rows].max())
        input_ids = np.zeros((len(rows), width), dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, i in enumerate(rows):
            n = int(lengths[i])
            input_ids[r, :n] = ids[i]
            mask[r, :n] = 1
        result = session.run(None, {"input_ids": input_ids, "attention_mask": mask})[0]
        if out is None:
            out = np.empty((len(ids), *result.shape[1:]), dtype=result.dtype)
        out[rows] = result
    return out if out is not None else np.empty((0,), dtype=np.float32)


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
            _export_mean_pooled(torch, encoder.eval(), fp32)
            progress.update(task, total=1, completed=1)

            task = progress.add_task("quantising to int8", total=None)
            keep_fp32 = quantize_int8(fp32, int8)
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


def _export_mean_pooled(torch: Any, encoder: Any, path: Path) -> None:
    """Write ``encoder`` + attention-masked mean pooling as one ONNX graph."""
    export_onnx(torch, mean_pooled(torch, encoder), path, "sentence_embedding")


def mean_pooled(torch: Any, encoder: Any) -> Any:
    """``encoder`` + attention-masked mean pooling as one module,
    ``(input_ids, attention_mask) -> (batch, dim)``, pooled as sentence-transformers does."""

    class MeanPooled(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    return MeanPooled()


def export_onnx(torch: Any, module: Any, path: Path, output_name: str) -> None:
    """Write ``module(input_ids, attention_mask) -> (batch, ...)`` as an ONNX graph
    with dynamic batch and token axes."""
    ids = torch.tensor([[101, 7592, 2088, 102], [101, 7592, 102, 0]])
    dynamic = {0: "batch", 1: "tokens"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            (ids, (ids > 0).long()),
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=[output_name],
            dynamic_axes={
                "input_ids": dynamic,
                "attention_mask": dynamic,
                output_name: {0: "batch"},
            },
            opset_version=17,
            do_constant_folding=True,
            dynamo=False,  # the dynamo exporter needs onnxscript, which the extra lacks
        )


def quantize_int8(
    fp32: Path, int8: Path, keep_fp32: re.Pattern[str] | None = _FFN_OUTPUT
) -> list[str]:
    """Write ``fp32`` with int8 per-channel weights (dynamic quantisation) to ``int8``.

    MatMul nodes whose name matches ``keep_fp32`` stay fp32 (by default the
    feed-forward output projections: see the module docstring); returns their names.
    """
    import onnx
    from onnxruntime.quantization import (  # type: ignore[import-untyped]
        QuantType,
        quantize_dynamic,
    )

    graph = onnx.load(str(fp32), load_external_data=False).graph
    kept = [
        n.name
        for n in graph.node
        if n.op_type == "MatMul" and keep_fp32 is not None and keep_fp32.search(n.name)
    ]
    quiet = _DropPreprocessHint()
    logging.getLogger().addFilter(quiet)
    try:
        quantize_dynamic(
            fp32, int8, weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=kept
        )
    finally:
        logging.getLogger().removeFilter(quiet)
    return kept


class _DropPreprocessHint(logging.Filter):
    """Hide onnxruntime's 'consider pre-processing' hint: it targets static quantisation."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()
