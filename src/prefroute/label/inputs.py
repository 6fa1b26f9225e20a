"""What the user brings to ``prefroute label``: prompts or chat logs, and answers they have.

Prompts come through ``read_prompts`` (the formats ``route`` reads), which also
gives each its id and its routing text, the text a router will see and so the
battle's ``prompt``. For an OpenAI-style chat log (records with ``messages``
or ``conversation``) the models answer the whole conversation: its messages
are sent as they are, up to the last user message (a logged reply after it is
the log's answer, not part of the question). A plain prompt is sent as one
user message.

An answers file (``prompt`` or ``prompt_id``, ``model``, ``response``) holds
answers the user already has, from their logs say; those are used instead of
calling the model. With a ``prompt_id`` column answers match prompts by id,
else by prompt text; model names match after canonical naming.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from prefroute.conversation import USER_ROLES, Turns
from prefroute.data.files import ABSENT, load_rows
from prefroute.data.prompts import PROMPT_COLUMNS, read_prompts
from prefroute.errors import DataError, Problem

_MESSAGE_KEYS = ("role", "content", "name")


@dataclass(frozen=True)
class LabelPrompt:
    """One prompt to label: its id, its routing text, and the messages the models answer."""

    id: str
    text: str
    messages: tuple[dict[str, Any], ...]


def read_label_prompts(path: str | Path, turns: Turns = "first") -> list[LabelPrompt]:
    """Every prompt of ``path`` in file order; a duplicate id is an error (ids key the rows)."""
    ids, texts = read_prompts(path, turns=turns)
    chats = _chats(path)
    repeated = [i for i, n in Counter(ids).items() if n > 1]
    if repeated:
        shown = ", ".join(repr(i) for i in repeated[:5])
        raise DataError.file(
            path, "a unique id per prompt (the id names its battle)", f"repeated ids {shown}"
        )
    return [
        LabelPrompt(i, text, chats[n] if chats else ({"role": "user", "content": text},))
        for n, (i, text) in enumerate(zip(ids, texts, strict=True))
    ]


def _records(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """Every record of a file as ``(line, fields)``, through the readers' file handling
    (formats, compression, FILE:LINE errors); a key a JSON record lacks is absent."""
    rows = load_rows(path)
    if rows.problems:
        raise DataError(rows.problems)
    columns = {column: rows.values(column) for column in rows.columns}
    return [
        (line, {c: values[i] for c, values in columns.items() if values[i] is not ABSENT})
        for i, line in enumerate(rows.lines)
    ]


def _chats(path: str | Path) -> list[tuple[dict[str, Any], ...]] | None:
    """Each record's messages up to its last user message, or None for a plain prompt file."""
    if str(path) == "-" or Path(path).suffix.lower() == ".txt":
        return None
    records = _records(path)
    column = next((c for c in PROMPT_COLUMNS if any(c in r for _, r in records)), "prompt")
    if column == "prompt":
        return None
    chats = []
    for _, record in records:
        value = record[column]
        messages = orjson.loads(value) if isinstance(value, str) else value
        last_user = max(i for i, m in enumerate(messages) if m.get("role") in USER_ROLES)
        chats.append(tuple(_message(m) for m in messages[: last_user + 1]))
    return chats


def _message(message: Mapping[str, Any]) -> dict[str, Any]:
    """A logged message as an API takes it: role, content (and name); ``human`` is ``user``."""
    kept = {key: message[key] for key in _MESSAGE_KEYS if key in message}
    if kept.get("role") == "human":
        kept["role"] = "user"
    return kept


@dataclass(frozen=True)
class GivenAnswers:
    """Answers the user has: by prompt id (``by_id``) or by prompt text, and canonical model."""

    answers: Mapping[tuple[str, str], str]
    by_id: bool

    def get(self, prompt: LabelPrompt, model: str) -> str | None:
        from prefroute.data.model_names import canonical_name

        return self.answers.get((prompt.id if self.by_id else prompt.text, canonical_name(model)))

    def __len__(self) -> int:
        return len(self.answers)


NO_ANSWERS = GivenAnswers({}, by_id=False)


def read_answers(path: str | Path) -> GivenAnswers:
    """The answers of an answers file (see the module docstring).

    Every bad record is reported at once; a second answer for the same prompt and
    model is an error rather than a silent choice between them.
    """
    from prefroute.data.model_names import canonical_name

    records = _records(path)
    by_id = any("prompt_id" in r for _, r in records)
    key_field = "prompt_id" if by_id else "prompt"
    answers: dict[tuple[str, str], str] = {}
    problems: list[Problem] = []
    for line, record in records:
        fields = {f: record.get(f) for f in (key_field, "model", "response")}
        if isinstance(fields.get("prompt_id"), int):
            fields["prompt_id"] = str(fields["prompt_id"])
        bad = [f for f, v in fields.items() if not isinstance(v, str) or not v.strip()]
        for field in bad:
            got = "no value" if fields[field] is None else repr(fields[field])[:60]
            problems.append(Problem(str(path), line, field, "a non-empty string", got))
        if bad:
            continue
        key = (str(fields[key_field]), canonical_name(str(fields["model"])))
        if key in answers:
            problems.append(
                Problem(
                    str(path),
                    line,
                    key_field,
                    "one answer per prompt and model",
                    f"a second answer of {fields['model']!r} for {key[0]!r}",
                )  # fmt: skip
            )
        answers[key] = str(fields["response"])
    if problems:
        raise DataError(problems)
    return GivenAnswers(answers, by_id)
