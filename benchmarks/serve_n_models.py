"""What choosing among N upstreams adds to a request through ``prefroute serve``: N = 2, 5
and 30 candidates against two-model routing and against calling the upstream directly.

    python benchmarks/serve_n_models.py [--requests 1000] [--block 25] [--seed 0]

A ``quality`` router is trained on the MMLU-Pro and LLMRouter training halves
together (37 models, as ``benchmarks/n_models.py`` times scoring); its 30 models
with the most rows are the candidates. Operating points ``n2``, ``n5`` and
``n30`` (the first 2, 5, 30 candidates, an equal share of calls each: offsets,
so the policy's full arithmetic runs) are stored in the artifact, and one server
serves all 30 as ``[models]`` upstreams, each played by the fake OpenAI upstream
(``prefroute.testing``, its own process). Every candidate is priced at the same
$1 per 1M tokens: prices change which model is chosen, not the work per request.
Held-out prompts (real MMLU-Pro and LLMRouter questions) are sent one at a time
on a keep-alive connection, in blocks of ``--block`` requests per row, the rows
taking turns, so a shared machine's drift falls on every row alike.

Rows: ``direct`` (to the fake), ``router-quality-0.5`` (two-model threshold
routing), ``router-quality:n2`` / ``:n5`` / ``:n30`` and ``router-quality@budget=2``
(all 30 candidates, λ calibrated on 1,000 training prompts). *Added* is a row's
percentile minus ``direct``'s. Server CPU is the server process's user+system
time over its row's requests. The in-process table times exactly what the server
runs per request (``RouterSet.select(name).decide_text(text)``) with
``time.process_time``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import polars as pl
from embed import machine  # benchmarks/embed.py, this script's directory is on sys.path
from n_models import fit, load_source, split
from server_load import free_port, wait_for_port

from prefroute.calibrate import calibrate_models
from prefroute.data.location import data_dir as resolve_data_dir

SIZES = (2, 5, 30)
CALIBRATION_PROMPTS = 1000
TARGETS = "issue 15: scoring N = 30 within 2x of two models; p50 added by routing <= 1 ms"


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def prepare(work: Path, seed: int) -> tuple[Path, list[str], list[str], list[str]]:
    """Train, save, calibrate; returns (config file, candidates, held-out prompts, names)."""
    data_dir = resolve_data_dir()
    parts = [load_source("mmlu-pro", data_dir), load_source("llmrouter", data_dir)]
    halves = [split(p, seed, None) for p in parts]
    train = pl.concat([h[0] for h in halves])
    held = pl.concat([h[1] for h in halves])
    counts = train.group_by("model").len().sort(["len", "model"], descending=[True, False])
    candidates = counts["model"].head(max(SIZES)).to_list()
    router, _ = fit("quality", train, candidates[0], candidates[1])
    artifact = router.save(work / "quality")
    prices = work / "prices.toml"
    prices.write_text(
        "".join(f'["{m}"]\ninput = 1.0\noutput = 1.0\nprovider = "flat"\n\n' for m in candidates)
    )
    rng = np.random.default_rng(seed)
    train_prompts = train.unique("prompt_id", keep="first").sort("prompt_id")["prompt"].to_list()
    chosen = rng.permutation(len(train_prompts))[:CALIBRATION_PROMPTS]
    calibration = work / "calibration.jsonl"
    calibration.write_text("".join(json.dumps({"prompt": train_prompts[i]}) + "\n" for i in chosen))
    for n in SIZES:
        shares = {m: 1.0 / n for m in candidates[:n]}
        calibrate_models(
            artifact, models=candidates[:n], shares=shares, prompts=calibration,
            prices=[prices], name=f"n{n}",
        )  # fmt: skip
    held_prompts = held.unique("prompt_id", keep="first").sort("prompt_id")["prompt"].to_list()
    held_prompts = [held_prompts[i] for i in rng.permutation(len(held_prompts))]
    names = ["router-quality-0.5", *(f"router-quality:n{n}" for n in SIZES)]
    names.append("router-quality@budget=2")
    return _config(work, artifact, prices, calibration, candidates), candidates, held_prompts, names


def _config(work: Path, artifact: Path, prices: Path, calibration: Path, models: list[str]) -> Path:
    config = work / "serve.toml"
    upstream = 'base_url = "http://127.0.0.1:{port}/v1"\n'
    text = (
        f'routers = ["{artifact}"]\nprices = ["{prices}"]\ncalibration_prompts = "{calibration}"\n'
        f"[strong]\n{upstream}[weak]\n{upstream}"
        + "".join(f'[models."{m}"]\n{upstream}' for m in models)
    )
    config.write_text(text)
    return config


def measure(
    port: int, fake_port: int, server_pid: int, names: list[str], prompts: list[str],
    requests: int, block: int, model: str,
) -> dict[str, tuple[np.ndarray, float]]:  # fmt: skip
    """Latencies (s) and server CPU per request (s) of every row, in alternating blocks."""
    rows = ["direct", *names]
    latencies: dict[str, list[float]] = {r: [] for r in rows}
    cpu: dict[str, float] = dict.fromkeys(rows, 0.0)
    with httpx.Client(timeout=30) as client:
        at = 0
        for start in range(0, requests + 2 * block, block):  # the first two blocks warm up
            for row in rows:
                url = fake_port if row == "direct" else port
                name = model if row == "direct" else row
                c0 = cpu_seconds(server_pid)
                for i in range(block):
                    prompt = prompts[(at + i) % len(prompts)]
                    body = {"model": name, "messages": [{"role": "user", "content": prompt}]}
                    t0 = time.perf_counter()
                    reply = client.post(f"http://127.0.0.1:{url}/v1/chat/completions", json=body)
                    took = time.perf_counter() - t0
                    if reply.status_code != 200:
                        raise SystemExit(f"{row}: HTTP {reply.status_code}: {reply.text}")
                    if start >= 2 * block:
                        latencies[row].append(took)
                if start >= 2 * block:
                    cpu[row] += cpu_seconds(server_pid) - c0
            at += block
    return {r: (np.array(latencies[r]), cpu[r] / len(latencies[r])) for r in rows}


def in_process(config: Path, names: list[str], prompts: list[str]) -> dict[str, np.ndarray]:
    """CPU seconds of ``select(name).decide_text(text)`` per request, in this process."""
    from prefroute.conversation import conversation_text
    from prefroute.serve.config import load_settings
    from prefroute.serve.routing import RouterSet

    text = config.read_text().replace("{port}", str(free_port()))
    resolved = config.with_name("in-process.toml")
    resolved.write_text(text)
    routers = RouterSet.load(load_settings(resolved))
    texts = [conversation_text([{"role": "user", "content": p}], "first") or "" for p in prompts]
    out = {}
    for name in names:
        for t in texts[:50]:
            routers.select(name).decide_text(t)
        times = []
        for t in texts:
            c0 = time.process_time()
            routers.select(name).decide_text(t)
            times.append(time.process_time() - c0)
        out[name] = np.array(times)
    return out


def candidates_of(name: str) -> str:
    if name.endswith("-0.5"):
        return "2 (threshold)"
    if "@budget" in name:
        return "30 (budget)"
    return name.rsplit(":n", 1)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1000, help="per row")
    parser.add_argument("--block", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    command = "python benchmarks/serve_n_models.py " + shlex.join(sys.argv[1:])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        started = time.process_time()
        config, candidates, prompts, names = prepare(work, args.seed)
        print(f"prepared in {time.process_time() - started:.1f} s CPU", file=sys.stderr)
        fake_port, port = free_port(), free_port()
        text = config.read_text().replace("{port}", str(fake_port))
        config.write_text(text)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        fake = subprocess.Popen(
            [sys.executable, "-m", "prefroute.testing", "--port", str(fake_port)],
            env=env, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        server = subprocess.Popen(
            [sys.executable, "-m", "prefroute", "serve", "--config", str(config),
             "--port", str(port)],
            env=env, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for_port(fake_port, fake, "the fake upstream")
            wait_for_port(port, server, "the server")
            served = measure(
                port, fake_port, server.pid, names, prompts, args.requests, args.block,
                candidates[0],
            )  # fmt: skip
        finally:
            for proc in (server, fake):
                proc.terminate()
                proc.wait(timeout=30)
        local = in_process(config, names, prompts[: args.requests])

    direct = served["direct"][0]
    d50, d99 = (float(np.percentile(direct, q)) * 1e3 for q in (50, 99))
    print(f"## Serving among N models: routing overhead ({datetime.now(UTC):%Y-%m-%d})\n")
    print(f"`{command}`; {machine()}; seed {args.seed}; shared machine.\n")
    print(
        f"{args.requests:,} held-out prompts per row, one at a time; {TARGETS}.\n\n"
        "| row | candidates | p50 ms | p99 ms | added p50 ms | added p99 ms | "
        "server CPU ms/request |\n|---|---|---:|---:|---:|---:|---:|"
    )
    for row, (lat, cpu) in served.items():
        p50, p99 = (float(np.percentile(lat, q)) * 1e3 for q in (50, 99))
        added = "" if row == "direct" else f"{p50 - d50:.3f} | {p99 - d99:.3f}"
        added = added or "| "
        cands = "–" if row == "direct" else candidates_of(row)
        spent = "–" if row == "direct" else f"{cpu * 1e3:.2f}"  # the server is not involved
        print(f"| `{row}` | {cands} | {p50:.3f} | {p99:.3f} | {added} | {spent} |")
    base = float(np.median(local["router-quality:n2"]))
    print(
        "\nIn process, what the server runs per request (`select(name).decide_text(text)`), "
        "CPU time:\n\n| name | candidates | p50 ms | p99 ms | p50 vs N = 2 |\n"
        "|---|---|---:|---:|---:|"
    )
    for name, times in local.items():
        p50, p99 = (float(np.percentile(times, q)) * 1e3 for q in (50, 99))
        print(
            f"| `{name}` | {candidates_of(name)} | {p50:.3f} | {p99:.3f} | "
            f"{p50 / (base * 1e3):.2f}× |"
        )


if __name__ == "__main__":
    main()
