"""Embedder speed on real prompts: load time, single-prompt latency, batched throughput.

    python benchmarks/embed.py [--latency-n 500] [--throughput-n 5000] [--seed 0]

Prompts are real ones from the shipped data (MMLU golden, AlpacaEval, Arena-Hard,
GSM8K), sampled with ``--seed``. Per backend:

- load: a fresh ``python`` process importing prefroute and loading the built
  model (what a server start pays; building is done beforehand, untimed)
- p50 / p99: ``encode([prompt])`` one prompt at a time, ``--latency-n`` prompts;
  "p50 CPU" is the process CPU time of the same calls (all threads): on a shared,
  busy machine it shows what a call costs when it is not waiting for a core
- prompts/s: one ``encode(prompts)`` call on ``--throughput-n`` prompts

minilm runs with its default intra-op threads (physical cores) and with one.

The ``api`` row runs only when ``PREFROUTE_EMBED_BASE_URL`` or an API key is set
(model: ``PREFROUTE_BENCH_API_MODEL``, default text-embedding-3-small). Two
extra rows time ``CachedEmbedder`` around ``static``: the first (cold) pass that
writes every vector, and a second (warm) pass that only reads them.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from prefroute.data.location import data_dir
from prefroute.embed import CachedEmbedder, Embedder, get_embedder
from prefroute.embed.minilm import MiniLMEmbedder, default_minilm_dir
from prefroute.onnx_models import physical_cores

SOURCES = (
    ("routellm-evals/mmlu_golden.jsonl.gz", "prompt"),
    ("alpaca-eval/instructions.jsonl.gz", "instruction"),
    ("arena-hard-v0.1-prompts/prompts.jsonl.gz", "prompt"),
    ("routellm-evals/gsm8k_golden.jsonl.gz", "prompt"),
)
TARGET_STATIC = "p50 ≤ 1 ms, ≥ 2,000/s"
TARGET_MINILM = "p50 ≤ 15 ms"
MISS = "all misses: embed + write"
HIT = "all hits: read only"


@dataclass
class Row:
    name: str
    spec: str
    dim: int
    load_s: float | None
    p50_ms: float
    p99_ms: float
    cpu_p50_ms: float
    per_s: float
    n_latency: int
    n_throughput: int
    target: str = ""


def real_prompts() -> list[str]:
    """Every distinct prompt of the sources, in file order."""
    root = data_dir()
    seen: dict[str, None] = {}
    for name, key in SOURCES:
        with gzip.open(root / name, "rt", encoding="utf-8") as f:
            for line in f:
                text = json.loads(line)[key]
                if text:
                    seen.setdefault(text, None)
    return list(seen)


def load_seconds(spec: str) -> float:
    """Wall time for a fresh process to import prefroute.embed and load ``spec``."""
    code = (
        "import time; t = time.perf_counter(); from prefroute.embed import get_embedder; "
        f"e = get_embedder({spec!r}, cache=False); e.encode(['warm up']); "
        "print(time.perf_counter() - t)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def measure(
    name: str,
    embedder: Embedder,
    latency: list[str],
    throughput: list[str],
    load_s: float | None,
    target: str = "",
) -> Row:
    embedder.encode(latency[:5])  # warm up: thread pools, caches
    times, cpu = [], []
    for prompt in latency:
        start, start_cpu = time.perf_counter(), time.process_time()
        embedder.encode([prompt])
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    start = time.perf_counter()
    out = embedder.encode(throughput)
    elapsed = time.perf_counter() - start
    assert out.shape == (len(throughput), embedder.dim)
    ms = np.asarray(times) * 1e3
    return Row(
        name,
        embedder.spec,
        embedder.dim,
        load_s,
        float(np.percentile(ms, 50)),
        float(np.percentile(ms, 99)),
        float(np.median(cpu)) * 1e3,
        len(throughput) / elapsed,
        len(latency),
        len(throughput),
        target,
    )


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (
        f"{model}; {os.cpu_count()} logical / {physical_cores()} physical cores; "
        f"Python {platform.python_version()}; load average at start {load}"
    )


def table(rows: list[Row]) -> str:
    lines = [
        "| backend | spec | dim | load (s) | p50 (ms) | p99 (ms) | p50 CPU (ms) "
        "| batched (prompts/s) | target |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        load = f"{r.load_s:.2f}" if r.load_s is not None else "–"
        lines.append(
            f"| {r.name} | `{r.spec}` | {r.dim} | {load} | {r.p50_ms:.3f} | {r.p99_ms:.3f} "
            f"| {r.cpu_p50_ms:.3f} | {r.per_s:,.0f} | {r.target} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-n", type=int, default=500)
    parser.add_argument("--throughput-n", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backends", default="static,minilm,api")
    args = parser.parse_args(argv)
    where = machine()  # now: the load average before this run adds its own

    pool = real_prompts()
    rng = random.Random(args.seed)
    latency = rng.sample(pool, args.latency_n)
    throughput = rng.sample(pool, args.throughput_n)
    wanted = args.backends.split(",")
    rows: list[Row] = []

    if "static" in wanted:
        static = get_embedder("static")  # builds once if needed (untimed)
        load = load_seconds("static")
        rows.append(measure("static", static, latency, throughput, load, TARGET_STATIC))
        with tempfile.TemporaryDirectory() as tmp:
            cached = CachedEmbedder(static, tmp)
            rows.append(measure("static + cache, cold", cached, latency, throughput, None, MISS))
            rows.append(measure("static + cache, warm", cached, latency, throughput, None, HIT))
    if "minilm" in wanted:
        minilm = get_embedder("minilm", cache=False)
        load = load_seconds("minilm")
        rows.append(measure("minilm int8 (ONNX)", minilm, latency, throughput, load, TARGET_MINILM))
        # One intra-op thread: on a busy machine two threads wait on each other.
        one = MiniLMEmbedder(default_minilm_dir(), num_threads=1)
        rows.append(measure("minilm int8, 1 thread", one, latency, throughput, None, TARGET_MINILM))
    if "api" in wanted and (
        os.environ.get("PREFROUTE_EMBED_BASE_URL")
        or os.environ.get("PREFROUTE_EMBED_API_KEY")
        or os.environ.get("OPENAI_API_KEY")
    ):
        model = os.environ.get("PREFROUTE_BENCH_API_MODEL", "text-embedding-3-small")
        api = get_embedder(f"api:{model}", cache=False)
        rows.append(measure("api", api, latency[:50], throughput[:500], None))

    command = shlex.join(["python", "benchmarks/embed.py", *(argv or sys.argv[1:])])
    print(f"Command: `{command}`  ")
    print(f"Machine: {where}  ")
    print(f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}; seed {args.seed}; ")
    print(
        f"prompts: {len(pool):,} distinct real prompts (MMLU, AlpacaEval, Arena-Hard, GSM8K); "
        f"latency on {args.latency_n}, throughput on {args.throughput_n:,}\n"
    )
    print(table(rows))


if __name__ == "__main__":
    main()
