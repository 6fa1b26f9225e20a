"""One call from data to a calibrated artifact: what ``prefroute train`` runs.

Collect the recipe's decontaminated data (the shipped sets, the user's own
battle and score files, or both), choose the pair when it is not given, fit
the router kind asked for on all but a validation split, report how it does
there beside random and prompt length, save it with where its data came from
(every user row accounted for, the MMLU slice the evaluation must leave out),
and calibrate it so ``router-<kind>@<share>%`` works straight away.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from rich.console import Console

from prefroute.calibrate import calibrate_artifact, calibration_table
from prefroute.conversation import Turns
from prefroute.data.recipe import (
    DEFAULT_SOURCE_WEIGHTS,
    VALIDATION_FRACTION,
    TrainingSet,
    training_set,
)
from prefroute.data.schema import OUTCOME_SCORE, Battles
from prefroute.errors import InvalidParameterError
from prefroute.routers.artifact import Calibration, TrainingData, ValidationReport, update_config
from prefroute.routers.base import Router, check_pair
from prefroute.routers.registry import router_class

RANDOM_DRAWS = 200
"""Random routers drawn for the random band of the validation report."""
MIN_CALIBRATION_PROMPTS = 200
"""Fewer prompts of the user's than this calibrate on the shipped Arena prompts instead
(when there are any): 101 whole-percent thresholds need a few hundred prompts."""
MIN_BAND_PROMPTS = 200
"""Validation prompts with a pair outcome needed before an APGR inside the random band is
called a router that learned nothing: on fewer the band is wider than +-0.1."""
MIN_SPREAD = 0.01
"""Validation scores whose 5-95% range is narrower than this say the same for every
prompt: the router learned nothing (MF on 300 rows with the paper's settings: 0.005)."""


def train_router(
    kind: str,
    out: str | Path,
    *,
    data_dir: str | Path | None = None,
    battle_files: Sequence[str | Path] = (),
    score_files: Sequence[str | Path] = (),
    shipped: bool = True,
    user_weight: float | None = None,
    strong_model: str | None = None,
    weak_model: str | None = None,
    eval_files: Sequence[str | Path] = (),
    exclude_datasets: Sequence[str] = (),
    skip_bad: bool = False,
    turns: Turns = "first",
    source_weights: Mapping[str, float] | None = None,
    embedder: str | None = None,
    mmlu_gold_slice: int | None = None,
    validation_fraction: float = VALIDATION_FRACTION,
    refit: bool | None = None,
    random_state: int = 0,
    params: dict[str, Any] | None = None,
    data: TrainingSet | None = None,
    console: Console | None = None,
) -> Path:
    """Train, save and calibrate one router; returns the artifact directory.

    The data is ``recipe.training_set``'s: ``battle_files`` and ``score_files``
    are the user's own labels, ``shipped=False`` trains on them alone,
    ``user_weight`` is the share of the fit's weight they carry beside the
    shipped data, ``eval_files``' prompts are removed before the fit, and
    ``exclude_datasets`` leaves shipped sets out. ``strong_model`` /
    ``weak_model`` default to a pair chosen from the data (said in one line);
    ``mmlu_gold_slice`` None adds the paper's gold slice when the pair has MMLU
    answers. ``validation_fraction`` of the prompts are held out: MF stops early
    on them, and every kind is reported on them. ``refit`` then fits the artifact
    on the fit and validation rows together (MF for the epochs early stopping
    chose); None refits when the held-out rows are the user's (they are scarce),
    not when they are a sample of the shipped data.

    ``turns`` is the policy conversations are read with; the artifact records
    it, and serving scores requests the same way. ``params`` are extra
    constructor hyper-parameters of the kind; ``data`` reuses a training set
    already collected (the quickstart trains several routers from one).
    The calibration is on the user's own prompts when there are files, else on
    the shipped real Arena prompts.
    """
    console = console or Console(stderr=True)
    router_cls = router_class(kind)
    if embedder is not None and "embedder" not in inspect.signature(router_cls).parameters:
        raise InvalidParameterError(f"router kind {kind!r} takes no embedder; train it without one")
    if data is None:
        with console.status("collecting and decontaminating the training data") as status:
            data = training_set(
                data_dir,
                battle_files=battle_files,
                score_files=score_files,
                shipped_data=shipped,
                eval_files=eval_files,
                exclude_datasets=exclude_datasets,
                skip_bad=skip_bad,
                turns=turns,
                source_weights=source_weights,
                strong_model=strong_model,
                weak_model=weak_model,
                mmlu_gold_slice=mmlu_gold_slice,
                user_weight=user_weight,
                validation_fraction=validation_fraction,
                random_state=random_state,
                on_phase=status.update,
            )
        describe(data, console)
    if router_cls.shipped_mix_note and data.collected.shipped_data and data.collected.user_datasets:
        console.print(f"note: {router_cls.shipped_mix_note}", highlight=False, soft_wrap=True)
    strong, weak = data.strong_model, data.weak_model
    check_pair(strong, weak, data.battles.models)
    kwargs: dict[str, Any] = {
        "strong_model": strong,
        "weak_model": weak,
        "random_state": random_state,
        **(params or {}),
    }
    if embedder is not None:
        kwargs["embedder"] = embedder
    router: Router = router_cls(**kwargs)

    started = time.perf_counter()
    fit_kwargs = {}
    if len(data.validation) and "validation" in inspect.signature(router.fit).parameters:
        fit_kwargs["validation"] = data.validation
    router.fit(data.battles, **fit_kwargs)
    seconds = time.perf_counter() - started
    console.print(f"fitted {kind} in {seconds:.1f} s")
    report = validation_report(router, data.validation, data.battles)
    for line in report_lines(report, kind):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if refit is None:
        refit = bool(data.collected.user_datasets)
    if refit and len(data.validation):
        # The held-out rows are the user's: scarce, so the artifact is fitted on all of
        # them, with the epoch count early stopping chose.
        epochs = getattr(router, "best_epoch_", None)
        router = router_cls(**kwargs | ({"epochs": epochs} if epochs else {}))
        router.fit(Battles.concat([data.battles, data.validation]))
        seconds = time.perf_counter() - started
        console.print(
            f"refitted {kind} on the fit and validation rows together"
            + (f" for {epochs} epochs" if epochs else "")
            + f" ({seconds:.1f} s in all)",
            highlight=False,
        )

    router.training_data_ = TrainingData(
        fingerprint=data.fingerprint,
        rows=len(data.battles),
        prompts=data.battles.frame["prompt"].n_unique(),
        turns=turns,
        gold_slice_ids=data.gold_slice_ids,
        source_weights=DEFAULT_SOURCE_WEIGHTS | dict(source_weights or {}),
        decontaminated=data.collected.decontamination.removed,
        fit_seconds=round(seconds, 2),
        shipped=data.collected.shipped_data,
        user_files=data.accounts,
        user_weight=data.user_weight,
        eval_files=tuple(
            name.removeprefix("eval file ")
            for name in data.collected.eval_prompt_counts
            if name.startswith("eval file ")
        ),
        notes=data.notes,
        resolved_params=dict(getattr(router, "schedule_", {})),
        validation=report,
    )
    router.save(out)
    with console.status("calibrating"):
        described = calibrate(out, data, data_dir)
    console.print(f"calibrated the strong-call shares on {described}", highlight=False)
    return Path(out)


def calibrate(out: str | Path, data: TrainingSet, data_dir: str | Path | None) -> str:
    """Store the artifact's calibration table; says which prompts it was made on.

    On the user's own prompts (fit and validation) when the user gave files with
    at least ``MIN_CALIBRATION_PROMPTS`` of them, or without the shipped data:
    their traffic, not the Arena's, is what ``@30%`` must mean 30% of. Otherwise
    on the shipped real Arena prompts (``calibrate.calibrate_artifact``).
    """
    prompts = _user_prompts(data)
    if len(prompts) < MIN_CALIBRATION_PROMPTS and data.collected.shipped_data:
        done = calibrate_artifact(out, data_dir=data_dir)
        return f"{len(done.scores):,} {done.prompts}"
    router = Router.load(out)
    described = "your prompts (the training and validation prompts of your files)"
    calibration = Calibration(
        thresholds=calibration_table(router.strong_win_rate(prompts)),
        prompts=described,
        n_prompts=len(prompts),
    )
    update_config(out, calibration=calibration)
    return f"{len(prompts):,} of {described}"


def _user_prompts(data: TrainingSet) -> list[str]:
    frames = [data.battles.frame, data.validation.frame]
    return pl.concat(frames).filter(data.is_user())["prompt"].unique(maintain_order=True).to_list()


def describe(data: TrainingSet, console: Console) -> None:
    """What the fit is about to see: rows, what left the data on the way and why, and
    what became of every row of the user's files."""
    console.print(
        f"training data: {len(data.battles):,} battles over "
        f"{data.battles.frame['prompt'].n_unique():,} prompts; "
        f"MMLU gold slice: {len(data.gold_slice_ids):,} questions",
        highlight=False,
    )
    lines = [*data.collected.removal_lines(), *data.notes]
    lines += [account.summary() for account in data.accounts]
    for line in lines:
        console.print(line, highlight=False, markup=False, soft_wrap=True)


# ----------------------------------------------------------------- validation


def validation_report(router: Router, validation: Battles, fit: Battles) -> ValidationReport:
    """The router on the held-out prompts beside a random router and prompt length.

    Quality is each validation prompt's strong-vs-weak outcome (win 1, tie 0.5,
    loss 0, averaged over the pair's battles there), so APGR is the share of the
    held-out wins recovered as the strong share grows, as for a battles eval
    file. Log-loss is the weighted BCE of the router's P(strong wins) on the
    pair's validation battles. The length baseline is a logistic regression on
    log(1 + characters) fitted on the fit's pair battles; the constant one
    predicts the fit's win rate. Without validation prompts only the score
    spread is measured, on up to 1,000 fit prompts.
    """
    prompts = validation.frame["prompt"].unique(maintain_order=True).to_list()
    sample = prompts or fit.frame["prompt"].unique(maintain_order=True).head(1000).to_list()
    scores = np.asarray(router.strong_win_rate(sample), dtype=np.float64)
    index = {p: i for i, p in enumerate(sample)}
    held = _pair_outcomes(validation, router.strong_model, router.weak_model)
    trained = _pair_outcomes(fit, router.strong_model, router.weak_model)
    report: dict[str, Any] = {
        "prompts": len(prompts),
        "pair_prompts": held["prompt"].n_unique(),
        "score_spread": float(np.ptp(np.percentile(scores, [5, 95]))) if len(scores) else None,
    }
    if held.height:
        report["log_loss"] = _log_loss(scores[[index[p] for p in held["prompt"]]], held)
        length = _length_model(trained) if trained.height else None
        if length is not None:
            rate = float(np.average(trained["y"], weights=trained["w"]))
            report["length_log_loss"] = _log_loss(length(held["prompt"].to_list()), held)
            report["constant_log_loss"] = _log_loss(np.full(held.height, rate), held)
        per_prompt = held.group_by("prompt", maintain_order=True).agg(
            y=(pl.col("y") * pl.col("w")).sum() / pl.col("w").sum()
        )
        texts = per_prompt["prompt"].to_list()
        strong = per_prompt["y"].to_numpy()
        report["apgr"] = _apgr(scores[[index[p] for p in texts]], strong)
        if report["apgr"] is not None:
            if length is not None:
                report["length_apgr"] = _apgr(length(texts), strong)
            rng = np.random.default_rng(0)
            draws = [_apgr(rng.random(len(texts)), strong) for _ in range(RANDOM_DRAWS)]
            report["random_apgr"] = tuple(np.percentile(np.asarray(draws, float), [5, 95]))
    report = {k: _rounded(v) for k, v in report.items()}
    return ValidationReport(**report, warning=_learned_nothing(report))


def _rounded(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return round(float(value), 4)
    if isinstance(value, tuple):
        return tuple(_rounded(v) for v in value)
    return value


def _pair_outcomes(battles: Battles, strong: str, weak: str) -> pl.DataFrame:
    """prompt, y (the strong model's outcome: 1 win, 0.5 tie, 0 loss), w (weight) per
    battle between the pair, either way round."""

    frame = battles.frame.filter(
        ((pl.col("model_a") == strong) & (pl.col("model_b") == weak))
        | ((pl.col("model_a") == weak) & (pl.col("model_b") == strong))
    )
    score_a = (
        pl.col("winner").cast(pl.String).replace_strict(OUTCOME_SCORE, return_dtype=pl.Float64)
    )
    return frame.select(
        "prompt",
        y=pl.when(pl.col("model_a") == strong).then(score_a).otherwise(1.0 - score_a),
        w=pl.col("weight").cast(pl.Float64),
    )


def _length_model(trained: pl.DataFrame) -> Callable[[Sequence[str]], np.ndarray]:
    """P(strong wins) from log(1 + characters), fitted on the fit's pair battles: the
    baseline a router must beat (length alone routes MMLU and GSM8K above chance)."""
    from sklearn.linear_model import LogisticRegression

    def feature(prompts: Sequence[str]) -> np.ndarray:
        return np.log1p(np.fromiter((len(p) for p in prompts), float, len(prompts)))[:, None]

    x = feature(trained["prompt"].to_list())
    y, w = trained["y"].to_numpy(), trained["w"].to_numpy()
    # A tie is half a win: one row each way, each at half the weight.
    model = LogisticRegression(C=1.0).fit(
        np.vstack([x, x]),
        np.r_[np.ones(len(y)), np.zeros(len(y))],
        sample_weight=np.r_[w * y, w * (1 - y)],
    )
    return lambda prompts: model.predict_proba(feature(prompts))[:, 1]


def _log_loss(p: np.ndarray, held: pl.DataFrame) -> float:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    y, w = held["y"].to_numpy(), held["w"].to_numpy()
    return float(np.average(-(y * np.log(p) + (1 - y) * np.log(1 - p)), weights=w))


def _apgr(scores: np.ndarray, strong: np.ndarray) -> float | None:
    """APGR with the strong model's outcome as its quality and 1 - it as the weak's;
    None when the two did equally well on these prompts (no gap to recover)."""
    from prefroute.errors import EvalError
    from prefroute.evals.metrics import curve

    try:
        return float(curve(scores, strong, 1.0 - strong).apgr)
    except EvalError:
        return None


def _learned_nothing(report: Mapping[str, Any]) -> str | None:
    """A warning when the router's validation scores say nothing about the prompt."""
    spread = report.get("score_spread")
    if spread is not None and spread < MIN_SPREAD:
        return (
            f"the router learned nothing: its scores on the validation prompts span only "
            f"{spread:.4f} (5-95%), so every prompt routes alike; train on more rows, or check "
            "that your files compare the strong and weak model"
        )
    apgr, band = report.get("apgr"), report.get("random_apgr")
    if report["pair_prompts"] < MIN_BAND_PROMPTS:
        return None  # the band is too wide to tell: the report line shows it
    if apgr is not None and band is not None and apgr <= band[1]:
        return (
            f"no measurable gain over random: validation APGR {apgr:.3f} is within the "
            f"random band {band[0]:.3f}-{band[1]:.3f} of these {report['pair_prompts']:,} "
            "prompts; more labels (or a larger validation split) would tell, or the pair's "
            "outcomes may not depend on the prompt"
        )
    return None


def report_lines(report: ValidationReport, kind: str) -> list[str]:
    """``train``'s closing lines: validation APGR and log-loss beside the baselines."""
    if not report.prompts:
        lines = ["validation: no prompts held out (see the split line above)"]
    elif not report.pair_prompts:
        lines = [
            f"validation: {report.prompts:,} prompts held out, none with a battle between the "
            "strong and the weak model: APGR and log-loss not measured"
        ]
    else:
        apgr = _show(report.apgr)
        low, high = report.random_apgr or (None, None)
        band = f"{_show(low)}-{_show(high)}"
        lines = [
            f"validation ({report.pair_prompts:,} prompts with a strong-vs-weak outcome): "
            f"APGR {apgr} (random 0.500, 5-95% {band}; prompt length {_show(report.length_apgr)})",
            f"validation log-loss {_show(report.log_loss)} (constant win rate "
            f"{_show(report.constant_log_loss)}; prompt length {_show(report.length_log_loss)}; "
            f"ln 2 = 0.693)",
        ]
    if report.warning and kind != "random":
        lines.append(f"warning: {report.warning}")
    return lines


def _show(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
