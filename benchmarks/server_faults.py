"""How ``prefroute serve`` with its shipped defaults answers when its strong upstream misbehaves.

    python benchmarks/server_faults.py [--router DIR] [--seed 0]

For each fault, a fresh ``prefroute serve`` process (defaults only: the two
base URLs and model ids are the only flags) sits in front of
``prefroute.testing.FaultUpstream``, an OpenAI-compatible upstream on raw
asyncio streams that shares no code with the server. The strong model
misbehaves, the weak one answers. Per fault, in this order:

1. 8 clients send strong-routed requests and give up after 1 s; *slots held*
   is the server's admitted requests 1 s after they left.
2. One strong-routed request, then one streaming: time to the client's
   complete answer, its status, the model that answered, whether it fell back.
3. 20 more strong-routed requests one after another: *p50 after* minus the
   healthy row's p50 is what the fault still adds once the breaker has opened.
4. 16 strong-routed and 32 weak-routed requests at once: *weak refused* counts
   weak-routed requests that got no 200.

Then memory: 16 and then 32 concurrent bodies of the maximum size (15 MiB of
real Chatbot Arena prompts each), weak-routed, against a fresh server: its
RSS before, its peak and its RSS 2 s after. Prompts are real Arena prompts
(seeded shuffle); the router is an MF artifact (``--router DIR``, else one
trained here on the shipped recipe, ~1 min). Timing is wall time on a shared
machine: read a row as seconds-or-milliseconds, not as a precise figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from embed import machine  # benchmarks/embed.py, this script's directory is on sys.path
from server_load import free_port, prompts_and_router

from prefroute.serve.config import RoutingSettings, UpstreamSettings
from prefroute.testing import Fault, FaultUpstream

STRONG, WEAK = "strong-llm", "weak-llm"
TO_STRONG, TO_WEAK = "router-mf-0", "router-mf-1"  # every score is >= 0 and < 1
FAULTS: list[tuple[str, Fault | None]] = [
    ("healthy", None),
    ("hang (never answers)", Fault("hang")),
    ("slow (answers after 20 s)", Fault("slow", delay=20)),
    ("HTTP 500", Fault("status", status=500)),
    ("HTTP 429, Retry-After: 30", Fault("status", status=429, retry_after="30")),
    ("HTTP 401 (server's key refused)", Fault("status", status=401)),
    ("connection refused", None),
    ("connection closed, no answer", Fault("close")),
    ("answer cut mid-body", Fault("drop")),
    ("stream stalls after first event", Fault("stall")),
    ("malformed JSON / SSE", Fault("malformed")),
    ("HTML page, 200", Fault("wrong_type")),
    ("empty 200", Fault("empty")),
    ("negative usage", Fault("negative_usage")),
]


@dataclass
class Row:
    fault: str
    slots_held: int
    answers: list[tuple[str, float, int, str, str]]  # (mode, seconds, status, model, fallback)
    p50_after_ms: float
    weak_refused: int


def start_server(
    router: Path, strong_url: str, weak_url: str, log: Path
) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("prefroute")), "serve", str(router),
        "--strong-model", STRONG, "--weak-model", WEAK, "--strong-base-url", strong_url,
        "--weak-base-url", weak_url, "--port", str(port),
    ]  # fmt: skip
    server = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return server, url
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit(f"prefroute serve did not start; see {log}")


def body(prompt: str, model: str, stream: bool = False) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": prompt}], "stream": stream}


async def send(client: httpx.AsyncClient, url: str, payload: dict) -> tuple[float, int, str, str]:
    """(seconds to the complete answer, status, model that answered, fallback)."""
    start = time.perf_counter()
    if payload.get("stream"):
        async with client.stream("POST", f"{url}/v1/chat/completions", json=payload) as response:
            text = (await response.aread()).decode()
        ok = response.status_code == 200 and text.rstrip().endswith("[DONE]")
        status = response.status_code if ok or response.status_code != 200 else 0
    else:
        response = await client.post(f"{url}/v1/chat/completions", json=payload)
        status = response.status_code
    return (
        time.perf_counter() - start,
        status,
        response.headers.get("x-prefroute-model", "–"),
        response.headers.get("x-prefroute-fallback", "–"),
    )


async def measure(name: str, url: str, prompts: list[str]) -> Row:
    ask = itertools.cycle(prompts)
    async with httpx.AsyncClient(timeout=120) as client:

        async def give_up() -> None:
            with contextlib.suppress(httpx.ReadTimeout):
                await client.post(
                    f"{url}/v1/chat/completions", json=body(next(ask), TO_STRONG),
                    timeout=httpx.Timeout(120, read=1.0),
                )  # fmt: skip

        await asyncio.gather(*(give_up() for _ in range(8)))
        await asyncio.sleep(1.0)
        slots = (await client.get(f"{url}/health")).json()["in_flight"]
        answers = []
        for mode, stream in (("plain", False), ("stream", True)):
            answers.append((mode, *await send(client, url, body(next(ask), TO_STRONG, stream))))
        after = [(await send(client, url, body(next(ask), TO_STRONG)))[0] for _ in range(20)]
        strong = [send(client, url, body(next(ask), TO_STRONG, i % 2 == 0)) for i in range(16)]
        weak = [send(client, url, body(next(ask), TO_WEAK, i % 2 == 0)) for i in range(32)]
        results = await asyncio.gather(*strong, *weak)
        refused = sum(1 for _, status, _, _ in results[16:] if status != 200)
    return Row(name, slots, answers, statistics.median(after) * 1000, refused)


def rss_mb(pid: int, field: str) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"{field}:\s+(\d+) kB", text)
    return int(match.group(1)) / 1024 if match else float("nan")


def big_body(prompts: list[str], size: int) -> bytes:
    """A weak-routed request of about ``size`` bytes: real prompts, one after another."""
    text, total, i = [], 0, 0
    while total < size:
        text.append(prompts[i % len(prompts)])
        total += len(text[-1].encode()) + 2
        i += 1
    return json.dumps(body("\n\n".join(text), TO_WEAK), ensure_ascii=False).encode()


async def memory(url: str, pid: int, raw: bytes, clients: int) -> tuple[float, float, float, int]:
    """RSS before, peak and 2 s after ``clients`` concurrent ``raw`` bodies; how many got 200."""
    before = rss_mb(pid, "VmRSS")
    async with httpx.AsyncClient(timeout=300) as client:
        responses = await asyncio.gather(
            *(client.post(f"{url}/v1/chat/completions", content=raw) for _ in range(clients))
        )
    await asyncio.sleep(2)
    answered = sum(r.status_code == 200 for r in responses)
    return before, rss_mb(pid, "VmHWM"), rss_mb(pid, "VmRSS"), answered


def shipped_defaults() -> str:
    """The defaults the rows depend on, read from the settings (a copy here went stale)."""
    up = {name: f.default for name, f in UpstreamSettings.model_fields.items()}
    top = {name: f.default for name, f in RoutingSettings.model_fields.items()}
    return (
        f"first_byte_timeout {up['first_byte_timeout']:g} s, answer_timeout "
        f"{up['answer_timeout']:g} s, chunk_timeout {up['chunk_timeout']:g} s, deadline "
        f"{top['deadline']:g} s, retries {top['retries']}, breaker after "
        f"{top['breaker_failures']} failures for {top['breaker_cooldown']:g} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--router", type=Path, help="MF artifact (default: train one, ~1 min)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory-only", action="store_true", help="skip the fault rows")
    args = parser.parse_args()
    command = "python benchmarks/server_faults.py " + shlex.join(sys.argv[1:])

    tmp = Path(tempfile.mkdtemp(prefix="prefroute-faults-"))
    prompts, router = prompts_and_router(args.router, args.seed, tmp)
    print(f"machine: {machine()}", file=sys.stderr)

    rows: list[Row] = []
    with FaultUpstream() as upstream:
        for n, (name, fault) in enumerate([] if args.memory_only else FAULTS):
            upstream.reset()
            if fault is not None:
                upstream.faults[STRONG] = fault
            strong_url = (
                f"http://127.0.0.1:{free_port()}/v1"
                if name == "connection refused"
                else upstream.url
            )
            server, url = start_server(router, strong_url, upstream.url, tmp / f"serve-{n}.log")
            try:
                rows.append(asyncio.run(measure(name, url, prompts[n * 100 :] + prompts)))
            finally:
                upstream.release()
                server.terminate()
                server.wait(timeout=60)
            print(f"{name}: done", file=sys.stderr)

        upstream.reset()
        upstream.requests = type(upstream.requests)(maxlen=1)  # keep no 15 MiB bodies here
        server, url = start_server(router, upstream.url, upstream.url, tmp / "serve-memory.log")
        try:
            raw = big_body(prompts, 15 * 2**20)
            sizes = [(c, asyncio.run(memory(url, server.pid, raw, c))) for c in (16, 32)]
        finally:
            server.terminate()
            server.wait(timeout=60)

    healthy = rows[0].p50_after_ms if rows else 0.0
    print(f"Command: `{command}`  ")
    print(f"Machine: {machine()}  ")
    print(
        f"Server: `prefroute serve` with its shipped defaults ({shipped_defaults()}), "
        f"one process; real Arena prompts, seed {args.seed}; the strong model misbehaves, the "
        "weak one answers.\n"
    )
    print(
        "| strong upstream | slots held 1 s after 8 clients gave up | first answer s | status "
        "| answered by | fallback | first stream s | status | answered by | p50 after, ms "
        "(added) | weak-routed refused (of 32) |"
    )
    print("|---|---:|---:|---:|---|---|---:|---:|---|---:|---:|")
    for r in rows:
        (_, s1, st1, m1, f1), (_, s2, st2, m2, _) = r.answers
        added = r.p50_after_ms - healthy
        print(
            f"| {r.fault} | {r.slots_held} | {s1:.2f} | {st1} | {m1} | {f1} | {s2:.2f} "
            f"| {st2 or '200, error event'} "
            f"| {m2} | {r.p50_after_ms:.1f} ({added:+.1f}) | {r.weak_refused} |"
        )
    print(
        f"\nMemory: concurrent bodies of {len(raw) / 2**20:.1f} MiB (real Arena prompts), "
        "weak-routed, shipped defaults (max_body_memory 128 MiB: 8 such bodies held at once, "
        "the rest wait their turn; max_body_bytes 16 MiB).\n"
    )
    print("| concurrent bodies | answered 200 | RSS before MB | peak RSS MB | RSS 2 s after MB |")
    print("|---:|---:|---:|---:|---:|")
    for clients, (before, peak, after, answered) in sizes:
        print(f"| {clients} | {answered} | {before:.0f} | {peak:.0f} | {after:.0f} |")


if __name__ == "__main__":
    main()
