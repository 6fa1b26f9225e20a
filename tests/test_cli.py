"""One end-to-end run per CLI command, plus the bad-input paths users hit first."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from prefroute.cli import app

runner = CliRunner()


def invoke(*args: str, input: str | None = None):  # noqa: ANN201 - click's Result
    return runner.invoke(app, list(args), input=input, catch_exceptions=False)


@pytest.fixture(scope="module")
def random_artifact(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("art") / "random"
    result = invoke("train", "random", "--out", str(out), "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    return out


def test_data_stats_json_lists_every_shipped_battle_set_and_tiers(data_dir: Path) -> None:
    result = invoke("data", "stats", "--data-dir", str(data_dir), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    datasets = {row["dataset"] for row in summary["datasets"]}
    for name in ("chatbot-arena-fastchat-sample", "alpaca-eval", "pandalm-testset", "llmfao/crowd"):
        assert name in datasets
    ratings = {row["model"]: row for row in summary["ratings"]}
    assert ratings["gpt-4-1106-preview"]["rating"] > ratings["mixtral-8x7b-instruct-v0.1"]["rating"]
    assert {row["tier"] for row in summary["ratings"]} == set(range(1, 11))
    assert summary["eval_prompts"]["mmlu"] == 14042
    removed = {row["dataset"] for row in summary["decontamination"]}
    assert "alpaca-eval" in removed  # 2 instructions are MT-Bench questions


def test_data_stats_rejects_a_bad_battle_file_with_file_and_line(
    tmp_path: Path, data_dir: Path
) -> None:
    bad = tmp_path / "mine.jsonl"
    rows = [
        {"prompt": "hi", "model_a": "gpt-4-1106-preview", "model_b": "claude-v1", "winner": "tie"},
        {"prompt": "yo", "model_a": "gpt-4-1106-preview", "model_b": "claude-v1", "winner": "x"},
    ]
    bad.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = invoke("data", "stats", "--data-dir", str(data_dir), "--battles", str(bad))
    assert result.exit_code == 1
    assert f"{bad}:2: field 'winner': expected one of model_a, model_b, tie" in result.output
    assert "Traceback" not in result.output


def test_missing_data_dir_says_where_to_put_the_data(tmp_path: Path) -> None:
    result = invoke("data", "stats", "--data-dir", str(tmp_path / "nowhere"))
    assert result.exit_code == 1
    assert "PREFROUTE_DATA_DIR" in result.output and "Traceback" not in result.output


def test_train_saves_a_calibrated_artifact(random_artifact: Path) -> None:
    config = json.loads((random_artifact / "router.json").read_text())
    assert config["kind"] == "random"
    assert len(config["training_data"]["mmlu_gold_slice"]) == 1500
    assert config["calibration"]["n_prompts"] > 1000
    assert set(config["calibration"]["thresholds"]) == {str(p) for p in range(101)}


def test_calibrate_hits_the_share_within_two_points(random_artifact: Path) -> None:
    result = invoke("calibrate", str(random_artifact), "--strong-share", "0.3")
    assert result.exit_code == 0, result.output
    reached = float(result.output.split(" sends ")[1].split("%")[0]) / 100
    assert abs(reached - 0.3) <= 0.02
    assert "router-random@30%" in result.output


def test_calibrate_by_budget_and_on_own_prompts(random_artifact: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "traffic.txt"
    prompts.write_text("\n".join(f"question number {i}" for i in range(500)))
    budget = str(0.24 + 0.5 * (24.7 - 0.24))  # halfway in price -> half the calls
    result = invoke(
        "calibrate", str(random_artifact), "--budget", budget, "--prompts", str(prompts)
    )
    assert result.exit_code == 0, result.output
    assert "asked for 50.0%" in result.output and "of 500 calibration prompts" in result.output


def test_route_writes_one_jsonl_line_per_prompt(random_artifact: Path, tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl.gz"
    with gzip.open(path, "wt") as f:
        for i, text in enumerate(["What is 2+2?", "Write a sonnet.", "Explain TCP."]):
            f.write(json.dumps({"id": f"q{i}", "prompt": text}) + "\n")
    result = invoke("route", str(random_artifact), str(path), "--threshold", "0.5")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["id"] for line in lines] == ["q0", "q1", "q2"]
    for line in lines:
        expected = "gpt-4-1106-preview" if line["score"] >= 0.5 else "mixtral-8x7b-instruct-v0.1"
        assert line["model"] == expected


def test_route_reads_stdin_and_uses_the_calibration(random_artifact: Path) -> None:
    prompts = "\n".join(f"prompt {i}" for i in range(400))
    result = invoke("route", str(random_artifact), "-", "--strong-share", "0.0", input=prompts)
    assert result.exit_code == 0, result.output
    models = {json.loads(line)["model"] for line in result.stdout.splitlines()}
    assert models == {"mixtral-8x7b-instruct-v0.1"}


def test_route_reports_bad_prompt_records(random_artifact: Path, tmp_path: Path) -> None:
    path = tmp_path / "prompts.csv"
    path.write_text("id,prompt\na,hello\nb,\n")
    result = invoke("route", str(random_artifact), str(path), "--threshold", "0.5")
    assert result.exit_code == 1
    assert f"{path}:3: field 'prompt'" in result.output
    assert "Traceback" not in result.output


def test_route_needs_exactly_one_threshold_choice(random_artifact: Path) -> None:
    result = runner.invoke(app, ["route", str(random_artifact), "-"], input="x")
    assert result.exit_code == 2
    assert "exactly one of --threshold or --strong-share" in result.output


def test_unknown_router_kind_is_a_clear_error(tmp_path: Path) -> None:
    result = invoke("train", "forest", "--out", str(tmp_path / "x"))
    assert result.exit_code == 1
    assert "unknown router kind 'forest'" in result.output
