"""One canonical name per model across data sets, and which names are not models.

Sets spell the same model differently (``gpt4_1106_preview``,
``gpt-4-1106-preview``, ``mistralai/Mixtral-8x7B-Instruct-v0.1``). Names are
first normalised mechanically (lower case, organisation prefix dropped, ``_``
and spaces to ``-``), then looked up in an alias table. The table is data:
``model_aliases.toml`` in the package, extended by a user file passed as
``aliases=`` or named by ``PREFROUTE_MODEL_ALIASES``.

Some entries of the data sets are not models (AlpacaEval's ``example``
placeholder, ``*-verbose`` prompting variants). Which ones is data too:
``model_filters.toml`` (exact names and glob patterns, a reason each), extended
by a user file passed as ``filters=`` or named by ``PREFROUTE_MODEL_FILTERS``;
``model_filters().reason(name)`` says why a canonical name is not a model.

No polars at import: the CLI and the routers read ``DEFAULT_STRONG`` /
``DEFAULT_WEAK`` from here and must stay light.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING

from prefroute.errors import DataError

if TYPE_CHECKING:
    import polars as pl

DEFAULT_STRONG = "gpt-4-1106-preview"
DEFAULT_WEAK = "mixtral-8x7b-instruct-v0.1"
"""The paper's pair (canonical names): what routers, the recipe and the evaluation use
unless told otherwise."""
ALIASES_ENV = "PREFROUTE_MODEL_ALIASES"
FILTERS_ENV = "PREFROUTE_MODEL_FILTERS"
_SHIPPED_FILTERS = "prefroute/data/model_filters.toml"
_GLOB_CHARS = frozenset("*?[")
_SEPARATORS = re.compile(r"[\s_]+")


def normalise(name: str) -> str:
    """The mechanical part of canonicalisation: case, org prefix, separators."""
    key = name.strip().lower()
    key = key.rsplit("/", 1)[-1]
    return _SEPARATORS.sub("-", key)


def _read_aliases(source: str | Path, text: str) -> dict[str, str]:
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataError.file(source, "a TOML alias file", f"invalid TOML ({exc})") from None
    section = table.get("aliases", {})
    mapping: dict[str, str] = {}
    for canonical, spellings in section.items():
        if not isinstance(spellings, list) or not all(isinstance(s, str) for s in spellings):
            raise DataError.file(
                source, f"[aliases] {canonical!r} = a list of strings", repr(spellings)
            )
        for spelling in [canonical, *spellings]:
            mapping[normalise(spelling)] = canonical
    return mapping


def alias_table(user_file: str | None = None) -> Mapping[str, str]:
    """Normalised spelling -> canonical name; user entries (``user_file``, else the file
    named by ``PREFROUTE_MODEL_ALIASES``) override shipped ones."""
    return _alias_table(user_file or os.environ.get(ALIASES_ENV))


@lru_cache(maxsize=8)
def _alias_table(user_file: str | None) -> Mapping[str, str]:
    shipped = files("prefroute.data").joinpath("model_aliases.toml")
    mapping = _read_aliases("prefroute/data/model_aliases.toml", shipped.read_text("utf-8"))
    if user_file:
        path = Path(user_file)
        if not path.is_file():
            raise DataError.file(path, "a TOML alias file", "no such file")
        mapping.update(_read_aliases(path, path.read_text("utf-8")))
    return mapping


def canonical_name(name: str, aliases: str | Path | None = None) -> str:
    """The canonical spelling of one model name."""
    key = normalise(name)
    return alias_table(str(aliases) if aliases else None).get(key, key)


def canonicalise(column: pl.Expr, aliases: str | Path | None = None) -> pl.Expr:
    """A polars expression mapping a column of model names to canonical names.

    Works on the unique names only, so it costs nothing per row at 100k+ rows.
    """
    import polars as pl

    table = alias_table(str(aliases) if aliases else None)
    return column.map_batches(
        lambda s: s.replace_strict(
            {n: table.get(normalise(n), normalise(n)) for n in s.unique().drop_nulls()},
            default=None,
            return_dtype=pl.String,
        ),
        return_dtype=pl.String,
    )


@dataclass(frozen=True)
class FilterRule:
    """One ``[drop]`` entry: an exact canonical name or a glob, why, and which file said so."""

    pattern: str
    reason: str
    source: str

    def matches(self, name: str) -> bool:
        if _GLOB_CHARS & set(self.pattern):
            return fnmatchcase(name, self.pattern)
        return name == self.pattern

    def describe(self) -> str:
        return f"{self.reason} (rule {self.pattern!r} in {self.source})"


@dataclass(frozen=True)
class ModelFilters:
    """The entries dropped as not models, and the user's names kept whatever the rules say."""

    drop: tuple[FilterRule, ...]
    keep: tuple[str, ...] = ()

    def rule(self, name: str) -> FilterRule | None:
        """The first rule dropping the canonical ``name``, or None for a model."""
        if any(fnmatchcase(name, kept) for kept in self.keep):
            return None
        return next((rule for rule in self.drop if rule.matches(name)), None)


def _read_filters(source: str | Path, text: str) -> tuple[list[FilterRule], list[str]]:
    what = "a TOML model filter file ([drop] name = reason, [keep] models = [names])"
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DataError.file(source, what, f"invalid TOML ({exc})") from None
    unknown = sorted(set(table) - {"drop", "keep"})
    if unknown:
        raise DataError.file(source, what, f"the table(s) {unknown}")
    rules = []
    for pattern, reason in table.get("drop", {}).items():
        if not isinstance(reason, str) or not reason.strip():
            raise DataError.file(source, f"[drop] {pattern!r} = a reason (a string)", repr(reason))
        rules.append(FilterRule(pattern, reason.strip(), str(source)))
    keep = table.get("keep", {}).get("models", [])
    if not isinstance(keep, list) or not all(isinstance(k, str) for k in keep):
        raise DataError.file(source, "[keep] models = a list of names", repr(keep))
    return rules, keep


def model_filters(user_file: str | None = None) -> ModelFilters:
    """The shipped rules, then the user file's (``user_file``, else the file named by
    ``PREFROUTE_MODEL_FILTERS``)."""
    return _model_filters(user_file or os.environ.get(FILTERS_ENV))


@lru_cache(maxsize=8)
def _model_filters(user_file: str | None) -> ModelFilters:
    shipped = files("prefroute.data").joinpath("model_filters.toml")
    rules, keep = _read_filters(_SHIPPED_FILTERS, shipped.read_text("utf-8"))
    if user_file:
        path = Path(user_file)
        if not path.is_file():
            raise DataError.file(path, "a TOML model filter file", "no such file")
        user_rules, user_keep = _read_filters(path, path.read_text("utf-8"))
        rules += user_rules
        keep += user_keep
    return ModelFilters(drop=tuple(rules), keep=tuple(keep))
