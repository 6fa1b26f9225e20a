"""``train_router`` reads the data with the turn policy it is given and records it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from prefroute import training


class Collected(Exception):
    """Stops training once the data would be collected."""


def test_turns_and_source_weights_reach_the_training_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: dict[str, Any] = {}

    def spy(*args: Any, **kwargs: Any) -> None:
        asked.update(kwargs)
        raise Collected

    monkeypatch.setattr(training, "training_set", spy)
    with pytest.raises(Collected):
        training.train_router("random", tmp_path / "r", turns="all", source_weights={"judge": 0.5})
    assert asked["turns"] == "all" and asked["source_weights"] == {"judge": 0.5}
