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
    for text in ("gsm8k: 1,307 prompts", "mmlu: 14,036 prompts", "mine.jsonl: 40 prompts"):
        assert text in result.output
    assert "rand-a" in result.output and "oracle" in result.output
    assert "dropped: 5 contaminated, 1 trained on" in result.output
    assert "dropped: 1 no score for gpt-4o-mini" in result.output
    report = json.loads(out.read_text())
    assert [s["name"] for s in report["sets"]] == ["gsm8k", "mmlu", "mine.jsonl"]
    assert [r["router"] for r in report["sets"][0]["routers"]] == ["rand-a", "rand-b"]
    assert report["sets"][2]["strong_model"] == "gpt-4o"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_bad_file_is_one_line_with_file_and_line(artifacts: list[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"prompt": "a", "model": "big", "score": 1}\n{"prompt": "a", "model": "small"}\n'
    )
    result = invoke(artifacts[0], "--eval-file", str(bad), "--strong", "big", "--weak", "small")
    assert result.exit_code == 1
    assert f"{bad}:2: field 'score': expected a number" in result.output
    assert "Traceback" not in result.output


def test_eval_refuses_unknown_benchmarks_and_half_given_file_options(
    artifacts: list[str], user_file: Path, data_dir: Path
) -> None:
    result = invoke(artifacts[0], "--benchmark", "hellaswag", "--data-dir", str(data_dir))
    assert result.exit_code == 1
    assert "unknown benchmark 'hellaswag'; expected one of mt-bench, mmlu, gsm8k" in result.output
    for half in (["--eval-file", str(user_file)], ["--strong", "gpt-4o", "--weak", "gpt-4o-mini"]):
        result = invoke(artifacts[0], *half)
        assert result.exit_code == 2
        assert "--strong and --weak" in result.output
