"""Battles -> strong / tie / weak labels -> one soft target per prompt (no torch)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from prefroute.data.labels import LABELS, preference_labels, soft_targets, tier_labels
from prefroute.data.schema import Battles
from prefroute.errors import DataError

STRONG, WEAK = "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"


def battles(rows: list[tuple[str, str, str, str]]) -> Battles:
    """rows: (prompt, model_a, model_b, winner); weight 1 unless the prompt says 'x2'."""
    return Battles(
        pl.DataFrame(
            {
                "prompt_id": [f"test/{i}" for i in range(len(rows))],
                "prompt": [r[0] for r in rows],
                "model_a": [r[1] for r in rows],
                "model_b": [r[2] for r in rows],
                "winner": [r[3] for r in rows],
                "source": "human",
                "dataset": "test",
                "weight": [2.0 if "x2" in r[0] else 1.0 for r in rows],
            }
        )
    )


def test_tier_labels_pit_strong_class_against_weak_class_from_either_side() -> None:
    tiers = {"a": 1, "b": 2, "c": 3, "d": 4}
    data = battles(
        [
            ("a beats c", "a", "c", "model_a"),  # strong on the left wins: strong
            ("c beats b x2", "c", "b", "model_a"),  # weak on the left wins: weak
            ("b beats c", "c", "b", "model_b"),  # strong on the right wins: strong
            ("both bad", "b", "c", "tie_bothbad"),  # any tie is a tie
            ("a vs b", "a", "b", "model_a"),  # both strong: no label
            ("c vs d", "c", "d", "model_b"),  # d is in neither class: no label
        ]
    )
    labels = tier_labels(data, tiers)
    assert labels.columns == ["prompt", "label", "weight", "dataset", "source"]
    assert sorted(labels.select("prompt", "label", "weight").rows()) == [
        ("a beats c", "strong", 1.0),
        ("b beats c", "strong", 1.0),
        ("both bad", "tie", 1.0),
        ("c beats b x2", "weak", 2.0),
    ]
    wider = tier_labels(data, tiers, strong_tiers=(1,), weak_tiers=(3, 4))
    assert sorted(wider.select("prompt", "label").rows()) == [("a beats c", "strong")]


def test_the_routers_pair_labels_whatever_its_tiers() -> None:
    data = battles([("x", STRONG, WEAK, "model_a"), ("y", WEAK, STRONG, "model_b")])
    data = Battles.concat([data, battles([("z", STRONG, WEAK, "model_b")])])
    # two models rate as tiers 1 and 2, both strong-class: only the pair rule labels them
    labels = preference_labels(data, strong_model=STRONG, weak_model=WEAK)
    assert sorted(labels.select("prompt", "label").rows()) == [
        ("x", "strong"),
        ("y", "strong"),
        ("z", "weak"),
    ]
    swapped = preference_labels(data, strong_model=WEAK, weak_model=STRONG)
    assert sorted(swapped.select("prompt", "label").rows()) == [
        ("x", "weak"),
        ("y", "weak"),
        ("z", "strong"),
    ]
    assert preference_labels(Battles.empty(), strong_model=STRONG, weak_model=WEAK).height == 0
    with pytest.raises(ValueError, match="disjoint"):
        preference_labels(data, strong_model=STRONG, weak_model=WEAK, strong_tiers=(1, 3))


def test_soft_targets_share_weights_per_prompt_and_drop_empty_or_unweighted() -> None:
    labels = pl.DataFrame(
        {
            "prompt": ["b", "a", "a", "a", "", "c"],
            "label": ["weak", "strong", "tie", "strong", "strong", "tie"],
            "weight": [1.0, 1.0, 1.0, 2.0, 1.0, 0.0],
        }
    )
    texts, targets = soft_targets(labels)
    assert texts == ["a", "b"]
    assert targets.dtype == np.float32 and targets.shape == (2, len(LABELS))
    np.testing.assert_allclose(targets, [[0.75, 0.25, 0.0], [0.0, 0.0, 1.0]])
    unweighted, _ = soft_targets(labels.drop("weight"))  # weight 1 each: "c" counts now
    assert unweighted == ["a", "b", "c"]
    with pytest.raises(DataError, match="label in"):
        soft_targets(labels.with_columns(label=pl.lit("gpt-4")))
    with pytest.raises(DataError, match="no \\['label'\\]"):
        soft_targets(labels.drop("label"))
