"""Measure routers as the RouteLLM paper does: APGR, CPT and cost on MT-Bench,
MMLU, GSM8K or any file of per-model scores or battles, each APGR with its
bootstrap interval beside the band random routers reach.

    sets = [benchmark("gsm8k"), eval_file("mine.jsonl", "gpt-4o", "gpt-4o-mini")]
    results = evaluate({"mf": Router.load("runs/mf")}, sets)
    results.sets[0].routers[0].curve.apgr

``metrics`` is pure numpy (``curve(scores, strong, weak)`` and what follows
from it); ``report`` prints tables and draws the PNG.
"""

from __future__ import annotations

from prefroute.evals.benchmarks import BENCHMARKS, EvalSet, FileSource, benchmark, eval_file
from prefroute.evals.evaluate import (
    EvalResults,
    PairPrices,
    RouterResult,
    SetResult,
    evaluate,
    evaluate_artifacts,
    for_pair,
    load_artifacts,
)
from prefroute.evals.metrics import (
    CPT_LEVELS,
    CallCosts,
    Curve,
    Gap,
    Interval,
    apgr,
    apgr_interval,
    cost_saving,
    curve,
    oracle_curve,
    quality_gap,
    random_band,
    random_curve,
)

__all__ = [
    "BENCHMARKS",
    "CPT_LEVELS",
    "CallCosts",
    "Curve",
    "EvalResults",
    "EvalSet",
    "FileSource",
    "Gap",
    "Interval",
    "PairPrices",
    "RouterResult",
    "SetResult",
    "apgr",
    "apgr_interval",
    "benchmark",
    "cost_saving",
    "curve",
    "eval_file",
    "evaluate",
    "evaluate_artifacts",
    "for_pair",
    "load_artifacts",
    "oracle_curve",
    "quality_gap",
    "random_band",
    "random_curve",
]
