"""What ``prefroute serve`` adds to a request: the same load sent straight to an
upstream and through the server, in one run, at each level of concurrency.

    python benchmarks/server_load.py [--router DIR] [--requests 10000]
        [--concurrency 1,4,16,64] [--delay 0.05] [--stream-share 0.5]
        [--routing auto,inline,thread] [--seed 0]

Three processes: the fake OpenAI upstream (``prefroute.testing``,
a fixed ``--delay`` before each answer), ``prefroute serve`` with a router
(``--router DIR`` of any kind, else an MF router trained here on the shipped
recipe, ~1 min), and
this load generator: ``--concurrency`` clients on keep-alive connections send
``--requests`` chat completions, ``--stream-share`` of them streaming, with
real Chatbot Arena prompts routed at the calibrated 50% share. The generator
speaks raw HTTP/1.1 over asyncio so that it takes as little of the machine's
CPU as possible from the two processes measured.

Rows, for each comma-separated ``--concurrency``: ``direct`` (to the upstream)
and one per ``--routing`` mode of the server (``inline`` on the event loop,
``thread`` in the threadpool, ``auto`` inline unless the prompt is long); each
server runs once through all levels.
Latency is request sent to last byte; *added* is a row's percentile minus the
direct row's at the same concurrency. An error is a non-200 answer or an
incomplete one (a stream without ``[DONE]``); *lost* is a request that got no
answer at all. Peak RSS is the server's ``VmHWM`` after the level. Each row
runs after a warm-up of ``--warmup`` requests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from embed import machine  # benchmarks/embed.py, this script's directory is on sys.path

TARGETS = {"added p50 ms": 3.0, "added p99 ms": 15.0, "peak RSS MB": 400.0}


@dataclass
class Result:
    name: str
    clients: int
    latencies: np.ndarray  # seconds, answered requests
    errors: int
    lost: int
    wall: float
    rss_mb: float | None = None
    routing_us: float | None = None
    cpu_ms: float | None = None  # CPU per request of the process answering

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1000)


class Connection:
    """One keep-alive HTTP/1.1 connection; just enough protocol for this load."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {
            k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)
        }
        if "content-length" in headers:
            content = await self.reader.readexactly(int(headers["content-length"]))
        else:  # chunked (streams)
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                parts.append((await self.reader.readexactly(size + 2))[:-2])
                if size == 0:
                    break
            content = b"".join(parts)
        if headers.get("connection") == "close":
            self.writer.close()
        return status, content


def complete(status: int, content: bytes, stream: bool) -> bool:
    if status != 200:
        return False
    if stream:
        return content.rstrip().endswith(b"data: [DONE]") and b'"error"' not in content
    return b'"choices"' in content


async def load(
    port: int, bodies: list[tuple[bytes, bool]], concurrency: int
) -> tuple[list[float], int, int, float]:
    """Send every body once from ``concurrency`` clients; (latencies, errors, lost, wall)."""
    latencies: list[float] = []
    errors = lost = 0
    queue = iter(bodies)

    async def client() -> None:
        nonlocal errors, lost
        conn = Connection("127.0.0.1", port)
        for body, stream in queue:
            start = time.perf_counter()
            try:
                status, content = await asyncio.wait_for(
                    conn.post("/v1/chat/completions", body), 60
                )
            except (OSError, asyncio.IncompleteReadError, TimeoutError):
                lost += 1
                conn.writer = None
                continue
            latencies.append(time.perf_counter() - start)
            errors += not complete(status, content, stream)

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return latencies, errors, lost, time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not listen on port {port} within {timeout:.0f} s")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a server's worker processes), from Linux ``/proc``."""
    pids, i = [pid], 0
    while i < len(pids):
        try:
            tasks = Path(f"/proc/{pids[i]}/task").iterdir()
            pids += [int(c) for t in tasks for c in (t / "children").read_text().split()]
        except OSError:
            pass
        i += 1
    return pids


def proc_texts(pid: int, name: str) -> list[str]:
    """``/proc/<p>/<name>`` of ``pid`` and each of its workers that is still there."""
    texts = []
    for p in process_tree(pid):
        try:
            texts.append(Path(f"/proc/{p}/{name}").read_text())
        except OSError:
            continue
    return texts


def peak_rss_mb(pid: int) -> float | None:
    """The summed ``VmHWM`` of the process and its workers."""
    kb = [re.search(r"VmHWM:\s+(\d+) kB", text) for text in proc_texts(pid, "status")]
    total = sum(int(match.group(1)) for match in kb if match)
    return total / 1024 if total else None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time so far of a process and its workers (Linux ``/proc``)."""
    stats = [text.rsplit(")", 1)[1].split() for text in proc_texts(pid, "stat")]
    if not stats:
        return None
    return sum(int(f[11]) + int(f[12]) for f in stats) / os.sysconf("SC_CLK_TCK")


def routing_totals(port: int) -> tuple[float, float]:
    """The server's routing time so far and the number of routed requests."""
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    total = re.search(r"^prefroute_routing_seconds_sum (\S+)", text, re.M)
    count = re.search(r"^prefroute_routing_seconds_count (\S+)", text, re.M)
    return (float(total.group(1)) if total else 0.0), (float(count.group(1)) if count else 0.0)


def bodies_for(prompts: list[str], model: str, n: int, stream_share: float, seed: int):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        stream = rng.random() < stream_share
        body = {
            "model": model,
            "messages": [{"role": "user", "content": prompts[i % len(prompts)]}],
            "max_tokens": 64,
        }
        if stream:
            body["stream"] = True
        out.append((json.dumps(body).encode(), stream))
    return out


def run_row(
    name: str, port: int, bodies, warmup: int, concurrency: int, pid: int, answering: int
) -> Result:
    """Warm up, then the measured load; the CPU time of ``pid`` and its workers is
    counted per request. ``answering``: how many prefroute processes answer (0 for the
    upstream); only a single one has a routing mean, since each worker keeps its own."""
    try:  # the load generator's own overhead is noise in every row: keep it small
        from uvloop import run
    except ImportError:
        run = asyncio.run
    run(load(port, bodies[:warmup], concurrency))
    cpu_before = cpu_seconds(pid)
    routing_before = routing_totals(port) if answering == 1 else None
    latencies, errors, lost, wall = run(load(port, bodies[warmup:], concurrency))
    cpu_after = cpu_seconds(pid)
    result = Result(name, concurrency, np.asarray(latencies), errors, lost, wall)
    if cpu_before is not None and cpu_after is not None:
        result.cpu_ms = (cpu_after - cpu_before) / (len(bodies) - warmup) * 1000
    if routing_before is not None:
        (seconds, count), (seconds0, count0) = routing_totals(port), routing_before
        seconds, count = seconds - seconds0, count - count0
        result.routing_us = seconds / count * 1e6 if count else None
    if answering:
        result.rss_mb = peak_rss_mb(pid)
    return result


def table(results: list[Result]) -> str:
    lines = [
        "| clients | path | requests | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms "
        "| errors | lost | server peak RSS MB | routing mean µs | CPU ms/request |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    direct: dict[int, Result] = {}
    for r in results:
        n = len(r.latencies) + r.lost
        base = direct.setdefault(r.clients, r)  # the direct row comes first at each level
        added = (
            ("–", "–")
            if r is base
            else (f"{r.pct(50) - base.pct(50):.2f}", f"{r.pct(99) - base.pct(99):.2f}")
        )
        rss = f"{r.rss_mb:.0f}" if r.rss_mb is not None else "–"
        routing = f"{r.routing_us:.0f}" if r.routing_us is not None else "–"
        cpu = f"{r.cpu_ms:.2f}" if r.cpu_ms is not None else "–"
        lines.append(
            f"| {r.clients} | {r.name} | {n:,} | {n / r.wall:,.0f} | {r.pct(50):.2f} "
            f"| {r.pct(99):.2f} | {added[0]} | {added[1]} | {r.errors} | {r.lost} | {rss} "
            f"| {routing} | {cpu} |"
        )
    return "\n".join(lines)


def prompts_and_router(router: Path | None, seed: int, tmp: Path) -> tuple[list[str], Path]:
    """The real Arena prompts in a seeded order, and the MF artifact to serve: ``router``,
    or one trained in ``tmp`` on the shipped recipe (~1 min)."""
    from prefroute.data.location import data_dir
    from prefroute.data.shipped import arena_prompts

    prompts = arena_prompts(data_dir())
    random.Random(seed).shuffle(prompts)
    if router is None:
        from prefroute.training import train_router

        router = train_router("mf", tmp / "router-mf", random_state=seed)
    return prompts, router


def start_server(
    router: Path, mode: str, workers: int, up_port: int, tmp: Path
) -> tuple[subprocess.Popen, int]:
    """``prefroute serve`` with ``mode`` routing in front of the fake upstream."""
    port = free_port()
    config = tmp / f"{mode}.toml"
    config.write_text(
        f'routing = "{mode}"\nworkers = {workers}\n'
        f'[strong]\nbase_url = "http://127.0.0.1:{up_port}/v1"\n'
        f'[weak]\nbase_url = "http://127.0.0.1:{up_port}/v1"\n'
    )
    log = (tmp / f"server-{mode}.log").open("w")
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("prefroute")),
            "serve",
            str(router),
            "--config",
            str(config),
            "--port",
            str(port),
        ],  # fmt: skip
        stdout=log,
        stderr=log,
    )
    return server, port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--router", type=Path, help="artifact to serve (default: train MF here, ~1 min)"
    )
    parser.add_argument("--requests", type=int, default=10_000, help="per row")
    parser.add_argument("--concurrency", default="64", help="comma-separated client counts")
    parser.add_argument("--delay", type=float, default=0.05, help="upstream delay, s")
    parser.add_argument("--stream-share", type=float, default=0.5)
    parser.add_argument("--routing", default="auto,inline,thread", help="server routing modes")
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    modes = args.routing.split(",")
    command = "python benchmarks/server_load.py " + shlex.join(sys.argv[1:])
    where = machine()  # now: the load average before this run adds its own

    from prefroute.data.model_names import DEFAULT_STRONG

    tmp = Path(tempfile.mkdtemp(prefix="prefroute-load-"))
    prompts, router = prompts_and_router(args.router, args.seed, tmp)
    print(f"machine: {where}", file=sys.stderr)
    routed_model = f"router-{json.loads((router / 'router.json').read_text())['kind']}@50%"

    total = args.warmup + args.requests
    direct_bodies = bodies_for(prompts, DEFAULT_STRONG, total, args.stream_share, args.seed)
    routed_bodies = bodies_for(prompts, routed_model, total, args.stream_share, args.seed)
    procs: list[subprocess.Popen] = []
    results: list[Result] = []
    try:
        up_port = free_port()
        upstream = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefroute.testing",
                "--port",
                str(up_port),
                "--delay",
                str(args.delay),
            ]  # fmt: skip
        )
        procs.append(upstream)
        wait_for_port(up_port, upstream, "the fake upstream")
        servers = {}
        for mode in modes:
            server, port = start_server(router, mode, args.workers, up_port, tmp)
            procs.append(server)
            wait_for_port(port, server, "prefroute serve")
            servers[mode] = (server, port)
        workers = f", {args.workers} workers" if args.workers > 1 else ""
        for clients in levels:
            results.append(
                run_row(
                    "direct to upstream",
                    up_port,
                    direct_bodies,
                    args.warmup,
                    clients,
                    upstream.pid,
                    answering=0,
                )  # fmt: skip
            )
            for mode, (server, port) in servers.items():
                results.append(
                    run_row(
                        f"through prefroute serve (routing {mode}{workers})",
                        port,
                        routed_bodies,
                        args.warmup,
                        clients,
                        server.pid,
                        answering=args.workers,
                    )  # fmt: skip
                )
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)

    print(f"Command: `{command}`  ")
    print(f"Machine: {where}  ")
    print(
        f"Load: {args.requests:,} requests per row after {args.warmup} warm-up, "
        f"{args.concurrency} concurrent keep-alive clients, {args.stream_share:.0%} "
        f"streaming, upstream delay {args.delay * 1000:.0f} ms, real Arena prompts at "
        f"{routed_model}; seed {args.seed}; server and upstream are separate processes "
        "on the same machine.\n"
    )
    print(table(results))
    print(
        f"\nTargets: added p50 ≤ {TARGETS['added p50 ms']:g} ms, p99 ≤ "
        f"{TARGETS['added p99 ms']:g} ms, 0 errors, 0 lost, RSS ≤ {TARGETS['peak RSS MB']:g} MB."
    )


if __name__ == "__main__":
    main()
