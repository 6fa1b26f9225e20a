"""The price table: dated shipped prices, user files on top, missing prices asked for."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefroute.errors import DataError, UnknownPriceError
from prefroute.prices import PAPER_MIX, Price, TokenMix, price_table, read_prices


def test_shipped_prices_are_dated_and_give_the_papers_blend() -> None:
    table = price_table()
    assert all(p.date and p.provider for p in table.values())
    gpt4 = table.price("gpt-4-1106-preview")
    assert (gpt4.input, gpt4.output) == (10.0, 30.0)
    # The paper's $24.7 per 1M tokens is GPT-4-1106 at 95 input / 264 output tokens.
    assert gpt4.blended(PAPER_MIX) == pytest.approx(24.7, abs=0.05)
    assert table.price("mixtral-8x7b-instruct-v0.1").blended() == pytest.approx(0.24)


def test_names_are_canonicalised_like_every_model_name() -> None:
    table = price_table()
    # AlpacaEval's spelling of the paper's strong model
    assert table.price("gpt4_1106_preview") == table.price("gpt-4-1106-preview")
    assert "mistralai/Mixtral-8x7B-Instruct-v0.1" in table


def test_a_user_file_adds_and_replaces_entries(tmp_path: Path) -> None:
    mine = tmp_path / "prices.toml"
    mine.write_text(
        '["gpt-4o"]\ninput = 1.0\noutput = 4.0\n["my-local-llm"]\ninput = 0\noutput = 0\n'
    )
    table = price_table([mine])
    assert table.price("gpt-4o") == Price(1.0, 4.0, source=str(mine))
    assert table.price("my-local-llm").cost(1000, 1000) == 0.0
    assert price_table().price("gpt-4o").input == 2.5  # the shipped table is untouched


def test_the_env_file_sits_between_shipped_and_command_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, flag = tmp_path / "env.toml", tmp_path / "flag.toml"
    env.write_text('["gpt-4o"]\ninput = 1.0\noutput = 2.0\n["a"]\ninput = 1\noutput = 1\n')
    flag.write_text('["gpt-4o"]\ninput = 3.0\noutput = 4.0\n')
    monkeypatch.setenv("PREFROUTE_PRICES", str(env))
    table = price_table([flag])
    assert table.price("gpt-4o").input == 3.0 and table.price("a").input == 1.0
    assert table.sources == ("prefroute/prices.toml", str(env), str(flag))


def test_an_unknown_price_is_asked_for_not_invented() -> None:
    with pytest.raises(UnknownPriceError, match=r"no price for model 'my-model'.*--prices FILE"):
        price_table().price("my-model")


def test_every_unknown_price_is_named_in_one_error() -> None:
    with pytest.raises(UnknownPriceError) as info:
        price_table().prices(["gpt-4o", "my-model", "gpt-4o-mini", "other-model"])
    assert info.value.models == ("my-model", "other-model")
    assert "models 'my-model', 'other-model'" in str(info.value)
    assert [p.input for p in price_table().prices(["gpt-4o", "gpt-4o-mini"])] == [
        price_table().price(m).input for m in ("gpt-4o", "gpt-4o-mini")
    ]


def test_every_bad_entry_is_reported_with_its_table(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '["a"]\ninput = -1\noutput = 2\n["b"]\ninput = 1\n["c"]\ninput = 1\noutput = 1\ncost = 3\n'
    )
    with pytest.raises(DataError) as info:
        read_prices(bad)
    text = str(info.value)
    assert (
        f"{bad}: field '[\"a\"].input': expected a price in $ per 1M tokens, >= 0, got -1" in text
    )
    assert "'[\"b\"].output'" in text and "no value" in text
    assert "'[\"c\"].cost'" in text
    with pytest.raises(DataError, match="invalid TOML"):
        read_prices(tmp_path / "x.toml", "not = = toml")


def test_cost_and_blend_follow_the_token_mix() -> None:
    price = Price(2.0, 8.0)
    assert price.cost(1_000_000, 500_000) == pytest.approx(6.0)
    assert price.blended(TokenMix(1, 1)) == pytest.approx(5.0)
    assert str(Price(2.5, 10.0, "2024-10-01", "OpenAI")) == (
        "$2.5 in / $10 out per 1M tokens (OpenAI, 2024-10-01)"
    )


def test_many_bad_entries_offer_no_option_price_files_do_not_have(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text("".join(f'["m{i}"]\ninput = "cheap"\noutput = 1.0\n' for i in range(12)))
    with pytest.raises(DataError) as caught:
        read_prices(path)
    text = str(caught.value)
    assert text.endswith("... and 2 more bad records") and "--skip-bad" not in text


def test_a_price_line_names_model_price_date_and_file(tmp_path: Path) -> None:
    price = price_table().price("gpt-4o")
    assert price.line("gpt-4o") == (
        "gpt-4o $2.5 in / $10 out per 1M tokens (2024-10-01, prefroute/prices.toml)"
    )
    assert str(TokenMix(10, 20, "a guess")) == "10 input + 20 output tokens a call (a guess)"
