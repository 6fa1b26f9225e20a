"""Readers: real Arena / RouteLLM rows written in every public format, then read back;
and one test per kind of bad input, checking the exact message a user sees."""

from __future__ import annotations

import csv
import gzip
import io
import time
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest

from prefroute.conversation import conversation_text
from prefroute.data.readers import (
    read_battles,
    read_scores,
)
from prefroute.data.shipped import load_battles
from prefroute.errors import DataError

WINNER_MSG = "expected one of model_a, model_b, tie, tie_bothbad, or the name of model_a or model_b"


# ------------------------------------------------------------------ fixtures


def _rows(path: Path, n: int) -> list[dict[str, Any]]:
    with gzip.open(path) as fh:
        return [orjson.loads(line) for _, line in zip(range(n), fh, strict=False)]


@pytest.fixture(scope="module")
def arena(data_dir: Path) -> list[dict[str, Any]]:
    """20 real Chatbot Arena battles (FastChat sample), multi-turn ones included."""
    rows = _rows(data_dir / "chatbot-arena-fastchat-sample" / "battles.jsonl.gz", 100)
    multi = [r for r in rows if r["turn"] > 1][:5]
    single = [r for r in rows if r["turn"] == 1][:15]
    return single + multi


@pytest.fixture(scope="module")
def mmlu(data_dir: Path) -> list[dict[str, Any]]:
    """20 real RouteLLM MMLU golden rows (gpt-4-1106-preview and Mixtral)."""
    return _rows(data_dir / "routellm-evals" / "mmlu_golden.jsonl.gz", 20)


def _plain(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = ("prompt_id", "prompt", "model_a", "model_b", "winner")
    return [{k: r[k] for k in keys} for r in rows]


def _jsonl(path: Path, records: list[Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def _gz(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data))
    return path


def _csv(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def _kaggle(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """The Kaggle lmsys-chatbot-arena train.csv layout, from real battles."""
    header = ["id", "model_a", "model_b", "prompt", "response_a", "response_b"]
    header += ["winner_model_a", "winner_model_b", "winner_tie"]
    out = []
    for r in rows:
        user = [m["content"] for m in r["conversation_a"] if m["role"] == "user"]
        answers = [m["content"] for m in r["conversation_a"] if m["role"] == "assistant"]
        others = [m["content"] for m in r["conversation_b"] if m["role"] == "assistant"]
        w = r["winner"]
        one_hot = [int(w == "model_a"), int(w == "model_b"), int(w.startswith("tie"))]
        out.append(
            [r["prompt_id"], r["model_a"], r["model_b"], orjson.dumps(user).decode()]
            + [orjson.dumps(answers).decode(), orjson.dumps(others).decode(), *one_hot]
        )
    return header, out


def _winners(rows: list[dict[str, Any]]) -> list[str]:
    return [r["winner"].replace("tie (bothbad)", "tie_bothbad") for r in rows]


# --------------------------------------------------------------- round trips


def test_plain_jsonl_round_trip(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    path = _jsonl(tmp_path / "battles.jsonl", _plain(arena))
    frame = read_battles(path).table.frame
    assert frame.height == len(arena)
    assert frame["prompt"].to_list() == [r["prompt"] for r in arena]
    assert frame["prompt_id"].to_list() == [r["prompt_id"] for r in arena]
    assert frame["winner"].cast(pl.String).to_list() == _winners(arena)
    assert set(frame["source"].cast(pl.String)) == {"human"}
    assert set(frame["dataset"]) == {"battles"}
    assert frame["weight"].to_list() == [1.0] * len(arena)


def test_model_names_are_canonical(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    rows = _plain(arena[:3])
    rows[0] |= {"model_a": "gpt4_1106_preview", "model_b": "mistralai/Mixtral-8x7B-Instruct-v0.1"}
    rows[1] |= {
        "model_a": "Meta-Llama-3_1-70B-Instruct",
        "model_b": "vicuna-13b:20230322-clean-lang",
    }
    rows[2] |= {"model_a": "gpt35", "model_b": "mistralai/mixtral-8x7b-chat"}
    frame = read_battles(_jsonl(tmp_path / "b.jsonl", rows)).table.frame
    assert frame["model_a"].to_list() == [
        "gpt-4-1106-preview",
        "llama-3.1-70b-instruct",
        "gpt-3.5-turbo",
    ]
    assert frame["model_b"].to_list() == [
        "mixtral-8x7b-instruct-v0.1",
        "vicuna-13b",
        "mixtral-8x7b-instruct-v0.1",
    ]


def test_provenance_source_column_is_ignored(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    """The shipped files (like many public ones) use ``source`` for provenance."""
    frame = read_battles(_jsonl(tmp_path / "b.jsonl", arena), source="judge").table.frame
    assert set(frame["source"].cast(pl.String)) == {"judge"}


def test_user_alias_file(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    aliases = tmp_path / "aliases.toml"
    aliases.write_text('[aliases]\n"gpt-4-1106-preview" = ["our-strong-model"]\n')
    rows = _plain(arena[:1])
    rows[0]["model_a"] = "our-strong-model"
    frame = read_battles(_jsonl(tmp_path / "b.jsonl", rows), aliases=aliases).table.frame
    assert frame["model_a"].to_list() == ["gpt-4-1106-preview"]


def test_lmsys_json_array_and_turn_policies(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    keys = ("model_a", "model_b", "winner", "conversation_a", "conversation_b")
    records = [{"question_id": r["prompt_id"], **{k: r[k] for k in keys}} for r in arena]
    path = tmp_path / "chatbot_arena_conversations.json"
    path.write_bytes(orjson.dumps(records, option=orjson.OPT_INDENT_2))

    first = read_battles(path)
    assert first.format == "arena"
    assert first.table.frame["prompt"].to_list() == [r["prompt"] for r in arena]
    assert first.table.frame["prompt_id"].to_list() == [r["prompt_id"] for r in arena]

    last = read_battles(path, turns="last").table.frame["prompt"].to_list()
    users = [[m["content"] for m in r["conversation_a"] if m["role"] == "user"] for r in arena]
    assert last == [u[-1] for u in users]
    assert sum(a != b for a, b in zip(last, [u[0] for u in users], strict=True)) > 0

    whole = read_battles(path, turns="all").table.frame["prompt"].to_list()
    multi = whole[-1].splitlines()
    assert multi[0].startswith("user: ") and any(x.startswith("assistant: ") for x in multi)
    for text, r in zip(whole, arena, strict=True):
        assert all(
            m["content"].splitlines()[0] in text for m in r["conversation_a"] if m["content"]
        )


@pytest.mark.parametrize("turns", ["first", "last", "all"])
def test_reader_and_shipped_loader_agree(
    tmp_path: Path, data_dir: Path, arena: list[dict[str, Any]], turns: str
) -> None:
    path = _jsonl(tmp_path / "arena.jsonl", arena)
    read = read_battles(path, turns=turns).table.frame.select("prompt_id", "prompt")
    shipped = load_battles(data_dir, turns=turns).table.frame.select("prompt_id", "prompt")
    assert (
        read.join(shipped, on="prompt_id", how="left")
        .filter(pl.col("prompt") != pl.col("prompt_right"))
        .is_empty()
    )


def test_arena_one_hot_and_json_encoded_conversation(
    tmp_path: Path, arena: list[dict[str, Any]]
) -> None:
    """arena-human-preference style: one-hot winner, conversation as a JSON string."""
    records = []
    for r in arena:
        w = r["winner"]
        records.append(
            {
                "id": r["prompt_id"],
                "model_a": r["model_a"],
                "model_b": r["model_b"],
                "conversation_a": orjson.dumps(r["conversation_a"]).decode(),
                "winner_model_a": w == "model_a",
                "winner_model_b": w == "model_b",
                "winner_tie": w.startswith("tie"),
            }
        )
    frame = read_battles(_jsonl(tmp_path / "arena-100k.jsonl", records), turns="last").table.frame
    expected = [r["winner"].split(" ")[0] for r in arena]
    assert frame["winner"].cast(pl.String).to_list() == expected
    assert frame["prompt_id"].to_list() == [r["prompt_id"] for r in arena]


def test_kaggle_csv(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    header, rows = _kaggle(arena)
    path = _csv(tmp_path / "train.csv", header, rows)
    report = read_battles(path)
    frame = report.table.frame
    assert report.format == "kaggle"
    assert frame["prompt"].to_list() == [r["prompt"] for r in arena]
    assert frame["winner"].cast(pl.String).to_list() == [r["winner"].split(" ")[0] for r in arena]
    # Kaggle keeps user turns and answers apart; "all" renders them like a conversation.
    kaggle_all = read_battles(path, turns="all").table.frame["prompt"].to_list()
    assert kaggle_all == [conversation_text(r["conversation_a"], "all") for r in arena]
    kaggle_last = read_battles(path, turns="last").table.frame["prompt"].to_list()
    assert kaggle_last == [conversation_text(r["conversation_a"], "last") for r in arena]


def test_parquet_plain_and_nested(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    pl.DataFrame(_plain(arena)).write_parquet(tmp_path / "plain.parquet")
    assert read_battles(tmp_path / "plain.parquet").table.frame["prompt"].to_list() == [
        r["prompt"] for r in arena
    ]
    keys = ("prompt_id", "model_a", "model_b", "winner", "conversation_a")
    nested = pl.DataFrame([{k: r[k] for k in keys} for r in arena])
    nested.write_parquet(tmp_path / "arena.parquet")
    frame = read_battles(tmp_path / "arena.parquet", turns="last").table.frame
    assert frame["prompt"].to_list() == [
        conversation_text(r["conversation_a"], "last") for r in arena
    ]


@pytest.mark.parametrize("name", ["b.jsonl.gz", "b.json.gz", "b.csv.gz", "b.parquet.gz"])
def test_gzipped_files(tmp_path: Path, arena: list[dict[str, Any]], name: str) -> None:
    frame = pl.DataFrame(_plain(arena))
    buffer = io.BytesIO()
    if ".csv" in name:
        frame.write_csv(buffer)
    elif ".parquet" in name:
        frame.write_parquet(buffer)
    else:
        frame.write_ndjson(buffer)
    table = read_battles(_gz(tmp_path / name, buffer.getvalue()), dataset="arena-sample").table
    assert table.frame["prompt"].to_list() == [r["prompt"] for r in arena]
    assert set(table.frame["dataset"]) == {"arena-sample"}


def test_plain_csv_with_weight_and_source(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    header = ["prompt", "model_a", "model_b", "winner", "weight", "source"]
    rows = [[r["prompt"], r["model_a"], r["model_b"], r["winner"], "0.5", "judge"] for r in arena]
    rows[0][4:] = ["", ""]  # empty weight / source: the defaults
    frame = read_battles(_csv(tmp_path / "b.csv", header, rows)).table.frame
    assert frame["weight"].to_list() == [1.0] + [0.5] * (len(arena) - 1)
    assert frame["source"].cast(pl.String).to_list() == ["human"] + ["judge"] * (len(arena) - 1)


def test_scores_round_trip(tmp_path: Path, mmlu: list[dict[str, Any]]) -> None:
    keys = ("prompt_id", "prompt", "model", "correct")
    table = read_scores(
        _jsonl(tmp_path / "mmlu.jsonl", [{k: r[k] for k in keys} for r in mmlu])
    ).table
    assert table.frame["score"].to_list() == [float(r["correct"]) for r in mmlu]
    assert set(table.models) == {"gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"}
    assert set(table.frame["source"].cast(pl.String)) == {"golden"}

    spellings = ["true", "0", "1", "False", "yes", "no"]
    rows = [[r["prompt"], r["model"], spellings[i % 6]] for i, r in enumerate(mmlu)]
    frame = read_scores(
        _csv(tmp_path / "mmlu.csv", ["prompt", "model", "correct"], rows)
    ).table.frame
    assert frame["score"].to_list() == [[1.0, 0.0, 1.0, 0.0, 1.0, 0.0][i % 6] for i in range(20)]

    rows = [[r["prompt"], r["model"], str(i / 20)] for i, r in enumerate(mmlu)]
    path = _csv(tmp_path / "graded.csv", ["prompt", "model", "score"], rows)
    frame = read_scores(path, source="judge").table.frame
    assert frame["score"].to_list() == [i / 20 for i in range(20)]


def test_100k_rows_fast(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    plain = _plain(arena)
    path = tmp_path / "big.jsonl"
    with path.open("wb") as fh:
        for i in range(100_000):
            fh.write(orjson.dumps(plain[i % len(plain)] | {"prompt_id": f"x/{i}"}) + b"\n")
    start = time.perf_counter()
    table = read_battles(path).table
    elapsed = time.perf_counter() - start
    assert len(table) == 100_000
    assert elapsed < 6.0, f"reading 100k rows took {elapsed:.1f}s"


# ---------------------------------------------------------------- bad input


def _error(path: Path, **kwargs: Any) -> DataError:
    with pytest.raises(DataError) as info:
        read_battles(path, **kwargs)
    return info.value


def test_bad_winner_exact_message(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    rows = _plain(arena[:10])
    rows[6]["winner"] = "x"
    path = _jsonl(tmp_path / "battles.jsonl", rows)
    error = _error(path)
    assert str(error) == f"{path}:7: field 'winner': {WINNER_MSG}, got 'x'"
    assert [(p.line, p.field) for p in error.problems] == [(7, "winner")]


def test_winner_may_name_the_model_that_won(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    """``"winner": "<model name>"``, in any spelling of model_a's or model_b's name."""
    rows = _plain(arena[:6])
    named = []
    for r in rows:
        side = {"model_a": r["model_a"], "model_b": r["model_b"]}.get(r["winner"])
        named.append({**r, "winner": side.upper() if side else r["winner"]})
    assert sum(n["winner"] != r["winner"] for n, r in zip(named, rows, strict=True)) >= 3
    frame = read_battles(_jsonl(tmp_path / "named.jsonl", named)).table.frame
    assert frame["winner"].cast(pl.String).to_list() == _winners(rows)
    named[2]["winner"] = "some-other-model"
    error = _error(_jsonl(tmp_path / "other.jsonl", named))
    assert (
        str(error)
        == f"{tmp_path / 'other.jsonl'}:3: field 'winner': {WINNER_MSG}, got 'some-other-model'"
    )


def test_bad_record_line_counts_blank_lines(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    rows = _plain(arena[:3])
    rows[2]["winner"] = 1
    lines = [orjson.dumps(r).decode() for r in rows]
    path = tmp_path / "b.jsonl"
    path.write_text(f"{lines[0]}\n\n{lines[1]}\n   \n{lines[2]}\n")
    assert str(_error(path)) == f"{path}:5: field 'winner': {WINNER_MSG}, got 1"


def test_csv_line_is_where_the_record_starts(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    """Quoted prompts span lines; the reported line is the bad record's first line."""
    rows = [[r["prompt"] + "\nsecond line", r["model_a"], r["model_b"], r["winner"]] for r in arena]
    rows[4][3] = "model_c"
    rows[4][0] = "MARKER " + rows[4][0]
    path = _csv(tmp_path / "b.csv", ["prompt", "model_a", "model_b", "winner"], rows)
    text = path.read_text()
    line = text[: text.index("MARKER")].count("\n") + 1
    assert line > 6  # earlier records span several lines
    assert str(_error(path)) == f"{path}:{line}: field 'winner': {WINNER_MSG}, got 'model_c'"


def test_every_bad_record_is_listed(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    rows = _plain(arena) * 2
    for i in range(0, 40, 2):
        rows[i] = rows[i] | {"winner": "A"}
    rows[1] = rows[1] | {"prompt": "  "}
    rows[3] = rows[3] | {"model_a": None}
    rows[5] = {k: v for k, v in rows[5].items() if k != "model_b"}
    rows[7] = rows[7] | {"model_a": "gpt4", "model_b": "gpt-4"}
    path = _jsonl(tmp_path / "b.jsonl", rows)
    error = _error(path)
    assert len(error.problems) == 24
    assert [p.line for p in error.problems] == sorted(p.line for p in error.problems)
    text = str(error)
    assert f"{path}:2: field 'prompt': expected a non-empty prompt, got '  '" in text
    assert f"{path}:4: field 'model_a': expected a model name, got null" in text
    assert f"{path}:6: field 'model_b': expected a model name, got no value" in text
    assert (
        f"{path}:8: field 'model_b': expected a model other than model_a, got 'gpt-4', the same "
        "model as model_a 'gpt4' (both are 'gpt-4')"
    ) in text
    assert text.endswith("... and 14 more bad records (use --skip-bad to drop them)")


def test_skip_bad_drops_and_counts(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    rows = _plain(arena)
    rows[3]["winner"] = None
    rows[9]["model_b"] = rows[9]["model_a"]
    lines = [orjson.dumps(r) for r in rows]
    lines[12] = b'{"prompt": "cut off'
    path = tmp_path / "b.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = read_battles(path, skip_bad=True)
    assert report.skipped == 3
    assert report.records == len(arena)
    assert len(report.table) == len(arena) - 3
    assert [p.line for p in report.problems] == [4, 10, 13]
    assert report.summary().endswith("skipped 3 bad records")


def test_skip_bad_when_every_record_is_bad_still_raises(
    tmp_path: Path, arena: list[dict[str, Any]]
) -> None:
    path = _jsonl(tmp_path / "b.jsonl", [r | {"winner": "?"} for r in _plain(arena[:3])])
    assert len(_error(path, skip_bad=True).problems) == 3


def test_missing_columns_says_which_and_the_format(
    tmp_path: Path, arena: list[dict[str, Any]]
) -> None:
    rows = [{k: v for k, v in r.items() if k != "winner"} for r in _plain(arena)]
    path = _jsonl(tmp_path / "b.jsonl", rows)
    assert str(_error(path)) == (
        f"{path}: expected columns prompt, model_a, model_b, winner (plain battles format, "
        "guessed from the columns present), got columns prompt_id, prompt, model_a, model_b "
        "(missing winner)"
    )
    keys = ("model_a", "model_b", "conversation_a")
    path = _jsonl(tmp_path / "arena.jsonl", [{k: r[k] for k in keys} for r in arena])
    message = str(_error(path))
    assert "lmsys arena conversation format" in message
    assert "missing winner_model_a, winner_model_b, winner_tie" in message


@pytest.mark.parametrize("content", [b"", b"\n  \n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "b.jsonl"
    path.write_bytes(content)
    assert str(_error(path)) == f"{path}: expected at least one record, got an empty file"


def test_csv_with_only_a_header(tmp_path: Path) -> None:
    path = _csv(tmp_path / "b.csv", ["prompt", "model_a", "model_b", "winner"], [])
    assert str(_error(path)) == f"{path}: expected at least one record, got no records"


def test_gz_that_is_not_gzip(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    path = _jsonl(tmp_path / "b.jsonl.gz", _plain(arena))
    assert str(_error(path)) == (
        f"{path}: expected gzip data (the name ends in .gz), got data that is not "
        "gzip-compressed; fix the file name"
    )


def test_truncated_gzip(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    data = gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in _plain(arena)))
    path = tmp_path / "b.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    assert "expected a complete gzip file, got corrupt gzip data" in str(_error(path))


def test_gzip_content_in_a_plain_name(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    path = _gz(tmp_path / "b.jsonl", b"".join(orjson.dumps(r) + b"\n" for r in _plain(arena)))
    assert str(_error(path)) == (
        f"{path}: expected plain jsonl data (the name has no .gz), got gzip-compressed data; "
        "rename it to b.jsonl.gz"
    )


@pytest.mark.parametrize("name", ["b.jsonl", "b.csv", "b.json"])
def test_not_utf8_says_the_line(tmp_path: Path, arena: list[dict[str, Any]], name: str) -> None:
    frame = pl.DataFrame([r | {"model_b": f"MODEL{i}"} for i, r in enumerate(_plain(arena[:5]))])
    buffer = io.BytesIO()
    frame.write_csv(buffer) if name.endswith(".csv") else frame.write_ndjson(buffer)
    data = buffer.getvalue().replace(b"MODEL2", b"caf\xe9")  # a Latin-1 byte
    (tmp_path / name).write_bytes(data)
    line = data[: data.index(b"caf\xe9")].count(b"\n") + 1
    message = str(_error(tmp_path / name))
    assert message.startswith(f"{tmp_path / name}:{line}: expected UTF-8 text, got byte 0xe9 at")
    assert message.endswith("save the file as UTF-8")


def test_invalid_json_line(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    lines = [orjson.dumps(r) for r in _plain(arena[:5])]
    lines[3] = lines[3][:-5] + b",,}"
    path = tmp_path / "b.jsonl"
    path.write_bytes(b"\n".join(lines))
    error = _error(path)
    assert len(error.problems) == 1
    assert str(error).startswith(f"{path}:4: expected a JSON object, got invalid JSON at column")


def test_json_array_record_numbers(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    records: list[Any] = _plain(arena[:4])
    records[2] = ["not", "an", "object"]
    records[3]["winner"] = "both"
    path = tmp_path / "b.json"
    path.write_bytes(orjson.dumps(records, option=orjson.OPT_INDENT_2))
    assert str(_error(path)).splitlines() == [
        f"{path}:3: expected a JSON object, got a JSON array",
        f"{path}:4: field 'winner': {WINNER_MSG}, got 'both'",
    ]


def test_one_json_object_instead_of_records(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    path = tmp_path / "b.json"
    path.write_bytes(orjson.dumps({"data": _plain(arena)}, option=orjson.OPT_INDENT_2))
    assert str(_error(path)) == (
        f"{path}: expected a JSON array of records or JSON lines (one object per line), "
        "got one JSON document (a JSON dict; keys data)"
    )


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "battles.txt"
    path.write_text("prompt,model_a,model_b,winner\n")
    assert str(_error(path)) == (
        f"{path}: expected a file ending in .jsonl, .ndjson, .json, .csv, .tsv, .parquet "
        "(optionally + .gz), got '.txt'"
    )


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.jsonl"
    assert str(_error(path)) == f"{path}: expected an existing file, got no such file"


def test_not_parquet(tmp_path: Path) -> None:
    path = tmp_path / "b.parquet"
    path.write_text("prompt,model_a\n")
    assert "expected a Parquet file (starting with PAR1)" in str(_error(path))


def test_ragged_csv_row(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    rows = [[r["prompt"], r["model_a"], r["model_b"], r["winner"]] for r in arena[:3]]
    rows[1].append("extra")
    path = _csv(tmp_path / "b.csv", ["prompt", "model_a", "model_b", "winner"], rows)
    assert str(_error(path)) == f"{path}:3: expected 4 fields as in the header, got 5 fields"


def test_bad_one_hot_and_kaggle_prompt(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    header, rows = _kaggle(arena[:15])
    rows[1][6:9] = [0, 0, 0]
    rows[2][3] = "Hi there"  # not a JSON list
    path = _csv(tmp_path / "train.csv", header, rows)
    assert str(_error(path)).splitlines() == [
        f"{path}:3: field 'winner_model_a/winner_model_b/winner_tie': expected exactly one of "
        "them 1 (or true), got '0', '0', '0'",
        f"{path}:4: field 'prompt': expected a JSON list of user turns "
        """(e.g. ["Hi", "And then?"]), got 'Hi there'""",
    ]


def test_bad_kaggle_answers_only_matter_for_all_turns(
    tmp_path: Path, arena: list[dict[str, Any]]
) -> None:
    header, rows = _kaggle(arena[:3])
    rows[1][4] = "not json"
    path = _csv(tmp_path / "train.csv", header, rows)
    assert len(read_battles(path).table) == 3
    assert str(_error(path, turns="all")) == (
        f"{path}:3: field 'response_a': expected a JSON list of answers, got 'not json'"
    )


def test_bad_conversation(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    keys = ("model_a", "model_b", "winner", "conversation_a")
    rows = [{k: r[k] for k in keys} for r in arena[:3]]
    rows[1]["conversation_a"] = [{"role": "assistant", "content": "hello"}]
    path = _jsonl(tmp_path / "arena.jsonl", rows)
    assert str(_error(path)) == (
        f"{path}:2: field 'conversation_a': expected a list of {{role, content}} messages with "
        """a user turn, got [{"role":"assistant","content":"hello"}]"""
    )


def test_bad_weight_and_source(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    rows = [r | {"source": "judge"} for r in _plain(arena[:4])]
    rows[1]["weight"] = -1
    rows[2]["weight"] = "heavy"
    rows[3]["source"] = "crowd"
    assert str(_error(_jsonl(tmp_path / "b.jsonl", rows))).splitlines()[-3:] == [
        f"{tmp_path / 'b.jsonl'}:2: field 'weight': expected a number >= 0, got -1",
        f"{tmp_path / 'b.jsonl'}:3: field 'weight': expected a number >= 0, got 'heavy'",
        f"{tmp_path / 'b.jsonl'}:4: field 'source': expected one of human, judge, golden, "
        "got 'crowd'",
    ]


def test_bad_scores(tmp_path: Path, mmlu: list[dict[str, Any]]) -> None:
    mmlu = [r | {"prompt": r["prompt"].replace("\n", " ")} for r in mmlu]  # one line a record
    rows = [[r["prompt"], r["model"], str(r["correct"]).lower()] for r in mmlu]
    rows[4][2] = "maybe"
    rows[6][1] = ""
    path = _csv(tmp_path / "s.csv", ["prompt", "model", "correct"], rows)
    with pytest.raises(DataError) as info:
        read_scores(path)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:6: field 'correct': expected true/false or 1/0, got 'maybe'",
        f"{path}:8: field 'model': expected a model name, got ''",
    ]
    rows = [[r["prompt"], r["model"], "0.5"] for r in mmlu]
    rows[2][2] = "n/a"
    path = _csv(tmp_path / "g.csv", ["prompt", "model", "score"], rows)
    report = read_scores(path, skip_bad=True)
    assert (report.skipped, len(report.table)) == (1, 19)
    assert str(report.problems[0]) == f"{path}:4: field 'score': expected a number, got 'n/a'"


def test_scores_missing_columns(tmp_path: Path, mmlu: list[dict[str, Any]]) -> None:
    path = _jsonl(
        tmp_path / "s.jsonl", [{"prompt": r["prompt"], "model": r["model"]} for r in mmlu]
    )
    with pytest.raises(DataError, match=r"missing correct\)$"):
        read_scores(path)


def test_bad_arguments(tmp_path: Path, arena: list[dict[str, Any]]) -> None:
    path = _jsonl(tmp_path / "b.jsonl", _plain(arena))
    with pytest.raises(ValueError, match="unknown turns 'middle'; expected one of first"):
        read_battles(path, turns="middle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown source 'crowd'"):
        read_battles(path, source="crowd")
