"""Read the public battle and score formats users bring into ``Battles`` / ``Scores``.

Battle formats (guessed from the columns, so users need not name them):

- **plain**: ``prompt, model_a, model_b, winner`` (+ optional ``prompt_id``,
  ``weight``, ``source``);
- **lmsys arena**: ``model_a, model_b, conversation_a`` and ``winner``, as in
  ``chatbot_arena_conversations`` and ``arena-human-preference-100k/140k``; or
  the one-hot ``winner_model_a, winner_model_b, winner_tie`` instead of
  ``winner``. The prompt comes from the user turns by the turn policy;
- **Kaggle arena CSV** (``arena-human-preference-55k``): ``prompt`` is a
  JSON-encoded list of user turns, the winner is one-hot.

Score format: long ``prompt, model, score`` or ``prompt, model, correct``.

Files: ``.jsonl``/``.ndjson``, ``.json`` (a JSON array of records, or JSON
lines), ``.csv``/``.tsv``, ``.parquet``, each optionally ``.gz``.

Every bad record is reported, not only the first, as
``FILE:LINE: field 'x': expected ..., got ...`` so a user fixes a file in one
pass. LINE is the 1-based physical line for JSON lines, and the line a record
starts on for CSV (the header is line 1). A JSON array and a Parquet file have
no useful lines, so there LINE is the record number (first record = 1).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import logging
import sys
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import orjson
import polars as pl

from prefroute.conversation import TURN_POLICIES, USER_ROLES, Turns, conversation_text
from prefroute.data.model_names import canonicalise
from prefroute.data.schema import SOURCES, WINNERS, Battles, Scores
from prefroute.errors import DataError, Problem

__all__ = [
    "ReadReport",
    "read_battles",
    "read_battles_report",
    "read_scores",
    "read_scores_report",
]

log = logging.getLogger(__name__)

T = TypeVar("T", Battles, Scores)

EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
}
ONE_HOT = ("winner_model_a", "winner_model_b", "winner_tie")
# Spellings of the arena's "both are bad" tie across its releases.
WINNER_SYNONYMS = {"tie (bothbad)": "tie_bothbad", "both_bad": "tie_bothbad"}
PROMPT_ID_COLUMNS = ("prompt_id", "question_id", "id")

FORMATS = {
    "plain": "plain battles format",
    "arena": "lmsys arena conversation format",
    "kaggle": "Kaggle arena format",
    "scores": "long scores format",
}

_ABSENT: Any = type("_Absent", (), {"__repr__": lambda self: "<absent>"})()
_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"PK\x03\x04": "zip",
}
_SHOW = 60


@dataclass(frozen=True)
class ReadReport(Generic[T]):
    """A read's table plus what a user must hear about it: the format guessed and
    the bad records dropped (``skip_bad=True``), each with its problems.
    """

    table: T
    file: str
    format: str
    records: int
    skipped: int
    problems: tuple[Problem, ...]

    def summary(self) -> str:
        """One line for the CLI: what was read and, if any, how many records were skipped."""
        text = f"read {len(self.table)} records from {self.file} ({FORMATS[self.format]})"
        if self.skipped:
            text += f"; skipped {self.skipped} bad records"
        return text


# --------------------------------------------------------------------- files


@dataclass
class _Rows:
    """The records of a file, before any field is interpreted.

    ``values(col)`` gives one Python value per record (``_ABSENT`` where a JSON
    record lacks the key); ``lines[i]`` is where record i is in the file.
    """

    file: str
    kind: str
    columns: list[str]
    lines: list[int]
    values: Callable[[str], list[Any]]
    problems: list[Problem]


def _split_name(path: Path) -> tuple[str, bool]:
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    if gz:
        suffixes = suffixes[:-1]
    ext = suffixes[-1] if suffixes else ""
    if ext not in EXTENSIONS:
        known = ", ".join(EXTENSIONS)
        got = repr("".join(path.suffixes)) if path.suffixes else "no extension"
        raise DataError.file(path, f"a file ending in {known} (optionally + .gz)", got)
    return EXTENSIONS[ext], gz


def _compression(data: bytes) -> str | None:
    return next((name for magic, name in _MAGIC.items() if data.startswith(magic)), None)


def _read_bytes(path: Path, file: str) -> tuple[str, bytes]:
    """The file's kind and its decompressed bytes, or a one-line DataError."""
    kind, gz = _split_name(path)
    if not path.exists():
        raise DataError.file(file, "an existing file", "no such file")
    if path.is_dir():
        raise DataError.file(file, "a file", "a directory")
    data = path.read_bytes()
    if not data:
        raise DataError.file(file, "at least one record", "an empty file")
    found = _compression(data)
    if gz:
        if found != "gzip":
            got = f"{found}-compressed data" if found else "data that is not gzip-compressed"
            raise DataError.file(
                file, "gzip data (the name ends in .gz)", f"{got}; fix the file name"
            )
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError.file(
                file, "a complete gzip file", f"corrupt gzip data ({exc})"
            ) from None
        found = _compression(data)
    elif found == "gzip" or (found and kind != "parquet"):
        fix = f"rename it to {path.name}.gz" if found == "gzip" else "decompress it first"
        raise DataError.file(
            file, f"plain {kind} data (the name has no .gz)", f"{found}-compressed data; {fix}"
        )
    if data.isspace():
        raise DataError.file(file, "at least one record", "an empty file")
    if kind != "parquet" and data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    return kind, data


def _check_utf8(data: bytes, file: str, start: int = 0, end: int | None = None) -> None:
    """Raise a one-line error at the first byte of ``data[start:end]`` that is not UTF-8.

    Called only once a parser has failed, so valid files are never decoded twice.
    """
    try:
        data[start:end].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = start + exc.start
        line = data.count(b"\n", 0, at) + 1
        column = at - (data.rfind(b"\n", 0, at) + 1) + 1
        got = f"byte 0x{data[at]:02x} at column {column}; save the file as UTF-8"
        raise DataError([Problem(file, line, None, "UTF-8 text", got)]) from None


def _json_kind(value: Any) -> str:
    return {list: "a JSON array", str: "a JSON string", type(None): "null"}.get(
        type(value), f"a JSON {type(value).__name__}"
    )


def _records_rows(file: str, kind: str, recs: list[dict], lines: list[int], problems) -> _Rows:
    columns: dict[str, None] = {}
    for rec in recs:
        columns.update(dict.fromkeys(rec))
    return _Rows(
        file,
        kind,
        list(columns),
        lines,
        lambda col: [r.get(col, _ABSENT) for r in recs],
        problems,
    )


def _parse_jsonl(data: bytes, file: str, kind: str) -> _Rows:
    # Lines are parsed in place (memoryview slices): no copy of a large file.
    loads, find, view, size = orjson.loads, data.find, memoryview(data), len(data)
    recs: list[dict] = []
    lines: list[int] = []
    problems: list[Problem] = []
    start, number = 0, 0
    while start < size:
        end = find(b"\n", start)
        end = size if end == -1 else end
        number += 1
        line_start, start = start, end + 1
        if end == line_start:
            continue
        try:
            rec = loads(view[line_start:end])
        except orjson.JSONDecodeError as exc:
            if data[line_start:end].isspace():
                continue
            _check_utf8(data, file, line_start, end)
            got = f"invalid JSON at column {exc.colno}: {exc.msg}"
            problems.append(Problem(file, number, None, "a JSON object", got))
            continue
        if type(rec) is not dict:
            problems.append(Problem(file, number, None, "a JSON object", _json_kind(rec)))
            continue
        recs.append(rec)
        lines.append(number)
    return _records_rows(file, kind, recs, lines, problems)


def _parse_json(data: bytes, file: str) -> _Rows:
    if not data.lstrip().startswith(b"["):
        rows = _parse_jsonl(data, file, "json")
        if rows.problems and rows.problems[0].line == 1 and not rows.lines:
            try:
                whole = orjson.loads(data)
            except orjson.JSONDecodeError:
                return rows
            keys = ", ".join(list(whole)[:8]) if isinstance(whole, dict) else ""
            raise DataError.file(
                file,
                "a JSON array of records or JSON lines (one object per line)",
                f"one JSON document ({_json_kind(whole)}{'; keys ' + keys if keys else ''})",
            )
        return rows
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        _check_utf8(data, file)
        got = f"invalid JSON at column {exc.colno}: {exc.msg}"
        raise DataError([Problem(file, exc.lineno, None, "a JSON array of records", got)]) from None
    recs: list[dict] = []
    lines: list[int] = []
    problems: list[Problem] = []
    for number, rec in enumerate(doc, 1):
        if type(rec) is dict:
            recs.append(rec)
            lines.append(number)
        else:
            problems.append(Problem(file, number, None, "a JSON object", _json_kind(rec)))
    return _records_rows(file, "json", recs, lines, problems)


def _parse_csv(data: bytes, file: str, delimiter: str) -> _Rows:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        _check_utf8(data, file)
        raise
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    limit = csv.field_size_limit()
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # chat logs hold long fields
    rows: list[list[str]] = []
    lines: list[int] = []
    problems: list[Problem] = []
    try:
        header = next(reader, None)
        if not header or not any(h.strip() for h in header):
            raise DataError.file(file, "a header line with column names", "an empty header")
        header = [h.strip() for h in header]
        dupes = sorted({h for h in header if header.count(h) > 1})
        if dupes:
            raise DataError.file(file, "unique column names", f"{', '.join(dupes)} more than once")
        start = reader.line_num + 1
        width = len(header)
        for row in reader:
            if not row:  # a blank line
                start = reader.line_num + 1
                continue
            if len(row) != width:
                got = f"{len(row)} fields"
                problems.append(Problem(file, start, None, f"{width} fields as in the header", got))
            else:
                rows.append(row)
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise DataError([Problem(file, reader.line_num, None, "valid CSV", str(exc))]) from None
    finally:
        csv.field_size_limit(limit)
    index = {name: i for i, name in enumerate(header)}
    return _Rows(file, "csv", header, lines, lambda col: [r[index[col]] for r in rows], problems)


def _parse_parquet(data: bytes, file: str) -> _Rows:
    if not data.startswith(b"PAR1"):
        found = _compression(data)
        got = f"{found}-compressed data" if found else "a file that is not Parquet"
        raise DataError.file(file, "a Parquet file (starting with PAR1)", got)
    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except Exception as exc:  # polars raises several kinds for a broken file
        raise DataError.file(file, "a readable Parquet file", str(exc).splitlines()[0]) from None
    return _Rows(
        file,
        "parquet",
        frame.columns,
        list(range(1, frame.height + 1)),
        lambda col: frame[col].to_list(),
        [],
    )


def _load_rows(path: str | Path) -> _Rows:
    file = str(path)
    kind, data = _read_bytes(Path(path), file)
    if kind == "parquet":
        rows = _parse_parquet(data, file)
    elif kind == "jsonl":
        rows = _parse_jsonl(data, file, "jsonl")
    elif kind == "json":
        rows = _parse_json(data, file)
    else:
        rows = _parse_csv(data, file, "\t" if kind == "tsv" else ",")
    if not rows.lines and not rows.problems:
        raise DataError.file(file, "at least one record", "no records")
    return rows


# -------------------------------------------------------------------- fields


def _show(value: Any) -> str:
    """A value as the user wrote it, short enough for one line."""
    if value is _ABSENT:
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


class _Bad:
    """Problems found while interpreting fields, keyed by record index."""

    def __init__(self) -> None:
        self.items: list[tuple[int, str, str, str]] = []
        self.keys: set[tuple[int, str]] = set()

    def add(self, row: int, field: str, expected: str, got: str) -> None:
        if (row, field) not in self.keys:
            self.keys.add((row, field))
            self.items.append((row, field, expected, got))


def _strings(values: list[Any], field: str, bad: _Bad, expected: str) -> list[str | None]:
    """Keep strings; a non-string is a problem now, a null is left for the null check."""
    out: list[str | None] = []
    for i, v in enumerate(values):
        if v.__class__ is str or v is None:
            out.append(v)
        else:
            bad.add(i, field, expected, _show(v))
            out.append(None)
    return out


def _ids(values: list[Any]) -> list[str | None]:
    out: list[str | None] = []
    for v in values:
        if v is None or v is _ABSENT or v == "":
            out.append(None)
        elif v.__class__ is str:
            out.append(v)
        else:
            out.append(orjson.dumps(v).decode() if not isinstance(v, int) else str(v))
    return out


def _numbers(values: list[Any], field: str, bad: _Bad, expected: str) -> pl.Series:
    """Numbers (or strings holding numbers, as in CSV) as Float64; null where empty."""
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
            if v is not None and v is not _ABSENT:
                bad.add(i, field, expected, _show(v))
            nums.append(None)
            texts.append(None)
    series = pl.Series(field, nums, dtype=pl.Float64)
    text = pl.Series(texts, dtype=pl.String).str.strip_chars()
    parsed = text.cast(pl.Float64, strict=False)
    for i in (text.is_not_null() & (text != "") & parsed.is_null()).arg_true().to_list():
        bad.add(i, field, expected, _show(texts[i]))
    return series.fill_null(parsed)


_TRUE = frozenset({"true", "1", "1.0", "yes", "t", "y"})
_FALSE = frozenset({"false", "0", "0.0", "no", "f", "n"})


def _flag(value: Any) -> bool | None:
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


def _decoded(value: Any) -> Any:
    """A field that may hold JSON as text: strings decoded (None if not JSON), the rest as is."""
    if not isinstance(value, str):
        return value
    try:
        return _decode_json_text(value)
    except ValueError:
        return None


def _clean_surrogates(text: str) -> str:
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _is_turn_list(value: Any) -> bool:
    """A non-empty list of user turns, each a string or null (a null turn has no text)."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(v is None or v.__class__ is str for v in value)
    )


def _as_messages(user: list[Any], answers: list[Any] | None = None) -> list[dict[str, Any]]:
    """Kaggle-style parallel lists of user turns and answers as one chat."""
    messages: list[dict[str, Any]] = []
    for i, text in enumerate(user):
        messages.append({"role": "user", "content": text})
        if answers is not None and i < len(answers):
            messages.append({"role": "assistant", "content": answers[i]})
    return messages


def _conversation_prompts(
    values: list[Any], turns: Turns, bad: _Bad, field: str
) -> list[str | None]:
    expected = "a list of {role, content} messages with a user turn"
    out: list[str | None] = []
    for i, v in enumerate(values):
        messages = _decoded(v)
        if (
            isinstance(messages, list)
            and all(isinstance(m, dict) for m in messages)
            and any(m.get("role") in USER_ROLES for m in messages)
        ):
            out.append(conversation_text(messages, turns))  # None (no text): a blank prompt
            continue
        bad.add(i, field, expected, _show(v))
        out.append(None)
    return out


def _kaggle_prompts(
    values: list[Any], answers: list[Any] | None, turns: Turns, bad: _Bad
) -> list[str | None]:
    expected = 'a JSON list of user turns (e.g. ["Hi", "And then?"])'
    out: list[str | None] = []
    for i, v in enumerate(values):
        user = _decoded(v)
        if not _is_turn_list(user):
            bad.add(i, "prompt", expected, _show(v))
            out.append(None)
            continue
        answer = None
        raw = answers[i] if turns == "all" and answers is not None else None
        if raw is not None and raw is not _ABSENT and raw != "":
            answer = _decoded(raw)
            if not isinstance(answer, list):
                bad.add(i, "response_a", "a JSON list of answers", _show(raw))
                answer = None
        out.append(conversation_text(_as_messages(user, answer), turns))  # None: a blank prompt
    return out


def _plain_prompts(values: list[Any], turns: Turns, bad: _Bad) -> list[str | None]:
    out: list[str | None] = []
    for i, v in enumerate(values):
        if v.__class__ is str or v is None:
            out.append(v)
        elif isinstance(v, list) and v and all(isinstance(t, str) for t in v):
            out.append(conversation_text(_as_messages(v), turns))  # a list of user turns
        else:
            bad.add(i, "prompt", "a non-empty string", _show(v))
            out.append(None)
    return out


def _one_hot_winners(rows: _Rows, bad: _Bad) -> list[str | None]:
    field = "/".join(ONE_HOT)
    a, b, tie = (rows.values(c) for c in ONE_HOT)
    out: list[str | None] = []
    for i, flags in enumerate(zip(a, b, tie, strict=True)):
        parsed = [_flag(f) for f in flags]
        if parsed.count(True) == 1 and parsed.count(False) == 2:
            out.append(("model_a", "model_b", "tie")[parsed.index(True)])
        else:
            got = ", ".join(_show(f) for f in flags)
            bad.add(i, field, "exactly one of them 1 (or true)", got)
            out.append(None)
    return out


# ------------------------------------------------------------------ checking


def _blank(col: str) -> pl.Expr:
    return pl.col(col).is_null() | (pl.col(col).str.strip_chars() == "")


def _vector_problems(
    frame: pl.DataFrame,
    rows: _Rows,
    checks: Sequence[tuple[str, pl.Expr, str, str | Callable[[int], str]]],
    bad: _Bad,
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
                shown = _show(raw.setdefault(got, rows.values(got))[row])
            else:
                shown = _show(frame[got][row])
            bad.add(row, field, expected, shown)


def _finish(
    rows: _Rows,
    frame: pl.DataFrame,
    bad: _Bad,
    *,
    skip_bad: bool,
    order: Sequence[str],
) -> tuple[pl.DataFrame, int, tuple[Problem, ...]]:
    """Raise with every problem, or (``skip_bad``) drop the bad records and count them."""
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
        raise DataError(problems)
    if bad_rows:
        frame = frame.filter(~pl.col("_row").is_in(list(bad_rows)))
    return frame, skipped, tuple(problems)


def _missing(rows: _Rows, required: Sequence[str], fmt: str) -> None:
    missing = [c for c in required if c not in rows.columns]
    if missing:
        have = ", ".join(rows.columns) if rows.columns else "none"
        guess = f"{FORMATS[fmt]}, guessed from the columns present"
        raise DataError.file(
            rows.file,
            f"columns {', '.join(required)} ({guess})",
            f"columns {have} (missing {', '.join(missing)})",
        )


def _check_choice(value: str, allowed: Sequence[str], name: str) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(allowed)}")


def _dataset_name(path: str | Path) -> str:
    name = Path(path).name
    for suffix in (".gz", *EXTENSIONS):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


def _prompt_ids(rows: _Rows) -> list[str | None]:
    column = next((c for c in PROMPT_ID_COLUMNS if c in rows.columns), None)
    return _ids(rows.values(column)) if column else [None] * len(rows.lines)


def _sources(rows: _Rows, default: str, bad: _Bad) -> list[str | None]:
    """Per-record label source from a ``source`` column, else ``default``.

    NOTE: many public files use ``source`` for provenance (a repo or file
    name). A column none of whose values is human/judge/golden is that, not
    ours, and is ignored; one that names them sometimes is ours, and its other
    values are bad records (a typo such as 'humna' must not pass silently).
    """
    if "source" not in rows.columns:
        return [default] * len(rows.lines)
    raw = rows.values("source")
    if not any(v in SOURCES for v in raw if v.__class__ is str):
        log.info("%s: column 'source' is not human/judge/golden; using %r", rows.file, default)
        return [default] * len(rows.lines)
    values = _strings(raw, "source", bad, f"one of {', '.join(SOURCES)}")
    return [default if v is None or v == "" else v for v in values]


# ------------------------------------------------------------------- battles


def _battle_format(rows: _Rows) -> str:
    columns = set(rows.columns)
    if "conversation_a" in columns:
        fmt = "arena"
        required = ["model_a", "model_b", "conversation_a"]
    elif columns & set(ONE_HOT):
        fmt = "kaggle"
        required = ["prompt", "model_a", "model_b"]
    else:
        fmt = "plain"
        required = ["prompt", "model_a", "model_b", "winner"]
    if fmt != "plain" and "winner" not in columns:
        required += ONE_HOT
    elif fmt != "plain":
        required.append("winner")
    _missing(rows, required, fmt)
    return fmt


def read_battles_report(
    path: str | Path,
    *,
    turns: Turns = "first",
    skip_bad: bool = False,
    source: str = "human",
    dataset: str | None = None,
    aliases: str | Path | None = None,
) -> ReadReport[Battles]:
    """Read pairwise battles in any supported format, and say what was dropped.

    ``turns`` picks the prompt of a multi-turn chat (``first`` user turn,
    ``last``, or ``all`` as ``role: text`` lines), exactly as serving does
    (``prefroute.conversation``). ``source`` labels records
    unless the file has its own human/judge/golden ``source`` column (one
    holding provenance instead is ignored); ``dataset`` defaults to the file's
    stem. Model names are canonicalised (``aliases`` adds a TOML alias file).
    A record with an empty prompt, a missing model, the same model on both
    sides (after canonical naming) or a winner not in ``WINNERS`` is bad: every
    bad record is listed in one ``DataError``, or dropped and counted with
    ``skip_bad=True``.
    """
    _check_choice(turns, TURN_POLICIES, "turns")
    _check_choice(source, SOURCES, "source")
    rows = _load_rows(path)
    fmt = _battle_format(rows)
    bad = _Bad()
    if fmt == "arena":
        prompts = _conversation_prompts(rows.values("conversation_a"), turns, bad, "conversation_a")
    elif fmt == "kaggle":
        answers = rows.values("response_a") if "response_a" in rows.columns else None
        prompts = _kaggle_prompts(rows.values("prompt"), answers, turns, bad)
    else:
        prompts = _plain_prompts(rows.values("prompt"), turns, bad)
    winner_expected = f"one of {', '.join(WINNERS)}"
    if "winner" in rows.columns:
        winners = _strings(rows.values("winner"), "winner", bad, winner_expected)
    else:
        winners = _one_hot_winners(rows, bad)
    model_expected = "a model name"
    frame = pl.DataFrame(
        {
            "_row": pl.Series(range(len(rows.lines)), dtype=pl.Int64),
            "prompt_id": pl.Series(_prompt_ids(rows), dtype=pl.String),
            "prompt": pl.Series(prompts, dtype=pl.String),
            "model_a": pl.Series(
                _strings(rows.values("model_a"), "model_a", bad, model_expected), dtype=pl.String
            ),
            "model_b": pl.Series(
                _strings(rows.values("model_b"), "model_b", bad, model_expected), dtype=pl.String
            ),
            "winner": pl.Series(winners, dtype=pl.String).replace(WINNER_SYNONYMS),
            "source": pl.Series(_sources(rows, source, bad), dtype=pl.String),
            "weight": (
                _numbers(rows.values("weight"), "weight", bad, "a number >= 0").fill_null(1.0)
                if "weight" in rows.columns
                else pl.Series([1.0] * len(rows.lines), dtype=pl.Float64)
            ),
        }
    ).with_columns(
        canonicalise(pl.col("model_a"), aliases).alias("_a"),
        canonicalise(pl.col("model_b"), aliases).alias("_b"),
    )

    def same_model(row: int) -> str:
        a, b = frame["model_a"][row], frame["model_b"][row]
        if a == b:
            return f"{_show(b)}, the same as model_a"
        return f"{_show(b)}, the same model as model_a {_show(a)} (both are {frame['_a'][row]!r})"

    prompt_field = "conversation_a" if fmt == "arena" else "prompt"
    winner_field = "winner" if "winner" in rows.columns else "/".join(ONE_HOT)
    _vector_problems(
        frame,
        rows,
        [
            (prompt_field, _blank("prompt"), "a non-empty prompt", prompt_field),
            ("model_a", _blank("model_a"), model_expected, "model_a"),
            ("model_b", _blank("model_b"), model_expected, "model_b"),
            (
                winner_field,
                ~pl.col("winner").is_in(WINNERS).fill_null(False),
                winner_expected,
                "winner",
            ),
            (
                "model_b",
                (pl.col("_a") == pl.col("_b")).fill_null(False),
                "a model other than model_a",
                same_model,
            ),
            (
                "weight",
                ~pl.col("weight").is_finite() | (pl.col("weight") < 0),
                "a number >= 0",
                "weight",
            ),
            ("source", ~pl.col("source").is_in(SOURCES), f"one of {', '.join(SOURCES)}", "source"),
        ],
        bad,
    )
    order = [prompt_field, "model_a", "model_b", winner_field, "weight", "source"]
    frame, skipped, problems = _finish(rows, frame, bad, skip_bad=skip_bad, order=order)
    table = Battles(
        frame.select(
            "prompt_id",
            "prompt",
            pl.col("_a").alias("model_a"),
            pl.col("_b").alias("model_b"),
            "winner",
            "source",
            pl.lit(dataset or _dataset_name(path)).alias("dataset"),
            "weight",
        )
    )
    return _report(table, rows, fmt, skipped, problems)


def read_battles(
    path: str | Path,
    *,
    turns: Turns = "first",
    skip_bad: bool = False,
    source: str = "human",
    dataset: str | None = None,
    aliases: str | Path | None = None,
) -> Battles:
    """Read pairwise battles (see ``read_battles_report``; skipped records are logged)."""
    return read_battles_report(
        path, turns=turns, skip_bad=skip_bad, source=source, dataset=dataset, aliases=aliases
    ).table


def _report(table: T, rows: _Rows, fmt: str, skipped: int, problems) -> ReadReport[T]:
    report = ReadReport(
        table, rows.file, fmt, len(rows.lines) + len(rows.problems), skipped, problems
    )
    if skipped:
        log.warning("skipped %d bad records in %s", skipped, rows.file)
    return report


# -------------------------------------------------------------------- scores


def read_scores_report(
    path: str | Path,
    *,
    skip_bad: bool = False,
    source: str = "golden",
    dataset: str | None = None,
    aliases: str | Path | None = None,
) -> ReadReport[Scores]:
    """Read long-format scores ``(prompt, model, score)`` or ``(prompt, model, correct)``.

    ``correct`` may be true/false, 1/0 or their strings and becomes 1.0/0.0;
    ``score`` is kept on the file's own scale. Bad records are listed in one
    ``DataError``, or dropped and counted with ``skip_bad=True``.
    """
    _check_choice(source, SOURCES, "source")
    rows = _load_rows(path)
    value_field = "score" if "score" in rows.columns else "correct"
    _missing(rows, ["prompt", "model", value_field], "scores")
    bad = _Bad()
    if value_field == "score":
        scores = _numbers(rows.values("score"), "score", bad, "a number")
    else:
        flags: list[float | None] = []
        for i, v in enumerate(rows.values("correct")):
            flag = _flag(v)
            if flag is None:
                bad.add(i, "correct", "true/false or 1/0", _show(v))
            flags.append(None if flag is None else float(flag))
        scores = pl.Series("correct", flags, dtype=pl.Float64)
    frame = pl.DataFrame(
        {
            "_row": pl.Series(range(len(rows.lines)), dtype=pl.Int64),
            "prompt_id": pl.Series(_prompt_ids(rows), dtype=pl.String),
            "prompt": pl.Series(
                _strings(rows.values("prompt"), "prompt", bad, "a non-empty prompt"),
                dtype=pl.String,
            ),
            "model": pl.Series(
                _strings(rows.values("model"), "model", bad, "a model name"), dtype=pl.String
            ),
            "score": scores.alias("score"),
            "source": pl.Series(_sources(rows, source, bad), dtype=pl.String),
        }
    ).with_columns(canonicalise(pl.col("model"), aliases).alias("_model"))
    expected = "a number" if value_field == "score" else "true/false or 1/0"
    _vector_problems(
        frame,
        rows,
        [
            ("prompt", _blank("prompt"), "a non-empty prompt", "prompt"),
            ("model", _blank("model"), "a model name", "model"),
            (value_field, ~pl.col("score").is_finite().fill_null(False), expected, value_field),
            ("source", ~pl.col("source").is_in(SOURCES), f"one of {', '.join(SOURCES)}", "source"),
        ],
        bad,
    )
    order = ["prompt", "model", value_field, "source"]
    frame, skipped, problems = _finish(rows, frame, bad, skip_bad=skip_bad, order=order)
    table = Scores(
        frame.select(
            "prompt_id",
            "prompt",
            pl.col("_model").alias("model"),
            "score",
            "source",
            pl.lit(dataset or _dataset_name(path)).alias("dataset"),
        )
    )
    return _report(table, rows, "scores", skipped, problems)


def read_scores(
    path: str | Path,
    *,
    skip_bad: bool = False,
    source: str = "golden",
    dataset: str | None = None,
    aliases: str | Path | None = None,
) -> Scores:
    """Read long-format scores (see ``read_scores_report``; skipped records are logged)."""
    return read_scores_report(
        path, skip_bad=skip_bad, source=source, dataset=dataset, aliases=aliases
    ).table


# ------------------------------------------------------------------- prompts

PROMPT_COLUMNS = ("prompt", "messages", "conversation")


def read_prompts(path: str | Path, *, turns: Turns = "first") -> tuple[list[str], list[str]]:
    """Prompts to route or calibrate on, with an id each: ``(ids, prompts)``.

    ``.txt`` (or ``-``, standard input): one prompt per non-empty line, the id
    its line number. JSONL/CSV/Parquet: a ``prompt`` column (a string or a list
    of user turns), or ``messages`` / ``conversation`` chats read with the turn
    policy; the id from ``id`` / ``prompt_id`` / ``question_id``, else the line.
    Every record without a usable prompt is reported as FILE:LINE.
    """
    _check_choice(turns, TURN_POLICIES, "turns")
    if str(path) == "-" or Path(path).suffix.lower() == ".txt":
        return _text_prompts(path)
    rows = _load_rows(path)
    column = next((c for c in PROMPT_COLUMNS if c in rows.columns), None)
    if column is None:
        have = ", ".join(rows.columns) or "none"
        raise DataError.file(rows.file, f"a column named one of {', '.join(PROMPT_COLUMNS)}", have)
    bad = _Bad()
    values = rows.values(column)
    if column == "prompt":
        prompts = _plain_prompts(values, turns, bad)
    else:
        prompts = _conversation_prompts(values, turns, bad, column)
    for i, prompt in enumerate(prompts):
        if prompt is None or not prompt.strip():
            bad.add(i, column, "a non-empty prompt", _show(values[i]))
    problems = [
        *rows.problems,
        *(Problem(rows.file, rows.lines[r], f, e, g) for r, f, e, g in bad.items),
    ]
    if problems:
        raise DataError(sorted(problems, key=lambda p: p.line or 0))
    pairs = zip(_prompt_ids(rows), rows.lines, strict=True)
    ids = [i if i is not None else str(line) for i, line in pairs]
    return ids, [p for p in prompts if p is not None]


def _text_prompts(path: str | Path) -> tuple[list[str], list[str]]:
    import sys

    if str(path) == "-":
        name, data = "<stdin>", sys.stdin.buffer.read()
    else:
        name, data = str(path), Path(path).read_bytes() if Path(path).is_file() else None
        if data is None:
            raise DataError.file(name, "an existing file", "no such file")
    _check_utf8(data, name)
    numbered = [(str(n), line) for n, line in enumerate(data.decode("utf-8").splitlines(), 1)]
    numbered = [(n, line) for n, line in numbered if line.strip()]
    if not numbered:
        raise DataError.file(name, "at least one prompt (one per line)", "no prompts")
    return [n for n, _ in numbered], [line for _, line in numbered]
