"""One call from data to a calibrated artifact: what ``prefroute train`` runs.

Collect the recipe's decontaminated data, fit the router kind asked for,
save it with where its data came from (including the MMLU slice the
evaluation must leave out), and calibrate it on real Arena prompts so
``router-<kind>@<share>%`` works straight away.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from prefroute.calibrate import calibrate_artifact
from prefroute.conversation import Turns
from prefroute.data.recipe import DEFAULT_SOURCE_WEIGHTS, TrainingSet, training_set
from prefroute.errors import InvalidParameterError
from prefroute.routers.artifact import TrainingData
from prefroute.routers.base import DEFAULT_STRONG, DEFAULT_WEAK, Router
from prefroute.routers.registry import router_class


def train_router(
    kind: str,
    out: str | Path,
    *,
    data_dir: str | Path | None = None,
    battle_files: Sequence[str | Path] = (),
    skip_bad: bool = False,
    turns: Turns = "first",
    source_weights: Mapping[str, float] | None = None,
    strong_model: str = DEFAULT_STRONG,
    weak_model: str = DEFAULT_WEAK,
    embedder: str | None = None,
    mmlu_gold_slice: int = 1500,
    random_state: int = 0,
    params: dict[str, Any] | None = None,
    data: TrainingSet | None = None,
    console: Console | None = None,
) -> Path:
    """Train, save and calibrate one router; returns the artifact directory.

    ``turns`` is the policy conversations are read with (``training_set``); the
    artifact records it, and serving scores requests the same way.
    ``source_weights`` weighs label sources as in ``training_set``. ``params``
    are extra constructor hyper-parameters of the kind; ``data`` reuses a
    training set already collected (the quickstart trains several routers from
    one), built with ``turns`` and ``source_weights``.
    """
    console = console or Console(stderr=True)
    router_cls = router_class(kind)
    kwargs: dict[str, Any] = {
        "strong_model": strong_model,
        "weak_model": weak_model,
        "random_state": random_state,
        **(params or {}),
    }
    if embedder is not None:
        if "embedder" not in inspect.signature(router_cls).parameters:
            raise InvalidParameterError(
                f"router kind {kind!r} takes no embedder; train it without one"
            )
        kwargs["embedder"] = embedder
    router: Router = router_cls(**kwargs)

    if data is None:
        with console.status("collecting and decontaminating the training data"):
            data = training_set(
                data_dir,
                battle_files=battle_files,
                skip_bad=skip_bad,
                turns=turns,
                source_weights=source_weights,
                strong_model=strong_model,
                weak_model=weak_model,
                mmlu_gold_slice=mmlu_gold_slice,
                random_state=random_state,
            )
        describe(data, console)
    started = time.perf_counter()
    router.fit(data.battles)
    seconds = time.perf_counter() - started
    console.print(f"fitted {kind} in {seconds:.1f} s")
    router.training_data_ = TrainingData(
        fingerprint=data.fingerprint,
        rows=len(data.battles),
        prompts=data.battles.frame["prompt"].n_unique(),
        turns=turns,
        gold_slice_ids=data.gold_slice_ids,
        source_weights=DEFAULT_SOURCE_WEIGHTS | dict(source_weights or {}),
        decontaminated=data.collected.decontamination.removed,
        fit_seconds=round(seconds, 2),
    )
    router.save(out)
    with console.status("calibrating on real Arena prompts"):
        calibrate_artifact(out, data_dir=data_dir)
    return Path(out)


def describe(data: TrainingSet, console: Console) -> None:
    """What the fit is about to see: rows, and what left the data on the way, and why."""
    console.print(
        f"training data: {len(data.battles):,} battles over "
        f"{data.battles.frame['prompt'].n_unique():,} prompts; "
        f"MMLU gold slice: {len(data.gold_slice_ids):,} questions"
    )
    for line in data.collected.removal_lines():
        console.print(line, highlight=False, markup=False)
    for report in data.collected.user_files:
        console.print(report.summary())
