"""Preference data: the ``Battles`` / ``Scores`` tables, readers for the files users
bring, the shipped sets, and the training recipe built from them.

::

    from prefroute.data import read_battles, training_set

    report = read_battles("arena.jsonl", turns="first", skip_bad=True)
    print(report.summary())            # what was read, what was skipped
    battles = report.table             # Battles
    train = training_set(battle_files=["arena.jsonl"])

Names are imported on first use, so ``import prefroute.data`` stays cheap (no
polars until a table or reader is touched): the CLI and the serving path
import parts of this package without paying for all of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefroute.data.collect import CollectedData, collect_battles
    from prefroute.data.location import data_dir
    from prefroute.data.model_names import DEFAULT_STRONG, DEFAULT_WEAK, canonical_name
    from prefroute.data.prompts import read_prompts
    from prefroute.data.readers import ReadReport, read_battles, read_scores
    from prefroute.data.recipe import TrainingSet, training_set
    from prefroute.data.schema import SOURCES, WINNERS, Battles, Scores
    from prefroute.data.shipped import LoadReport, load_battles, load_eval_scores, load_scores

__all__ = [
    "DEFAULT_STRONG",
    "DEFAULT_WEAK",
    "SOURCES",
    "WINNERS",
    "Battles",
    "CollectedData",
    "LoadReport",
    "ReadReport",
    "Scores",
    "TrainingSet",
    "canonical_name",
    "collect_battles",
    "data_dir",
    "load_battles",
    "load_eval_scores",
    "load_scores",
    "read_battles",
    "read_prompts",
    "read_scores",
    "training_set",
]

_LAZY = {
    "CollectedData": "prefroute.data.collect",
    "collect_battles": "prefroute.data.collect",
    "data_dir": "prefroute.data.location",
    "DEFAULT_STRONG": "prefroute.data.model_names",
    "DEFAULT_WEAK": "prefroute.data.model_names",
    "canonical_name": "prefroute.data.model_names",
    "ReadReport": "prefroute.data.readers",
    "read_battles": "prefroute.data.readers",
    "read_prompts": "prefroute.data.prompts",
    "read_scores": "prefroute.data.readers",
    "TrainingSet": "prefroute.data.recipe",
    "training_set": "prefroute.data.recipe",
    "SOURCES": "prefroute.data.schema",
    "WINNERS": "prefroute.data.schema",
    "Battles": "prefroute.data.schema",
    "Scores": "prefroute.data.schema",
    "LoadReport": "prefroute.data.shipped",
    "load_battles": "prefroute.data.shipped",
    "load_eval_scores": "prefroute.data.shipped",
    "load_scores": "prefroute.data.shipped",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'prefroute.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
