"""The shipped benchmarks and user files as eval sets: counts, drops, qualities."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from prefroute.errors import DataError, EvalError
from prefroute.evals.benchmarks import EvalSet, benchmark, eval_file

STRONG, WEAK = "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"


def _jsonl(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize(
    ("name", "total", "contaminated"),
    [("mt-bench", 80, 8), ("mmlu", 14_042, 5), ("gsm8k", 1_319, 12)],
)
def test_shipped_benchmarks_load_with_the_papers_counts(
    data_dir: Path, name: str, total: int, contaminated: int
) -> None:
    # The contamination drop leaves 72 MT-Bench, 14,037 MMLU and 1,307 GSM8K prompts.
    s = benchmark(name, data_dir)
    assert len(s) + sum(s.dropped.values()) == total
    assert dict(s.dropped) == {"contaminated": contaminated}
    assert (s.strong_model, s.weak_model) == (STRONG, WEAK)
    assert len(set(s.prompt_ids)) == len(s) == len(s.prompts)
    assert s.strong_quality.mean() > s.weak_quality.mean()


def test_golden_benchmarks_are_correctness(data_dir: Path) -> None:
    s = benchmark("gsm8k", data_dir)
    assert set(np.unique(np.concatenate([s.strong_quality, s.weak_quality]))) == {0.0, 1.0}
    rows = {
        (r["prompt_id"], r["model"]): r
        for r in _jsonl(data_dir / "routellm-evals" / "gsm8k_golden.jsonl.gz")
    }
    i = s.prompt_ids.index("gsm8k/5")
    assert s.prompts[i] == rows["gsm8k/5", "gpt-4-1106-preview"]["prompt"]
    assert s.strong_quality[i] == float(rows["gsm8k/5", "gpt-4-1106-preview"]["correct"])
    assert s.weak_quality[i] == float(
        rows["gsm8k/5", "mistralai/Mixtral-8x7B-Instruct-v0.1"]["correct"]
    )


def test_mt_bench_quality_is_the_turn_mean_and_routing_is_on_turn_one(data_dir: Path) -> None:
    s = benchmark("mt-bench", data_dir)
    root = data_dir / "routellm-evals"
    question = {q["prompt_id"]: q for q in _jsonl(root / "mt_bench_questions.jsonl.gz")}
    judged = _jsonl(root / "mt_bench_judgements.jsonl.gz")
    for i in (0, 40, len(s) - 1):
        pid = s.prompt_ids[i]
        assert s.prompts[i] == question[pid]["turns"][0]
        turns = [r["score"] for r in judged if r["prompt_id"] == pid and r["model"] == STRONG]
        assert len(turns) == 2
        assert s.strong_quality[i] == pytest.approx(sum(turns) / 2)


def test_mt_bench_judge_failures_are_left_out_of_the_mean(data_dir: Path, tmp_path: Path) -> None:
    # A copy of the data whose judge failed (-1) on turn 2 of one answer, and on
    # both turns of another: the first keeps its turn-1 score, the second is dropped.
    for name in ("routellm-evals", "prometheus-gpt4-rubric-scores"):
        shutil.copytree(data_dir / name, tmp_path / name)
    path = tmp_path / "routellm-evals" / "mt_bench_judgements.jsonl.gz"
    rows = _jsonl(data_dir / "routellm-evals" / path.name)
    kept = benchmark("mt-bench", data_dir)
    first, second = kept.prompt_ids[0], kept.prompt_ids[1]
    for r in rows:
        if r["model"] == STRONG and (
            (r["prompt_id"] == first and r["turn"] == 2) or r["prompt_id"] == second
        ):
            r["score"] = -1
    path.chmod(0o644)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    turn1 = next(
        r["score"]
        for r in rows
        if r["prompt_id"] == first and r["model"] == STRONG and r["turn"] == 1
    )
    s = benchmark("mt-bench", tmp_path)
    assert s.strong_quality[s.prompt_ids.index(first)] == turn1
    assert second not in s.prompt_ids
    assert dict(s.dropped) == {"contaminated": 8, f"without a score for {STRONG}": 1}


def test_trained_on_ids_are_excluded_and_counted(data_dir: Path) -> None:
    full = benchmark("mmlu", data_dir)
    trained = [*full.prompt_ids[:30], "mmlu/not_a_subject/0"]
    s = benchmark("mmlu", data_dir, exclude_ids=trained)
    assert len(s) == len(full) - 30
    assert dict(s.dropped) == {"contaminated": 5, "trained on": 30}
    assert not set(trained) & set(s.prompt_ids)


def test_unknown_benchmark_lists_the_known_ones(data_dir: Path) -> None:
    with pytest.raises(EvalError, match="unknown benchmark 'mtbench'.*mt-bench, mmlu, gsm8k"):
        benchmark("mtbench", data_dir)


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_eval_file_matches_models_by_canonical_name_and_counts_missing_scores(
    tmp_path: Path,
) -> None:
    rows = [
        {"prompt": "a", "model": "GPT-4o", "score": 9},
        {"prompt": "a", "model": "openai/gpt-4o-mini", "score": 6},
        {"prompt": "b", "model": "gpt-4o", "score": 8},
        {"prompt": "b", "model": "gpt-4o-mini", "score": 8},
        {"prompt": "b", "model": "gpt-4o-mini", "score": 6},  # a second sample: averaged
        {"prompt": "c", "model": "gpt-4o", "score": 7},  # no weak score
        {"prompt": "d", "model": "llama-3-8b", "score": 1},  # neither of the pair
        {"prompt": "e", "model": "gpt-4o-mini", "score": 5},  # no strong score
    ]
    s = eval_file(_write(tmp_path / "mine.jsonl", rows), "gpt-4o", "gpt-4o-mini")
    assert s.name == "mine.jsonl"
    assert s.prompts == ("a", "b")
    np.testing.assert_array_equal(s.strong_quality, [9.0, 8.0])
    np.testing.assert_array_equal(s.weak_quality, [6.0, 7.0])
    assert dict(s.dropped) == {
        "without a score for either model": 1,
        "without a score for gpt-4o": 1,
        "without a score for gpt-4o-mini": 1,
    }
    assert s.source is not None and (s.source.rows, s.source.used) == (8, 5)
    assert dict(s.source.ignored) == {"of other models": 1, "of prompts left out": 2}
    assert s.source.pair_choice is None and s.quality == "mean score"


def test_eval_file_reads_csv_correctness_and_prompt_ids(tmp_path: Path) -> None:
    path = tmp_path / "golden.csv"
    path.write_text(
        "prompt_id,prompt,model,correct\n"
        "q1,What is 2+2?,big,true\nq1,What is 2+2?,small,false\n"
        "q2,Name a prime.,big,1\nq2,Name a prime.,small,1\n"
    )
    s = eval_file(path, "big", "small")
    assert s.prompt_ids == ("q1", "q2")
    np.testing.assert_array_equal(s.strong_quality, [1.0, 1.0])
    np.testing.assert_array_equal(s.weak_quality, [0.0, 1.0])
    assert dict(s.dropped) == {}


def test_bad_eval_file_names_file_line_and_field(tmp_path: Path) -> None:
    rows = [
        {"prompt": "a", "model": "big", "score": 1},
        {"prompt": "a", "model": "small", "score": "high"},
    ]
    path = _write(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError, match=rf"{path}:2: field 'score': expected a number"):
        eval_file(path, "big", "small")


def test_eval_file_without_the_asked_model_says_which_models_it_has(tmp_path: Path) -> None:
    rows = [
        {"prompt": "a", "model": "big", "score": 1},
        {"prompt": "a", "model": "tiny", "score": 0},
    ]
    path = _write(tmp_path / "mine.jsonl", rows)
    with pytest.raises(DataError, match="records for model 'small', got only models big, tiny"):
        eval_file(path, "big", "small")
    with pytest.raises(EvalError, match="both 'big'"):
        eval_file(path, "big", "BIG")


def test_a_set_with_nothing_left_says_what_was_dropped(tmp_path: Path) -> None:
    rows = [
        {"prompt": "a", "model": "big", "score": 1},
        {"prompt": "b", "model": "small", "score": 0},
    ]
    path = _write(tmp_path / "mine.jsonl", rows)
    with pytest.raises(EvalError, match="no prompts left.*1 without a score for big"):
        eval_file(path, "big", "small")
    rows = [
        {"prompt": "a", "model": "big", "score": 1},
        {"prompt": "a", "model": "small", "score": 1},
    ]
    with pytest.raises(EvalError, match="mine.jsonl: big and small have the same mean quality"):
        eval_file(_write(path.with_name("mine.jsonl"), rows), "big", "small")
    with pytest.raises(ValueError, match="differ in length"):
        EvalSet("x", ("a",), ("a", "b"), np.ones(1), np.zeros(1), "big", "small")


def test_without_a_pair_the_routers_own_or_the_files_only_pair_is_used(tmp_path: Path) -> None:
    rows = [
        {"prompt": f"q{i}", "model": model, "correct": ok}
        for i in range(10)
        for model, ok in (("small", i % 3 == 0), ("big", i % 2 == 0))
    ]
    path = _write(tmp_path / "two.jsonl", rows)
    s = eval_file(path)  # two models: strong is the better one on the file
    assert (s.strong_model, s.weak_model) == ("big", "small")
    assert s.quality == "share correct"
    assert s.source is not None and s.source.pair_choice is not None
    assert s.source.pair_choice.startswith("its only pair (10 prompts); strong is the better")
    s = eval_file(path, prefer=[("other", "pair"), ("small", "big")])  # the router's pair
    assert (s.strong_model, s.weak_model) == ("small", "big")
    assert (
        s.source is not None and s.source.pair_choice == "the router's own pair, found in two.jsonl"
    )
    rows += [{"prompt": "q0", "model": "third", "correct": True}]
    with pytest.raises(EvalError, match="scores 3 models .big, small, third.; say which pair"):
        eval_file(_write(path, rows))
    with pytest.raises(EvalError, match="both the strong and the weak model"):
        eval_file(path, "big")


def test_battles_are_the_strong_models_results_from_its_side(tmp_path: Path) -> None:
    rows = [
        {"prompt": "a", "model_a": "big", "model_b": "small", "winner": "model_a"},
        {"prompt": "a", "model_a": "small", "model_b": "big", "winner": "tie"},
        {"prompt": "b", "model_a": "small", "model_b": "big", "winner": "model_a"},
        {"prompt": "b", "model_a": "big", "model_b": "small", "winner": "model_a"},
        {"prompt": "b", "model_a": "big", "model_b": "small", "winner": "model_b", "weight": 0},
        {"prompt": "c", "model_a": "big", "model_b": "third", "winner": "model_a"},
    ]
    s = eval_file(_write(tmp_path / "battles.jsonl", rows), "big", "small")
    assert s.prompts == ("a", "b")
    np.testing.assert_allclose(s.strong_quality, [0.75, 0.5])  # (1 + 0.5) / 2, (0 + 1) / 2
    np.testing.assert_allclose(s.weak_quality, [0.25, 0.5])
    assert s.quality.startswith("win rate against the other model (win 1, tie 0.5")
    assert s.source is not None and (s.source.rows, s.source.used) == (6, 4)
    assert dict(s.source.ignored) == {"of other pairs": 1, "of weight 0": 1}
    chosen = eval_file(tmp_path / "battles.jsonl")  # the most frequent pair, oriented
    assert (chosen.strong_model, chosen.weak_model) == ("big", "small")
    assert chosen.source is not None and chosen.source.pair_choice is not None
    assert chosen.source.pair_choice.startswith("its most frequent of 2 pairs (4 battles)")
    with pytest.raises(DataError, match="battles between big and tiny, got pairs big vs small"):
        eval_file(tmp_path / "battles.jsonl", "big", "tiny")


def test_real_human_battles_as_an_eval_set(data_dir: Path) -> None:
    path = data_dir / "prd-vicuna80-pairwise" / "battles_human.jsonl.gz"
    s = eval_file(path, "gpt-4", "vicuna-13b")
    votes: dict[str, list[float]] = {}
    for r in _jsonl(path):  # the same numbers the slow way, from the raw records
        pair = {r["model_a"], r["model_b"]}
        if pair == {"gpt4", "vicuna-13b"}:
            won = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5}[r["winner"]]
            votes.setdefault(r["prompt_id"], []).append(won if r["model_a"] == "gpt4" else 1 - won)
    assert len(s) == len(votes) == 80
    by_id = dict(zip(s.prompt_ids, s.strong_quality, strict=True))
    for prompt_id, results in votes.items():
        assert by_id[prompt_id] == pytest.approx(np.mean(results))
    assert s.source is not None and s.source.rows == 7_040
    assert s.source.used == sum(len(v) for v in votes.values()) == 240
    assert dict(s.source.ignored) == {"of other pairs": 7_040 - 240}
    chosen = eval_file(path)  # many pairs have 240 votes: which one, and why, is said
    assert chosen.source is not None and chosen.source.pair_choice is not None
    assert chosen.source.pair_choice.startswith("the first by name of its ")
    assert "most frequent pairs (of 32) (240 battles)" in chosen.source.pair_choice


def test_token_counts_in_the_file_price_each_models_call(tmp_path: Path) -> None:
    rows = [
        {"prompt": "a", "model": "big", "score": 1, "input_tokens": 100, "output_tokens": 300},
        {"prompt": "a", "model": "small", "score": 0, "input_tokens": 100, "output_tokens": 100},
        {"prompt": "b", "model": "big", "score": 1, "input_tokens": 50, "output_tokens": 500},
        {"prompt": "b", "model": "small", "score": 1, "input_tokens": 50, "output_tokens": "?"},
    ]
    s = eval_file(_write(tmp_path / "tokens.jsonl", rows), "big", "small")
    assert s.source is not None
    big, small = s.source.tokens["big"], s.source.tokens["small"]
    assert (big.input_tokens, big.output_tokens) == (75.0, 400.0)
    assert (small.input_tokens, small.output_tokens) == (100.0, 100.0)  # the "?" row left out
    assert small.source == "mean input_tokens/output_tokens of 1 rows in tokens.jsonl"


def test_an_eval_file_of_neither_format_says_what_it_needs(tmp_path: Path) -> None:
    path = _write(tmp_path / "odd.jsonl", [{"prompt": "a", "label": 1}])
    with pytest.raises(
        DataError, match="an eval file of scores .* or battles .*got columns prompt, label"
    ):
        eval_file(path)
