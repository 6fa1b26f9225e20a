"""Score routers on eval sets once each and measure them: what ``prefroute eval`` runs.

Each router scores each set's distinct prompts once, in batches; every metric
then comes from those scores (``metrics.curve``). A router built for another
pair of models is re-targeted to the set's pair when it can be (MF, SW ranking
know every model they trained on); otherwise its own scores are used and the
result says so ("scores unchanged"), because a preference for "strong" is
still a guess about difficulty.

What a number is worth comes with it: each APGR has a bootstrap interval (by
prompt, seeded), each set the band of APGR random routers reach on it, and a
warning when the strong model is not better than the weak one there, or the
gap between them is within noise (PGR divides by it). Savings are priced with
the pair's list prices (``prefroute.prices``) at a stated token mix, or at the
eval file's own token counts, and the result says which prices it used.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from prefroute.errors import EvalError, UnknownModelError, UnknownPriceError
from prefroute.evals.benchmarks import BENCHMARKS, EvalSet, benchmark, eval_file
from prefroute.evals.metrics import (
    CPT_LEVELS,
    CallCosts,
    Curve,
    Gap,
    Interval,
    apgr_interval,
    cost_saving,
    curve,
    oracle_curve,
    quality_gap,
    random_band,
    random_curve,
)
from prefroute.prices import PAPER_MIX, Price, PriceTable, TokenMix, price_table
from prefroute.routers.base import Router

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "EvalResults",
    "PairPrices",
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
    """One router on one eval set; ``apgr_interval`` is its bootstrap interval."""

    label: str
    kind: str
    curve: Curve
    note: str | None = None  # how the router was matched to the set's pair, if not as built
    seconds: float = 0.0
    apgr_interval: Interval | None = None


@dataclass(frozen=True)
class PairPrices:
    """What a set's savings are priced at: each model's list price and tokens a call."""

    strong: Price
    weak: Price
    strong_tokens: TokenMix
    weak_tokens: TokenMix

    @property
    def costs(self) -> CallCosts:
        return CallCosts(
            self.strong.cost(self.strong_tokens.input_tokens, self.strong_tokens.output_tokens),
            self.weak.cost(self.weak_tokens.input_tokens, self.weak_tokens.output_tokens),
        )

    def lines(self, strong_model: str, weak_model: str) -> list[str]:
        """One line per price used, then the token mix (one line when both share it)."""
        out = [self.strong.line(strong_model), self.weak.line(weak_model)]
        if self.strong_tokens == self.weak_tokens:
            return [*out, f"at {self.strong_tokens}"]
        return [
            *out,
            f"{strong_model} at {self.strong_tokens}",
            f"{weak_model} at {self.weak_tokens}",
        ]

    def to_dict(self, strong_model: str, weak_model: str) -> dict[str, Any]:
        def entry(model: str, price: Price, mix: TokenMix) -> dict[str, Any]:
            return {
                "model": model, "input_per_1m": price.input, "output_per_1m": price.output,
                "date": price.date, "source": price.source,
                "tokens_per_call": {"input": mix.input_tokens, "output": mix.output_tokens,
                                    "source": mix.source},
            }  # fmt: skip

        return {
            "strong": entry(strong_model, self.strong, self.strong_tokens),
            "weak": entry(weak_model, self.weak, self.weak_tokens),
        }


def pair_prices(table: PriceTable, eval_set: EvalSet, mix: TokenMix = PAPER_MIX) -> PairPrices:
    """The set's pair's prices from ``table``, at the file's token counts where it has
    them, else at ``mix``; ``UnknownPriceError`` names a model without a price."""
    tokens = eval_set.source.tokens if eval_set.source is not None else {}
    s, w = eval_set.strong_model, eval_set.weak_model
    return PairPrices(table.price(s), table.price(w), tokens.get(s, mix), tokens.get(w, mix))


@dataclass(frozen=True)
class SetResult:
    """Every router on one eval set, with the random and oracle references.

    ``random_band`` is the APGR spread of random routers on these prompts,
    ``gap`` the strong model's quality advantage with its interval, ``prices``
    what savings are in (None, with ``missing_price`` saying how to give it,
    when a model has no price), ``warnings`` what a reader must know first.
    """

    eval_set: EvalSet
    routers: tuple[RouterResult, ...]
    random: Curve
    oracle: Curve
    random_band: Interval | None = None
    gap: Gap | None = None
    prices: PairPrices | None = None
    missing_price: str | None = None
    warnings: tuple[str, ...] = ()

    def saving(self, share: float, baseline_share: float = 1.0) -> float | None:
        """Times cheaper than ``baseline_share`` strong calls, at the set's prices."""
        if self.prices is None:
            return None
        return cost_saving(share, self.prices.costs, baseline_share=baseline_share)


@dataclass(frozen=True)
class EvalResults:
    """What an evaluation found, per set; ``to_dict`` is the JSON report."""

    sets: tuple[SetResult, ...]
    levels: tuple[float, ...] = CPT_LEVELS

    def summary(self, c: Curve, s: SetResult) -> dict[str, Any]:
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
                    "vs_all_strong": s.saving(share),
                    "vs_random": s.saving(share, baseline_share=level),
                }
                for level, share in cpt.items()
            },
            "curve": {"share": shares.tolist(), "quality": c.quality_at(shares).tolist()},
        }

    def to_dict(self) -> dict[str, Any]:
        return {"sets": [self._set_dict(s) for s in self.sets]}

    def _set_dict(self, s: SetResult) -> dict[str, Any]:
        e = s.eval_set
        return {
            **e.to_dict(),
            "prices": s.prices.to_dict(e.strong_model, e.weak_model) if s.prices else None,
            "missing_price": s.missing_price,
            "gap": _gap_dict(s.gap),
            "warnings": list(s.warnings),
            "routers": [
                {"router": r.label, "kind": r.kind, "note": r.note,
                 "seconds": round(r.seconds, 3),
                 "apgr_interval": r.apgr_interval.to_dict() if r.apgr_interval else None,
                 **self.summary(r.curve, s)}
                for r in s.routers
            ],
            "random": {
                **self.summary(s.random, s),
                "apgr_band": s.random_band.to_dict() if s.random_band else None,
            },
            "oracle": self.summary(s.oracle, s),
        }  # fmt: skip


def _gap_dict(gap: Gap | None) -> dict[str, Any] | None:
    if gap is None:
        return None
    return {
        "mean": gap.mean,
        "interval_95": [gap.low, gap.high],
        "within_noise": gap.within_noise,
        "inverted": gap.inverted,
    }


def _pct(level: float) -> str:
    return f"{level * 100:g}"


def for_pair(router: Router, strong: str, weak: str) -> tuple[Router, str | None]:
    """The router to score a pair with, and a note when it is not the router as built.

    A router that cannot retarget (its kind has no per-model parameters, or it
    never saw one of the models) scores with its own pair's scores, and the
    note says "scores unchanged" and why.
    """
    own = (router.strong_model, router.weak_model)
    if own == (strong, weak):
        return router, None
    try:
        return router.retarget(strong, weak), f"retargeted from {own[0]} vs {own[1]}"
    except UnknownModelError as exc:
        return router, f"scores unchanged, for its own pair {own[0]} vs {own[1]}: {exc}"


def set_warnings(eval_set: EvalSet, gap: Gap, oracle: Curve) -> tuple[str, ...]:
    """What a reader must know before trusting a set's numbers: an inverted or noisy gap."""
    s = eval_set
    if gap.inverted:
        return (
            f"{s.strong_model} is not better than {s.weak_model} on {s.name} "
            f"({s.strong_quality.mean():.3f} vs {s.weak_quality.mean():.3f}): PGR divides "
            f"by a negative gap, so APGR and CPT are inverted (the oracle's APGR is "
            f"{oracle.apgr:.3f}); check which model is strong, or evaluate another pair",
        )
    if gap.within_noise:
        return (
            f"the gap between {s.strong_model} and {s.weak_model} on {s.name} "
            f"({gap.mean:+.3f}, 95% interval {gap.low:+.3f} to {gap.high:+.3f}, {len(s):,} "
            "prompts) is within noise: PGR, APGR and CPT measure noise here; use more "
            "prompts or a pair further apart",
        )
    return ()


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
    prices: PriceTable | None = None,
    mix: TokenMix = PAPER_MIX,
    seed: int = 0,
    console: Console | None = None,
) -> EvalResults:
    """Score every router on every set once and measure it; ``routers`` maps label → router.

    ``prices`` (default: the shipped table) price each set's pair at ``mix``, or
    at the set's own token counts; a pair without a price still gets every
    quality number, and the result says how to give the price. ``seed`` draws the
    bootstrap resamples and the random routers. ``console`` shows a progress bar
    (scoring MMLU takes minutes on slow routers).
    """
    from rich.progress import Progress

    table = prices if prices is not None else price_table()
    with Progress(console=console, transient=True, disable=console is None) as progress:
        results = []
        for eval_set in sets:
            s, w = eval_set.strong_quality, eval_set.weak_quality
            measured = []
            for label, router in routers.items():
                scorer, note = for_pair(router, eval_set.strong_model, eval_set.weak_model)
                task = progress.add_task(f"{label} on {eval_set.name}", total=len(eval_set))
                started = time.perf_counter()
                scores = _score(scorer, eval_set.prompts, partial(progress.advance, task))
                seconds = time.perf_counter() - started
                progress.update(task, visible=False)
                c = curve(scores, s, w)
                interval = apgr_interval(scores, s, w, seed=seed)
                measured.append(RouterResult(label, router.kind, c, note, seconds, interval))
            oracle = oracle_curve(s, w)
            gap = quality_gap(s, w)
            try:
                pair, missing = pair_prices(table, eval_set, mix), None
            except UnknownPriceError as exc:
                pair, missing = None, str(exc)
            results.append(
                SetResult(
                    eval_set,
                    tuple(measured),
                    random=random_curve(s, w),
                    oracle=oracle,
                    random_band=random_band(s, w, seed=seed),
                    gap=gap,
                    prices=pair,
                    missing_price=missing,
                    warnings=set_warnings(eval_set, gap, oracle),
                )
            )
    return EvalResults(tuple(results))


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
    eval_files: Sequence[tuple[str | Path, str | None, str | None]] = (),
    skip_bad: bool = False,
    data_dir: str | Path | None = None,
    prices: PriceTable | None = None,
    mix: TokenMix = PAPER_MIX,
    console: Console | None = None,
) -> EvalResults:
    """Load router artifacts and evaluate them on benchmarks and ``(file, strong, weak)``
    eval files, leaving out of MMLU every question any of them trained on.

    A file's ``strong``/``weak`` may be None: the pair is then the routers' own
    when the file has it, else the file's (``eval_file`` says how it chose).
    """
    if not dirs:
        raise EvalError("give at least one router artifact directory")
    routers, trained = load_artifacts(dirs)
    own = [(r.strong_model, r.weak_model) for r in routers.values()]
    sets = [benchmark(name, data_dir, exclude_ids=trained) for name in benchmarks]
    sets += [
        eval_file(path, strong, weak, skip_bad=skip_bad, prefer=own)
        for path, strong, weak in eval_files
    ]
    if not sets:
        raise EvalError("nothing to evaluate on: give --benchmark or --eval-file")
    return evaluate(routers, sets, prices=prices, mix=mix, console=console)
