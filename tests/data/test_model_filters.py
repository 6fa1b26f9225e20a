"""Entries that are not models: a data file of rules (shipped + the user's), every drop reported."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from prefroute.data.collect import drop_not_models
from prefroute.data.model_names import FILTERS_ENV, model_filters
from prefroute.data.schema import Battles
from prefroute.errors import DataError


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("example", "example"),  # AlpacaEval's placeholder
        ("test-7b-o1-qwen", "test-7b-o1-qwen"),
        ("alpaca-7b-verbose", "*-verbose"),
        ("gpt-4-0613-concise", "*-concise"),
        ("mixtral-8x7b-instruct-v0.1-concise", "*-concise"),
        ("gpt-4-gamed", "*-gamed"),
        ("urial=inst-1k-mistral-7b-v0.1", "urial=*"),
        ("pairrm-tulu-2-70b", "pairrm-*"),
        ("ultralm-13b-v2.0-best-of-16", "*-best-of-*"),
        # models stay, including near misses of the patterns
        ("gpt-4-1106-preview", None),
        ("mixtral-8x7b-instruct-v0.1", None),
        ("amara-o1-7b-qwen", None),
        ("verbose-llm", None),
        ("examples-7b", None),
    ],
)
def test_shipped_rules(name: str, rule: str | None) -> None:
    found = model_filters().rule(name)
    assert (found and found.pattern) == rule
    if found:
        assert found.source == "prefroute/data/model_filters.toml" and len(found.reason) > 20


def _user_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "my_filters.toml"
    path.write_text(text)
    return path


def test_a_user_file_adds_rules_and_keeps_its_own_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _user_file(
        tmp_path,
        '[drop]\n"my-probe-*" = "our load-test stub"\n"baseline-0" = "a placeholder"\n'
        '[keep]\nmodels = ["house-model-concise"]\n',
    )
    for filters in (model_filters(str(path)), _from_env(monkeypatch, path)):
        assert filters.rule("my-probe-7").reason == "our load-test stub"  # glob
        assert filters.rule("my-probe-7").source == str(path)
        assert filters.rule("baseline-0").pattern == "baseline-0"  # exact
        assert filters.rule("baseline-01") is None
        assert filters.rule("house-model-concise") is None  # kept despite "*-concise"
        assert filters.rule("gpt-4-0613-concise").pattern == "*-concise"  # shipped rules stay
    monkeypatch.delenv(FILTERS_ENV)
    assert model_filters().rule("my-probe-7") is None


def _from_env(monkeypatch: pytest.MonkeyPatch, path: Path):  # noqa: ANN202 - ModelFilters
    monkeypatch.setenv(FILTERS_ENV, str(path))
    return model_filters()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[drop]\n"x" = ""\n', "[drop] 'x' = a reason"),
        ("[drop]\nx = 3\n", "[drop] 'x' = a reason"),
        ("[keep]\nmodels = 'x'\n", "[keep] models = a list of names"),
        ("[dorp]\nx = 'y'\n", "got the table(s) ['dorp']"),
        ("[drop\n", "invalid TOML"),
    ],
)
def test_a_bad_user_file_names_the_file_and_what_is_wrong(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = _user_file(tmp_path, text)
    with pytest.raises(DataError, match=str(path)) as raised:
        model_filters(str(path))
    assert expected in str(raised.value)
    with pytest.raises(DataError, match="no such file"):
        model_filters(str(tmp_path / "missing.toml"))


def test_every_dropped_battle_is_reported_with_its_rule() -> None:
    rows = [
        ("alpaca", "example", "gpt-4-1106-preview"),
        ("alpaca", "gpt-4-1106-preview", "example"),  # either side
        ("alpaca", "alpaca-7b-verbose", "gpt-4-1106-preview"),
        ("alpaca", "gpt-3.5-turbo-1106-verbose", "gpt-4-1106-preview"),
        ("mine", "alpaca-7b-verbose", "example"),  # both sides: model_a's rule
        ("mine", "gpt-4-1106-preview", "claude-v1"),
    ]
    battles = Battles(
        pl.DataFrame(rows, schema=["dataset", "model_a", "model_b"], orient="row").with_columns(
            prompt_id=pl.lit(None, pl.String),
            prompt=pl.lit("q"),
            winner=pl.lit("model_a"),
            source=pl.lit("judge"),
            weight=pl.lit(1.0),
        )
    )
    kept, dropped = drop_not_models(battles, model_filters())
    assert kept.frame.select("model_a", "model_b").rows() == [("gpt-4-1106-preview", "claude-v1")]
    assert len(kept) + sum(d.rows for d in dropped) == len(battles)
    reported = {(d.dataset, d.models, d.rule.pattern, d.rows) for d in dropped}
    assert reported == {
        ("alpaca", ("example",), "example", 2),
        ("alpaca", ("alpaca-7b-verbose", "gpt-3.5-turbo-1106-verbose"), "*-verbose", 2),
        ("mine", ("alpaca-7b-verbose",), "*-verbose", 1),
    }
    example = str(next(d for d in dropped if d.models == ("example",)))
    assert example.startswith("alpaca: dropped 2 battles of example (AlpacaEval's placeholder")
    assert example.endswith("(rule 'example' in prefroute/data/model_filters.toml))")
    assert drop_not_models(kept, model_filters()) == (kept, ())
