"""One canonical name per model across data sets.

Sets spell the same model differently (``gpt4_1106_preview``,
``gpt-4-1106-preview``, ``mistralai/Mixtral-8x7B-Instruct-v0.1``). Names are
first normalised mechanically (lower case, organisation prefix dropped, ``_``
and spaces to ``-``), then looked up in an alias table. The table is data:
``model_aliases.toml`` in the package, extended by a user file passed as
``aliases=`` or named by ``PREFROUTE_MODEL_ALIASES``.

No polars at import: the CLI and the routers read ``DEFAULT_STRONG`` /
``DEFAULT_WEAK`` from here and must stay light.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
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


@lru_cache(maxsize=8)
def alias_table(user_file: str | None = None) -> Mapping[str, str]:
    """Normalised spelling -> canonical name; user entries override shipped ones."""
    shipped = files("prefroute.data").joinpath("model_aliases.toml")
    mapping = _read_aliases("prefroute/data/model_aliases.toml", shipped.read_text("utf-8"))
    user_file = user_file or os.environ.get(ALIASES_ENV)
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
