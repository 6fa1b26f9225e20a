"""What a router costs to start and to score with: fresh-process load, server RSS, CLI start,
MF latency and throughput, SW CPU time per query.

    python benchmarks/startup.py --mf DIR --sw DIR [--repeats 5] [--batch-size 256]
        [--passes 10] [--busy 2]

``--mf`` / ``--sw``: router artifacts (e.g. ``prefroute train mf --out /tmp/mf``,
the shipped recipe, ~1 min; ``prefroute train sw_ranking --out /tmp/sw``). Every
measurement runs in a fresh ``python`` process, so it sees the imports and the
memory a server start or a ``prefroute route`` call would. Rows:

- load + first score: ``from prefroute.routers.base import Router``,
  ``Router.load(DIR)`` and one ``strong_win_rate`` call, timed inside the process
  (interpreter start-up not included; the process's whole wall time is shown
  beside it, and its CPU time, which a busy machine does not inflate), with its
  peak RSS (``VmHWM``) and the heavy modules it imported; median of ``--repeats``
  processes
- ``prefroute serve`` worker: one worker in front of the fake upstream
  (``prefroute.testing``), RSS after start-up and one chat completion routed by
  ``router-mf-0.5``
- ``prefroute --help``: the console script's wall time, median of ``--repeats``,
  and whether it imported numpy or polars
- MF per prompt: ``strong_win_rate([prompt])`` over the real Arena-Hard prompts one
  at a time (p50 / p99 wall), and batched (``--batch-size``, ``--passes`` passes over
  them) in a process pinned to one core (``sched_setaffinity``)
- SW per query: ``strong_win_rate([prompt])`` on the same prompts, wall and CPU time
  (``time.process_time``: every thread of the process), alone and with ``--busy``
  processes spinning on the machine's cores beside it
"""

from __future__ import annotations

import argparse
import gzip
import json
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from embed import machine  # benchmarks/embed.py, this script's directory is on sys.path
from server_load import free_port, peak_rss_mb, wait_for_port

from prefroute.data.location import data_dir

WATCHED = (
    "numpy", "polars", "scipy", "torch", "transformers", "sklearn", "model2vec",
    "huggingface_hub", "httpx", "yaml", "joblib", "tqdm", "onnxruntime",
)  # fmt: skip
"""Modules worth naming when a process imported them."""
TARGETS = {
    "load_s": 0.5, "load_rss_mb": 100.0, "serve_rss_mb": 120.0, "help_s": 0.3,
    "mf_p99_ms": 0.6, "mf_batched_per_s": 10_000.0,
}  # fmt: skip
"""The issue's targets (at most, except throughput: at least)."""
SAMPLE = "Prove that the square root of 2 is irrational."

_REPORT = """
import json, re, sys, time
WATCHED = sys.argv[-1].split(",")
def report(**values):
    with open("/proc/self/status") as f:
        status = f.read()
    kb = lambda key: int(re.search(key + r":\\s+(\\d+) kB", status).group(1))
    values.update(
        rss_mb=kb("VmHWM") / 1024,
        imported=[m for m in WATCHED if sys.modules.get(m) is not None],
    )
    print(json.dumps(values))
"""

LOAD = (
    "import time\nstart = time.perf_counter()\n"
    + _REPORT
    + """
from prefroute.routers.base import Router
router = Router.load(sys.argv[1])
router.strong_win_rate([sys.argv[2]])
report(seconds=time.perf_counter() - start, cpu_s=time.process_time())
"""
)

SCORE = (
    _REPORT
    + """
import os
artifact, prompts_file, mode, batch_size, passes = sys.argv[1:6]
from prefroute.routers.base import Router
router = Router.load(artifact)
with open(prompts_file, encoding="utf-8") as f:
    prompts = json.load(f)
if mode == "batched":
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
router.strong_win_rate(prompts[:8])  # warm up: caches, thread pools
if mode == "single":
    walls, cpus = [], []
    for prompt in prompts:
        c, t = time.process_time(), time.perf_counter()
        router.strong_win_rate([prompt])
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    report(walls=walls, cpus=cpus)
else:
    size, n = int(batch_size), 0
    c, t = time.process_time(), time.perf_counter()
    for _ in range(int(passes)):
        for i in range(0, len(prompts), size):
            n += len(router.strong_win_rate(prompts[i : i + size]))
    report(seconds=time.perf_counter() - t, cpu_s=time.process_time() - c, n=n)
"""
)


@dataclass
class Load:
    what: str
    seconds: float
    cpu_s: float | None
    process_s: float
    rss_mb: float
    imported: list[str]


def run_python(code: str, *args: str) -> tuple[dict, float]:
    """Run ``code`` in a fresh interpreter; its JSON report and the process's wall time."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code, *args, ",".join(WATCHED)], capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"benchmark process failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1]), wall


def arena_hard_prompts() -> list[str]:
    with gzip.open(data_dir() / "arena-hard-v0.1-prompts" / "prompts.jsonl.gz", "rt") as f:
        return [json.loads(line)["prompt"] for line in f]


def fresh_load(kind: str, artifact: Path, repeats: int) -> Load:
    runs = [run_python(LOAD, str(artifact), SAMPLE) for _ in range(repeats)]
    middle = sorted(runs, key=lambda r: r[0]["seconds"])[len(runs) // 2]
    return Load(
        what=f"{kind}: import + `Router.load` + first score",
        seconds=middle[0]["seconds"],
        cpu_s=middle[0]["cpu_s"],
        process_s=middle[1],
        rss_mb=statistics.median(r[0]["rss_mb"] for r in runs),
        imported=middle[0]["imported"],
    )


def cli_help(repeats: int) -> Load:
    script = str(Path(sys.executable).with_name("prefroute"))
    walls = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([script, "--help"], capture_output=True, check=True)
        walls.append(time.perf_counter() - started)
    code = (
        _REPORT
        + "sys.argv = ['prefroute', '--help']\nfrom prefroute.cli import app\n"
        + "try:\n    app()\nexcept SystemExit:\n    pass\nreport()\n"
    )
    probe, _ = run_python(code)
    wall = statistics.median(walls)
    return Load(
        "`prefroute --help` (console script)", wall, None, wall, probe["rss_mb"], probe["imported"]
    )


def serve_worker(artifact: Path, tmp: Path) -> float:
    """RSS (MB) of one ``prefroute serve`` worker after start-up and one routed request."""
    import urllib.request

    up_port, port = free_port(), free_port()
    upstream = subprocess.Popen(
        [sys.executable, "-m", "prefroute.testing", "--port", str(up_port), "--delay", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{up_port}/v1"
    log = (tmp / "serve.log").open("w")
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("prefroute")), "serve", str(artifact),
         "--port", str(port), "--strong-base-url", url, "--weak-base-url", url],
        stdout=log, stderr=log,
    )  # fmt: skip
    try:
        wait_for_port(up_port, upstream, "the fake upstream")
        wait_for_port(port, server, "prefroute serve")
        body = {"model": "router-mf-0.5", "messages": [{"role": "user", "content": SAMPLE}]}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            data=json.dumps(body).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200, answer.status
        rss = peak_rss_mb(server.pid)
        assert rss is not None
        return rss
    finally:
        for proc in (server, upstream):
            proc.terminate()
            proc.wait(timeout=30)


class Busy:
    """``n`` processes spinning in pure Python, as other jobs on a shared machine would."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> Busy:
        code = "while True: pass"
        self.procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(self.n)]
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()


def pct(values: list[float], q: int) -> float:
    """The ``q``-th percentile (1-99), interpolated as numpy's default does."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mf", type=Path, required=True, help="MF artifact directory")
    parser.add_argument("--sw", type=Path, required=True, help="SW ranking artifact directory")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--passes", type=int, default=10)
    parser.add_argument("--busy", type=int, default=2, help="spinning processes for the SW row")
    args = parser.parse_args()
    where = machine()  # now, so its load average is the one at the start
    started = time.perf_counter()

    prompts = arena_hard_prompts()
    loads = [
        fresh_load("mf", args.mf, args.repeats),
        fresh_load("sw_ranking", args.sw, args.repeats),
    ]
    loads.append(cli_help(args.repeats))
    with tempfile.TemporaryDirectory(prefix="prefroute-startup-") as tmp:
        prompts_file = Path(tmp) / "prompts.json"
        prompts_file.write_text(json.dumps(prompts), "utf-8")
        serve_rss = serve_worker(args.mf, Path(tmp))
        score = ("single", "0", "0")
        mf_single, _ = run_python(SCORE, str(args.mf), str(prompts_file), *score)
        batched = ("batched", str(args.batch_size), str(args.passes))
        mf_batch, _ = run_python(SCORE, str(args.mf), str(prompts_file), *batched)
        sw_quiet, _ = run_python(SCORE, str(args.sw), str(prompts_file), *score)
        with Busy(args.busy):
            sw_busy, _ = run_python(SCORE, str(args.sw), str(prompts_file), *score)

    print(f"Command: `{shlex.join(['python', 'benchmarks/startup.py', *sys.argv[1:]])}`  ")
    print(f"Machine: {where}  ")
    print(
        f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}; artifacts {args.mf}, {args.sw}; "
        f"prompts: the {len(prompts)} real Arena-Hard v0.1 prompts; "
        f"{time.perf_counter() - started:.0f} s wall\n"
    )

    print(
        "| fresh process | seconds | CPU s | process wall s | peak RSS MB "
        "| heavy modules imported |"
    )
    print("|---|---:|---:|---:|---:|---|")
    for r in loads:
        cpu_s = "–" if r.cpu_s is None else f"{r.cpu_s:.3f}"
        print(
            f"| {r.what} | {r.seconds:.3f} | {cpu_s} | {r.process_s:.3f} | {r.rss_mb:.0f} "
            f"| {', '.join(r.imported) or 'none'} |"
        )
    print(
        f"| `prefroute serve` worker (1 worker, after 1 request) | – | – | – "
        f"| {serve_rss:.0f} | – |"
    )

    ms = [t * 1e3 for t in mf_single["walls"]]
    cpu = [t * 1e3 for t in mf_single["cpus"]]
    per_s = mf_batch["n"] / mf_batch["seconds"]
    cpu_per_s = mf_batch["n"] / mf_batch["cpu_s"]
    print(
        "\n| MF on Arena-Hard, one prompt a call | p50 ms | p99 ms | max ms "
        "| CPU p50 ms | CPU p99 ms |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    print(
        f"| `strong_win_rate([prompt])` | {statistics.median(ms):.3f} | {pct(ms, 99):.3f} "
        f"| {max(ms):.3f} | {statistics.median(cpu):.3f} | {pct(cpu, 99):.3f} |"
    )
    print(
        f"\nMF batched on one core (batches of {args.batch_size}, {args.passes} passes): "
        f"{per_s:,.0f} prompts/s wall, {cpu_per_s:,.0f} per CPU second."
    )

    print("\n| SW ranking, one query at a time | wall p50 ms | CPU p50 ms | CPU / wall (total) |")
    print("|---|---:|---:|---:|")
    for name, run in (("machine as found", sw_quiet), (f"{args.busy} busy processes", sw_busy)):
        wall, cpu = [t * 1e3 for t in run["walls"]], [t * 1e3 for t in run["cpus"]]
        print(
            f"| {name} | {statistics.median(wall):.2f} | {statistics.median(cpu):.2f} "
            f"| {sum(cpu) / sum(wall):.2f} |"
        )
    t = TARGETS
    print(
        f"\nTargets: load + first score ≤ {t['load_s']:g} s and ≤ {t['load_rss_mb']:g} MB; "
        f"serve worker ≤ {t['serve_rss_mb']:g} MB; `--help` ≤ {t['help_s']:g} s; MF p99 ≤ "
        f"{t['mf_p99_ms']:g} ms, batched ≥ {t['mf_batched_per_s']:,.0f}/s on one core; "
        "SW CPU ≤ wall."
    )


if __name__ == "__main__":
    main()
