"""Read the public battle and score formats users bring into ``Battles`` / ``Scores``.

Battle formats (guessed from the columns, so users need not name them):

- **plain**: ``prompt, model_a, model_b, winner`` (+ optional ``prompt_id``,
  ``weight``, ``source``); ``winner`` is one of ``WINNERS`` or the winning model's
  name (any spelling that canonicalises to ``model_a``'s or ``model_b``'s);
- **lmsys arena**: ``model_a, model_b, conversation_a`` and ``winner``, as in
  ``chatbot_arena_conversations`` and ``arena-human-preference-100k/140k``; or
  the one-hot ``winner_model_a, winner_model_b, winner_tie`` instead of
  ``winner``. The prompt comes from the user turns by the turn policy;
- **Kaggle arena CSV** (``arena-human-preference-55k``): ``prompt`` is a
  JSON-encoded list of user turns, the winner is one-hot.

Score format: long ``prompt, model, score`` or ``prompt, model, correct``.

Files are decoded first (``data.files``), then fields are coerced and every
problem collected (``data.fields``): every bad record is reported, not only the
first, as ``FILE:LINE: field 'x': expected ..., got ...`` so a user fixes a
file in one pass. This module guesses the format and builds the tables.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import polars as pl

from prefroute.conversation import TURN_POLICIES, Turns, conversation_text
from prefroute.data.fields import (
    FieldProblems,
    check_choice,
    check_columns,
    decode_json_field,
    is_blank,
    number_values,
    parse_flag,
    prompt_ids,
    raise_or_drop,
    require_columns,
    show,
    source_values,
    string_values,
)
from prefroute.data.files import ABSENT, Rows, dataset_name, load_rows
from prefroute.data.model_names import canonicalise
from prefroute.data.prompts import as_messages, conversation_prompts, is_turn_list, plain_prompts
from prefroute.data.schema import SOURCES, WINNER_SYNONYMS, WINNERS, Battles, Scores
from prefroute.errors import Problem

__all__ = [
    "ReadReport",
    "read_battles",
    "read_scores",
]

log = logging.getLogger(__name__)

T = TypeVar("T", Battles, Scores)

ONE_HOT = ("winner_model_a", "winner_model_b", "winner_tie")

FORMATS = {
    "plain": "plain battles format",
    "arena": "lmsys arena conversation format",
    "kaggle": "Kaggle arena format",
    "scores": "long scores format",
}


@dataclass(frozen=True)
class ReadReport(Generic[T]):
    """A read's table plus what a user must hear about it: the format guessed and
    the bad records dropped (``skip_bad=True``), each with its problems.

    The readers return it rather than the bare table so a drop cannot go
    unannounced; skipped records are also logged as a warning.
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


def _kaggle_prompts(
    values: list[Any], answers: list[Any] | None, turns: Turns, bad: FieldProblems
) -> list[str | None]:
    expected = 'a JSON list of user turns (e.g. ["Hi", "And then?"])'
    out: list[str | None] = []
    for i, v in enumerate(values):
        user = decode_json_field(v)
        if not is_turn_list(user):
            bad.add(i, "prompt", expected, show(v))
            out.append(None)
            continue
        answer = None
        raw = answers[i] if turns == "all" and answers is not None else None
        if raw is not None and raw is not ABSENT and raw != "":
            answer = decode_json_field(raw)
            if not isinstance(answer, list):
                bad.add(i, "response_a", "a JSON list of answers", show(raw))
                answer = None
        out.append(conversation_text(as_messages(user, answer), turns))  # None: a blank prompt
    return out


def _one_hot_winners(rows: Rows, bad: FieldProblems) -> list[str | None]:
    field = "/".join(ONE_HOT)
    a, b, tie = (rows.values(c) for c in ONE_HOT)
    out: list[str | None] = []
    for i, flags in enumerate(zip(a, b, tie, strict=True)):
        parsed = [parse_flag(f) for f in flags]
        if parsed.count(True) == 1 and parsed.count(False) == 2:
            out.append(("model_a", "model_b", "tie")[parsed.index(True)])
        else:
            got = ", ".join(show(f) for f in flags)
            bad.add(i, field, "exactly one of them 1 (or true)", got)
            out.append(None)
    return out


# ------------------------------------------------------------------- battles


def _battle_format(rows: Rows) -> str:
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
    require_columns(rows, required, FORMATS[fmt])
    return fmt


def read_battles(
    path: str | Path,
    *,
    turns: Turns = "first",
    skip_bad: bool = False,
    source: str = "human",
    dataset: str | None = None,
    aliases: str | Path | None = None,
) -> ReadReport[Battles]:
    """Read pairwise battles in any supported format: ``.table`` is the ``Battles``,
    the rest of the report says what was guessed and dropped.

    ``turns`` picks the prompt of a multi-turn chat (``first`` user turn,
    ``last``, or ``all`` as ``role: text`` lines), exactly as serving does
    (``prefroute.conversation``). ``source`` labels records unless the file
    has its own human/judge/golden ``source`` column (one holding provenance
    instead is ignored); ``dataset`` defaults to the file's
    stem. Model names are canonicalised (``aliases`` adds a TOML alias file).
    A record with an empty prompt, a missing model, the same model on both
    sides (after canonical naming) or a winner neither in ``WINNERS`` nor one of
    the two models' names is bad: every bad record is listed in one
    ``DataError``, or dropped and counted with ``skip_bad=True``.
    """
    check_choice(turns, TURN_POLICIES, "turns")
    check_choice(source, SOURCES, "source")
    rows = load_rows(path)
    fmt = _battle_format(rows)
    bad = FieldProblems()
    if fmt == "arena":
        prompts = conversation_prompts(rows.values("conversation_a"), turns, bad, "conversation_a")
    elif fmt == "kaggle":
        answers = rows.values("response_a") if "response_a" in rows.columns else None
        prompts = _kaggle_prompts(rows.values("prompt"), answers, turns, bad)
    else:
        prompts = plain_prompts(rows.values("prompt"), turns, bad)
    winner_expected = f"one of {', '.join(WINNERS)}, or the name of model_a or model_b"
    if "winner" in rows.columns:
        winners = string_values(rows.values("winner"), "winner", bad, winner_expected)
    else:
        winners = _one_hot_winners(rows, bad)
    model_expected = "a model name"
    frame = pl.DataFrame(
        {
            "_row": pl.Series(range(len(rows.lines)), dtype=pl.Int64),
            "prompt_id": pl.Series(prompt_ids(rows), dtype=pl.String),
            "prompt": pl.Series(prompts, dtype=pl.String),
            "model_a": pl.Series(
                string_values(rows.values("model_a"), "model_a", bad, model_expected),
                dtype=pl.String,
            ),
            "model_b": pl.Series(
                string_values(rows.values("model_b"), "model_b", bad, model_expected),
                dtype=pl.String,
            ),
            "winner": pl.Series(winners, dtype=pl.String).replace(WINNER_SYNONYMS),
            "source": pl.Series(source_values(rows, source, bad), dtype=pl.String),
            "weight": (
                number_values(rows.values("weight"), "weight", bad, "a number >= 0").fill_null(1.0)
                if "weight" in rows.columns
                else pl.Series([1.0] * len(rows.lines), dtype=pl.Float64)
            ),
        }
    ).with_columns(
        canonicalise(pl.col("model_a"), aliases).alias("_a"),
        canonicalise(pl.col("model_b"), aliases).alias("_b"),
        canonicalise(pl.col("winner"), aliases).alias("_winner"),
    )
    # A winner may name the model that won (any spelling of model_a's or model_b's name).
    frame = frame.with_columns(
        winner=pl.when(pl.col("winner").is_in(WINNERS))
        .then(pl.col("winner"))
        .when(pl.col("_winner") == pl.col("_a"))
        .then(pl.lit("model_a"))
        .when(pl.col("_winner") == pl.col("_b"))
        .then(pl.lit("model_b"))
        .otherwise(pl.col("winner"))
    )

    def same_model(row: int) -> str:
        a, b = frame["model_a"][row], frame["model_b"][row]
        if a == b:
            return f"{show(b)}, the same as model_a"
        return f"{show(b)}, the same model as model_a {show(a)} (both are {frame['_a'][row]!r})"

    prompt_field = "conversation_a" if fmt == "arena" else "prompt"
    winner_field = "winner" if "winner" in rows.columns else "/".join(ONE_HOT)
    check_columns(
        frame,
        rows,
        [
            (prompt_field, is_blank("prompt"), "a non-empty prompt", prompt_field),
            ("model_a", is_blank("model_a"), model_expected, "model_a"),
            ("model_b", is_blank("model_b"), model_expected, "model_b"),
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
    frame, skipped, problems = raise_or_drop(rows, frame, bad, skip_bad=skip_bad, order=order)
    table = Battles(
        frame.select(
            "prompt_id",
            "prompt",
            pl.col("_a").alias("model_a"),
            pl.col("_b").alias("model_b"),
            "winner",
            "source",
            pl.lit(dataset or dataset_name(path)).alias("dataset"),
            "weight",
        )
    )
    return _report(table, rows, fmt, skipped, problems)


def _report(table: T, rows: Rows, fmt: str, skipped: int, problems) -> ReadReport[T]:
    report = ReadReport(
        table, rows.file, fmt, len(rows.lines) + len(rows.problems), skipped, problems
    )
    if skipped:
        log.warning("skipped %d bad records in %s", skipped, rows.file)
    return report


# -------------------------------------------------------------------- scores


def read_scores(
    path: str | Path,
    *,
    skip_bad: bool = False,
    source: str = "golden",
    dataset: str | None = None,
    aliases: str | Path | None = None,
) -> ReadReport[Scores]:
    """Read long-format scores ``(prompt, model, score)`` or ``(prompt, model, correct)``;
    ``.table`` is the ``Scores``.

    ``correct`` may be true/false, 1/0 or their strings and becomes 1.0/0.0;
    ``score`` is kept on the file's own scale. Bad records are listed in one
    ``DataError``, or dropped and counted with ``skip_bad=True``.
    """
    check_choice(source, SOURCES, "source")
    rows = load_rows(path)
    value_field = "score" if "score" in rows.columns else "correct"
    require_columns(rows, ["prompt", "model", value_field], FORMATS["scores"])
    bad = FieldProblems()
    if value_field == "score":
        scores = number_values(rows.values("score"), "score", bad, "a number")
    else:
        flags: list[float | None] = []
        for i, v in enumerate(rows.values("correct")):
            flag = parse_flag(v)
            if flag is None:
                bad.add(i, "correct", "true/false or 1/0", show(v))
            flags.append(None if flag is None else float(flag))
        scores = pl.Series("correct", flags, dtype=pl.Float64)
    frame = pl.DataFrame(
        {
            "_row": pl.Series(range(len(rows.lines)), dtype=pl.Int64),
            "prompt_id": pl.Series(prompt_ids(rows), dtype=pl.String),
            "prompt": pl.Series(
                string_values(rows.values("prompt"), "prompt", bad, "a non-empty prompt"),
                dtype=pl.String,
            ),
            "model": pl.Series(
                string_values(rows.values("model"), "model", bad, "a model name"), dtype=pl.String
            ),
            "score": scores.alias("score"),
            "source": pl.Series(source_values(rows, source, bad), dtype=pl.String),
        }
    ).with_columns(canonicalise(pl.col("model"), aliases).alias("_model"))
    expected = "a number" if value_field == "score" else "true/false or 1/0"
    check_columns(
        frame,
        rows,
        [
            ("prompt", is_blank("prompt"), "a non-empty prompt", "prompt"),
            ("model", is_blank("model"), "a model name", "model"),
            (value_field, ~pl.col("score").is_finite().fill_null(False), expected, value_field),
            ("source", ~pl.col("source").is_in(SOURCES), f"one of {', '.join(SOURCES)}", "source"),
        ],
        bad,
    )
    order = ["prompt", "model", value_field, "source"]
    frame, skipped, problems = raise_or_drop(rows, frame, bad, skip_bad=skip_bad, order=order)
    table = Scores(
        frame.select(
            "prompt_id",
            "prompt",
            pl.col("_model").alias("model"),
            "score",
            "source",
            pl.lit(dataset or dataset_name(path)).alias("dataset"),
        )
    )
    return _report(table, rows, "scores", skipped, problems)
