"""Scores and judge preferences -> battles."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import polars as pl
import pytest

from prefroute.data.augment import battles_from_preferences, battles_from_scores
from prefroute.data.schema import Scores
from prefroute.errors import DataError


def _scores(rows: list[tuple], source: str = "golden", dataset: str = "set") -> Scores:
    """rows: (prompt_id, prompt, model, score)."""
    frame = pl.DataFrame(
        rows, schema=["prompt_id", "prompt", "model", "score"], orient="row"
    ).with_columns(source=pl.lit(source), dataset=pl.lit(dataset))
    return Scores(frame)


def _outcomes(battles) -> dict[tuple[str, str, str], str]:
    rows = battles.frame.select("prompt_id", "model_a", "model_b", "winner").iter_rows()
    return {(p, a, b): w for p, a, b, w in rows}


def test_golden_pairs_each_once_with_bothbad_for_both_wrong() -> None:
    scores = _scores(
        [
            ("q1", "Q1", "gpt", 1.0),
            ("q1", "Q1", "mix", 0.0),
            ("q1", "Q1", "llama", 0.0),
            ("q2", "Q2", "mix", 1.0),
            ("q2", "Q2", "gpt", 1.0),
        ]
    )
    battles = battles_from_scores(scores)
    assert _outcomes(battles) == {
        ("q1", "gpt", "mix"): "model_a",
        ("q1", "gpt", "llama"): "model_a",
        ("q1", "llama", "mix"): "tie_bothbad",
        ("q2", "gpt", "mix"): "tie",
    }
    frame = battles.frame
    assert (frame["model_a"] < frame["model_b"]).all()
    assert frame["weight"].to_list() == [1.0] * 4
    assert set(frame["source"]) == {"golden"} and set(frame["dataset"]) == {"set"}
    assert dict(frame.select("prompt_id", "prompt").unique().iter_rows()) == {
        "q1": "Q1",
        "q2": "Q2",
    }


def test_judge_grades_tie_within_margin_and_never_bothbad() -> None:
    scores = _scores(
        [("q", "Q", "a", 1.0), ("q", "Q", "b", 1.0), ("q", "Q", "c", 1.5), ("q", "Q", "d", 4.0)],
        source="judge",
    )
    strict = _outcomes(battles_from_scores(scores))
    assert strict[("q", "a", "b")] == "tie"
    assert strict[("q", "a", "c")] == "model_b"
    loose = _outcomes(battles_from_scores(scores, tie_margin=0.5))
    assert loose[("q", "a", "c")] == "tie"
    assert loose[("q", "c", "d")] == "model_b"
    with pytest.raises(ValueError, match="tie_margin"):
        battles_from_scores(scores, tie_margin=-1)


def test_pairs_stay_within_a_dataset_and_fall_back_to_prompt_text() -> None:
    scores = Scores.concat(
        [
            # Same prompt id in two sets on different scales: never paired across.
            _scores([("v/1", "Q", "a", 9.0)], source="judge", dataset="ten-point"),
            _scores([("v/1", "Q", "b", 1.0)], source="judge", dataset="five-point"),
            # No ids: the prompt text is the key.
            _scores([(None, "P", "a", 0.0), (None, "P", "b", 1.0), (None, "R", "c", 1.0)]),
        ]
    )
    battles = battles_from_scores(scores)
    assert battles.frame.select("prompt", "model_a", "model_b", "winner").rows() == [
        ("P", "a", "b", "model_b")
    ]


def test_repeated_scores_are_averaged_before_pairing() -> None:
    scores = _scores(
        [("q", "Q", "a", 1.0), ("q", "Q", "a", 0.0), ("q", "Q", "b", 0.0)], source="judge"
    )
    assert _outcomes(battles_from_scores(scores)) == {("q", "a", "b"): "model_a"}


def test_models_restrict_and_pair_cap_is_seeded() -> None:
    models = [f"m{i}" for i in range(8)]
    rows = [
        (f"q{p}", f"Q{p}", m, float((p + i) % 3)) for p in range(20) for i, m in enumerate(models)
    ]
    scores = _scores(rows, source="judge")

    full = battles_from_scores(scores)
    assert len(full) == 20 * 28
    pair = battles_from_scores(scores, models=["m0", "m5"])
    assert set(pair.frame.select("model_a", "model_b").unique().rows()) == {("m0", "m5")}

    capped = battles_from_scores(scores, max_pairs_per_prompt=5, random_state=1)
    assert capped.frame.group_by("prompt_id").len()["len"].to_list() == [5] * 20
    again = battles_from_scores(scores, max_pairs_per_prompt=5, random_state=1)
    other = battles_from_scores(scores, max_pairs_per_prompt=5, random_state=2)
    assert capped.frame.equals(again.frame)
    assert not capped.frame.equals(other.frame)
    # A sample of the full pairs, with the same outcomes.
    assert set(_outcomes(capped).items()) <= set(_outcomes(full).items())


def _read(path: Path, n: int | None = None) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = itertools.islice(f, n) if n else f
        return [json.loads(line) for line in lines]


def test_routellm_mmlu_golden_gives_one_battle_per_question(data_dir: Path) -> None:
    rows = _read(data_dir / "routellm-evals" / "mmlu_golden.jsonl.gz", 2000)
    frame = pl.DataFrame(rows).select(
        "prompt_id",
        "prompt",
        "model",
        pl.col("correct").cast(pl.Float64).alias("score"),
        source=pl.lit("golden"),
        dataset=pl.lit("routellm-evals"),
    )
    battles = battles_from_scores(Scores(frame))
    correct = {(r["prompt_id"], r["model"]): r["correct"] for r in rows}
    per_model = [{p for p, m in correct if m == name} for name in {m for _, m in correct}]
    assert len(per_model) == 2
    assert len(battles) == len(per_model[0] & per_model[1]) > 900
    for prompt_id, a, b, winner in battles.frame.select(
        "prompt_id", "model_a", "model_b", "winner"
    ).iter_rows():
        ca, cb = correct[(prompt_id, a)], correct[(prompt_id, b)]
        expected = (
            "model_a" if ca > cb else "model_b" if cb > ca else "tie" if ca else "tie_bothbad"
        )
        assert winner == expected


def _prefs(rows: list[tuple]) -> pl.DataFrame:
    """rows: (prompt_id, model, preference)."""
    return pl.DataFrame(
        rows, schema=["prompt_id", "model", "preference"], orient="row"
    ).with_columns(prompt=pl.col("prompt_id").str.to_uppercase(), baseline=pl.lit("base"))


def test_preferences_become_soft_labels() -> None:
    prefs = _prefs(
        [("p1", "m", 0.7), ("p2", "m", 0.5), ("p3", "m", 1.0), ("p4", "m", 0.0), ("p5", "m", None)]
    )
    battles = battles_from_preferences(prefs, dataset="alpaca-eval")
    assert battles.frame.select("prompt_id", "model_a", "model_b", "winner").rows() == [
        ("p1", "m", "base", "model_a"),
        ("p1", "m", "base", "model_b"),
        ("p2", "m", "base", "tie"),
        ("p3", "m", "base", "model_a"),
        ("p4", "m", "base", "model_b"),
    ]
    assert battles.frame["weight"].to_list() == pytest.approx([0.7, 0.3, 1.0, 1.0, 1.0])
    assert set(battles.frame["source"]) == {"judge"}
    assert set(battles.frame["dataset"]) == {"alpaca-eval"}


def test_preferences_reject_bad_input() -> None:
    with pytest.raises(DataError, match=r"preferences frame:1: field 'preference'.*got 1\.5"):
        battles_from_preferences(_prefs([("p1", "m", 0.2), ("p2", "m", 1.5)]), dataset="d")
    with pytest.raises(DataError, match="dataset"):
        battles_from_preferences(_prefs([("p1", "m", 0.2)]))
    with pytest.raises(DataError, match="baseline"):
        battles_from_preferences(_prefs([("p1", "m", 0.2)]).drop("baseline"), dataset="d")


def test_alpaca_eval_preferences_keep_one_unit_of_weight_each(data_dir: Path) -> None:
    root = data_dir / "alpaca-eval"
    prompts = {r["prompt_id"]: r["instruction"] for r in _read(root / "instructions.jsonl.gz")}
    rows = _read(root / "preferences.jsonl.gz", 3000)
    prefs = pl.DataFrame(rows).select(
        "prompt_id",
        pl.col("prompt_id").replace_strict(prompts).alias("prompt"),
        "model",
        "baseline",
        pl.col("model_win").alias("preference"),
        pl.lit("alpaca-eval").alias("dataset"),
    )
    battles = battles_from_preferences(prefs)
    valid = prefs.filter(pl.col("preference").is_not_null())
    per_judgement = battles.frame.group_by("prompt_id", "model_a").agg(pl.col("weight").sum())
    assert per_judgement.height == valid.height
    assert per_judgement["weight"].to_numpy() == pytest.approx(1.0, abs=1e-6)
    assert set(battles.frame["model_b"]) == set(valid["baseline"])
