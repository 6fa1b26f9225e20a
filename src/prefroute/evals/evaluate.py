"""Score routers on eval sets once each and measure them: what ``prefroute eval`` runs.

Each router scores each set's distinct prompts once, in batches; every metric
then comes from those scores (``metrics.curve``). A router built for another
pair of models is re-targeted to the set's pair when it can be (MF, SW ranking
know every model they trained on); otherwise its own scores are used and the
result says so, because a preference for "strong" is still a guess about
difficulty.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from prefroute.errors import EvalError, UnknownModelError
from prefroute.evals.benchmarks import BENCHMARKS, EvalSet, benchmark, eval_file
from prefroute.evals.metrics import (
    CPT_LEVELS,
    Curve,
    Prices,
    cost_saving,
    curve,
    oracle_curve,
    random_curve,
)
from prefroute.routers.base import Router

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "EvalResults",
    "RouterResult",
    "SetResult",
    "evaluate",
    "evaluate_artifacts",
    "for_pair",
    "load_artifacts",
]

BATCH = 512
"""Prompts per ``strong_win_rate`` call: large enough to batch, small enough that
the progress bar moves every few seconds on the slowest router (~7 ms/prompt)."""


@dataclass(frozen=True)
class RouterResult:
    """One router on one eval set."""

    label: str
    kind: str
    curve: Curve
    note: str | None = None  # how the router was matched to the set's pair, if not as built
    seconds: float = 0.0


@dataclass(frozen=True)
class SetResult:
    """Every router on one eval set, with the random and oracle references."""

    eval_set: EvalSet
    routers: tuple[RouterResult, ...]
    random: Curve
    oracle: Curve


@dataclass(frozen=True)
class EvalResults:
    """What an evaluation found, per set; ``to_dict`` is the JSON report."""

    sets: tuple[SetResult, ...]
    prices: Prices = field(default_factory=Prices)
    levels: tuple[float, ...] = CPT_LEVELS

    def summary(self, c: Curve) -> dict[str, Any]:
        """One curve's numbers: AUC, APGR, CPT and cost saving at each level, and the
        curve at every whole percent of strong calls (enough to redraw it)."""
        cpt = {level: c.cpt(level) for level in self.levels}
        shares = np.linspace(0.0, 1.0, 101)
        return {
            "apgr": c.apgr,
            "auc": c.auc,
            "cpt": {_pct(level): share for level, share in cpt.items()},
            "cost_saving": {
                _pct(level): {
                    "vs_all_strong": cost_saving(share, self.prices),
                    "vs_random": cost_saving(share, self.prices, baseline_share=level),
                }
                for level, share in cpt.items()
            },
            "curve": {"share": shares.tolist(), "quality": c.quality_at(shares).tolist()},
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "prices_per_1m_tokens": {"strong": self.prices.strong, "weak": self.prices.weak},
            "sets": [
                {
                    **s.eval_set.to_dict(),
                    "routers": [
                        {"router": r.label, "kind": r.kind, "note": r.note,
                         "seconds": round(r.seconds, 3), **self.summary(r.curve)}
                        for r in s.routers
                    ],
                    "random": self.summary(s.random),
                    "oracle": self.summary(s.oracle),
                }
                for s in self.sets
            ],
        }  # fmt: skip


def _pct(level: float) -> str:
    return f"{level * 100:g}"


def for_pair(router: Router, strong: str, weak: str) -> tuple[Router, str | None]:
    """The router to score a pair with, and a note when it is not the router as built."""
    own = (router.strong_model, router.weak_model)
    if own == (strong, weak):
        return router, None
    try:
        return router.retarget(strong, weak), f"retargeted from {own[0]} vs {own[1]}"
    except UnknownModelError as exc:
        return router, f"scores for its own pair {own[0]} vs {own[1]}, used as-is ({exc})"


def _score(router: Router, prompts: Sequence[str], advance: Callable[[int], object]) -> np.ndarray:
    """Scores of the distinct prompts, in batches, mapped back to every prompt."""
    distinct, inverse = np.unique(np.asarray(prompts, dtype=object), return_inverse=True)
    out = np.empty(len(distinct), dtype=np.float64)
    for start in range(0, len(distinct), BATCH):
        batch = distinct[start : start + BATCH].tolist()
        scores = np.asarray(router.strong_win_rate(batch), dtype=np.float64)
        if scores.shape != (len(batch),):
            raise EvalError(
                f"{router.kind} router returned {scores.shape} scores for {len(batch)} prompts"
            )
        out[start : start + len(batch)] = scores
        advance(len(batch))
    return out[inverse]


def evaluate(
    routers: Mapping[str, Router],
    sets: Sequence[EvalSet],
    *,
    prices: Prices | None = None,
    console: Console | None = None,
) -> EvalResults:
    """Score every router on every set once and measure it; ``routers`` maps label → router.

    ``console`` shows a progress bar (scoring MMLU takes minutes on slow routers).
    """
    from rich.progress import Progress

    with Progress(console=console, transient=True, disable=console is None) as progress:
        results = []
        for eval_set in sets:
            measured = []
            for label, router in routers.items():
                scorer, note = for_pair(router, eval_set.strong_model, eval_set.weak_model)
                task = progress.add_task(f"{label} on {eval_set.name}", total=len(eval_set))
                started = time.perf_counter()
                scores = _score(scorer, eval_set.prompts, partial(progress.advance, task))
                seconds = time.perf_counter() - started
                progress.update(task, visible=False)
                c = curve(scores, eval_set.strong_quality, eval_set.weak_quality)
                measured.append(RouterResult(label, router.kind, c, note, seconds))
            results.append(
                SetResult(
                    eval_set,
                    tuple(measured),
                    random=random_curve(eval_set.strong_quality, eval_set.weak_quality),
                    oracle=oracle_curve(eval_set.strong_quality, eval_set.weak_quality),
                )
            )
    return EvalResults(tuple(results), prices or Prices())


def load_artifacts(dirs: Sequence[str | Path]) -> tuple[dict[str, Router], frozenset[str]]:
    """Routers keyed by label, and the union of the MMLU questions they trained on.

    Labels are the router kinds when those are unique, else the directory
    names (with their parents where those repeat too).
    """
    paths = [Path(d) for d in dirs]
    routers = [Router.load(p) for p in paths]
    trained: set[str] = set()
    for router in routers:
        recorded = getattr(router, "training_data_", None)
        if recorded is not None:
            trained.update(recorded.gold_slice_ids)
    kinds = [r.kind for r in routers]
    labels = kinds if len(set(kinds)) == len(kinds) else _distinct_names(paths)
    return dict(zip(labels, routers, strict=True)), frozenset(trained)


def _distinct_names(paths: Sequence[Path]) -> list[str]:
    """Each path's shortest trailing part that no other path ends with."""
    parts = [p.resolve().parts for p in paths]
    if len(set(parts)) != len(parts):
        raise EvalError("the same router directory is given twice")
    names = []
    for i, own in enumerate(parts):
        others = parts[:i] + parts[i + 1 :]
        depth = 1
        while any(other[-depth:] == own[-depth:] for other in others):
            depth += 1
        names.append("/".join(own[-depth:]))
    return names


def evaluate_artifacts(
    dirs: Sequence[str | Path],
    *,
    benchmarks: Sequence[str] = BENCHMARKS,
    eval_files: Sequence[tuple[str | Path, str, str]] = (),
    data_dir: str | Path | None = None,
    prices: Prices | None = None,
    console: Console | None = None,
) -> EvalResults:
    """Load router artifacts and evaluate them on benchmarks and ``(file, strong, weak)``
    eval files, leaving out of MMLU every question any of them trained on."""
    if not dirs:
        raise EvalError("give at least one router artifact directory")
    routers, trained = load_artifacts(dirs)
    sets = [benchmark(name, data_dir, exclude_ids=trained) for name in benchmarks]
    sets += [eval_file(path, strong, weak) for path, strong, weak in eval_files]
    if not sets:
        raise EvalError("nothing to evaluate on: give --benchmark or --eval-file")
    return evaluate(routers, sets, prices=prices, console=console)
