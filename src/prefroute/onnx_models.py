"""Running and building ONNX models on CPU: the one place prefroute touches ONNX.

The MiniLM embedder and the label-head routers (classifier, causal LLM) are
each one ONNX graph over token ids, ``(input_ids, attention_mask) -> (batch, ...)``,
so they share how a graph is run and how one is made:

- running (onnxruntime + tokenizers, no torch): ``inference_session``,
  ``load_tokenizer``, ``run_by_length``;
- building (torch and onnx: the ``train`` extra): ``export_onnx``,
  ``mean_pooled``, ``quantize_int8``.

Every heavy import is inside the function that needs it, so importing this
module costs numpy only.

Int8 quantisation keeps each transformer layer's feed-forward output projection
in fp32 (``BERT_FFN_OUTPUT``, ``LLAMA_FFN_OUTPUT``): its input, a GELU or
SiLU-gated activation, has outliers that per-channel int8 rounds badly
(``prefroute.embed.minilm`` gives MiniLM's measured cost of quantising them).
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prefroute.embed._util import batches

BERT_FFN_OUTPUT = re.compile(r"layer\.\d+/output/dense/MatMul$")
"""MatMuls of a BERT-style encoder's feed-forward output projections (MiniLM's
``encoder.layer.N.output.dense``), kept fp32 by ``quantize_int8``."""
LLAMA_FFN_OUTPUT = re.compile(r"mlp/down_proj/MatMul$")
"""MatMuls of a Llama-style decoder's feed-forward output projections (SmolLM2's
``model.layers.N.mlp.down_proj``), kept fp32 by ``quantize_int8``."""


# -- running (onnxruntime, tokenizers) ---------------------------------------------------


def physical_cores() -> int:
    """Physical cores this process may run on: ONNX Runtime's best intra-op thread count.

    Hyper-threads share a core's vector units, so more threads than cores only
    adds contention. Read from /proc/cpuinfo (Linux) for the CPUs in this
    process's affinity mask; elsewhere, the logical CPU count.
    """
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    available = len(allowed) if allowed is not None else os.cpu_count() or 1  # macOS, Windows
    cores: set[tuple[str, str]] = set()
    try:
        with open("/proc/cpuinfo") as f:
            cpu, socket = -1, "0"
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "processor":
                    cpu, socket = int(value), "0"
                elif key == "physical id":
                    socket = value
                elif key == "core id" and (allowed is None or cpu in allowed):
                    cores.add((socket, value))
    except (OSError, ValueError):
        cores = set()
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


def load_tokenizer(path: str | os.PathLike[str], max_length: int | None) -> Any:
    """A ``tokenizers.Tokenizer`` from ``path`` that pads nothing and truncates at
    ``max_length`` (None: keeps every token, for callers that cut texts themselves).

    A tokenizer.json may pad every text to a fixed width (MiniLM's pads to 128);
    ``run_by_length`` pads each batch to its own longest text instead.
    """
    from tokenizers import Tokenizer  # type: ignore[import-untyped]

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    if max_length is None:
        tokenizer.no_truncation()
    else:
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


# -- building (torch, onnx: the train extra) ---------------------------------------------


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


def quantize_int8(fp32: Path, int8: Path, *, keep_fp32: re.Pattern[str] | None) -> list[str]:
    """Write ``fp32`` with int8 per-channel weights (dynamic quantisation) to ``int8``.

    MatMul nodes whose name matches ``keep_fp32`` stay fp32 (``BERT_FFN_OUTPUT``
    or ``LLAMA_FFN_OUTPUT``: see the module docstring); returns their names.
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
