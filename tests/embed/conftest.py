"""Embed fixtures: models built once per session into the real cache root.

The cache root is the user's (or ``PREFROUTE_CACHE_DIR``), so a second test run
is warm; a cold run distils and exports first (~30 s on 2 cores). Vector caches
always go to ``tmp_path`` so tests leave no vectors behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from shipped_prompts import read_prompts

from prefroute.embed.minilm import MiniLMEmbedder
from prefroute.embed.paths import cache_root
from prefroute.embed.static import StaticEmbedder


@pytest.fixture(scope="session")
def real_prompts(data_dir: Path) -> list[str]:
    """~300 real prompts of mixed kinds and lengths (incl. >256-token Arena-Hard ones)."""
    return (
        read_prompts(data_dir / "alpaca-eval" / "instructions.jsonl.gz", "instruction", 120)
        + read_prompts(data_dir / "routellm-evals" / "mmlu_golden.jsonl.gz", "prompt", 80)
        + read_prompts(data_dir / "routellm-evals" / "gsm8k_golden.jsonl.gz", "prompt", 50)
        + read_prompts(data_dir / "arena-hard-v0.1-prompts" / "prompts.jsonl.gz", "prompt", 50)
    )


@pytest.fixture(scope="session")
def long_prompts(data_dir: Path) -> list[str]:
    """The 40 longest real prompts of Arena-Hard and AlpacaEval (1,100 to 9,140 characters):
    the ones whose tokens reach the static model's 512-token truncation."""
    texts = read_prompts(
        data_dir / "arena-hard-v0.1-prompts" / "prompts.jsonl.gz", "prompt", 1000
    ) + read_prompts(data_dir / "alpaca-eval" / "instructions.jsonl.gz", "instruction", 1000)
    return sorted(texts, key=len)[-40:]


@pytest.fixture(scope="session")
def embed_cache_root() -> Path:
    return cache_root()


@pytest.fixture(scope="session")
def static_embedder(embed_cache_root: Path) -> StaticEmbedder:
    """The default ``static`` embedder (distilled on first use)."""
    return StaticEmbedder.default(cache_dir=embed_cache_root)


@pytest.fixture(scope="session")
def minilm_int8(embed_cache_root: Path) -> MiniLMEmbedder:
    """``minilm:onnx-int8`` without the vector cache (exported on first use)."""
    return MiniLMEmbedder.default("onnx-int8", cache_dir=embed_cache_root)


@pytest.fixture(scope="session")
def minilm_fp32(minilm_int8: MiniLMEmbedder) -> MiniLMEmbedder:
    return MiniLMEmbedder(minilm_int8.model_dir, variant="onnx-fp32")
