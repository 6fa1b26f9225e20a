"""Field values -> typed columns, and every problem found on the way.

A problem is kept, not raised, as (record, field, expected, got) in
``FieldProblems``, so a user fixes a file in one pass: ``raise_or_drop`` turns
them into one ``DataError`` listing ``FILE:LINE: field 'x': expected ...,
got ...`` for every bad record, or drops and counts those records
(``skip_bad``). ``got`` is the value as the user wrote it (``show``), so a
message points at the file, not at us. Polars is imported by the functions
that build columns, so reading prompt files (``data.prompts``) does without it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from prefroute.data.files import ABSENT, Rows
from prefroute.errors import DataError, Problem

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "FieldProblems",
    "check_choice",
    "check_columns",
    "decode_json_field",
    "is_blank",
    "number_values",
    "parse_flag",
    "prompt_ids",
    "raise_or_drop",
    "require_columns",
    "show",
    "source_values",
    "string_values",
]

log = logging.getLogger(__name__)

PROMPT_ID_COLUMNS = ("prompt_id", "question_id", "id")
_SHOW = 60


def show(value: Any) -> str:
    """A value as the user wrote it, short enough for one line."""
    if value is ABSENT:
        return "no value (the field is missing)"
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value if len(value) <= _SHOW else value[:_SHOW] + "...")
    try:
        text = orjson.dumps(value, default=str).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= _SHOW else text[:_SHOW] + "..."


class FieldProblems:
    """Problems found while interpreting fields, keyed by record index."""

    def __init__(self) -> None:
        self.items: list[tuple[int, str, str, str]] = []
        self.keys: set[tuple[int, str]] = set()

    def add(self, row: int, field: str, expected: str, got: str) -> None:
        if (row, field) not in self.keys:
            self.keys.add((row, field))
            self.items.append((row, field, expected, got))


def string_values(
    values: list[Any], field: str, bad: FieldProblems, expected: str
) -> list[str | None]:
    """Keep strings; a non-string is a problem now, a null is left for the null check."""
    out: list[str | None] = []
    for i, v in enumerate(values):
        if v.__class__ is str or v is None:
            out.append(v)
        else:
            bad.add(i, field, expected, show(v))
            out.append(None)
    return out


def _ids(values: list[Any]) -> list[str | None]:
    out: list[str | None] = []
    for v in values:
        if v is None or v is ABSENT or v == "":
            out.append(None)
        elif v.__class__ is str:
            out.append(v)
        else:
            out.append(orjson.dumps(v).decode() if not isinstance(v, int) else str(v))
    return out


def number_values(values: list[Any], field: str, bad: FieldProblems, expected: str) -> pl.Series:
    """Numbers (or strings holding numbers, as in CSV) as Float64; null where empty."""
    import polars as pl

    nums: list[float | None] = []
    texts: list[str | None] = []
    for i, v in enumerate(values):
        cls = v.__class__
        if cls is float or cls is int:
            nums.append(float(v))
            texts.append(None)
        elif cls is str:
            nums.append(None)
            texts.append(v)
        else:
            if v is not None and v is not ABSENT:
                bad.add(i, field, expected, show(v))
            nums.append(None)
            texts.append(None)
    series = pl.Series(field, nums, dtype=pl.Float64)
    text = pl.Series(texts, dtype=pl.String).str.strip_chars()
    parsed = text.cast(pl.Float64, strict=False)
    for i in (text.is_not_null() & (text != "") & parsed.is_null()).arg_true().to_list():
        bad.add(i, field, expected, show(texts[i]))
    return series.fill_null(parsed)


_TRUE = frozenset({"true", "1", "1.0", "yes", "t", "y"})
_FALSE = frozenset({"false", "0", "0.0", "no", "f", "n"})


def parse_flag(value: Any) -> bool | None:
    """A 0/1 or true/false flag in any of the spellings files use, or None."""
    if value is True or value is False:
        return value
    if value.__class__ in (int, float):
        return True if value == 1 else False if value == 0 else None
    if value.__class__ is str:
        key = value.strip().lower()
        return True if key in _TRUE else False if key in _FALSE else None
    return None


def _decode_json_text(text: str) -> Any:
    """JSON inside a field (Kaggle's prompt lists); tolerates the lone surrogates
    some Arena exports contain, which orjson refuses."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        value = json.loads(text)
        if isinstance(value, list):
            return [_clean_surrogates(v) if isinstance(v, str) else v for v in value]
        return value


def decode_json_field(value: Any) -> Any:
    """A field that may hold JSON as text: strings decoded (None if not JSON), the rest as is."""
    if not isinstance(value, str):
        return value
    try:
        return _decode_json_text(value)
    except ValueError:
        return None


def _clean_surrogates(text: str) -> str:
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def is_blank(col: str) -> pl.Expr:
    """Null, empty or whitespace only: a text field that says nothing."""
    import polars as pl

    return pl.col(col).is_null() | (pl.col(col).str.strip_chars() == "")


def check_columns(
    frame: pl.DataFrame,
    rows: Rows,
    checks: Sequence[tuple[str, pl.Expr, str, str | Callable[[int], str]]],
    bad: FieldProblems,
) -> None:
    """Run column checks; each failing (record, field) becomes a problem.

    The value shown is the one the user wrote (the raw field), or what the
    check's own callable says, so the message points at the file, not at us.
    """
    raw: dict[str, list[Any]] = {}
    for field, failing, expected, got in checks:
        hits = frame.filter(failing)["_row"].to_list()
        for row in hits:
            if callable(got):
                shown = got(row)
            elif got in rows.columns:
                shown = show(raw.setdefault(got, rows.values(got))[row])
            else:
                shown = show(frame[got][row])
            bad.add(row, field, expected, shown)


def raise_or_drop(
    rows: Rows,
    frame: pl.DataFrame,
    bad: FieldProblems,
    *,
    skip_bad: bool,
    order: Sequence[str],
) -> tuple[pl.DataFrame, int, tuple[Problem, ...]]:
    """Raise with every problem, or (``skip_bad``) drop the bad records and count them."""
    import polars as pl

    rank = {f: i for i, f in enumerate(order)}
    found = sorted(bad.items, key=lambda p: (p[0], rank.get(p[1], len(rank))))
    record_problems = [
        Problem(rows.file, rows.lines[row], field, expected, got)
        for row, field, expected, got in found
    ]
    problems = sorted(
        [*rows.problems, *record_problems], key=lambda p: p.line if p.line is not None else 0
    )
    bad_rows = {p[0] for p in found}
    skipped = len(bad_rows) + len(rows.problems)
    if problems and (not skip_bad or skipped == len(rows.lines) + len(rows.problems)):
        raise DataError(problems, skippable=not skip_bad)
    if bad_rows:
        frame = frame.filter(~pl.col("_row").is_in(list(bad_rows)))
    return frame, skipped, tuple(problems)


def require_columns(rows: Rows, required: Sequence[str], format_name: str) -> None:
    """Raise naming the columns ``format_name`` (guessed from the columns) needs."""
    missing = [c for c in required if c not in rows.columns]
    if missing:
        have = ", ".join(rows.columns) if rows.columns else "none"
        guess = f"{format_name}, guessed from the columns present"
        raise DataError.file(
            rows.file,
            f"columns {', '.join(required)} ({guess})",
            f"columns {have} (missing {', '.join(missing)})",
        )


def check_choice(value: str, allowed: Sequence[str], name: str) -> None:
    """A caller's argument (not a file's field) outside ``allowed`` is a ``ValueError``."""
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(allowed)}")


def prompt_ids(rows: Rows) -> list[str | None]:
    """Each record's id from the first of ``PROMPT_ID_COLUMNS`` present, as text, else None."""
    column = next((c for c in PROMPT_ID_COLUMNS if c in rows.columns), None)
    return _ids(rows.values(column)) if column else [None] * len(rows.lines)


def source_values(rows: Rows, default: str, bad: FieldProblems) -> list[str | None]:
    """Per-record label source from a ``source`` column, else ``default``.

    NOTE: many public files use ``source`` for provenance (a repo or file
    name). A column none of whose values is human/judge/golden is that, not
    ours, and is ignored; one that names them sometimes is ours, and its other
    values are bad records (a typo such as 'humna' must not pass silently).
    """
    from prefroute.data.schema import SOURCES

    if "source" not in rows.columns:
        return [default] * len(rows.lines)
    raw = rows.values("source")
    if not any(v in SOURCES for v in raw if v.__class__ is str):
        log.info("%s: column 'source' is not human/judge/golden; using %r", rows.file, default)
        return [default] * len(rows.lines)
    values = string_values(raw, "source", bad, f"one of {', '.join(SOURCES)}")
    return [default if v is None or v == "" else v for v in values]
