"""Files -> records, before any field is interpreted.

The name says the format (``.jsonl``/``.ndjson``, ``.json``: an array of
records or JSON lines, ``.csv``/``.tsv``, ``.parquet``, each optionally
``.gz``); the bytes are checked against it (compression, UTF-8) so a
mislabelled file fails in one line instead of as a parser's traceback.
``load_rows`` is the one entry point: it gives the records' values column by
column and where each record is in the file. LINE is the 1-based physical line
for JSON lines, and the line a record starts on for CSV (the header is line 1);
a JSON array and a Parquet file have no useful lines, so there LINE is the
record number (first record = 1).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from prefroute.errors import DataError, Problem

__all__ = ["ABSENT", "EXTENSIONS", "Rows", "check_utf8", "dataset_name", "load_rows"]

EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
}
"""File name endings -> the format they promise."""
ABSENT: Any = type("_Absent", (), {"__repr__": lambda self: "<absent>"})()
"""A JSON record's value for a key it lacks (unlike ``None``, an explicit null)."""
# Leading bytes of the compressed formats, to say what a mislabelled file really holds.
_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"PK\x03\x04": "zip",
}


@dataclass
class Rows:
    """The records of a file, before any field is interpreted.

    ``values(col)`` gives one Python value per record (``ABSENT`` where a JSON
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


def check_utf8(data: bytes, file: str, start: int = 0, end: int | None = None) -> None:
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


def _records_rows(file: str, kind: str, recs: list[dict], lines: list[int], problems) -> Rows:
    columns: dict[str, None] = {}
    for rec in recs:
        columns.update(dict.fromkeys(rec))
    return Rows(
        file,
        kind,
        list(columns),
        lines,
        lambda col: [r.get(col, ABSENT) for r in recs],
        problems,
    )


def _parse_jsonl(data: bytes, file: str, kind: str) -> Rows:
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
            check_utf8(data, file, line_start, end)
            got = f"invalid JSON at column {exc.colno}: {exc.msg}"
            problems.append(Problem(file, number, None, "a JSON object", got))
            continue
        if type(rec) is not dict:
            problems.append(Problem(file, number, None, "a JSON object", _json_kind(rec)))
            continue
        recs.append(rec)
        lines.append(number)
    return _records_rows(file, kind, recs, lines, problems)


def _parse_json(data: bytes, file: str) -> Rows:
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
        check_utf8(data, file)
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


def _parse_csv(data: bytes, file: str, delimiter: str) -> Rows:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        check_utf8(data, file)
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
    return Rows(file, "csv", header, lines, lambda col: [r[index[col]] for r in rows], problems)


def _parse_parquet(data: bytes, file: str) -> Rows:
    if not data.startswith(b"PAR1"):
        found = _compression(data)
        got = f"{found}-compressed data" if found else "a file that is not Parquet"
        raise DataError.file(file, "a Parquet file (starting with PAR1)", got)
    import polars as pl

    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except Exception as exc:  # polars raises several kinds for a broken file
        raise DataError.file(file, "a readable Parquet file", str(exc).splitlines()[0]) from None
    return Rows(
        file,
        "parquet",
        frame.columns,
        list(range(1, frame.height + 1)),
        lambda col: frame[col].to_list(),
        [],
    )


def load_rows(path: str | Path) -> Rows:
    """The records of a data file by its name's format, or a one-line ``DataError``."""
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


def dataset_name(path: str | Path) -> str:
    """The file's name without its data extensions: ``arena.jsonl.gz`` -> ``arena``."""
    name = Path(path).name
    for suffix in (".gz", *EXTENSIONS):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name
