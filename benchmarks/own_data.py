"""Learning curves: how many of your own labelled prompts a router needs for your pair.

    python benchmarks/own_data.py [--pairs 0,1,2,3] [--kinds random,sw_ranking,mf,quality]
        [--sizes 100,300,1000,3000] [--seeds 3] [--shipped-sizes 300]
        [--shipped-kinds quality] [--shipped-seeds N] [--timing-size 3000]
        [--recommended quality] [--plot docs/own_data.png] [--json FILE] [--smoke]

Each pair (``pairs.py``: MMLU-Pro, RouterBench, LLMRouter golden sets) stands in
for a user's own labels: per prompt, both models' scores. Per seed, the pair's
prompts are split in two halves by prompt: the held-out half is written as an
eval file, and the user's first N prompts of the other half as a scores file,
as a user would write them (``prompt_id, prompt, model, score``). Each router
kind is then trained as a user would train it,

    prefroute train KIND --scores user.jsonl --no-shipped --eval-file heldout.jsonl

(``prefroute.training.train_router(kind, out, score_files=[user], shipped=False,
eval_files=[heldout])``, default settings), and, for ``--shipped-kinds`` at
``--shipped-sizes`` (and the first ``--shipped-seeds`` seeds: one such fit
reads the 2.8M shipped rows, about 5 CPU minutes), with the shipped data added:
the pair's whole source set left out of it (``exclude_datasets``) and the
held-out prompts removed (the eval file's decontamination). The artifact is
loaded and scored on the held-out half (``prefroute.evals.eval_file``); the
number is APGR there.

Baselines on the same splits, written as a user would write them with
scikit-learn on the same static embedding (``prefroute.embed.get_embedder("static")``):
random scores (mean and 5-95% band of 200 draws), prompt length (longer ->
strong), a 25-nearest-neighbour regressor of ``score_strong - score_weak``
(cosine), and a logistic regression of "the strong model scored higher".

Prints a markdown table (mean ± sd over seeds) and the targets, writes the
plot (APGR vs labels, one panel per pair). The pairs' halves hold fewer than
3,000 prompts, so the speed target (``train`` on 3,000 user prompts, no shipped
data) is timed apart: each kind trained once on ``--timing-size`` prompts of the
largest pair. ``--smoke`` is a tiny run for the test suite (one pair, 40 labels,
one seed, random and quality).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from embed import machine  # benchmarks/embed.py, this script's directory is on sys.path
from pairs import PAIRS, PairTable, pair_tables

from prefroute.data.location import data_dir as resolve_data_dir
from prefroute.evals.metrics import curve

RANDOM_DRAWS = 200
NEIGHBOURS = 25
RANDOM = "random draws"
"""The random baseline: 200 draws of uniform scores (the router kind ``random`` is one)."""
BASELINES = (RANDOM, "length", "knn25", "logreg")
TRAIN_SECONDS = 60
"""The issue's speed target for ``train`` on 3,000 user prompts, no shipped data."""
QUIET_PARAMS = {"mf": {"verbose": False}, "classifier": {"verbose": False}}
"""Constructor settings that only silence a kind's own progress output."""


@dataclass
class Cell:
    pair: str
    method: str
    """A router kind (``mf``), the same with shipped data (``mf + shipped``), or a baseline."""
    size: int
    """The size asked for (a column of the table)."""
    seed: int
    apgr: float
    cpu_s: float = 0.0
    labels: int = 0
    """Labelled prompts actually used: ``size``, or the whole pool when it is smaller."""
    low: float | None = None
    high: float | None = None
    """The random baseline's 5-95% band."""
    reached: int | None = None
    """A router's battles from the user's file that reached training (fit + validation)."""


# -- the user's files ------------------------------------------------------------------


def write_scores(path: Path, table: PairTable, rows: np.ndarray) -> Path:
    """The chosen prompts as a user's scores file (JSONL)."""
    with path.open("w", encoding="utf-8") as f:
        for record in table.scores_rows(rows):
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


# -- router kinds, through the public training call ------------------------------------


def train_and_score(
    kind: str,
    table: PairTable,
    user_file: Path,
    heldout_file: Path,
    out: Path,
    *,
    seed: int,
    shipped: bool,
) -> tuple[float, float, int]:
    """(APGR on the held-out half, CPU seconds of the training call, the user's battles
    that reached training) for one kind."""
    from rich.console import Console

    from prefroute.evals import eval_file
    from prefroute.routers import Router
    from prefroute.routers.artifact import read_config
    from prefroute.training import train_router

    started = time.process_time()
    artifact = train_router(
        kind,
        out,
        score_files=[user_file],
        shipped=shipped,
        exclude_datasets=[table.pair.source_set] if shipped else (),
        eval_files=[heldout_file],
        strong_model=table.pair.strong,
        weak_model=table.pair.weak,
        random_state=seed,
        params=QUIET_PARAMS.get(kind),
        console=Console(file=io.StringIO()),
    )
    cpu = time.process_time() - started
    (account,) = read_config(artifact).training_data.user_files
    held = eval_file(heldout_file, table.pair.strong, table.pair.weak)
    scores = Router.load(artifact).strong_win_rate(list(held.prompts))
    apgr = curve(scores, held.strong_quality, held.weak_quality).apgr
    return apgr, cpu, account.fit + account.validation


# -- baselines, as a user would write them ---------------------------------------------


def knn25(vectors: np.ndarray, y: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Mean strong-minus-weak score of the 25 most similar labelled prompts."""
    from sklearn.neighbors import KNeighborsRegressor

    model = KNeighborsRegressor(n_neighbors=min(NEIGHBOURS, len(y)), metric="cosine")
    return model.fit(vectors, y).predict(test)


def logreg(vectors: np.ndarray, y: np.ndarray, test: np.ndarray) -> np.ndarray:
    """P(the strong model scores higher), a logistic regression on the embedding."""
    from sklearn.linear_model import LogisticRegression

    wins = y > 0
    if wins.all() or not wins.any():  # one class only: nothing to rank by
        return np.zeros(len(test))
    return LogisticRegression(max_iter=1000).fit(vectors, wins).predict_proba(test)[:, 1]


LEARNED: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "knn25": knn25,
    "logreg": logreg,
}


def usable_sizes(sizes: list[int], pool: int) -> dict[int, int]:
    """Size asked -> labels used: a size past the pool takes the whole pool once (the
    pairs' halves hold 1,108 to 2,791 prompts, short of 3,000), larger ones are left out."""
    used: dict[int, int] = {}
    for size in sorted(sizes):
        if size <= pool:
            used[size] = size
        elif pool not in used.values():
            used[size] = pool
    return used


def baseline_cells(
    table: PairTable,
    vectors: np.ndarray,
    pool: np.ndarray,
    held: np.ndarray,
    sizes: dict[int, int],
    seed: int,
) -> list[Cell]:
    strong, weak = table.strong[held], table.weak[held]
    cells = []
    rng = np.random.default_rng(seed)
    draws = [curve(rng.random(len(held)), strong, weak).apgr for _ in range(RANDOM_DRAWS)]
    length = np.array([len(table.prompts[i]) for i in held], dtype=np.float64)
    for size, n in sizes.items():
        cells.append(
            Cell(
                table.pair.name,
                RANDOM,
                size,
                seed,
                float(np.mean(draws)),
                labels=n,
                low=float(np.percentile(draws, 5)),
                high=float(np.percentile(draws, 95)),
            )
        )
        length_apgr = curve(length, strong, weak).apgr
        cells.append(Cell(table.pair.name, "length", size, seed, length_apgr, labels=n))
        rows = pool[:n]
        y = table.strong[rows] - table.weak[rows]
        for name, method in LEARNED.items():
            started = time.process_time()
            scores = method(vectors[rows], y, vectors[held])
            cpu = time.process_time() - started
            apgr = curve(scores, strong, weak).apgr
            cells.append(Cell(table.pair.name, name, size, seed, apgr, cpu, labels=n))
    return cells


# -- the run ---------------------------------------------------------------------------


def run(args: argparse.Namespace, tables: list[PairTable]) -> list[Cell]:
    from prefroute.embed import get_embedder

    kinds = [k for k in args.kinds.split(",") if k]
    shipped_kinds = [k for k in args.shipped_kinds.split(",") if k]
    sizes = [int(s) for s in args.sizes.split(",")]
    shipped_sizes = [int(s) for s in args.shipped_sizes.split(",") if s]
    embedder = get_embedder("static")
    cells: list[Cell] = []
    with tempfile.TemporaryDirectory(prefix="prefroute-own-data-") as tmp:
        work = Path(tmp)
        for table in tables:
            vectors = embedder.encode(table.prompts)
            for seed in range(args.seeds):
                pool, held = table.halves(seed)
                usable = usable_sizes(sizes, len(pool))
                heldout_file = write_scores(work / f"heldout-{seed}.jsonl", table, held)
                cells += baseline_cells(table, vectors, pool, held, usable, seed)
                for size, n in usable.items():
                    user_file = write_scores(work / f"user-{seed}-{n}.jsonl", table, pool[:n])
                    runs = [(k, False) for k in kinds]
                    if size in shipped_sizes and seed < args.shipped_seeds:
                        runs += [(k, True) for k in shipped_kinds]
                    for kind, shipped in runs:
                        method = f"{kind} + shipped" if shipped else kind
                        apgr, cpu, reached = train_and_score(
                            kind,
                            table,
                            user_file,
                            heldout_file,
                            work / "artifact",
                            seed=seed,
                            shipped=shipped,
                        )
                        cells.append(
                            Cell(table.pair.name, method, size, seed, apgr, cpu, n, reached=reached)
                        )
                        print(
                            f"{table.pair.name} | seed {seed} | {n} labels | {method}: "
                            f"APGR {apgr:.3f} ({cpu:.0f} CPU s)",
                            file=sys.stderr,
                            flush=True,
                        )
    return cells


def timing(args: argparse.Namespace, tables: list[PairTable]) -> list[tuple[str, float, float]]:
    """(kind, CPU s, wall s) of one ``train`` per kind on ``--timing-size`` prompts of the
    largest pair, no shipped data, no eval file: the speed target, as a user runs it."""
    from rich.console import Console

    from prefroute.training import train_router

    table = max(tables, key=len)
    rows = np.random.default_rng(0).permutation(len(table))[: args.timing_size]
    out = []
    with tempfile.TemporaryDirectory(prefix="prefroute-own-data-timing-") as tmp:
        user_file = write_scores(Path(tmp) / "user.jsonl", table, rows)
        for kind in [k for k in args.kinds.split(",") if k]:
            wall, cpu = time.perf_counter(), time.process_time()
            train_router(
                kind,
                Path(tmp) / kind,
                score_files=[user_file],
                shipped=False,
                strong_model=table.pair.strong,
                weak_model=table.pair.weak,
                params=QUIET_PARAMS.get(kind),
                console=Console(file=io.StringIO()),
            )
            out.append((kind, time.process_time() - cpu, time.perf_counter() - wall))
    return out


def timing_table(timings: list[tuple[str, float, float]], size: int) -> str:
    lines = [
        f"\n`train KIND --scores` on {size:,} prompts, no shipped data (one run each):\n",
        "| kind | CPU s | wall s |",
        "|---|---:|---:|",
    ]
    lines += [f"| {kind} | {cpu:.1f} | {wall:.1f} |" for kind, cpu, wall in timings]
    return "\n".join(lines)


def summarise(cells: list[Cell], key: tuple[str, str, int]) -> tuple[float, float] | None:
    got = [c.apgr for c in cells if (c.pair, c.method, c.size) == key]
    return (float(np.mean(got)), float(np.std(got))) if got else None


def methods_in(cells: list[Cell]) -> list[str]:
    order = {m: i for i, m in enumerate(BASELINES)}
    found = list(dict.fromkeys(c.method for c in cells))
    return sorted(found, key=lambda m: (m not in order, order.get(m, 0), found.index(m)))


def render(cells: list[Cell], sizes: list[int]) -> str:
    methods = methods_in(cells)
    pairs = list(dict.fromkeys(c.pair for c in cells))
    lines = [
        "| pair | router / baseline | " + " | ".join(f"{s:,} labels" for s in sizes) + " |",
        "|---|---|" + "---:|" * len(sizes),
    ]
    for pair in [*pairs, "mean over pairs"]:
        for method in methods:
            row = []
            for size in sizes:
                if pair == "mean over pairs":
                    means = [summarise(cells, (p, method, size)) for p in pairs]
                    got = [m[0] for m in means if m is not None]
                    row.append(f"{np.mean(got):.3f}" if len(got) == len(pairs) else "–")
                    continue
                stat = summarise(cells, (pair, method, size))
                if stat is None:
                    row.append("–")
                    continue
                text = f"{stat[0]:.3f} ± {stat[1]:.3f}"
                if method == RANDOM:
                    band = [c for c in cells if (c.pair, c.method, c.size) == (pair, method, size)]
                    low = np.mean([c.low for c in band if c.low is not None])
                    high = np.mean([c.high for c in band if c.high is not None])
                    text = f"{stat[0]:.3f} [{low:.3f}, {high:.3f}]"
                row.append(text)
            if any(cell != "–" for cell in row):
                lines.append(f"| {pair} | {method} | " + " | ".join(row) + " |")
    name_of = {p.name: p.short for p in PAIRS}
    capped = sorted({(name_of[c.pair], c.size, c.labels) for c in cells if c.labels != c.size})
    if capped:
        lines.append("")
        lines.append(
            "Where a pair's half holds fewer prompts than a column asks, that column uses the "
            "whole half: "
            + "; ".join(f"{pair} {size:,} -> {n:,}" for pair, size, n in capped)
            + "."
        )
    trained = [c for c in cells if c.reached is not None]
    if trained:
        short: dict[str, float] = {}
        for c in trained:
            if c.reached is not None and c.reached < c.labels:
                gap = 1 - c.reached / c.labels
                short[c.pair] = max(short.get(c.pair, 0.0), gap)
        lines.append("")
        lines.append(
            "The user's labelled prompts that reached training (fit + validation): all"
            + (
                ", except "
                + "; ".join(f"{name_of[p]} up to {gap:.1%} fewer" for p, gap in short.items())
                if short
                else ""
            )
            + "."
        )
    return "\n".join(lines)


def cpu_table(cells: list[Cell], sizes: list[int]) -> str:
    trained = [m for m in methods_in(cells) if m not in BASELINES or m in LEARNED]
    lines = [
        "| router / baseline | " + " | ".join(f"{s:,} labels" for s in sizes) + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    for method in trained:
        row = []
        for size in sizes:
            got = [c.cpu_s for c in cells if c.method == method and c.size == size]
            row.append(f"{np.mean(got):.1f}" if got else "–")
        lines.append(f"| {method} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def targets(cells: list[Cell], recommended: str, sizes: list[int]) -> list[str]:
    """The issue's two targets, as measured."""
    pairs = list(dict.fromkeys(c.pair for c in cells))
    out = []
    for size in sizes:
        gaps = []
        for pair in pairs:
            ours, knn = (
                summarise(cells, (pair, recommended, size)),
                summarise(cells, (pair, "knn25", size)),
            )
            if ours and knn:
                gaps.append(ours[0] - knn[0])
        if gaps:
            wins = sum(g > 0 for g in gaps)
            out.append(
                f"- {size:,} labels: {recommended} − knn25 = {np.mean(gaps):+.3f} APGR on average "
                f"({wins}/{len(gaps)} pairs ahead; per pair "
                + ", ".join(f"{g:+.3f}" for g in gaps)
                + ")"
            )
    for size in sizes:
        shipped = f"{recommended} + shipped"
        gaps = []
        for pair in pairs:
            alone, added = (
                summarise(cells, (pair, recommended, size)),
                summarise(cells, (pair, shipped, size)),
            )
            if alone and added:
                gaps.append(added[0] - alone[0])
        if gaps:
            out.append(
                f"- {size:,} labels: adding the shipped data changes {recommended}'s held-out APGR "
                f"by {np.mean(gaps):+.3f} on average (per pair "
                + ", ".join(f"{g:+.3f}" for g in gaps)
                + ")"
            )
    return out


def plot(cells: list[Cell], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = list(dict.fromkeys(c.pair for c in cells))
    methods = methods_in(cells)
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.2 * len(pairs), 3.8), squeeze=False)
    for ax, pair in zip(axes[0], pairs, strict=True):
        for method in methods:
            sizes = sorted({c.size for c in cells if (c.pair, c.method) == (pair, method)})
            means = [summarise(cells, (pair, method, s)) for s in sizes]
            ys = np.array([m[0] for m in means if m is not None])
            # at the labels used: a size past the pool is the whole pool
            xs = [
                max(c.labels for c in cells if (c.pair, c.method, c.size) == (pair, method, s))
                for s in sizes
            ]
            if method == RANDOM:
                band = [
                    [c for c in cells if (c.pair, c.method, c.size) == (pair, method, s)]
                    for s in sizes
                ]
                low = [np.mean([c.low for c in b]) for b in band]
                high = [np.mean([c.high for c in b]) for b in band]
                ax.fill_between(xs, low, high, color="0.85", label="random 5-95%")
                ax.plot(xs, ys, color="0.5", lw=1, ls=":")
                continue
            style = "--" if method in BASELINES else "-"
            ax.plot(xs, ys, style, marker="o", ms=3, label=method)
        ax.set_xscale("log")
        ax.set_title({p.name: p.short for p in PAIRS}[pair], fontsize=9)
        ax.set_xlabel("your labelled prompts")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("APGR on the held-out half")
    axes[0][-1].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", default="0,1,2,3", help="indices into pairs.PAIRS")
    parser.add_argument("--kinds", default="random,sw_ranking,mf,quality")
    parser.add_argument("--sizes", default="100,300,1000,3000")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--shipped-sizes", default="300")
    parser.add_argument("--shipped-kinds", default="quality")
    parser.add_argument(
        "--shipped-seeds", type=int, default=None, help="seeds with shipped runs (default: all)"
    )
    parser.add_argument(
        "--timing-size", type=int, default=3000, help="prompts for the speed target; 0: skip"
    )
    parser.add_argument("--recommended", default="quality", help="the kind the docs recommend")
    parser.add_argument("--plot", type=Path, default=Path("docs/own_data.png"))
    parser.add_argument("--json", type=Path, default=None, help="write every cell here")
    parser.add_argument("--smoke", action="store_true", help="a tiny run for the test suite")
    args = parser.parse_args(argv)
    if args.smoke:
        args.pairs, args.kinds, args.sizes, args.seeds = "2", "random,quality", "40", 1
        args.shipped_sizes, args.shipped_kinds, args.timing_size = "", "", 200
        args.recommended = "quality"
    if args.shipped_seeds is None:
        args.shipped_seeds = args.seeds

    command = "python benchmarks/own_data.py " + " ".join(sys.argv[1:] if argv is None else argv)
    where = machine()
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    tables = pair_tables(resolve_data_dir(), tuple(PAIRS[int(i)] for i in args.pairs.split(",")))
    cells = run(args, tables)
    timings = timing(args, tables) if args.timing_size else []
    sizes = sorted({c.size for c in cells})
    print(f"`{command}`  \n{datetime.now(UTC):%Y-%m-%d}; {where}; seeds 0-{args.seeds - 1}\n")
    print("APGR on the held-out half (mean ± sd over seeds; random draws: mean [5%, 95%]):\n")
    print(render(cells, sizes))
    print("\nCPU s per training call (mean; a router: the whole `train`, calibration included):\n")
    print(cpu_table(cells, sizes))
    if timings:
        print(timing_table(timings, args.timing_size))
    print("\nTargets:\n")
    print("\n".join(targets(cells, args.recommended, sizes)) or "- (no cells to compare)")
    for kind, cpu, wall in timings:
        verdict = "met" if wall <= TRAIN_SECONDS else "MISSED"
        print(
            f"- `train {kind}` on {args.timing_size:,} prompts, no shipped data: {wall:.1f} s "
            f"wall, {cpu:.1f} CPU s (target ≤ {TRAIN_SECONDS} s: {verdict})"
        )
    print(f"\nwrote {plot(cells, args.plot)}")
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(c) for c in cells], indent=1) + "\n")
        print(f"wrote {args.json}")
    print(
        f"\n{time.process_time() - started_cpu:.0f} CPU s (this process), "
        f"{time.perf_counter() - started_wall:.0f} s wall."
    )


if __name__ == "__main__":
    main()
