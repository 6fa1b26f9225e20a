"""The RouteLLM paper's table, reproduced: every router kind trained on the
decontaminated recipe, evaluated on MT-Bench, MMLU and GSM8K, beside the paper.

    python benchmarks/paper_table.py [--kinds random,sw_ranking,mf,classifier,causal_llm]
        [--breakdown mf,sw_ranking] [--out-dir DIR] [--plot eval.png] [--json eval.json]
        [--mmlu-sample N]

Each kind trains with ``train_router`` on the default recipe (``training_set``
with its default source weights and the seeded 1,500-question MMLU gold slice);
the kinds in ``--breakdown`` also train on each training-data variant the paper
compares (its Arena-only vs augmented rows): human battles only, + judge labels,
+ golden labels, and everything, each row at weight 1 (the default recipe
leaves judge labels out and weighs the gold slice 20), all built from one
collection of the battles (collecting and decontaminating is the slow part).
All artifacts are then evaluated together, so MMLU leaves out the gold slice
for every row alike. Prints one markdown table (APGR, CPT(50%), CPT(80%) per
benchmark) with the paper's best rows under it, and writes the PNG of the
default-recipe routers.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from embed import machine  # benchmarks/embed.py, this script's directory is on sys.path
from rich.console import Console

from prefroute.data.collect import collect_battles
from prefroute.data.recipe import training_set
from prefroute.errors import PrefrouteError
from prefroute.evals.benchmarks import BENCHMARKS, EvalSet, benchmark
from prefroute.evals.evaluate import EvalResults, evaluate, load_artifacts
from prefroute.evals.metrics import Curve
from prefroute.evals.report import write_plot
from prefroute.training import describe, train_router

GOLD_SLICE = 1500
DEFAULT = "default"
VARIANTS: dict[str, dict[str, Any]] = {
    DEFAULT: {},
    "human": {"source_weights": {"human": 1.0, "judge": 0.0, "golden": 0.0}},
    "human+judge": {"source_weights": {"human": 1.0, "judge": 1.0, "golden": 0.0}},
    "human+golden": {"source_weights": {"human": 1.0, "judge": 0.0, "golden": 1.0},
                     "gold_slice_weight": 1.0},
    "all (weight 1)": {"source_weights": {"human": 1.0, "judge": 1.0, "golden": 1.0},
                       "gold_slice_weight": 1.0},
}  # fmt: skip
"""Training-data variants: ``training_set`` arguments over the recipe's defaults
(human + golden, gold slice weighing 20); the others weigh every row 1."""
PAPER: tuple[tuple[str, str, dict[str, tuple[float, float, float]]], ...] = (
    ("mf", "Arena + D_judge / D_gold", {
        "mt-bench": (0.134, 0.313, 0.802), "mmlu": (0.355, 0.714, 0.597),
        "gsm8k": (0.388, 0.726, 0.565)}),
    ("sw_ranking", "Arena + D_judge / D_gold", {
        "mt-bench": (0.232, 0.360, 0.759), "mmlu": (0.354, 0.716, 0.603)}),
    ("bert", "Arena + D_judge", {"mt-bench": (0.196, 0.340, 0.751)}),
    ("causal_llm", "Arena + D_judge", {
        "mt-bench": (0.315, 0.488, 0.679), "gsm8k": (0.336, 0.633, 0.622)}),
    ("best", "Arena only", {
        "mt-bench": (0.379, 0.590, 0.610), "mmlu": (0.450, 0.769, 0.524),
        "gsm8k": (0.536, 0.821, 0.475)}),
)  # fmt: skip
"""The paper's rows (../shared/REFERENCE.md): CPT(50%), CPT(80%), APGR per benchmark;
augmented rows use D_judge on MT-Bench/GSM8K and D_gold on MMLU, as reported."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kinds", default="random,sw_ranking,mf,classifier,causal_llm")
    parser.add_argument("--breakdown", default="mf,sw_ranking", help="kinds to train per variant")
    parser.add_argument("--out-dir", type=Path, default=Path("benchmarks/out/paper_table"))
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument(
        "--mmlu-sample",
        type=int,
        default=None,
        help="evaluate on a seeded sample of this many MMLU questions (for slow routers)",
    )
    args = parser.parse_args()
    console = Console(stderr=True)
    kinds = [k for k in args.kinds.split(",") if k]
    breakdown = [k for k in args.breakdown.split(",") if k]
    started = time.perf_counter()
    started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    where = machine()

    with console.status("collecting and decontaminating the training data"):
        collected = collect_battles(args.data_dir)
    runs: dict[tuple[str, str], Path | str] = {}
    for variant, recipe in VARIANTS.items():
        todo = kinds if variant == DEFAULT else [k for k in breakdown if k in kinds]
        if not todo:
            continue
        console.rule(f"training data: {variant}")
        data = training_set(
            args.data_dir, collected=collected, mmlu_gold_slice=GOLD_SLICE, random_state=0, **recipe
        )
        describe(data, console)
        for kind in todo:
            out = args.out_dir / _slug(variant) / kind
            try:
                runs[kind, variant] = train_router(
                    kind, out, data_dir=args.data_dir, data=data, console=console
                )
            except (PrefrouteError, ValueError) as error:  # e.g. the pair is not in the data
                console.print(f"[yellow]{kind} on {variant}: not trained: {error}")
                runs[kind, variant] = str(error).split(";")[0]

    trained = {key: path for key, path in runs.items() if isinstance(path, Path)}
    routers, slice_ids = load_artifacts(list(trained.values()))
    sets = [benchmark(name, args.data_dir, exclude_ids=slice_ids) for name in BENCHMARKS]
    if args.mmlu_sample:
        sets = [_sample(s, args.mmlu_sample) if s.name == "mmlu" else s for s in sets]
    results = evaluate(routers, sets, console=console)
    minutes = (time.perf_counter() - started) / 60
    print(f"`python benchmarks/paper_table.py --kinds {args.kinds} --breakdown {args.breakdown}`")
    print(f"\n{where}; started {started_at}; {minutes:.0f} min in all.\n")
    print(table(results, list(trained), runs))
    if args.json:
        args.json.write_text(json.dumps(results.to_dict(), indent=2) + "\n")
    if args.plot:
        default = {label for label, (_, variant) in zip(routers, trained, strict=True)
                   if variant == DEFAULT}  # fmt: skip
        shown = [replace(s, routers=tuple(r for r in s.routers if r.label in default))
                 for s in results.sets]  # fmt: skip
        console.print(f"wrote {write_plot(replace(results, sets=tuple(shown)), args.plot)}")


def _sample(eval_set: EvalSet, size: int) -> EvalSet:
    """A seeded sample of ``size`` prompts; the rest counted as dropped (not sampled)."""
    rng = np.random.default_rng(0)
    ids = np.array(eval_set.prompt_ids)
    keep = set(rng.choice(ids, min(size, len(ids)), replace=False).tolist())
    return eval_set.without([i for i in ids if i not in keep], "not in the sample")


def table(
    results: EvalResults, keys: list[tuple[str, str]], runs: dict[tuple[str, str], Path | str]
) -> str:
    """Markdown: one row per trained router, then random, oracle and the paper's rows."""
    names = [s.eval_set.name for s in results.sets]
    head = "| router | training data | " + " | ".join(
        f"{n} APGR | {n} CPT(50%) | {n} CPT(80%)" for n in names
    )
    lines = [head + " |", "|---|---|" + "---:|" * (3 * len(names))]
    for i, (kind, variant) in enumerate(keys):
        cells = [_cells(s.routers[i].curve) for s in results.sets]
        lines.append(f"| {kind} | {variant} | " + " | ".join(cells) + " |")
    for (kind, variant), why in runs.items():
        if isinstance(why, str):
            blanks = " |" * (3 * len(names) - 1)
            lines.append(f"| {kind} | {variant} | not trained: {why} |{blanks}")
    for label in ("random", "oracle"):
        cells = [_cells(getattr(s, label)) for s in results.sets]
        lines.append(f"| {label} | | " + " | ".join(cells) + " |")
    for kind, data, numbers in PAPER:
        cells = []
        for name in names:
            got = numbers.get(name)
            cells.append(f"{got[2]:.3f} | {got[0]:.1%} | {got[1]:.1%}" if got else "– | – | –")
        lines.append(f"| paper: {kind} | {data} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cells(c: Curve) -> str:
    return f"{c.apgr:.3f} | {c.cpt(0.5):.1%} | {c.cpt(0.8):.1%}"


def _slug(variant: str) -> str:
    return variant.split(" ")[0].replace("+", "-")


if __name__ == "__main__":
    main()
