"""The label pipeline end to end over HTTP: battles and scores ``train`` reads, nothing
dropped, nothing paid twice, cost known before and capped during."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from prefroute.data.readers import read_battles, read_scores
from prefroute.errors import UnknownPriceError
from prefroute.label import Job, estimate, label
from prefroute.label.store import CallStore, request_key
from prefroute.testing import FakeLabelUpstream, LabelScript

from .conftest import JUDGE, STRONG, WEAK, read_jsonl, settings_for, write_jsonl

MISBEHAVING = LabelScript(
    slow=0.2, slow_delay=0.2, malformed=0.2, unparseable=0.1, position_biased=0.1,
    rate_limited=0.1, retry_after=0.1, server_errors=0.1,
)  # fmt: skip


def job(tmp_path: Path, prompts: Path, **options: Any) -> Job:
    options.setdefault("out", tmp_path / "battles.jsonl")
    return Job(prompts, concurrency=8, **options)


def test_battles_are_read_by_train_with_no_row_dropped(
    fake: FakeLabelUpstream, tmp_path: Path, prompts_file: Path, arena_hard: list[dict[str, Any]]
) -> None:
    fake.reset(MISBEHAVING)
    summary = label(job(tmp_path, prompts_file, keep_answers=True), settings_for(fake))
    rows = read_jsonl(summary.out)
    report = read_battles(summary.out)
    battles = report.table
    assert report.records == len(rows) and report.skipped == 0
    assert len(battles) == len(rows) == summary.rows == summary.labelled
    assert set(battles.frame["source"].cast(str)) == {"judge"}
    assert set(battles.frame["model_a"]) == {STRONG} and set(battles.frame["model_b"]) == {WEAK}
    # every prompt has a row or a reported parse failure, and rows keep the prompt order
    failed = {f.prompt_id for f in summary.parse_failures}
    ids = [p["id"] for p in arena_hard]
    assert [r["prompt_id"] for r in rows] == [i for i in ids if i not in failed]
    assert failed and summary.complete and not summary.call_failures
    assert summary.asked_again > len(failed)  # the malformed ones were asked again and parsed
    listed = read_jsonl(summary.out.with_name("battles.jsonl.failures.jsonl"))
    assert {f["prompt_id"] for f in listed} == failed
    for row in rows:
        assert row["judge"] == JUDGE and row["judge_prompt"].startswith("prefroute-pairwise")
        a, b = (len(row[f"response_{side}"].split()) for side in "ab")
        a_first, b_first = row["verdicts"]["a_first"], row["verdicts"]["b_first"]
        if a_first == b_first == "A>B":  # the scripted position bias: each order prefers A
            assert row["winner"] == "tie"
        elif a > 1.1 * b:  # the fake judge prefers the longer answer
            assert (row["winner"], a_first) == ("model_a", "A>>B" if a > 1.5 * b else "A>B")
        elif b > 1.1 * a:
            assert row["winner"] == "model_b" and row["strength"] >= 1


def test_same_inputs_give_the_same_bytes_and_a_rerun_pays_for_nothing(
    fake: FakeLabelUpstream, tmp_path: Path, prompts_file: Path
) -> None:
    fake.reset(MISBEHAVING)  # slow, retried and rate-limited calls finish out of order
    first = label(job(tmp_path, prompts_file, out=tmp_path / "one.jsonl"), settings_for(fake))
    second = label(job(tmp_path, prompts_file, out=tmp_path / "two.jsonl"), settings_for(fake))
    assert first.out.read_bytes() == second.out.read_bytes()
    assert first.calls == second.calls > 0
    fake.reset()
    again = label(job(tmp_path, prompts_file, out=tmp_path / "one.jsonl"), settings_for(fake))
    assert again.out.read_bytes() == first.out.read_bytes()
    assert again.calls == 0 and not fake.calls
    assert again.cached == first.calls


def test_given_answers_are_not_generated_again(
    fake: FakeLabelUpstream, tmp_path: Path, alpaca: list[dict[str, Any]]
) -> None:
    fake.reset(LabelScript())
    prompts = write_jsonl(
        tmp_path / "p.jsonl", [{"id": r["id"], "prompt": r["prompt"]} for r in alpaca]
    )
    answers = write_jsonl(
        tmp_path / "answers.jsonl",
        [{"prompt_id": r["id"], "model": STRONG, "response": r["strong"]} for r in alpaca],
    )
    summary = label(job(tmp_path, prompts, answers=answers, keep_answers=True), settings_for(fake))
    assert fake.calls[(STRONG, "answer")] == 0
    assert fake.calls[(WEAK, "answer")] == len(alpaca)
    assert summary.answers_given == len(alpaca)
    rows = {r["prompt_id"]: r for r in read_jsonl(summary.out)}
    assert all(rows[r["id"]]["response_a"] == r["strong"] for r in alpaca)


def test_a_chat_log_is_answered_as_a_conversation(fake: FakeLabelUpstream, tmp_path: Path) -> None:
    fake.reset(LabelScript())
    chat = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a prime number."},
        {"role": "assistant", "content": "7"},
        {"role": "user", "content": "And an even one?"},
        {"role": "assistant", "content": "2", "logged_at": "2024-05-01"},  # the log's answer
    ]
    log = write_jsonl(tmp_path / "log.jsonl", [{"id": "c1", "messages": chat}])
    summary = label(job(tmp_path, log), settings_for(fake))
    (row,) = read_jsonl(summary.out)
    assert row["prompt"] == "Name a prime number."  # the routing text: the first user turn
    sent = job(tmp_path, log).answer_body(STRONG, chat[:4])
    assert fake.answered[request_key(sent)] == 1  # the models saw the conversation, not more


def test_single_mode_writes_a_scores_file(
    fake: FakeLabelUpstream, tmp_path: Path, prompts_file: Path
) -> None:
    fake.reset(LabelScript())
    summary = label(job(tmp_path, prompts_file, mode="single", out=tmp_path / "s.jsonl"),
                    settings_for(fake))  # fmt: skip
    scores = read_scores(summary.out).table
    assert len(scores) == summary.rows == 2 * summary.prompts
    assert set(scores.frame["model"]) == {STRONG, WEAK}
    assert scores.frame["score"].is_between(1, 10).all()
    assert fake.calls[(JUDGE, "grade")] == 2 * summary.prompts


def test_max_cost_stops_before_the_limit_and_a_rerun_finishes(
    fake: FakeLabelUpstream, tmp_path: Path, prompts_file: Path
) -> None:
    fake.reset(LabelScript())
    capped = label(job(tmp_path, prompts_file, max_cost=0.05), settings_for(fake))
    assert capped.stopped and "--max-cost" in capped.stopped
    assert 0 < capped.cost <= 0.05
    assert 0 < capped.labelled < capped.prompts
    assert len(read_battles(capped.out).table) == capped.rows
    paid = sum(fake.answered.values())
    finished = label(job(tmp_path, prompts_file), settings_for(fake))
    assert finished.complete and finished.labelled == finished.prompts
    assert sum(fake.answered.values()) == paid + finished.calls
    assert finished.cached >= capped.calls  # what the capped run paid for was reused


def test_a_model_without_a_price_is_asked_for_before_any_call(
    fake: FakeLabelUpstream, tmp_path: Path, prompts_file: Path
) -> None:
    fake.reset(LabelScript())
    settings = settings_for(fake, weak={"model": "my-local-llama"})
    with pytest.raises(UnknownPriceError, match="my-local-llama.*--prices"):
        label(job(tmp_path, prompts_file, max_cost=1.0), settings)
    with pytest.raises(UnknownPriceError, match="my-local-llama"):
        estimate(job(tmp_path, prompts_file), settings)
    assert not fake.calls
    priced = settings_for(fake, weak={"model": "my-local-llama", "input_cost": 0.0,
                                      "output_cost": 0.0})  # fmt: skip
    summary = label(job(tmp_path, prompts_file, max_cost=1.0), priced)
    assert summary.complete and summary.usage["weak"].cost == 0.0
    assert summary.usage["strong"].cost > 0


def test_the_dry_run_estimate_is_within_20_percent_of_the_tokens_reported(
    fake: FakeLabelUpstream, tmp_path: Path, alpaca: list[dict[str, Any]], prompts_file: Path
) -> None:
    """On real text: Arena-Hard prompts for the answer calls, GPT-4-turbo's and Mixtral's
    real AlpacaEval answers for the judge calls. The estimate counts by rule; the fake
    counts with OpenAI's o200k tokenizer."""
    fake.reset(LabelScript())
    settings = settings_for(fake)
    answering = job(tmp_path, prompts_file, out=tmp_path / "a.jsonl")
    guess = {r.role: r for r in estimate(answering, settings).roles}
    used = label(answering, settings).usage
    for role in ("strong", "weak"):
        assert guess[role].input_tokens == pytest.approx(used[role].input_tokens, rel=0.2)
    prompts = write_jsonl(
        tmp_path / "p.jsonl", [{"id": r["id"], "prompt": r["prompt"]} for r in alpaca]
    )
    answers = write_jsonl(
        tmp_path / "answers.jsonl",
        [{"prompt_id": r["id"], "model": m, "response": r[role]} for r in alpaca
         for role, m in (("strong", STRONG), ("weak", WEAK))],
    )  # fmt: skip
    judging = job(tmp_path, prompts, answers=answers, out=tmp_path / "j.jsonl")
    guess_judge = {r.role: r for r in estimate(judging, settings).roles}["judge"]
    used_judge = label(judging, settings).usage["judge"]
    assert guess_judge.calls == used_judge.calls == 2 * len(alpaca)
    assert guess_judge.input_tokens == pytest.approx(used_judge.input_tokens, rel=0.2)
    guessed = guess_judge.input_tokens + guess_judge.output_tokens
    reported = used_judge.input_tokens + used_judge.output_tokens
    assert guessed == pytest.approx(reported, rel=0.2)


def test_the_estimate_counts_stored_calls_as_free(
    fake: FakeLabelUpstream, tmp_path: Path, prompts_file: Path
) -> None:
    fake.reset(LabelScript())
    done = job(tmp_path, prompts_file)
    before = estimate(done, settings_for(fake))
    label(done, settings_for(fake))
    after = estimate(done, settings_for(fake))
    assert before.cost > 0 and after.cost == 0
    assert sum(r.cached for r in after.roles) == sum(r.calls for r in before.roles)
    with CallStore(done.store_path) as store:
        assert len(store) == sum(r.calls for r in before.roles)


def test_a_question_asked_twice_is_paid_for_once(fake: FakeLabelUpstream, tmp_path: Path) -> None:
    fake.reset(LabelScript(delay=0.05))  # both copies are in flight together
    prompts = write_jsonl(
        tmp_path / "p.jsonl",
        [{"id": i, "prompt": "Explain how a hash table resolves collisions."} for i in "xy"],
    )
    summary = label(job(tmp_path, prompts), settings_for(fake))
    assert [r["prompt_id"] for r in read_jsonl(summary.out)] == ["x", "y"]
    assert summary.calls == 4 and summary.cached == 4
    assert set(fake.answered.values()) == {1}
