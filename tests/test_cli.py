"""One end-to-end run per CLI command, plus the bad-input paths users hit first."""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from prefroute import cli
from prefroute.cli import app, spread_multi_value_options
from prefroute.data import shipped
from prefroute.data.recipe import training_set
from prefroute.data.schema import Battles

runner = CliRunner()
STRONG, WEAK = "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"


def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None):  # noqa: ANN201 - click's Result
    return runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)


def one_error_line(result) -> str:  # noqa: ANN001 - click's Result
    """The single stderr line of a user error (exit 1, no traceback)."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def random_artifact(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """Trained once for the module; tests that rewrite an artifact take ``own_artifact``."""
    out = tmp_path_factory.mktemp("art") / "random"
    result = invoke("train", "random", "--out", str(out), "--data-dir", str(data_dir))
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def own_artifact(random_artifact: Path, tmp_path: Path) -> Path:
    """A private copy: calibrating rewrites router.json, so tests must not share one."""
    return Path(shutil.copytree(random_artifact, tmp_path / "random"))


@pytest.fixture(scope="module")
def arena(data_dir: Path) -> list[str]:
    """Real Arena prompts, one line each (``.txt`` and stdin take a prompt per line)."""
    return [" ".join(p.split()) for p in shipped.arena_prompts(data_dir)]


def calibration_thresholds(artifact: Path) -> dict[str, float]:
    return json.loads((artifact / "router.json").read_text())["calibration"]["thresholds"]


def routed(result) -> list[dict]:  # noqa: ANN001 - click's Result
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def strong_fraction(lines: list[dict]) -> float:
    return sum(line["model"] == STRONG for line in lines) / len(lines)


def test_data_stats_json_lists_every_shipped_battle_set_and_tiers(
    data_dir: Path, tmp_path: Path
) -> None:
    files = []
    for name, winner in (("a.jsonl", "tie"), ("b.jsonl", "model_a")):
        path = tmp_path / name
        row = {"prompt": f"hi from {name}", "model_a": STRONG, "model_b": "claude-v1"}
        path.write_text(json.dumps(row | {"winner": winner}) + "\n")
        files.append(str(path))
    # several files after one --battles flag
    result = invoke("data", "stats", "--data-dir", str(data_dir), "--json", "--battles", *files)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    datasets = {row["dataset"] for row in summary["datasets"]}
    for name in ("chatbot-arena-fastchat-sample", "alpaca-eval", "pandalm-testset", "llmfao/crowd"):
        assert name in datasets
    for path in files:
        assert any(f"from {path}" in note for note in summary["notes"]), summary["notes"]
    ratings = {row["model"]: row for row in summary["ratings"]}
    assert ratings[STRONG]["rating"] > ratings[WEAK]["rating"]
    assert {row["tier"] for row in summary["ratings"]} == {*range(1, 11), None}
    # --json keeps every model: those without a tier too, with the reason
    assert ratings["command-r-plus"]["tier"] is None
    assert ratings["command-r-plus"]["no_tier_reason"] == "fewer than 100 battles"
    # the tiers the classifier's labels come from: those of what `train` fits by default
    trained_on = training_set(data_dir, battle_files=files)
    assert {m: r["tier"] for m, r in ratings.items() if r["tier"] is not None} == (
        trained_on.tiers()
    )
    assert "example" not in ratings  # AlpacaEval's placeholder: not a model
    assert any(row["models"] == ["example"] for row in summary["not_models"])
    assert summary["eval_prompts"]["mmlu"] == 14042
    removed = {row["dataset"] for row in summary["decontamination"]}
    assert "alpaca-eval" in removed  # 2 instructions are MT-Bench questions


def test_a_multi_value_option_takes_every_value_up_to_the_next_option() -> None:
    assert spread_multi_value_options(
        ["data", "stats", "--battles", "a.jsonl", "b.csv", "--json", "x"]
    ) == ["data", "stats", "--battles", "a.jsonl", "--battles", "b.csv", "--json", "x"]
    assert spread_multi_value_options(["--battles=a", "b", "--", "c"]) == [
        "--battles=a", "--battles", "b", "--", "c",
    ]  # fmt: skip
    # the first value is taken whatever it looks like; repeating the flag still works
    assert spread_multi_value_options(["--battles", "-odd", "--battles", "c"]) == [
        "--battles", "-odd", "--battles", "c",
    ]  # fmt: skip
    assert spread_multi_value_options(["train", "mf", "--out", "x"]) == [
        "train",
        "mf",
        "--out",
        "x",
    ]


def test_data_stats_prints_the_top_of_the_table_or_all_of_it(data_dir: Path) -> None:
    result = invoke("data", "stats", "--data-dir", str(data_dir), "--all")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # the console wraps long lines
    assert "more ranked models" not in text
    assert "models without a tier" in text and "(listed above with tier –)" in text
    assert "command-r-plus" in text  # 4 battles: listed, without a tier
    assert "sets dropped whole for containing a benchmark" in text


def test_data_stats_rejects_a_bad_battle_file_with_file_and_line(
    tmp_path: Path, data_dir: Path
) -> None:
    bad = tmp_path / "mine.jsonl"
    rows = [
        {"prompt": "hi", "model_a": STRONG, "model_b": "claude-v1", "winner": "tie"},
        {"prompt": "yo", "model_a": STRONG, "model_b": "claude-v1", "winner": "x"},
    ]
    bad.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = invoke("data", "stats", "--data-dir", str(data_dir), "--battles", str(bad))
    line = one_error_line(result)
    assert f"{bad}:2: field 'winner': expected one of model_a, model_b, tie" in line


def test_missing_data_dir_says_where_to_put_the_data(tmp_path: Path) -> None:
    result = invoke("data", "stats", "--data-dir", str(tmp_path / "nowhere"))
    assert "PREFROUTE_DATA_DIR" in one_error_line(result)


def test_train_saves_a_calibrated_artifact(random_artifact: Path) -> None:
    config = json.loads((random_artifact / "router.json").read_text())
    assert config["kind"] == "random"
    assert len(config["training_data"]["gold_slice_ids"]) == 1500
    assert config["training_data"]["turns"] == "first"  # what serving will follow
    assert config["calibration"]["n_prompts"] > 1000
    assert set(config["calibration"]["thresholds"]) == {str(p) for p in range(101)}


def test_calibrate_hits_the_share_within_two_points(own_artifact: Path) -> None:
    result = invoke("calibrate", str(own_artifact), "--strong-share", "0.3")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    reached = float(text.split(" sends ")[1].split("%")[0]) / 100
    assert abs(reached - 0.3) <= 0.02
    assert "router-random@30%" in text and "unreachable" not in text


def test_calibrate_by_budget_and_on_own_prompts(own_artifact: Path, tmp_path: Path) -> None:
    prompts = tmp_path / "traffic.txt"
    prompts.write_text("\n".join(f"question number {i}" for i in range(500)))
    budget = str(0.24 + 0.5 * (24.708 - 0.24))  # halfway in price -> half the calls
    result = invoke("calibrate", str(own_artifact), "--budget", budget, "--prompts", str(prompts))
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "asked for 50.0%" in text and "of 500 calibration prompts" in text
    assert "prices: gpt-4-1106-preview $10 in / $30 out per 1M tokens (2023-11-06" in text
    assert "at 95 input + 264 output tokens a call (the RouteLLM paper's typical call)" in text
    assert json.loads((own_artifact / "router.json").read_text())["calibration"]["n_prompts"] == 500


def said(result) -> str:  # noqa: ANN001 - click's Result
    """stdout and stderr with rich's line wrapping undone."""
    return " ".join(result.output.split())


def test_calibrate_to_a_quality_target_on_your_labels_stores_it_and_serves_it_by_name(
    own_artifact: Path, data_dir: Path
) -> None:
    from prefroute.evals.benchmarks import eval_file
    from prefroute.routers.artifact import read_config
    from prefroute.routers.base import Router
    from prefroute.serve.config import RoutingSettings
    from prefroute.serve.routing import RouterSet

    labels = data_dir / "routellm-evals" / "gsm8k_golden.jsonl.gz"  # the paper's pair
    result = invoke(
        "calibrate", str(own_artifact), "--quality", "0.95", "--gap-recovered", "0.8",
        "--eval-file", str(labels),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = said(result)
    calibration = read_config(own_artifact).calibration
    assert calibration is not None and [t.name for t in calibration.targets] == ["pgr80", "q95"]
    q95 = calibration.target("q95")
    assert q95 is not None and q95.n_prompts == 1_319
    # checked from the labels themselves: the stored threshold keeps 95% of GPT-4's accuracy...
    s = eval_file(labels, STRONG, WEAK)
    scores = Router.load(own_artifact).strong_win_rate(list(s.prompts))
    goes_strong = scores >= q95.threshold
    kept = np.where(goes_strong, s.strong_quality, s.weak_quality).mean()
    assert kept >= 0.95 * s.strong_quality.mean() and q95.strong_share == goes_strong.mean()
    # ... and it is the cheapest: the next threshold up (fewer strong calls) falls short
    above = scores[scores > q95.threshold].min()
    fewer = np.where(scores >= above, s.strong_quality, s.weak_quality).mean()
    assert fewer < 0.95 * s.strong_quality.mean()
    assert f"stored in {own_artifact}/router.json:" in text
    assert "shares: the threshold for every whole percent of strong calls, from 1,319 " in text
    assert (
        f"q95: threshold {q95.threshold:.6g} keeps {q95.reached:.1%} of the strong model's "
        f"quality (asked 95%) sending {q95.strong_share:.1%} of 1,319 prompts of "
        "gsm8k_golden.jsonl.gz to gpt-4-1106-preview; serve as router-random@q95%"
    ) in text
    assert "pgr80: threshold" in text and "of the gap (asked 80%)" in text
    served = RouterSet.load(RoutingSettings(routers=[own_artifact]))
    assert served.select("router-random@q95%").threshold == q95.threshold
    # calibrating shares again keeps the targets, and says so
    again = said(invoke("calibrate", str(own_artifact), "--strong-share", "0.3"))
    assert "q95 (stored before, kept): threshold" in again
    assert "from 1,970 calibration prompts (shipped real Chatbot Arena prompts)" in again


def test_route_by_budget_prices_the_routed_prompts(own_artifact: Path) -> None:
    from prefroute.prices import price_table
    from prefroute.tokens import message_tokens

    gpt4, mixtral = price_table().price(STRONG), price_table().price(WEAK)
    budget = mixtral.blended() + 0.5 * (gpt4.blended() - mixtral.blended())  # half the calls
    prompts = [f"question number {i}: what is {i} squared?" for i in range(200)]
    result = invoke("route", str(own_artifact), "-", "--budget", f"{budget:.4f}",
                    input="\n".join(prompts))  # fmt: skip
    lines = routed(result)
    threshold = calibration_thresholds(own_artifact)["50"]
    assert all(line["model"] == (STRONG if line["score"] >= round(threshold, 6) else WEAK)
               for line in lines)  # fmt: skip
    cost = sum(
        (gpt4 if line["model"] == STRONG else mixtral).cost(
            message_tokens([{"role": "user", "content": p}]), 264
        )
        for line, p in zip(lines, prompts, strict=True)
    )
    text = " ".join(result.stderr.split())
    assert f"routed 200 prompts at threshold {threshold:.6g} (budget ${budget:.4f}" in text
    assert f"; ~${cost:,.4f} (" in text and "264 output tokens a call assumed" in text
    assert "prices: gpt-4-1106-preview $10 in / $30 out per 1M tokens (2023-11-06" in text


def test_route_writes_one_jsonl_line_per_prompt(random_artifact: Path, tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl.gz"
    with gzip.open(path, "wt") as f:
        for i, text in enumerate(["What is 2+2?", "Write a sonnet.", "Explain TCP."]):
            f.write(json.dumps({"id": f"q{i}", "prompt": text}) + "\n")
    result = invoke("route", str(random_artifact), str(path), "--threshold", "0.5")
    lines = routed(result)
    assert [line["id"] for line in lines] == ["q0", "q1", "q2"]
    for line in lines:
        assert line["model"] == (STRONG if line["score"] >= 0.5 else WEAK)
    n_strong = sum(line["model"] == STRONG for line in lines)
    assert f"routed 3 prompts at threshold 0.5: {n_strong / 3:.1%} ({n_strong}) to {STRONG}" in (
        result.stderr
    )


def test_route_reads_stdin_and_the_calibrated_share_holds_on_new_traffic(
    random_artifact: Path, data_dir: Path
) -> None:
    # held-out traffic: real prompts the calibration (Arena prompts) never saw
    mmlu = [" ".join(p.split()) for p in shipped.eval_prompts(data_dir)["mmlu"][:2000]]
    result = invoke(
        "route", str(random_artifact), "-", "--strong-share", "0.3", input="\n".join(mmlu)
    )
    lines = routed(result)
    assert len(lines) == len(mmlu)
    threshold = calibration_thresholds(random_artifact)["30"]
    for line in lines:  # the stored 30% threshold decides every prompt
        assert line["model"] == (STRONG if line["score"] >= round(threshold, 6) else WEAK)
    assert f"at threshold {threshold:.6g}:" in result.stderr
    # binomial noise of 2,000 routed and ~2,000 calibration prompts: sd ~0.015
    assert abs(strong_fraction(lines) - 0.3) <= 0.06


def test_calibration_with_tied_scores_says_what_share_it_reaches_on_new_traffic(
    own_artifact: Path, arena: list[str], tmp_path: Path
) -> None:
    """40% of the traffic is one prompt, so its score is a tie no threshold can split."""
    spam, n_distinct, n_spam = "hi", 600, 400
    calibration, held_out = arena[:n_distinct], arena[n_distinct : 2 * n_distinct]
    traffic = tmp_path / "traffic.txt"
    traffic.write_text("\n".join(calibration + [spam] * n_spam))

    from prefroute.routers.base import Router

    router = Router.load(own_artifact)
    tie = float(router.strong_win_rate([spam])[0])
    above = float((router.strong_win_rate(calibration) > tie).sum())
    total = n_distinct + n_spam
    gap = (above / total, (above + n_spam) / total)  # no share strictly inside is reachable
    inside = round((gap[0] + gap[1]) / 2, 2)
    outside = round(gap[0] / 2, 2) if gap[0] > 0.2 else round((gap[1] + 1) / 2, 2)

    def calibrate_then_route(share: float) -> tuple[str, float]:
        result = invoke(
            "calibrate", str(own_artifact), "--prompts", str(traffic), "--strong-share", str(share)
        )
        assert result.exit_code == 0, result.output
        said = " ".join(result.output.split())
        reached = float(said.split(" sends ")[1].split("%")[0]) / 100
        lines = routed(
            invoke(
                "route", str(own_artifact), "-", "--strong-share", str(share),
                input="\n".join(held_out + [spam] * n_spam),
            )
        )  # fmt: skip
        # the share the calibration reports is the one new traffic gets (binomial noise)
        assert abs(strong_fraction(lines) - reached) <= 0.06, (share, reached)
        return said, reached

    said, reached = calibrate_then_route(inside)
    assert f"tied scores make {inside:.1%} unreachable" in said
    assert min(abs(reached - gap[0]), abs(reached - gap[1])) <= 0.01
    said, reached = calibrate_then_route(outside)
    assert "unreachable" not in said and abs(reached - outside) <= 0.01


def test_route_reports_bad_prompt_records(random_artifact: Path, tmp_path: Path) -> None:
    path = tmp_path / "prompts.csv"
    path.write_text("id,prompt\na,hello\nb,\n")
    result = invoke("route", str(random_artifact), str(path), "--threshold", "0.5")
    assert f"{path}:3: field 'prompt'" in one_error_line(result)


def test_route_needs_exactly_one_threshold_choice(random_artifact: Path) -> None:
    result = runner.invoke(app, ["route", str(random_artifact), "-"], input="x")
    assert result.exit_code == 2
    assert "exactly one of --threshold, --strong-share or --budget" in result.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["train", "forest", "--out", "{tmp}/x"], "unknown router kind 'forest'"),
        (
            ["train", "classifier", "--embedder", "static", "--out", "{tmp}/x"],
            "router kind 'classifier' takes no embedder",
        ),
        (["calibrate", "{art}", "--budget", "0.1"], "below the weak model's own price $0.24"),
        (
            ["calibrate", "{art}", "--budget", "5", "--prices", "{cheap}"],
            "strong model cost (0.1) must exceed the weak model's (0.24)",
        ),
        (
            ["calibrate", "{art}", "--quality", "0.9", "--eval-file", "{odd}"],
            "an eval file of scores (prompt, model, score|correct) or battles",
        ),
        (["calibrate", "{mine}", "--budget", "5"], "no price for model 'my-model'"),
        (["route", "{mine}", "-", "--budget", "5"], "no price for model 'my-model'"),
        (
            ["route", "{mine}", "-", "--strong-share", "0.3"],
            "this random router has no calibration",
        ),
        (["route", "{tmp}", "-", "--threshold", "0.5"], "is not a router artifact"),
        (["route", "{art}", "{tmp}", "--threshold", "0.5"], "expected a file ending in .jsonl"),
        (["route", "{art}", "{tmp}/nope.jsonl", "--threshold", "0.5"], "no such file"),
        (["eval", "{art}", "--benchmark", "nonesuch"], "unknown benchmark 'nonesuch'"),
        (
            ["eval", "{art}", "--benchmark", "mt-bench", "--json", "/proc/nope/eval.json"],
            "No such file or directory: '/proc/nope'",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else " ".join(v[:2]),
)
def test_a_user_mistake_is_one_line_on_stderr_and_exit_1(
    args: list[str], says: str, random_artifact: Path, tmp_path: Path
) -> None:
    before = (random_artifact / "router.json").read_text()
    cheap = tmp_path / "cheap.toml"  # the paper's strong model below its weak one
    cheap.write_text('["gpt-4-1106-preview"]\ninput = 0.1\noutput = 0.1\n')
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"prompt": "a", "label": 1}\n')
    from prefroute.routers.random import RandomRouter

    mine = RandomRouter(strong_model="my-model", weak_model="gpt-4o-mini").fit(Battles.empty())
    mine.save(tmp_path / "mine")  # an unpriced pair, never calibrated
    filled = [
        a.format(tmp=tmp_path, art=random_artifact, cheap=cheap, odd=odd, mine=tmp_path / "mine")
        for a in args
    ]
    assert says in one_error_line(invoke(*filled))
    assert (random_artifact / "router.json").read_text() == before  # refused before writing


def test_a_missing_package_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(kind: str) -> None:
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    monkeypatch.setattr("prefroute.training.router_class", missing)
    line = one_error_line(invoke("train", "classifier", "--out", "x"))
    assert "No module named 'torch'" in line and "pip install 'prefroute[train]'" in line


def test_a_bug_is_one_line_and_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, random_artifact: Path
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("thresholds")

    monkeypatch.setattr("prefroute.calibrate.calibrate_artifact", broken)
    args = ["calibrate", str(random_artifact)]
    line = one_error_line(invoke(*args))
    assert "unexpected KeyError: 'thresholds'" in line and "--debug" in line
    for result in (
        runner.invoke(app, ["--debug", *args]),
        runner.invoke(app, args, env={cli.DEBUG_ENV: "1"}),
    ):
        assert isinstance(result.exception, KeyError)  # raised: Python prints the traceback


def test_version_and_python_dash_m() -> None:
    from prefroute import __version__

    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout == f"prefroute {__version__}\n"
    done = subprocess.run(
        [sys.executable, "-m", "prefroute", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout == f"prefroute {__version__}\n", done.stderr


def test_a_traceback_never_reaches_a_user_of_the_installed_command(tmp_path: Path) -> None:
    """The real entry point in a fresh process: one line, exit 1, and --debug's traceback."""
    args = [sys.executable, "-m", "prefroute"]
    wrong = ["train", "causal_llm", "--embedder", "static", "--out", str(tmp_path / "x")]
    done = subprocess.run([*args, *wrong], capture_output=True, text=True)
    assert done.returncode == 1 and done.stdout == ""
    assert re.fullmatch(r"error: router kind 'causal_llm' takes no embedder[^\n]*\n", done.stderr)
    debug = subprocess.run([*args, "--debug", *wrong], capture_output=True, text=True)
    assert debug.returncode == 1 and "Traceback" in debug.stderr
