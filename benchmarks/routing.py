"""Router kinds side by side: training time, artifact size, and serving speed on real prompts.

    python benchmarks/routing.py [--kinds random,sw_ranking,mf,classifier,causal_llm]
        [--out-dir DIR] [--n-single 500] [--n-batch 5000] [--batch-size 256] [--seed 0]

Every kind trains with ``train_router`` on ONE training set
(``training_set(mmlu_gold_slice=1500)``, collected once, untimed), then is served
in a fresh ``python`` process that starts with ``sys.modules['torch'] = None``,
so serving has the imports and memory a server would, and any ``import torch``
fails the row. Per kind:

- train s: the ``training_data.fit_seconds`` the artifact records; saving and
  calibrating are not in it
- artifact MB: the artifact directory on disk, and the part that is the bundled
  ``embedder/``
- load s: importing prefroute, ``Router.load`` and routing one prompt: what a
  server start pays before it can answer (interpreter start-up not included)
- p50 / p99 ms: ``route([prompt], threshold)`` one prompt at a time, ``--n-single`` prompts
- batched prompts/s: ``route`` over ``--n-batch`` prompts in batches of ``--batch-size``
- peak RSS MB: the serving process's peak resident memory, prompts included (a few
  MB): ``VmHWM`` from ``/proc/self/status``, not ``ru_maxrss``, which on Linux keeps
  the parent's peak across fork and exec (it read 2.2 GB for ``random``, the size of
  this training process); ``ru_maxrss`` only where there is no ``/proc``

Prompts are real: half Chatbot Arena / Arena-Hard (``arena_prompts``, all 1,970
when fewer than half are asked for), the rest MMLU questions, sampled with
``--seed``. The threshold is the artifact's calibrated 50% strong share.
Default kinds: every kind in ``KINDS`` whose module imports; a kind that fails
to train or serve is left out of the table with the reason.
"""

from __future__ import annotations

import argparse
import json
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
from embed import machine  # benchmarks/embed.py, this script's directory is on sys.path
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from prefroute.data import shipped
from prefroute.data.location import data_dir as resolve_data_dir
from prefroute.data.recipe import TrainingSet, training_set
from prefroute.routers.artifact import read_config
from prefroute.routers.registry import KINDS, router_class
from prefroute.training import describe, train_router

GOLD_SLICE = 1500
STRONG_SHARE = 0.5
TARGETS: dict[str, tuple[str, float]] = {
    "mf": ("p50_ms", 2.0),
    "sw_ranking": ("p50_ms", 20.0),
    "classifier": ("p50_ms", 15.0),
    "causal_llm": ("p50_ms", 150.0),
}
"""p50 targets from the issue (ms, at most); plus batched mf ≥ ``MF_BATCHED_TARGET``."""
MF_BATCHED_TARGET = 2000.0
WATCHED = ("transformers", "onnxruntime", "tokenizers", "scipy", "sklearn", "polars")
"""Heavy modules worth naming when the serving process imported them."""

# Runs in a fresh interpreter: only what serving needs, and torch made unimportable.
SERVE = """\
import sys
sys.modules["torch"] = None  # any `import torch` in the serving process now raises
import json, resource, time

artifact, prompts_file = sys.argv[1], sys.argv[2]
batch_size, share, watched = int(sys.argv[3]), float(sys.argv[4]), sys.argv[5].split(",")
start = time.perf_counter()
from prefroute.routers.base import Router

router = Router.load(artifact)
threshold = router.threshold_for_share(share) if getattr(router, "calibration_", None) else share
router.route(["warm up"], threshold)
load_s = time.perf_counter() - start

with open(prompts_file, encoding="utf-8") as f:
    prompts = json.load(f)
single, batch = prompts["single"], prompts["batch"]
router.route(single[:5], threshold)  # warm up: thread pools, caches
times = []
for prompt in single:
    t = time.perf_counter()
    router.route([prompt], threshold)
    times.append(time.perf_counter() - t)
t = time.perf_counter()
routed = 0
for i in range(0, len(batch), batch_size):
    routed += len(router.route(batch[i : i + batch_size], threshold))
batch_s = time.perf_counter() - t
assert routed == len(batch), (routed, len(batch))

# ru_maxrss keeps the parent's peak across fork + exec (Linux), so a child of a 2 GB
# trainer would report 2 GB; VmHWM is this process's own address space's peak.
try:
    with open("/proc/self/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
except OSError:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
print(json.dumps({
    "load_s": load_s,
    "times": times,
    "batch_s": batch_s,
    "rss_mb": rss / 2**20 if sys.platform == "darwin" else rss / 1024,
    "imported": [m for m in watched if sys.modules.get(m) is not None],
}))
"""


@dataclass
class Row:
    kind: str
    train_s: float
    artifact_mb: float
    embedder_mb: float
    load_s: float
    p50_ms: float
    p99_ms: float
    per_s: float
    rss_mb: float
    imported: list[str]


def importable_kinds() -> tuple[list[str], list[str]]:
    """Kinds whose module imports, and a note for each that does not."""
    kinds, notes = [], []
    for kind in KINDS:
        try:
            router_class(kind)
        except Exception as exc:  # any import failure means "not available here"
            notes.append(
                f"{kind}: skipped, its module does not import ({type(exc).__name__}: {exc})"
            )
        else:
            kinds.append(kind)
    return kinds, notes


def real_prompts(root: Path, n: int, rng: random.Random) -> list[str]:
    """``n`` real prompts: half Arena (as many as there are), the rest MMLU questions."""
    arena = shipped.arena_prompts(root)
    mmlu = shipped.eval_prompts(root)["mmlu"]
    n_arena = min(len(arena), n // 2)
    prompts = rng.sample(arena, n_arena) + rng.sample(mmlu, n - n_arena)
    rng.shuffle(prompts)
    return prompts


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


def serve(artifact: Path, prompts_file: Path, batch_size: int) -> dict:
    """Measure one artifact in a fresh, torch-less process; the process's JSON report."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            SERVE,
            str(artifact),
            str(prompts_file),
            str(batch_size),
            str(STRONG_SHARE),
            ",".join(WATCHED),
        ],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        raise RuntimeError(f"serving process failed: {tail[0]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(kind: str, artifact: Path, prompts_file: Path, batch_size: int, n_batch: int) -> Row:
    training = read_config(artifact).training_data
    report = serve(artifact, prompts_file, batch_size)
    ms = np.asarray(report["times"]) * 1e3
    embedder = artifact / "embedder"
    return Row(
        kind=kind,
        train_s=float(training.fit_seconds or 0.0) if training else 0.0,
        artifact_mb=size_mb(artifact),
        embedder_mb=size_mb(embedder) if embedder.exists() else 0.0,
        load_s=report["load_s"],
        p50_ms=float(np.percentile(ms, 50)),
        p99_ms=float(np.percentile(ms, 99)),
        per_s=n_batch / report["batch_s"],
        rss_mb=report["rss_mb"],
        imported=report["imported"],
    )


def table(rows: list[Row]) -> str:
    lines = [
        "| kind | train s | artifact MB | load s | p50 ms | p99 ms | batched prompts/s "
        "| peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        size = f"{r.artifact_mb:.1f}"
        if r.embedder_mb:
            size += f" (embedder {r.embedder_mb:.1f})"
        lines.append(
            f"| {r.kind} | {r.train_s:.1f} | {size} | {r.load_s:.2f} | {r.p50_ms:.3f} "
            f"| {r.p99_ms:.3f} | {r.per_s:,.0f} | {r.rss_mb:.0f} |"
        )
    return "\n".join(lines)


def targets(rows: list[Row]) -> str:
    """The issue's targets, each with the measured value when its kind ran."""
    by_kind = {r.kind: r for r in rows}
    lines = [
        "Targets (issue): p50 mf ≤ 2 ms, sw_ranking ≤ 20 ms, classifier ≤ 15 ms, "
        "causal_llm ≤ 150 ms; batched mf ≥ 2,000 prompts/s."
    ]
    for kind, (_, limit) in TARGETS.items():
        if kind in by_kind:
            value = by_kind[kind].p50_ms
            verdict = "met" if value <= limit else "MISSED"
            lines.append(f"- {kind} p50 {value:.3f} ms (≤ {limit:g} ms): {verdict}")
        else:
            lines.append(f"- {kind} p50 ≤ {limit:g} ms: not measured")
    if "mf" in by_kind:
        value = by_kind["mf"].per_s
        verdict = "met" if value >= MF_BATCHED_TARGET else "MISSED"
        lines.append(
            f"- mf batched {value:,.0f} prompts/s (≥ {MF_BATCHED_TARGET:,.0f}/s): {verdict}"
        )
    return "\n".join(lines)


def run(
    kinds: list[str],
    out_dir: Path,
    data: TrainingSet,
    root: Path,
    prompts_file: Path,
    args: argparse.Namespace,
    console: Console,
    notes: list[str],
) -> list[Row]:
    rows: list[Row] = []
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("", total=len(kinds))
        for i, kind in enumerate(kinds, 1):
            artifact = out_dir / kind
            progress.update(task, description=f"[{i}/{len(kinds)}] {kind}: training")
            try:
                train_router(
                    kind, artifact, data_dir=root, data=data, random_state=args.seed,
                    console=console,
                )  # fmt: skip
            except Exception as exc:
                notes.append(f"{kind}: skipped, training failed ({type(exc).__name__}: {exc})")
                console.print(f"[red]{notes[-1]}[/red]")
                progress.advance(task)
                continue
            progress.update(task, description=f"[{i}/{len(kinds)}] {kind}: serving (fresh process)")
            try:
                rows.append(measure(kind, artifact, prompts_file, args.batch_size, args.n_batch))
            except Exception as exc:
                notes.append(f"{kind}: skipped, {exc}")
                console.print(f"[red]{notes[-1]}[/red]")
            else:
                r = rows[-1]
                console.print(
                    f"{kind}: p50 {r.p50_ms:.3f} ms, {r.per_s:,.0f} prompts/s batched, "
                    f"peak RSS {r.rss_mb:.0f} MB"
                )
            progress.advance(task)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", help="comma-separated; default: every kind that imports")
    parser.add_argument("--out-dir", type=Path, help="keep the artifacts here (default: temp)")
    parser.add_argument("--n-single", type=int, default=500)
    parser.add_argument("--n-batch", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    console = Console(stderr=True)
    started = time.perf_counter()
    where = machine()  # now, so its load average is the one at the start
    if args.kinds:
        kinds, notes = [k.strip() for k in args.kinds.split(",") if k.strip()], []
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            parser.error(f"unknown kinds {unknown}; expected some of {sorted(KINDS)}")
    else:
        kinds, notes = importable_kinds()
        for note in notes:
            console.print(f"[yellow]{note}[/yellow]")

    root = resolve_data_dir()
    rng = random.Random(args.seed)
    single = real_prompts(root, args.n_single, rng)
    batch = real_prompts(root, args.n_batch, rng)
    with console.status("collecting and decontaminating the training data (once, untimed)"):
        data = training_set(root, mmlu_gold_slice=GOLD_SLICE, random_state=args.seed)
    describe(data, console)

    with tempfile.TemporaryDirectory(prefix="prefroute-bench-") as tmp:
        out_dir = args.out_dir or Path(tmp)
        out_dir.mkdir(parents=True, exist_ok=True)
        prompts_file = Path(tmp) / "prompts.json"
        prompts_file.write_text(json.dumps({"single": single, "batch": batch}), "utf-8")
        rows = run(kinds, out_dir, data, root, prompts_file, args, console, notes)

    command = shlex.join(["python", "benchmarks/routing.py", *(argv or sys.argv[1:])])
    print(f"Command: `{command}`  ")
    print(f"Machine: {where}  ")
    print(f"Date: {datetime.now(UTC):%Y-%m-%d %H:%M UTC}; seed {args.seed}  ")
    print(
        f"Training: one `training_set(mmlu_gold_slice={GOLD_SLICE})`, "
        f"{len(data.battles):,} battles, shared by every kind  "
    )
    print(
        f"Serving: fresh process per kind with `sys.modules['torch'] = None`; "
        f"p50/p99 over {args.n_single:,} real prompts one at a time, batched over "
        f"{args.n_batch:,} in batches of {args.batch_size}; threshold at a "
        f"{STRONG_SHARE:.0%} strong share\n"
    )
    print(table(rows))
    print()
    print(targets(rows))
    imported = [f"{r.kind}: {', '.join(r.imported) or 'none'}" for r in rows]
    print(f"\nHeavy modules the serving process imported ({', '.join(WATCHED)}): ")
    print("; ".join(imported))
    if notes:
        print("\nNot in the table:")
        for note in notes:
            print(f"- {note}")
    print(f"\nWall time: {time.perf_counter() - started:,.0f} s")


if __name__ == "__main__":
    main()
