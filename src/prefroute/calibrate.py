"""Thresholds that mean something on the user's traffic.

A raw threshold (``router-mf-0.1159``) is meaningless on its own; users ask
for "30% of calls to the strong model", "at most $X per 1M tokens" or "keep
95% of the strong model's quality". The first two reduce to a strong-call
share, and a share to the threshold that sends that share of a set of
calibration prompts to the strong model. A quality target needs labels: on
the user's eval file, the cheapest threshold (fewest strong calls) whose mix
keeps the target, either as a share of the strong model's mean quality
(``--quality 0.95``) or of the gap between the two models (``--gap-recovered
0.8``, the paper's PGR).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from prefroute.errors import EvalError, InvalidParameterError

if TYPE_CHECKING:
    from prefroute.evals.benchmarks import EvalSet
    from prefroute.routers.artifact import QualityTarget
    from prefroute.routers.base import Router


def strong_share(scores: Sequence[float] | np.ndarray, threshold: float) -> float:
    """Share of prompts whose score reaches ``threshold`` (those go to the strong model)."""
    values = np.asarray(scores, dtype=np.float64)
    return float((values >= threshold).mean()) if values.size else 0.0


def threshold_for_share(scores: Sequence[float] | np.ndarray, share: float) -> float:
    """The threshold that sends as close to ``share`` of these prompts to the strong model.

    Candidates are the distinct scores themselves (plus one above the maximum,
    for share 0), so ties never split: a group of equal scores goes one way.
    Among equally close candidates the higher threshold wins (fewer strong calls).
    """
    if not 0.0 <= share <= 1.0:
        raise InvalidParameterError(f"share must be in [0, 1], got {share}")
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        raise InvalidParameterError("need at least one calibration score")
    distinct = np.unique(values)  # ascending
    above = np.nextafter(distinct[-1], np.inf)
    candidates = np.append(distinct, above)
    # share reached by each candidate: count of scores >= it
    counts = values.size - np.searchsorted(np.sort(values), candidates, side="left")
    error = np.abs(counts / values.size - share)
    best = np.flatnonzero(error == error.min())[-1]
    return float(candidates[best])


def share_for_budget(budget: float, strong_cost: float, weak_cost: float) -> float:
    """Strong share whose blended price per 1M tokens equals ``budget``, clipped to [0, 1].

    ``strong_cost``/``weak_cost`` are the pair's blended prices (``Price.blended`` at
    a token mix); assumes calls of similar length on both sides.
    """
    if strong_cost <= weak_cost:
        raise InvalidParameterError(
            f"strong model cost ({strong_cost:.4g}) must exceed the weak model's "
            f"({weak_cost:.4g}) for a budget to pick a share"
        )
    if budget < weak_cost:
        raise InvalidParameterError(
            f"budget ${budget:g}/1M tokens is below the weak model's own price ${weak_cost:.4g}"
        )
    return float(min(1.0, (budget - weak_cost) / (strong_cost - weak_cost)))


def calibration_table(scores: Sequence[float] | np.ndarray) -> tuple[float, ...]:
    """Threshold for every whole-percent strong share, 0 to 100 (the index is the percent).

    Stored in the artifact (``Calibration.thresholds``), it serves
    ``router-<kind>@<share>%`` without re-scoring the calibration prompts.
    """
    from prefroute.routers.artifact import SHARES

    return tuple(threshold_for_share(scores, p / 100) for p in range(SHARES))


def threshold_for_quality(
    scores: Sequence[float] | np.ndarray,
    strong: Sequence[float] | np.ndarray,
    weak: Sequence[float] | np.ndarray,
    target: float,
    *,
    measure: str = "quality",
) -> tuple[float, float, float]:
    """The cheapest threshold keeping ``target`` on labelled prompts:
    ``(threshold, strong share, reached)``.

    ``measure="quality"``: the mix's mean quality reaches ``target`` times the
    strong model's (qualities >= 0); ``"gap"``: it recovers ``target`` of the
    gap between the two models (PGR). Only thresholds a router can apply are
    candidates (a tied group goes one way), and the one with the fewest strong
    calls wins; share 1 always qualifies, so one exists.
    """
    from prefroute.evals.metrics import curve

    if not 0.0 < target <= 1.0:
        raise InvalidParameterError(f"a quality target must be in (0, 1], got {target}")
    c = curve(scores, strong, weak)
    if measure == "quality":
        if c.r_strong <= 0:
            raise EvalError(
                f"the strong model's mean quality is {c.r_strong:.4g}, so a share of it means "
                "nothing; give the target as a share of the gap (--gap-recovered)"
            )
        reached = c.quality / c.r_strong
    elif measure == "gap":
        if c.r_strong < c.r_weak:
            raise EvalError(
                f"the strong model is worse than the weak one on these prompts ({c.r_strong:.4g} "
                f"vs {c.r_weak:.4g}), so there is no gap to recover; check which model is strong"
            )
        reached = c.pgr
    else:
        raise InvalidParameterError(f"measure must be 'quality' or 'gap', got {measure!r}")
    j = int(np.argmax(reached >= target - 1e-12))  # the first point that keeps it
    threshold = float(c.thresholds[j])
    if not np.isfinite(threshold):  # share 0: above every score
        threshold = float(np.nextafter(np.max(np.asarray(scores, dtype=np.float64)), np.inf))
    return threshold, float(c.share[j]), float(reached[j])


@dataclass(frozen=True)
class Calibrated:
    """What ``calibrate_artifact`` stored: the reloaded router, the share table's
    scores and prompts, and the quality targets measured on ``eval_set``."""

    router: Router
    scores: np.ndarray
    prompts: str
    eval_set: EvalSet | None = None
    targets: tuple[QualityTarget, ...] = ()


def calibrate_artifact(
    artifact: str | Path,
    *,
    prompts: str | Path | None = None,
    eval_file: str | Path | None = None,
    quality: Sequence[float] = (),
    gap_recovered: Sequence[float] = (),
    skip_bad: bool = False,
    data_dir: str | Path | None = None,
) -> Calibrated:
    """Score calibration prompts with a saved router and store its threshold table,
    and the quality targets asked for, measured on ``eval_file``.

    The table's prompts: ``prompts``, else the eval file's (the user's own
    traffic), else the shipped real Arena prompts (real traffic, not the
    benchmarks). ``quality`` / ``gap_recovered`` targets need ``eval_file``, with
    labels for the router's pair (scores or battles, as ``prefroute eval`` reads
    them). Targets stored before are kept unless one of the same name is
    measured again: a refit or retarget already dropped them with the table.
    """
    from prefroute.data import shipped
    from prefroute.data.location import data_dir as resolve_data_dir
    from prefroute.data.readers import read_prompts
    from prefroute.evals.benchmarks import eval_file as read_eval_file
    from prefroute.routers.artifact import Calibration, QualityTarget, update_config
    from prefroute.routers.base import Router

    asked = [("quality", q) for q in quality] + [("gap", g) for g in gap_recovered]
    if asked and eval_file is None:
        raise InvalidParameterError(
            "a quality target is measured on labelled prompts: give --eval-file with scores "
            "or battles of the router's pair"
        )
    router = Router.load(artifact)
    eval_set = None
    if eval_file is not None:
        eval_set = read_eval_file(
            eval_file, router.strong_model, router.weak_model, skip_bad=skip_bad
        )
    if prompts is not None:
        texts, described = read_prompts(prompts)[1], str(prompts)
    elif eval_set is not None:
        texts, described = list(eval_set.prompts), f"eval file {eval_file}"
    else:
        texts = shipped.arena_prompts(resolve_data_dir(data_dir))
        described = "shipped real Chatbot Arena prompts"
    scores = router.strong_win_rate(texts)
    targets: list[QualityTarget] = []
    if eval_file is not None and eval_set is not None and asked:
        labelled = scores if prompts is None else router.strong_win_rate(list(eval_set.prompts))
        for measure, target in asked:
            threshold, share, reached = threshold_for_quality(
                labelled, eval_set.strong_quality, eval_set.weak_quality, target, measure=measure
            )
            targets.append(
                QualityTarget(
                    measure, target, threshold, share, reached, Path(eval_file).name, len(eval_set)
                )
            )
    previous = getattr(router, "calibration_", None)
    names = {t.name for t in targets}
    kept = tuple(t for t in (previous.targets if previous else ()) if t.name not in names)
    calibration = Calibration(
        thresholds=calibration_table(scores),
        prompts=described,
        n_prompts=len(texts),
        targets=tuple(sorted(kept + tuple(targets), key=lambda t: (t.measure, t.target))),
    )
    update_config(artifact, calibration=calibration)
    router.calibration_ = calibration
    return Calibrated(router, scores, described, eval_set, tuple(targets))
