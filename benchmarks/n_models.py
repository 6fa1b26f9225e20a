"""Routing among N models on the shipped multi-model sets: AIQ against the singles hull,
a 25-NN baseline and the oracle, the cost to match the best model, and scoring speed.

    python benchmarks/n_models.py [--sets mmlu-pro,routerbench,llmrouter]
        [--kinds quality,mf,sw_ranking] [--seeds 0,1,2] [--max-prompts N]
        [--plot docs/n-models.png] [--timing-n 1000]

Per set and seed, the prompts are split in two halves at random (by prompt, seeded);
every router trains on one half only (the user's own data: no shipped data) and is
measured on the other:

- ``mmlu-pro``: MMLU-Pro without its MMLU questions (``from_mmlu`` dropped: 5,222
  questions), 29 models. Routers train on all 29; they choose among the models the
  shipped price table prices (7), priced per prompt (input tokens estimated from the
  text by ``prefroute.tokens``, 264 output tokens); the 22 others have no list price
  and are not candidates.
- ``routerbench``: routerbench-routerdc train (ARC, MBPP, Winogrande), 11 models, each
  call priced by the set's own ``cost_usd``.
- ``llmrouter``: LLMRouter (UIUC) train, 9 models, priced by LLMRouter's own price list
  (``benchmarks/prices/llmrouter.toml``), per prompt as for MMLU-Pro.

Kinds: the ``quality`` kind (``fit_scores`` on the half's scores), MF and SW ranking
(``fit`` on the half's scores as battles, ``battles_from_scores``; MF with its
defaults, SW ranking with its defaults). Baseline: a 25-nearest-neighbour
per-model-correctness router on the same static embedding (the mean true score of the
25 most similar training prompts, cosine). References: the single models, their hull
(what mixing them at random buys) and the oracle. Each router's qualities go through
the λ policy (``prefroute.policy``) among all candidates, and between the best and the
cheapest model only ("2-model"). AIQ is over the candidates' cost range (RouterBench).

Timing: an MF and a quality router trained on MMLU-Pro and LLMRouter together (37
models); one prompt at a time, ``model_quality`` for 2 and for 30 candidates and
``strong_win_rate``, p50 wall and CPU over ``--timing-n`` real prompts.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
from embed import machine  # benchmarks/embed.py, this script's directory is on sys.path

from prefroute.data.augment import battles_from_scores
from prefroute.data.location import data_dir as resolve_data_dir
from prefroute.data.model_names import canonicalise
from prefroute.data.schema import Scores
from prefroute.data.shipped import load_scores, read_shipped
from prefroute.embed import get_embedder
from prefroute.evals.n_models import (
    ModelSet,
    ModelsResult,
    RouterCurves,
    measure,
    model_set,
    references,
)
from prefroute.evals.report import write_models_plot
from prefroute.policy import CallCosts, Policy
from prefroute.prices import price_table
from prefroute.routers.base import Router
from prefroute.routers.registry import router_class

HERE = Path(__file__).resolve().parent
LLMROUTER_PRICES = HERE / "prices" / "llmrouter.toml"
SETS = ("mmlu-pro", "routerbench", "llmrouter")
KINDS = ("quality", "mf", "sw_ranking")
NEIGHBOURS = 25
OUTPUT_TOKENS = 264.0
TIMING_CANDIDATES = 30


@dataclass(frozen=True)
class Source:
    """One shipped set as long scores, every model it has, its candidates and their costs."""

    name: str
    scores: pl.DataFrame  # prompt_id, prompt, model, score
    candidates: tuple[str, ...]
    costs: CallCosts | pl.DataFrame
    cost_source: str
    unpriced: tuple[str, ...] = ()


def _scores(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select("prompt_id", "prompt", "model", "score").drop_nulls("score")


def load_source(name: str, data_dir: Path) -> Source:
    if name == "routerbench":
        schema = {"prompt_id": pl.String, "prompt": pl.String, "model": pl.String,
                  "score": pl.Float64, "cost_usd": pl.Float64}  # fmt: skip
        raw = read_shipped(data_dir, "routerbench-routerdc", "golden_train", schema)
        raw = raw.with_columns(canonicalise(pl.col("model"))).drop_nulls(["score", "cost_usd"])
        models = tuple(sorted(raw["model"].unique().to_list()))
        own = raw.select("prompt_id", "model", pl.col("cost_usd").alias("cost"))
        return Source(name, _scores(raw), models, own, "the set's own per-call cost_usd")
    shipped = load_scores(data_dir).table.frame
    if name == "mmlu-pro":
        frame = shipped.filter(pl.col("dataset") == "mmlu-pro-29model/non-mmlu")
        table = price_table()
        label = "the shipped price table"
    elif name == "llmrouter":
        frame = shipped.filter(pl.col("dataset").str.starts_with("llmrouter-uiuc-9model/train/"))
        table = price_table([LLMROUTER_PRICES])
        label = f"LLMRouter's own price list ({LLMROUTER_PRICES.relative_to(HERE.parent)})"
    else:
        raise SystemExit(f"unknown set {name!r}; expected some of {', '.join(SETS)}")
    models = sorted(frame["model"].unique().to_list())
    priced = tuple(m for m in models if m in table)
    costs = CallCosts.from_prices(priced, table, output_tokens=OUTPUT_TOKENS)
    source = (
        f"{label}, per prompt: input tokens estimated from the text, {OUTPUT_TOKENS:g} "
        "output tokens"
    )
    unpriced = tuple(m for m in models if m not in table)
    return Source(name, _scores(frame), priced, costs, source, unpriced)


def split(source: Source, seed: int, max_prompts: int | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The set's prompts cut in two random halves (seeded): (train scores, held-out scores)."""
    ids = np.array(sorted(source.scores["prompt_id"].unique().to_list()))
    rng = np.random.default_rng(seed)
    ids = ids[rng.permutation(len(ids))]
    if max_prompts is not None:
        ids = ids[:max_prompts]
    half = len(ids) // 2
    train, held = ids[:half].tolist(), ids[half:].tolist()
    frame = source.scores
    return frame.filter(pl.col("prompt_id").is_in(train)), frame.filter(
        pl.col("prompt_id").is_in(held)
    )


def fit(kind: str, train: pl.DataFrame, strong: str, weak: str) -> tuple[Router, float]:
    """A router of ``kind`` on the training half; and its fit's CPU seconds."""
    scores = Scores(train.with_columns(source=pl.lit("golden"), dataset=pl.lit("user")))
    params: dict[str, object] = {"strong_model": strong, "weak_model": weak}
    if kind in ("quality", "mf"):
        params["verbose"] = False
    router = router_class(kind)(**params)
    started = time.process_time()
    if kind == "quality":
        router.fit_scores(scores)  # type: ignore[attr-defined]
    else:
        router.fit(battles_from_scores(scores))
    return router, time.process_time() - started


def knn(
    train: ModelSet, held: ModelSet, embed: Callable[[Sequence[str]], np.ndarray]
) -> np.ndarray:
    """The 25-NN baseline: per held-out prompt, each candidate's mean true score over the
    25 most similar training prompts (cosine on the static embedding)."""
    known, queries = embed(list(train.prompts)), embed(list(held.prompts))
    similarity = queries @ known.T
    nearest = np.argpartition(-similarity, NEIGHBOURS, axis=1)[:, :NEIGHBOURS]
    return train.quality[nearest].mean(axis=1)


def quality_of(router: Router, s: ModelSet) -> np.ndarray:
    out = np.empty((len(s), len(s.models)))
    for start in range(0, len(s), 512):
        batch = list(s.prompts[start : start + 512])
        out[start : start + len(batch)] = router.model_quality(batch, s.models)
    return out


@dataclass
class Cell:
    """One router's numbers on one set, over seeds."""

    aiq: list[float]
    two: list[float]
    quality_at_best: list[float]
    match: list[float | None]  # cost to match the best model, as a share of its cost
    fit_cpu: list[float]


def run_set(
    source: Source,
    kinds: Sequence[str],
    seeds: Sequence[int],
    max_prompts: int | None,
    log: Callable[[str], None],
) -> tuple[dict[str, Cell], list[ModelsResult], list[ModelSet]]:
    cells: dict[str, Cell] = {}
    results = []
    held_sets = []
    embedder = get_embedder("static")
    for seed in seeds:
        train_scores, held_scores = split(source, seed, max_prompts)
        held = model_set(held_scores, source.candidates, source.costs, name=source.name,
                         cost_source=source.cost_source)  # fmt: skip
        train = model_set(train_scores, source.candidates, source.costs, name=source.name,
                          cost_source=source.cost_source)  # fmt: skip
        strong, weak = train.models[train.best], train.models[train.cheapest]
        curves: list[RouterCurves] = []
        for kind in kinds:
            router, cpu = fit(kind, train_scores, strong, weak)
            started = time.perf_counter()
            curve = measure(
                kind, kind, quality_of(router, held), held, time.perf_counter() - started
            )
            curves.append(curve)
            _add(cells, kind, curve, held, cpu)
            log(f"{source.name} seed {seed}: {kind} AIQ {curve.summary.aiq:.4f} ({cpu:.1f} s CPU)")
        started = time.process_time()
        baseline = measure("25-NN", "baseline", knn(train, held, embedder.encode), held)
        _add(cells, "25-NN", baseline, held, time.process_time() - started)
        curves.append(baseline)
        singles, singles_summary, oracle, oracle_summary = references(held)
        result = ModelsResult(held, tuple(curves), singles, singles_summary, oracle, oracle_summary)
        for label, summary in (("singles hull", singles_summary), ("oracle", oracle_summary)):
            cell = cells.setdefault(label, Cell([], [], [], [], []))
            cell.aiq.append(summary.aiq)
            cell.quality_at_best.append(summary.quality_at_best_cost)
            cell.match.append(_share(summary.cost_to_match_best, held))
        results.append(result)
        held_sets.append(held)
        log(f"{source.name} seed {seed}: singles hull {singles_summary.aiq:.4f}, 25-NN "
            f"{baseline.summary.aiq:.4f}, oracle {oracle_summary.aiq:.4f}")  # fmt: skip
    return cells, results, held_sets


def _share(cost: float | None, s: ModelSet) -> float | None:
    return None if cost is None else cost / float(s.mean_cost[s.best])


def _add(cells: dict[str, Cell], label: str, curve: RouterCurves, s: ModelSet, cpu: float) -> None:
    cell = cells.setdefault(label, Cell([], [], [], [], []))
    cell.aiq.append(curve.summary.aiq)
    cell.two.append(curve.two_model_summary.aiq if curve.two_model_summary else float("nan"))
    cell.quality_at_best.append(curve.summary.quality_at_best_cost)
    cell.match.append(_share(curve.summary.cost_to_match_best, s))
    cell.fit_cpu.append(cpu)


def _mean(values: Sequence[float]) -> str:
    v = np.asarray(values, dtype=np.float64)
    return f"{v.mean():.4f} ± {v.std():.4f}" if len(v) > 1 else f"{v.mean():.4f}"


def _match(values: Sequence[float | None]) -> str:
    reached = [v for v in values if v is not None]
    if not reached:
        return "never"
    text = f"{np.mean(reached):.0%}"
    return text if len(reached) == len(values) else f"{text} ({len(values) - len(reached)}× never)"


def quality_table(name: str, cells: dict[str, Cell], held: ModelSet) -> list[str]:
    best = held.models[held.best]
    lines = [
        f"**{name}**: {len(held):,} held-out prompts per seed, {len(held.models)} candidates; "
        f"best single model {best} (quality {held.mean_quality[held.best]:.4f}, "
        f"${1000 * held.mean_cost[held.best]:.4g} per 1k requests); costs: {held.cost_source}",
        "",
        "| router | AIQ | 2-model AIQ | quality at best's cost "
        "| cost to match best (share of its cost) | fit CPU s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, cell in cells.items():
        two = _mean(cell.two) if cell.two and not np.isnan(cell.two).all() else "–"
        cpu = f"{np.mean(cell.fit_cpu):.1f}" if cell.fit_cpu else "–"
        lines.append(
            f"| {label} | {_mean(cell.aiq)} | {two} | {_mean(cell.quality_at_best)} | "
            f"{_match(cell.match)} | {cpu} |"
        )
    return lines


def targets(all_cells: dict[str, dict[str, Cell]], kinds: Sequence[str]) -> list[str]:
    lines = [
        "| set | best prefroute router | its AIQ | singles hull | 25-NN | beats both "
        "| cost to match best |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for name, cells in all_cells.items():
        mine = {k: float(np.mean(cells[k].aiq)) for k in kinds if k in cells}
        top = max(mine, key=mine.__getitem__)
        hull, nn = float(np.mean(cells["singles hull"].aiq)), float(np.mean(cells["25-NN"].aiq))
        seeds = len(cells[top].aiq)
        per_seed = zip(cells[top].aiq, cells["singles hull"].aiq, cells["25-NN"].aiq, strict=True)
        wins = sum(a > h and a > n for a, h, n in per_seed)
        lines.append(
            f"| {name} | {top} | {mine[top]:.4f} | {hull:.4f} | {nn:.4f} | "
            f"{'yes' if mine[top] > max(hull, nn) else 'no'} ({wins}/{seeds} seeds) | "
            f"{_match(cells[top].match)} |"
        )
    return lines


# ------------------------------------------------------------------------ timing


def timing(data_dir: Path, n: int, seed: int, log: Callable[[str], None]) -> list[str]:
    """Per-prompt scoring cost of 2 vs 30 candidates (MF and quality, 37 models learned)."""
    parts = [load_source("mmlu-pro", data_dir), load_source("llmrouter", data_dir)]
    train = pl.concat([split(p, seed, None)[0] for p in parts])
    held = pl.concat([split(p, seed, None)[1] for p in parts])
    models = sorted(train["model"].unique().to_list())
    counts = train.group_by("model").len().sort(["len", "model"], descending=[True, False])
    candidates = counts["model"].head(TIMING_CANDIDATES).to_list()
    strong, weak = candidates[0], candidates[1]
    prompts = held.unique("prompt_id", keep="first").sort("prompt_id")["prompt"].to_list()
    prompts = [prompts[i] for i in np.random.default_rng(seed).permutation(len(prompts))[:n]]
    costs = CallCosts(tuple(candidates), (1.0,) * len(candidates), (1.0,) * len(candidates))
    policy = Policy(costs=costs, lam=1.0)
    lines = [
        f"Routers trained on MMLU-Pro and LLMRouter training halves together ({len(models)} "
        f"models); {n:,} held-out prompts, one call per prompt after 20 warm-up calls.",
        "",
        "| router | call | p50 ms | p99 ms | p50 CPU ms | vs 2 candidates |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for kind in ("mf", "quality"):
        router, cpu = fit(kind, train, strong, weak)
        log(f"timing: {kind} fitted on {len(models)} models in {cpu:.1f} s CPU")
        n_cand = TIMING_CANDIDATES
        calls: dict[str, Callable[[str], object]] = {
            "strong_win_rate": lambda p, r=router: r.strong_win_rate([p]),
            "model_quality, 2 candidates": lambda p, r=router: r.model_quality([p], candidates[:2]),
            f"model_quality, {n_cand} candidates": lambda p, r=router: r.model_quality(
                [p], candidates
            ),
            f"model_quality + policy, {n_cand}": lambda p, r=router: policy.route(r, [p]),
        }
        base = None
        for label, call in calls.items():
            for p in prompts[:20]:
                call(p)
            wall, cpu_t = [], []
            for p in prompts:
                w0, c0 = time.perf_counter(), time.process_time()
                call(p)
                wall.append(time.perf_counter() - w0)
                cpu_t.append(time.process_time() - c0)
            p50 = float(np.median(wall)) * 1e3
            if label.startswith("model_quality, 2"):
                base = p50
            ratio = f"{p50 / base:.2f}×" if base and not label.startswith("strong") else "–"
            lines.append(
                f"| {kind} | {label} | {p50:.3f} | {np.quantile(wall, 0.99) * 1e3:.3f} | "
                f"{np.median(cpu_t) * 1e3:.3f} | {ratio} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--max-prompts", type=int, default=None,
                        help="Use at most this many prompts per set (smoke runs).")  # fmt: skip
    parser.add_argument("--plot", type=Path, default=None, help="PNG of the first seed's curves.")
    parser.add_argument("--timing-n", type=int, default=1000, help="0: skip the timing table.")
    parser.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args()
    sets = [s for s in args.sets.split(",") if s]
    kinds = [k for k in args.kinds.split(",") if k]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    data_dir = resolve_data_dir(args.data_dir)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    command = "python benchmarks/n_models.py " + shlex.join(sys.argv[1:])
    started_cpu = time.process_time()
    when = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    print(f"# Routing among N models\n\n`{command}`\n\n{machine()}; {when}; seeds {args.seeds}\n")
    all_cells: dict[str, dict[str, Cell]] = {}
    plots = []
    for name in sets:
        source = load_source(name, data_dir)
        if source.unpriced:
            print(f"{name}: not candidates, no list price: {', '.join(source.unpriced)}\n")
        cells, results, held = run_set(source, kinds, seeds, args.max_prompts, log)
        all_cells[name] = cells
        plots.append(results[0])
        print("\n".join(quality_table(name, cells, held[0])) + "\n")
    print("## Targets\n\n" + "\n".join(targets(all_cells, kinds)) + "\n")
    if args.plot is not None:
        print(f"plot: {write_models_plot(plots, args.plot)}\n")
    if args.timing_n > 0:
        print(
            "## Scoring N candidates\n\n"
            + "\n".join(timing(data_dir, args.timing_n, seeds[0], log))
            + "\n"
        )
    print(f"CPU time of the whole run: {time.process_time() - started_cpu:.0f} s")


if __name__ == "__main__":
    main()
