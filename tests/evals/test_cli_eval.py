"""``prefroute eval`` end to end on random routers (they fit instantly)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prefroute.cli import app
from prefroute.data.schema import Battles
from prefroute.routers.artifact import TrainingData
from prefroute.routers.random import RandomRouter

runner = CliRunner()


def invoke(*args: str):  # noqa: ANN201 - click's Result
    return runner.invoke(app, ["eval", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.mktemp("routers")
    paths = []
    for name, seed in (("rand-a", 1), ("rand-b", 2)):
        router = RandomRouter(random_state=seed).fit(Battles.empty())
        router.training_data_ = TrainingData(gold_slice_ids=("mmlu/abstract_algebra/0",))
        paths.append(str(router.save(root / name)))
    return paths


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    rows = [
        {"prompt": f"question {i}", "model": model, "score": score}
        for i in range(40)
        for model, score in (("gpt-4o", i * 7 % 10), ("gpt-4o-mini", i * 3 % 7))
    ]
    rows.append({"prompt": "only the strong one", "model": "gpt-4o", "score": 9})
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def said(result) -> str:  # noqa: ANN001 - click's Result
    """The output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def test_eval_benchmarks_and_a_user_file_writes_table_json_and_png(
    artifacts: list[str], user_file: Path, tmp_path: Path, data_dir: Path
) -> None:
    out, png = tmp_path / "out" / "eval.json", tmp_path / "out" / "eval.png"
    result = invoke(
        *artifacts,
        "--benchmark", "gsm8k,mmlu",
        "--eval-file", str(user_file), "--strong", "gpt-4o", "--weak", "gpt-4o-mini",
        "--json", str(out), "--plot", str(png),
        "--data-dir", str(data_dir),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = said(result)
    for title in ("gsm8k: 1,307 prompts", "mmlu: 14,036 prompts", "mine.jsonl: 40 prompts"):
        assert title in text
    assert "rand-a" in text and "oracle" in text
    # the counts add up: 14,036 used + 5 + 1 left out = the set's 14,042
    assert (
        "prompts: 14,042 prompts in it, 14,036 used, 6 left out (5 contaminated, 1 trained on)"
        in text
    )
    assert (
        f"file: {user_file}: 81 rows (long scores format): 80 used, 1 of prompts left out; "
        "41 prompts in it, 40 used, 1 left out (1 without a score for gpt-4o-mini)"
    ) in text
    assert (
        "prices: gpt-4o $2.5 in / $10 out per 1M tokens (2024-10-01, prefroute/prices.toml); "
        "gpt-4o-mini $0.15 in / $0.6 out per 1M tokens"
    ) in text
    report = json.loads(out.read_text())
    assert [s["name"] for s in report["sets"]] == ["gsm8k", "mmlu", "mine.jsonl"]
    assert [r["router"] for r in report["sets"][0]["routers"]] == ["rand-a", "rand-b"]
    mine = report["sets"][2]
    assert mine["strong_model"] == "gpt-4o" and mine["file"]["rows"] == 81
    assert mine["prices"]["strong"]["input_per_1m"] == 2.5
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_on_battles_finds_the_pair_and_says_how_much_of_the_file_it_used(
    artifacts: list[str], data_dir: Path
) -> None:
    """Real human votes: PRD's Vicuna-80 battles, gpt-4 against vicuna-13b."""
    path = data_dir / "prd-vicuna80-pairwise" / "battles_human.jsonl.gz"
    result = invoke(
        artifacts[0], "--eval-file", str(path), "--strong", "gpt-4", "--weak", "vicuna-13b"
    )
    assert result.exit_code == 0, result.output
    text = said(result)
    assert "battles_human.jsonl.gz: 80 prompts, gpt-4 vs vicuna-13b" in text
    assert "quality (win rate against the other model (win 1, tie 0.5, loss 0))" in text
    assert "7,040 rows (plain battles format): 240 used, 6,800 of other pairs;" in text
    assert "no price for model 'vicuna-13b'" in text and "--prices FILE" in text


def test_eval_warns_when_the_strong_model_is_worse_and_offers_only_options_that_exist(
    artifacts: list[str], data_dir: Path
) -> None:
    """RouterBench's claude-v2 scores below claude-instant-v1: the oracle's APGR goes negative."""
    path = data_dir / "routerbench-routerdc" / "golden_train.jsonl.gz"
    pair = ("--strong", "claude-v2", "--weak", "claude-instant-v1")
    refused = invoke(artifacts[0], "--eval-file", str(path), *pair)
    assert refused.exit_code == 1
    assert "more bad records (use --skip-bad to drop them)" in refused.output  # eval has it
    result = invoke(artifacts[0], "--eval-file", str(path), *pair, "--skip-bad")
    assert result.exit_code == 0, result.output
    text = said(result)
    # every row accounted for: 4,430 + 92 + 19,931 = 24,453
    assert (
        "24,453 rows (long scores format): 4,430 used, 92 bad, skipped (--skip-bad), "
        "19,931 of other models;"
    ) in text
    oracle = float(text.split("│ oracle │")[1].split("│")[0])
    assert oracle < 0
    assert (
        "warning: claude-v2 is not better than claude-instant-v1 on golden_train.jsonl.gz "
        f"(0.543 vs 0.669): PGR divides by a negative gap, so APGR and CPT are inverted "
        f"(the oracle's APGR is {oracle:.3f})"
    ) in text


def test_eval_bad_file_is_one_line_with_file_and_line(artifacts: list[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"prompt": "a", "model": "big", "score": 1}\n{"prompt": "a", "model": "small"}\n'
    )
    result = invoke(artifacts[0], "--eval-file", str(bad), "--strong", "big", "--weak", "small")
    assert result.exit_code == 1
    assert f"{bad}:2: field 'score': expected a number" in result.output
    assert "Traceback" not in result.output


def test_eval_refuses_unknown_benchmarks_and_half_given_pairs(
    artifacts: list[str], user_file: Path, data_dir: Path
) -> None:
    result = invoke(artifacts[0], "--benchmark", "hellaswag", "--data-dir", str(data_dir))
    assert result.exit_code == 1
    assert "unknown benchmark 'hellaswag'; expected one of mt-bench, mmlu, gsm8k" in result.output
    result = invoke(artifacts[0], "--eval-file", str(user_file), "--strong", "gpt-4o")
    assert result.exit_code == 2 and "--strong and --weak together" in result.output
    result = invoke(artifacts[0], "--strong", "gpt-4o", "--weak", "gpt-4o-mini")
    assert result.exit_code == 2 and "name the pair of --eval-file" in result.output
