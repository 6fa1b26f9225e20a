"""How much should a user's labels weigh beside the shipped data? ``--user-weight``, measured.

    python benchmarks/own_data_weight.py [--pairs mmlu-pro,llmrouter] [--labels 300]
        [--seeds 2] [--shares 0.0001,0.1,0.5,0.9] [--kind mf] [--out-dir DIR]

``--shares ''`` trains on yours alone only: with ``--labels 3000`` that is the
"3,000 prompts of your own in under a minute" timing (CPU seconds in the table).

For each pair of a shipped golden set, the set's prompts (those both models are
scored on) are split in halves by prompt, seeded. The user's labels are
``--labels`` prompts of the first half, written as a scores file; the second
half is the held-out eval file. The router kind is trained on the user's file
alone (``--no-shipped``), then with the shipped data added at each share of the
fit's weight (``user_weight``). It is honest: the held-out prompts are removed
from the shipped data (``eval_files``) and the user's whole source set is left
out of it (``exclude_datasets``), so the shipped data knows nothing of the user's
set. APGR on the held-out half (``evals.eval_file``) per run; the share whose
mean APGR is not below the user-only one, on every pair, is a safe default.
CPU seconds per run are process time (the machine may be shared).
"""

from __future__ import annotations

import argparse
import io
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
from embed import machine  # benchmarks/embed.py, this script's directory is on sys.path
from rich.console import Console

from prefroute.data import shipped
from prefroute.data.collect import collect_battles
from prefroute.data.location import data_dir as resolve_data_dir
from prefroute.data.recipe import training_set
from prefroute.evals.benchmarks import eval_file
from prefroute.evals.metrics import apgr
from prefroute.routers.base import Router
from prefroute.training import train_router

PAIRS = {
    "mmlu-pro": (
        "mmlu-pro-29model/non-mmlu", "gemini-1.5-pro-002", "llama-3.1-8b-instruct",
        "mmlu-pro-29model",
    ),
    "llmrouter": (
        "llmrouter-uiuc-9model/train", "llama-3.1-nemotron-51b-instruct",
        "mistral-7b-instruct-v0.3", "llmrouter-uiuc-9model",
    ),
    "routerbench": (
        "routerbench-routerdc", "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1",
        "routerbench-routerdc",
    ),
}  # fmt: skip
"""name -> (dataset prefix of the user's labels, strong, weak, the shipped set to leave out)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", default="mmlu-pro,llmrouter")
    parser.add_argument("--labels", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--shares", default="0.0001,0.1,0.5,0.9")
    parser.add_argument("--kind", default="mf")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--out-dir", type=Path, default=Path("benchmarks/out/own_data_weight"))
    args = parser.parse_args()
    root = resolve_data_dir(args.data_dir)
    shares = [float(s) for s in args.shares.split(",") if s]  # none: time yours alone
    columns = ["yours alone", *(f"+ shipped at {s:g}" for s in shares)]
    started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    scores = shipped.load_scores(root).table.frame
    rows: list[tuple[str, int, list[float], list[float]]] = []
    log = Console(stderr=True)
    for name in args.pairs.split(","):
        source, strong, weak, leave_out = PAIRS[name]
        for seed in range(args.seeds):
            work = args.out_dir / name / f"seed{seed}"
            mine, held = _split(scores, source, strong, weak, args.labels, seed, work)
            held_out = eval_file(held, strong, weak)
            quiet = Console(file=io.StringIO())
            results, seconds = [], []
            common = {"data_dir": root, "random_state": seed, "console": quiet}
            clock = time.process_time()
            out = train_router(
                args.kind, work / "alone", score_files=[mine], shipped=False,
                eval_files=[held], **common,
            )  # fmt: skip
            results.append(_apgr(out, held_out))
            seconds.append(time.process_time() - clock)
            collected = None
            if shares:
                collected = collect_battles(
                    root, score_files=[mine], eval_files=[held], exclude_datasets=[leave_out]
                )
            for share in shares:
                clock = time.process_time()
                data = training_set(root, collected=collected, user_weight=share, random_state=seed)
                out = train_router(args.kind, work / f"share{share:g}", data=data, **common)
                results.append(_apgr(out, held_out))
                seconds.append(time.process_time() - clock)
            log.print(f"{name} seed {seed}: " + ", ".join(f"{r:.3f}" for r in results))
            rows.append((name, seed, results, seconds))
    print(
        f"`python benchmarks/own_data_weight.py --pairs {args.pairs} --labels {args.labels} "
        f"--seeds {args.seeds} --shares {args.shares} --kind {args.kind}`\n"
    )
    print(f"{machine()}; started {started_at}; seeds 0..{args.seeds - 1}.\n")
    print(table(rows, columns, args.labels))
    (args.out_dir / "results.json").write_text(
        json.dumps([{"pair": p, "seed": s, "apgr": dict(zip(columns, r, strict=True)),
                     "cpu_seconds": c} for p, s, r, c in rows], indent=2) + "\n"
    )  # fmt: skip


def _split(
    scores: pl.DataFrame, source: str, strong: str, weak: str, labels: int, seed: int, work: Path
) -> tuple[Path, Path]:
    """The user's scores file (``labels`` prompts of one half) and the other half as the
    eval file; prompts both models are scored on, halved by a seeded permutation (with
    more labels than half the prompts, the rest is the eval file)."""
    frame = scores.filter(
        pl.col("dataset").str.starts_with(source) & pl.col("model").is_in([strong, weak])
    )
    both = frame.group_by("prompt_id").agg(pl.col("model").n_unique()).filter(pl.col("model") == 2)
    ids = both["prompt_id"].sort().to_numpy()
    order = np.random.default_rng(seed).permutation(len(ids))
    held_from = max(len(ids) // 2, labels)  # more labels than half: the rest is held out
    work.mkdir(parents=True, exist_ok=True)
    mine = _write(frame, ids[order[:labels]], work / "yours.jsonl")
    held = _write(frame, ids[order[held_from:]], work / "held-out.jsonl")
    return mine, held


def _write(frame: pl.DataFrame, ids: np.ndarray, path: Path) -> Path:
    chosen = frame.filter(pl.col("prompt_id").is_in(ids.tolist()))
    chosen.select("prompt_id", "prompt", "model", "score").write_ndjson(path)
    return path


def _apgr(artifact: Path, held_out) -> float:  # noqa: ANN001 - an EvalSet
    router = Router.load(artifact)
    scores = router.strong_win_rate(list(held_out.prompts))
    return float(apgr(scores, held_out.strong_quality, held_out.weak_quality))


def table(rows: list[tuple[str, int, list[float], list[float]]], columns: list[str], n: int) -> str:
    """Markdown: held-out APGR per pair and seed, the mean per pair, and CPU seconds."""
    lines = [
        f"Held-out APGR, {n} of your labels per run ({'; '.join(columns)}):\n",
        "| pair | seed | " + " | ".join(columns) + " |",
        "|---|---:|" + "---:|" * len(columns),
    ]
    for pair, seed, results, _ in rows:
        lines.append(f"| {pair} | {seed} | " + " | ".join(f"{r:.3f}" for r in results) + " |")
    for pair in dict.fromkeys(p for p, *_ in rows):
        mean = np.mean([r for p, _, r, _ in rows if p == pair], axis=0)
        lines.append(f"| **{pair} mean** | | " + " | ".join(f"**{m:.3f}**" for m in mean) + " |")
    cpu = np.mean([c for *_, c in rows], axis=0)
    lines.append("| CPU s per run (mean) | | " + " | ".join(f"{c:.0f}" for c in cpu) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
