"""Model prices: list prices in $ per 1M input and output tokens, one table.

Savings in ``eval``, ``calibrate --budget``, the server's cost metric and
``prefroute label``'s estimates all price calls the same way, from one table:
``prices.toml`` in the package (public list prices, each dated), then the file
named by ``PREFROUTE_PRICES``, then files given per command (``--prices
FILE``); a later entry for a model replaces an earlier one. Keys are model
names, canonicalised like every other model name (``data/model_aliases.toml``).

The file format, one TOML table per model::

    ["gpt-4o"]
    input = 2.5        # $ per 1M input tokens
    output = 10.0      # $ per 1M output tokens
    date = "2024-10-01"  # optional: when this was the list price
    provider = "OpenAI"  # optional: whose price it is

A model without a price is an error that says how to give one: prices are
asked for, never invented.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from prefroute.errors import DataError, Problem, UnknownPriceError

PRICES_ENV = "PREFROUTE_PRICES"
SHIPPED = "prefroute/prices.toml"
_FIELDS = {"input", "output", "date", "provider"}


@dataclass(frozen=True)
class TokenMix:
    """Tokens in and out of one typical request, to turn two prices into one.

    The default is the RouteLLM paper's: 95 input and 264 output tokens, which
    makes GPT-4-1106's $10 / $30 the paper's $24.7 per 1M tokens. ``source``
    says where a mix came from, so every report can state the one it used.
    """

    input_tokens: float = 95.0
    output_tokens: float = 264.0
    source: str = "the RouteLLM paper's typical call"

    def __str__(self) -> str:
        return (
            f"{self.input_tokens:,.0f} input + {self.output_tokens:,.0f} output tokens a call "
            f"({self.source})"
        )


PAPER_MIX = TokenMix()


@dataclass(frozen=True)
class Price:
    """A model's list price: $ per 1M input tokens and per 1M output tokens."""

    input: float
    output: float
    date: str | None = None
    provider: str | None = None
    source: str = SHIPPED

    def cost(self, input_tokens: float, output_tokens: float) -> float:
        """$ for a call with these token counts."""
        return (input_tokens * self.input + output_tokens * self.output) / 1e6

    def blended(self, mix: TokenMix = PAPER_MIX) -> float:
        """$ per 1M tokens of requests shaped like ``mix`` (input and output together)."""
        total = mix.input_tokens + mix.output_tokens
        return 1e6 * self.cost(mix.input_tokens, mix.output_tokens) / total

    def __str__(self) -> str:
        where = ", ".join(part for part in (self.provider, self.date) if part)
        return f"${self.input:g} in / ${self.output:g} out per 1M tokens" + (
            f" ({where})" if where else ""
        )

    def line(self, model: str) -> str:
        """What a report says about a price it used: model, $ in/out, date, source file."""
        return (
            f"{model} ${self.input:g} in / ${self.output:g} out per 1M tokens "
            f"({self.date or 'undated'}, {self.source})"
        )


class PriceTable(Mapping[str, Price]):
    """Canonical model name -> ``Price``; ``price(model)`` asks for a missing one."""

    def __init__(self, entries: Mapping[str, Price], sources: Sequence[str] = (SHIPPED,)) -> None:
        self._entries = dict(entries)
        self.sources = tuple(sources)

    def __getitem__(self, model: str) -> Price:
        return self._entries[_canonical(model)]

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and _canonical(model) in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def price(self, model: str) -> Price:
        """The price of ``model``, or ``UnknownPriceError`` saying how to give it."""
        if model not in self:
            raise UnknownPriceError(model, self.sources)
        return self[model]

    def prices(self, models: Sequence[str]) -> list[Price]:
        """Each model's price, in order; one ``UnknownPriceError`` names every missing one."""
        missing = [m for m in models if m not in self]
        if missing:
            raise UnknownPriceError(missing, self.sources)
        return [self[m] for m in models]


def read_prices(path: str | Path, text: str | None = None) -> dict[str, Price]:
    """One price file as canonical model name -> ``Price``; every bad entry is reported."""
    source = str(path)
    if text is None:
        file = Path(path)
        if not file.is_file():
            raise DataError.file(source, "a TOML price file", "no such file")
        text = file.read_text("utf-8")
    try:
        tables = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataError.file(source, "a TOML price file", f"invalid TOML ({exc})") from None
    prices: dict[str, Price] = {}
    problems: list[Problem] = []
    for model, entry in tables.items():
        where = f'["{model}"]'
        if not isinstance(entry, dict):
            problems.append(
                Problem(source, None, where, "a table with input and output", repr(entry))
            )
            continue
        bad = _entry_problems(entry)
        problems += [Problem(source, None, f"{where}.{field}", exp, got) for field, exp, got in bad]
        if not bad:
            date = entry.get("date")
            prices[_canonical(model)] = Price(
                input=float(entry["input"]),
                output=float(entry["output"]),
                date=None if date is None else str(date),
                provider=entry.get("provider"),
                source=source,
            )
    if problems:
        raise DataError(problems)
    return prices


def price_table(extra: Sequence[str | Path] = ()) -> PriceTable:
    """The shipped prices, then ``$PREFROUTE_PRICES``, then ``extra`` files, later winning."""
    entries = dict(_shipped())
    sources = [SHIPPED]
    paths = [Path(p) for p in ([os.environ[PRICES_ENV]] if os.environ.get(PRICES_ENV) else [])]
    paths += [Path(p) for p in extra]
    for path in paths:
        entries.update(read_prices(path))
        sources.append(str(path))
    return PriceTable(entries, sources)


@lru_cache(maxsize=1)
def _shipped() -> dict[str, Price]:
    return read_prices(SHIPPED, files("prefroute").joinpath("prices.toml").read_text("utf-8"))


def _entry_problems(entry: dict[str, Any]) -> list[tuple[str, str, str]]:
    bad = []
    for field in ("input", "output"):
        value = entry.get(field)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            # "not >= 0" also refuses NaN
            got = "no value (the field is missing)" if value is None else repr(value)
            bad.append((field, "a price in $ per 1M tokens, >= 0", got))
    for field in sorted(set(entry) - _FIELDS):
        bad.append((field, f"one of the fields {', '.join(sorted(_FIELDS))}", "an unknown field"))
    provider = entry.get("provider")
    if provider is not None and not isinstance(provider, str):
        bad.append(("provider", "a string", repr(provider)))
    return bad


def _canonical(model: str) -> str:
    from prefroute.data.model_names import canonical_name

    return canonical_name(model)
