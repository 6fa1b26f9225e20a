"""Choosing among N models end to end on real scores: ``eval --models``, ``calibrate
--models``, ``route --models --budget`` and ``route --point`` through the CLI, on the
quality kind fitted on LLMRouter scores (9 models) and LLMRouter's own prices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from prefroute.cli import app
from prefroute.data.schema import Battles
from prefroute.evals.n_models import evaluate_models, models_file
from prefroute.prices import price_table
from prefroute.routers.random import RandomRouter

runner = CliRunner()
LLMROUTER_PRICES = Path(__file__).resolve().parents[2] / "benchmarks" / "prices" / "llmrouter.toml"
"""LLMRouter's own list prices for its nine models (the file cites its source)."""


@pytest.fixture(scope="module")
def files(quality_router, n_model_scores, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("n-models")
    held = n_model_scores[1].frame
    scores = root / "held.jsonl"
    scores.write_text(
        "".join(
            json.dumps(r) + "\n"
            for r in held.select("prompt_id", "prompt", "model", "score").iter_rows(named=True)
        )
    )
    prompts = root / "prompts.jsonl"
    unique = held.unique("prompt_id", keep="first").sort("prompt_id")
    prompts.write_text(
        "".join(
            json.dumps({"id": i, "prompt": p}) + "\n"
            for i, p in unique.select("prompt_id", "prompt").iter_rows()
        )
    )
    binary = RandomRouter().fit(Battles.empty()).save(root / "random")
    return {
        "router": quality_router.save(root / "quality"),
        "scores": scores,
        "prompts": prompts,
        "prices": LLMROUTER_PRICES,
        "binary": binary,
    }


def test_eval_among_all_models_writes_table_json_and_png(files, tmp_path: Path) -> None:
    out, png = tmp_path / "n.json", tmp_path / "n.png"
    result = runner.invoke(
        app,
        ["eval", str(files["router"]), "--eval-file", str(files["scores"]), "--models", "all",
         "--prices", str(files["prices"]), "--json", str(out), "--plot", str(png)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for text in ("200 prompts, 9 models", "AIQ", "singles", "oracle", "llmrouter.toml"):
        assert text in result.output
    report = json.loads(out.read_text())
    assert len(report["set"]["models"]) == 9
    router, singles, oracle = report["routers"][0], report["singles_hull"], report["oracle"]
    assert singles["aiq"] < router["aiq"] < oracle["aiq"]
    assert router["two_model"]["models"] == [report["set"]["best"], report["set"]["cheapest"]]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_route_within_a_budget_writes_every_candidates_score(files) -> None:
    models = "gemma-2-9b-it,llama-3.1-8b-instruct,llama-3.1-nemotron-51b-instruct"
    result = runner.invoke(
        app,
        ["route", str(files["router"]), str(files["prompts"]), "--models", models,
         "--budget", "0.3", "--prices", str(files["prices"])],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 200
    assert all(set(line["scores"]) == set(models.split(",")) for line in lines)
    assert all(line["model"] in models.split(",") for line in lines)
    chosen = {line["model"] for line in lines}
    assert len(chosen) >= 2, "a budget between the cheapest and the dearest mixes models"
    summary = result.stderr
    assert "routed 200 prompts among 3 models" in summary and "per 1M tokens" in summary
    per_1m = float(summary.split(" per 1M tokens")[0].rsplit("$", 1)[1].replace(",", ""))
    assert per_1m <= 0.3


def test_calibrated_point_routes_by_name(files) -> None:
    models = "gemma-2-9b-it,llama-3.1-nemotron-51b-instruct,mistral-7b-instruct-v0.3"
    result = runner.invoke(
        app,
        ["calibrate", str(files["router"]), "--models", models, "--quality", "0.95",
         "--eval-file", str(files["scores"]), "--prices", str(files["prices"]), "--name", "q95"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "stored operating point 'q95'" in result.output and "95%" in result.output
    routed = runner.invoke(
        app, ["route", str(files["router"]), str(files["prompts"]), "--point", "q95"]
    )
    assert routed.exit_code == 0, routed.output
    assert "operating point 'q95'" in routed.stderr
    config = json.loads((files["router"] / "router.json").read_text())
    assert config["operating_points"]["q95"]["models"] == models.split(",")


def test_mistakes_get_one_line(files) -> None:
    binary = runner.invoke(
        app,
        ["route", str(files["binary"]), str(files["prompts"]), "--models", "all", "--budget", "1"],
    )
    assert binary.exit_code == 1 and "routes between two models" in binary.output
    assert "Traceback" not in binary.output
    unpriced = runner.invoke(
        app, ["eval", str(files["router"]), "--eval-file", str(files["scores"]), "--models", "all"]
    )
    assert unpriced.exit_code == 1 and "no price for model" in unpriced.output
    no_file = runner.invoke(app, ["eval", str(files["router"]), "--models", "all"])
    assert no_file.exit_code == 2 and "--eval-file" in no_file.output
    both = runner.invoke(
        app, ["route", str(files["router"]), str(files["prompts"]), "--models", "all"]
    )
    assert both.exit_code == 2 and "--budget" in both.output
    poor = runner.invoke(
        app,
        ["route", str(files["router"]), str(files["prompts"]), "--models", "all",
         "--budget", "0.001", "--prices", str(files["prices"])],
    )  # fmt: skip
    assert poor.exit_code == 1 and "below the cheapest mix" in poor.output
    assert "per 1M tokens" in poor.output


def test_prompts_lacking_a_models_score_are_counted(files, quality_router, tmp_path: Path) -> None:
    frame = pl.read_ndjson(files["scores"])
    first = frame["prompt_id"].sort()[0]
    partial = tmp_path / "partial.jsonl"
    frame.filter(
        ~((pl.col("prompt_id") == first) & (pl.col("model") == "gemma-2-9b-it"))
    ).write_ndjson(partial)
    s = models_file(
        partial, ["gemma-2-9b-it", "mistral-7b-instruct-v0.3"], price_table(), output_tokens=264
    )
    assert len(s) == 199 and s.dropped == {"no score for gemma-2-9b-it": 1}
    result = evaluate_models({"quality": quality_router}, s)
    assert np.isfinite(result.routers[0].summary.aiq)
