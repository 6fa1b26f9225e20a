"""Bradley-Terry ratings and tiers, checked against closed forms and known strengths."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from prefroute.data.labels import preference_labels
from prefroute.data.schema import Battles
from prefroute.data.tiers import MIN_BATTLES, BradleyTerry, assign_tiers, rating_table
from prefroute.errors import NotFittedError

# The closed forms below are of the unpenalised MLE (the Arena's fit).
UNPENALISED = 1e6


def _battles(rows: list[tuple], source: str = "human") -> Battles:
    """rows: (model_a, model_b, winner[, weight])."""
    frame = pl.DataFrame(
        [(a, b, w, r[3] if len(r) > 3 else 1.0) for r in rows for a, b, w in [r[:3]]],
        schema=["model_a", "model_b", "winner", "weight"],
        orient="row",
    ).with_columns(
        prompt_id=pl.lit(None, pl.String),
        prompt=pl.lit("q"),
        source=pl.lit(source),
        dataset=pl.lit("test"),
    )
    return Battles(frame)


def _gap(bt: BradleyTerry, a: str, b: str) -> float:
    rating = dict(bt.ratings_.select("model", "rating").iter_rows())
    return rating[a] - rating[b]


def test_two_models_rating_gap_is_the_win_log_odds() -> None:
    # 30 wins, 10 losses: P = 0.75, gap = 400 * log10(0.75 / 0.25).
    battles = _battles([("x", "y", "model_a")] * 30 + [("y", "x", "model_a")] * 10)
    bt = BradleyTerry(C=UNPENALISED, n_bootstrap=0).fit(battles)
    assert _gap(bt, "x", "y") == pytest.approx(400 * math.log10(3), abs=0.01)
    assert bt.predict_proba("x", "y") == pytest.approx(0.75, abs=1e-5)
    assert bt.ratings_["rating"].mean() == pytest.approx(1000.0)
    assert bt.ratings_["n_battles"].to_list() == [40, 40]
    assert bt.models_ == ["x", "y"]


def test_ties_count_half_and_bothbad_is_a_tie() -> None:
    # 10 wins + 10 ties + 0 losses == 15 wins + 5 losses.
    for tie in ("tie", "tie_bothbad"):
        battles = _battles([("x", "y", "model_a")] * 10 + [("x", "y", tie)] * 10)
        bt = BradleyTerry(C=UNPENALISED, n_bootstrap=0).fit(battles)
        assert _gap(bt, "x", "y") == pytest.approx(400 * math.log10(3), abs=0.01)


def test_weights_act_as_repeated_battles() -> None:
    weighted = _battles([("x", "y", "model_a", 3.0), ("x", "y", "model_b", 1.0), ("x", "z", "tie")])
    repeated = _battles([("x", "y", "model_a")] * 3 + [("x", "y", "model_b"), ("x", "z", "tie")])
    a = BradleyTerry(C=UNPENALISED, n_bootstrap=0).fit(weighted).ratings_
    b = BradleyTerry(C=UNPENALISED, n_bootstrap=0).fit(repeated).ratings_
    assert a["rating"].to_numpy() == pytest.approx(b["rating"].to_numpy(), abs=0.01)


def _simulate(strength: np.ndarray, n: int, seed: int) -> Battles:
    rng = np.random.default_rng(seed)
    names = np.array([f"m{i}" for i in range(len(strength))])
    a = rng.integers(0, len(strength), n)
    b = (a + rng.integers(1, len(strength), n)) % len(strength)
    p_a = 1 / (1 + 10 ** ((strength[b] - strength[a]) / 400))
    winner = np.where(rng.random(n) < p_a, "model_a", "model_b")
    return _battles(list(zip(names[a], names[b], winner, strict=True)))


def test_recovers_known_strengths_with_covering_intervals() -> None:
    strength = np.array([1250.0, 1180.0, 1100.0, 1050.0, 1000.0, 900.0, 850.0, 700.0])
    bt = BradleyTerry(n_bootstrap=50, random_state=0).fit(_simulate(strength, 40_000, seed=1))
    table = bt.ratings_
    assert table["model"].to_list() == [f"m{i}" for i in range(8)]  # exact ordering
    fitted = table["rating"].to_numpy()
    # The scale is free up to a shift: compare gaps to the true centred strengths.
    assert fitted - fitted.mean() == pytest.approx(strength - strength.mean(), abs=15)
    truth = strength - strength.mean() + fitted.mean()
    covered = (table["ci_low"].to_numpy() <= truth) & (truth <= table["ci_high"].to_numpy())
    assert covered.sum() >= 6
    assert (table["ci_high"] - table["ci_low"]).max() < 60


def test_anchor_pins_one_model() -> None:
    battles = _battles([("x", "y", "model_a")] * 3 + [("x", "y", "model_b")])
    bt = BradleyTerry(C=UNPENALISED, n_bootstrap=5, anchor=("y", 1114.0), random_state=0).fit(
        battles
    )
    rating = dict(bt.ratings_.select("model", "rating").iter_rows())
    assert rating["y"] == pytest.approx(1114.0)
    assert rating["x"] - rating["y"] == pytest.approx(400 * math.log10(3), abs=0.01)
    with pytest.raises(ValueError, match="anchor model 'gpt'"):
        BradleyTerry(anchor=("gpt", 1000.0)).fit(battles)


def test_perfect_records_and_disconnected_graphs_stay_finite() -> None:
    battles = _battles(
        [("x", "y", "model_a")] * 20  # x never lost
        + [("y", "z", "model_a")] * 5
        + [("z", "y", "model_a")] * 5
        + [("p", "q", "model_a")] * 3  # p-q never met x-y-z
        + [("p", "q", "tie")] * 2
    )
    table = BradleyTerry(n_bootstrap=10, random_state=0).fit(battles).ratings_
    values = table.select("rating", "ci_low", "ci_high").to_numpy()
    assert np.isfinite(values).all()
    assert table["model"][0] == "x"
    bt = BradleyTerry(C=UNPENALISED, n_bootstrap=0).fit(battles)
    assert _gap(bt, "p", "q") == pytest.approx(400 * math.log10(4 / 1), abs=1)


def test_prior_shrinks_rarely_seen_models_not_well_measured_ones() -> None:
    battles = _battles(
        [("x", "y", "model_a")] * 600 + [("x", "y", "model_b")] * 400 + [("lucky", "y", "model_a")]
    )
    flat = BradleyTerry(C=UNPENALISED, n_bootstrap=0).fit(battles)
    prior = BradleyTerry(n_bootstrap=0).fit(battles)
    assert _gap(flat, "lucky", "x") > 1000  # one win: the MLE runs away
    assert _gap(prior, "lucky", "x") < 400
    assert _gap(prior, "x", "y") == pytest.approx(_gap(flat, "x", "y"), abs=5)


def test_skips_uninformative_rows_and_needs_two_models() -> None:
    battles = _battles(
        [("x", "y", "model_a")] * 3
        + [("x", "y", "model_b"), ("x", "x", "model_a"), ("x", "y", "model_b", 0.0)]
    )
    bt = BradleyTerry(C=UNPENALISED, n_bootstrap=0).fit(battles)
    assert _gap(bt, "x", "y") == pytest.approx(400 * math.log10(3), abs=0.01)
    assert bt.ratings_["ci_low"].is_null().all()
    with pytest.raises(ValueError, match="at least 2 models"):
        BradleyTerry().fit(_battles([("x", "x", "model_a")]))


def test_same_seed_same_intervals() -> None:
    battles = _simulate(np.array([1100.0, 1000.0, 950.0]), 600, seed=3)
    one = BradleyTerry(n_bootstrap=30, random_state=7).fit(battles).ratings_
    two = BradleyTerry(n_bootstrap=30, random_state=7).fit(battles).ratings_
    three = BradleyTerry(n_bootstrap=30, random_state=8).fit(battles).ratings_
    assert one.equals(two)
    assert not one["ci_low"].equals(three["ci_low"])


def test_predict_proba_needs_a_fit_and_known_models() -> None:
    with pytest.raises(NotFittedError):
        BradleyTerry().predict_proba("x", "y")
    bt = BradleyTerry(C=UNPENALISED, n_bootstrap=0).fit(
        _battles([("x", "y", "model_a"), ("x", "y", "tie")])
    )
    with pytest.raises(ValueError, match="unknown model 'gpt'"):
        bt.predict_proba("x", "gpt")
    assert bt.predict_proba("x", "y") + bt.predict_proba("y", "x") == pytest.approx(1.0)


def test_tiers_follow_rating_clusters() -> None:
    ratings = {"a": 1300.0, "b": 1290.0, "c": 1150.0, "d": 1140.0, "e": 1135.0, "f": 900.0}
    assert assign_tiers(ratings, n_tiers=3) == {"a": 1, "b": 1, "c": 2, "d": 2, "e": 2, "f": 3}
    # No more distinct ratings than tiers: one tier per rating, equal ratings share one.
    assert assign_tiers({"x": 1.0, "y": 3.0, "z": 3.0}, n_tiers=10) == {"x": 2, "y": 1, "z": 1}
    with pytest.raises(ValueError, match="n_tiers"):
        assign_tiers(ratings, n_tiers=0)


def test_tiers_are_contiguous_and_ordered_by_rating() -> None:
    ratings = dict(
        zip(
            [f"m{i}" for i in range(40)],
            np.random.default_rng(0).normal(1000, 150, 40),
            strict=True,
        )
    )
    tiers = assign_tiers(ratings, n_tiers=10, random_state=0)
    by_rating = sorted(ratings, key=ratings.get, reverse=True)
    ordered = [tiers[m] for m in by_rating]
    assert ordered == sorted(ordered)
    assert set(ordered) == set(range(1, 11))
    assert assign_tiers(ratings, n_tiers=10, random_state=0) == tiers


def test_rating_table_is_sorted_with_tiers() -> None:
    strength = np.array([1300.0, 1280.0, 1000.0, 990.0, 700.0])
    table = rating_table(_simulate(strength, 20_000, seed=2), n_tiers=3, n_bootstrap=20)
    assert table.columns == [
        "model",
        "rating",
        "ci_low",
        "ci_high",
        "n_battles",
        "tier",
        "no_tier_reason",
    ]
    assert table["rating"].is_sorted(descending=True)
    assert table["no_tier_reason"].is_null().all()
    assert dict(table.select("model", "tier").iter_rows()) == {
        "m0": 1,
        "m1": 1,
        "m2": 2,
        "m3": 2,
        "m4": 3,
    }
    assert table["n_battles"].sum() == 2 * 20_000


def _strong_and_lucky() -> Battles:
    """Five well-measured models, and 'lucky': 3 battles, all won against the best."""
    strength = np.array([1300.0, 1250.0, 1100.0, 1000.0, 900.0])
    well_measured = _simulate(strength, 5_000, seed=4)
    return Battles.concat([well_measured, _battles([("lucky", "m0", "model_a")] * 3)])


def test_a_model_with_few_battles_gets_no_tier_and_comes_last() -> None:
    table = rating_table(_strong_and_lucky(), n_tiers=3, n_bootstrap=20)
    lucky = table.row(by_predicate=pl.col("model") == "lucky", named=True)
    assert lucky["tier"] is None
    assert lucky["no_tier_reason"] == f"fewer than {MIN_BATTLES} battles"
    assert lucky["n_battles"] == 3 and lucky["ci_low"] is not None  # still rated, and listed
    assert table["model"][-1] == "lucky"  # ranked models first
    assert lucky["rating"] > table.row(by_predicate=pl.col("model") == "m1", named=True)["rating"]
    ranked = table.filter(pl.col("model") != "lucky")
    assert ranked["model"].to_list() == ["m0", "m1", "m2", "m3", "m4"]
    assert ranked["tier"].to_list() == sorted(ranked["tier"]) and set(ranked["tier"]) == {1, 2, 3}
    # the cut is a parameter: at 3 battles lucky ranks (and tops the table, as before the rule)
    assert rating_table(_strong_and_lucky(), n_bootstrap=0, min_battles=3)["model"][0] == "lucky"
    with pytest.raises(ValueError, match="min_battles"):
        rating_table(_strong_and_lucky(), min_battles=0)


def test_a_model_without_a_tier_is_in_neither_label_class() -> None:
    # tiers 1-2 are strong-class, 3 weak-class; lucky (4 battles) has no tier
    extra = _battles([("lucky", "m4", "model_a"), ("m0", "m4", "model_a")]).frame
    extra = extra.with_columns(prompt=pl.Series(["lucky's prompt", "m0's prompt"]))
    data = Battles.concat([_strong_and_lucky(), Battles(extra)])
    pair = {"strong_model": "m0", "weak_model": "m4"}
    labelled = set(preference_labels(data, **pair, random_state=0)["prompt"])
    assert "m0's prompt" in labelled and "lucky's prompt" not in labelled
    # with the cut at its 4 battles, lucky ranks (strong-class) and its win over m4 labels
    with_lucky = preference_labels(data, **pair, min_battles=4, random_state=0)
    assert "lucky's prompt" in set(with_lucky["prompt"])


def test_a_group_never_compared_with_the_main_one_gets_no_tier() -> None:
    main = _simulate(np.array([1200.0, 1000.0, 800.0]), 3_000, seed=5)
    apart = _battles([("p", "q", "model_a")] * 150 + [("q", "p", "model_a")] * 50)
    table = rating_table(Battles.concat([main, apart]), n_tiers=3, n_bootstrap=0)
    reasons = dict(table.select("model", "no_tier_reason").iter_rows())
    assert reasons["p"] == reasons["q"]
    assert reasons["p"].startswith("not compared with the main group")
    assert {m for m, r in reasons.items() if r is None} == {"m0", "m1", "m2"}


def test_golden_ties_say_nothing_about_which_model_is_better() -> None:
    wins = [("x", "y", "model_a")] * 60 + [("x", "y", "model_b")] * 20
    ties = [("x", "y", "tie")] * 300 + [("x", "y", "tie_bothbad")] * 100
    golden = rating_table(_battles(wins + ties, "golden"), n_bootstrap=0, min_battles=1)
    no_ties = rating_table(_battles(wins, "golden"), n_bootstrap=0, min_battles=1)
    human = rating_table(_battles(wins + ties, "human"), n_bootstrap=0, min_battles=1)

    def gap(table: pl.DataFrame) -> float:
        rating = dict(table.select("model", "rating").iter_rows())
        return rating["x"] - rating["y"]

    assert gap(golden) == pytest.approx(gap(no_ties))
    assert golden["n_battles"].to_list() == [80, 80]
    assert gap(human) < gap(golden) / 3  # a human's tie is a judgement: it counts
