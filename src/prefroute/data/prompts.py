"""Prompt files for ``route``, ``calibrate`` and ``label``: text, JSONL, JSON, CSV, Parquet.

Prompts only, no battles or scores, so reading them needs the stdlib and orjson
(``data.files``), not polars (only a Parquet file brings it in): ``prefroute
route`` stays as light as the router it loads. The prompt-column helpers are
shared with the battle readers (``data.readers``), so a prompt is the same text
whichever file it comes from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefroute.conversation import TURN_POLICIES, USER_ROLES, Turns, conversation_text
from prefroute.data.fields import FieldProblems, check_choice, decode_json_field, prompt_ids, show
from prefroute.data.files import check_utf8, load_rows
from prefroute.errors import DataError, Problem

__all__ = ["PROMPT_COLUMNS", "read_prompts"]


def is_turn_list(value: Any) -> bool:
    """A non-empty list of user turns, each a string or null (a null turn has no text)."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(v is None or v.__class__ is str for v in value)
    )


def as_messages(user: list[Any], answers: list[Any] | None = None) -> list[dict[str, Any]]:
    """Kaggle-style parallel lists of user turns and answers as one chat."""
    messages: list[dict[str, Any]] = []
    for i, text in enumerate(user):
        messages.append({"role": "user", "content": text})
        if answers is not None and i < len(answers):
            messages.append({"role": "assistant", "content": answers[i]})
    return messages


def conversation_prompts(
    values: list[Any], turns: Turns, bad: FieldProblems, field: str
) -> list[str | None]:
    expected = "a list of {role, content} messages with a user turn"
    out: list[str | None] = []
    for i, v in enumerate(values):
        messages = decode_json_field(v)
        if (
            isinstance(messages, list)
            and all(isinstance(m, dict) for m in messages)
            and any(m.get("role") in USER_ROLES for m in messages)
        ):
            out.append(conversation_text(messages, turns))  # None (no text): a blank prompt
            continue
        bad.add(i, field, expected, show(v))
        out.append(None)
    return out


def plain_prompts(values: list[Any], turns: Turns, bad: FieldProblems) -> list[str | None]:
    out: list[str | None] = []
    for i, v in enumerate(values):
        if v.__class__ is str or v is None:
            out.append(v)
        elif isinstance(v, list) and v and all(isinstance(t, str) for t in v):
            out.append(conversation_text(as_messages(v), turns))  # a list of user turns
        else:
            bad.add(i, "prompt", "a non-empty string", show(v))
            out.append(None)
    return out


PROMPT_COLUMNS = ("prompt", "messages", "conversation", "conversation_a")


def read_prompts(path: str | Path, *, turns: Turns = "first") -> tuple[list[str], list[str]]:
    """Prompts to route or calibrate on, with an id each: ``(ids, prompts)``.

    ``.txt`` (or ``-``, standard input): one prompt per non-empty line, the id
    its line number. JSONL/CSV/Parquet: a ``prompt`` column (a string or a list
    of user turns), or ``messages`` / ``conversation`` chats (or an arena battle's
    ``conversation_a``) read with the turn policy; the id from ``id`` /
    ``prompt_id`` / ``question_id``, else the line.
    Every record without a usable prompt is reported as FILE:LINE.
    """
    check_choice(turns, TURN_POLICIES, "turns")
    if str(path) == "-" or Path(path).suffix.lower() == ".txt":
        return _text_prompts(path)
    rows = load_rows(path)
    column = next((c for c in PROMPT_COLUMNS if c in rows.columns), None)
    if column is None:
        have = ", ".join(rows.columns) or "none"
        raise DataError.file(rows.file, f"a column named one of {', '.join(PROMPT_COLUMNS)}", have)
    bad = FieldProblems()
    values = rows.values(column)
    if column == "prompt":
        prompts = plain_prompts(values, turns, bad)
    else:
        prompts = conversation_prompts(values, turns, bad, column)
    for i, prompt in enumerate(prompts):
        if prompt is None or not prompt.strip():
            bad.add(i, column, "a non-empty prompt", show(values[i]))
    problems = [
        *rows.problems,
        *(Problem(rows.file, rows.lines[r], f, e, g) for r, f, e, g in bad.items),
    ]
    if problems:
        raise DataError(sorted(problems, key=lambda p: p.line or 0))
    pairs = zip(prompt_ids(rows), rows.lines, strict=True)
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
    check_utf8(data, name)
    numbered = [(str(n), line) for n, line in enumerate(data.decode("utf-8").splitlines(), 1)]
    numbered = [(n, line) for n, line in numbered if line.strip()]
    if not numbered:
        raise DataError.file(name, "at least one prompt (one per line)", "no prompts")
    return [n for n, _ in numbered], [line for _, line in numbered]
