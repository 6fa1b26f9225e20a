"""``train`` on the user's own labels: the pair the issue's user has, a scores file alone,
every row accounted for, small data that learns (or says it did not)."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from rich.console import Console
from typer.testing import CliRunner

from prefroute import training
from prefroute.cli import app
from prefroute.data import shipped
from prefroute.data.recipe import MIN_VALIDATION_PROMPTS, TrainingSet, choose_pair, training_set
from prefroute.data.schema import Battles
from prefroute.errors import InvalidParameterError, UnknownModelError
from prefroute.evals.benchmarks import eval_file
from prefroute.evals.metrics import apgr
from prefroute.routers.artifact import read_config
from prefroute.routers.base import Router

pytest.importorskip("torch")

runner = CliRunner()
GEMINI, LLAMA_8B = "gemini-1.5-pro-002", "llama-3.1-8b-instruct"
LLAMA_70B = "llama-3.1-70b-instruct"


class Collected(Exception):
    """Stops training once the data would be collected."""


def test_turns_and_source_weights_reach_the_training_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: dict[str, Any] = {}

    def spy(*args: Any, **kwargs: Any) -> None:
        asked.update(kwargs)
        raise Collected

    monkeypatch.setattr(training, "training_set", spy)
    with pytest.raises(Collected):
        training.train_router("random", tmp_path / "r", turns="all", source_weights={"judge": 0.5})
    assert asked["turns"] == "all" and asked["source_weights"] == {"judge": 0.5}


# ----------------------------------------------------------------- real files


def _jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture(scope="module")
def gpt4o_battles(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every real vote in the shipped data with gpt-4o or gpt-4o-mini on one side (Arena
    and Copilot Arena, 37 rows), as the user's file. The Arena's gpt-4o-2024-05-13 is
    written as ``gpt-4o``: the snapshot OpenAI served under that name until October 2024."""
    frame = shipped.load_battles(data_dir).table.frame
    names = {"gpt-4o-2024-05-13": "gpt-4o", "gpt-4o-mini": "gpt-4o-mini"}
    rows = frame.filter(pl.col("model_a").is_in(list(names)) | pl.col("model_b").is_in(list(names)))
    records = [
        {
            "prompt": r["prompt"],
            "model_a": names.get(r["model_a"], r["model_a"]),
            "model_b": names.get(r["model_b"], r["model_b"]),
            "winner": r["winner"],
        }
        for r in rows.iter_rows(named=True)
    ]
    assert len(records) > 30
    return _jsonl(tmp_path_factory.mktemp("mine") / "mine.jsonl", records)


@pytest.fixture(scope="module")
def mmlu_pro(data_dir: Path) -> pl.DataFrame:
    """MMLU-Pro's non-MMLU questions (not an eval benchmark): prompt_id, prompt, model,
    correct, for three models, in a seeded order of questions."""
    frame = shipped.load_scores(data_dir).table.frame.filter(
        (pl.col("dataset") == "mmlu-pro-29model/non-mmlu")
        & pl.col("model").is_in([GEMINI, LLAMA_8B, LLAMA_70B])
    )
    complete = frame.group_by("prompt_id").len().filter(pl.col("len") == 3)["prompt_id"].sort()
    order = np.random.default_rng(0).permutation(len(complete))
    rank = pl.DataFrame({"prompt_id": complete.gather(order), "rank": np.arange(len(order))})
    return frame.join(rank, on="prompt_id").sort("rank", "model")


def _scores_file(path: Path, frame: pl.DataFrame, models: list[str]) -> Path:
    rows = frame.filter(pl.col("model").is_in(models))
    records = [
        {
            "prompt_id": r["prompt_id"],
            "prompt": r["prompt"],
            "model": r["model"],
            "correct": r["score"] == 1.0,
        }
        for r in rows.iter_rows(named=True)
    ]
    return _jsonl(path, records)


def _questions(frame: pl.DataFrame, start: int, stop: int) -> pl.DataFrame:
    return frame.filter(pl.col("rank").is_between(start, stop - 1))


def test_the_issues_gpt4o_command_trains(gpt4o_battles: Path, tmp_path: Path) -> None:
    """``train mf --out r --battles mine.jsonl --strong gpt-4o --weak gpt-4o-mini``: no
    gold-slice traceback, no flag the user could not guess; the pair is the user's."""
    out = tmp_path / "r"
    args = ["train", "mf", "--out", str(out), "--battles", str(gpt4o_battles)]
    result = runner.invoke(app, [*args, "--strong", "gpt-4o", "--weak", "GPT-4o-mini"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    assert "pair: gpt-4o (strong) vs gpt-4o-mini (weak), as given" in text
    assert "MMLU gold slice: none (the shipped MMLU answers are of gpt-4-1106-preview" in text
    assert "of the fit's weight" in text
    config = read_config(out)
    assert (config.models.strong, config.models.weak) == ("gpt-4o", "gpt-4o-mini")
    record = config.training_data
    assert record is not None and record.shipped and record.gold_slice_ids == ()
    (account,) = record.user_files
    assert account.rows == account.fit + sum(account.removed.values()) + account.validation
    assert record.resolved_params["batch_size"] == 8192  # the shipped data's scale
    assert config.calibration is not None
    router = Router.load(out)
    scores = router.strong_win_rate(
        ["Write a haiku about routers.", "Prove Fermat's little theorem."]
    )
    assert scores.shape == (2,)


def test_scores_alone_train_a_router_that_beats_random(
    mmlu_pro: pl.DataFrame, tmp_path: Path
) -> None:
    """``--scores`` + ``--no-shipped`` on an empty data directory: 600 questions of two
    models' correctness, the pair chosen from the file, judged on 1,000 others."""
    pair = [GEMINI, LLAMA_8B]
    mine = _scores_file(tmp_path / "mine.jsonl", _questions(mmlu_pro, 0, 600), pair)
    held = _scores_file(tmp_path / "held.jsonl", _questions(mmlu_pro, 600, 1600), pair)
    empty = tmp_path / "no-data"
    empty.mkdir()
    out = tmp_path / "r"
    result = runner.invoke(
        app,
        ["train", "mf", "--out", str(out), "--scores", str(mine), "--no-shipped"]
        + ["--data-dir", str(empty), "--eval-file", str(held)],
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert f"pair: {GEMINI} (strong) vs {LLAMA_8B} (weak), chosen from your files" in text
    assert "not decontaminated against MT-Bench, MMLU and GSM8K" in text
    assert "validation (" in text and "APGR" in text and "warning" not in text
    router = Router.load(out)
    held_out = eval_file(held, GEMINI, LLAMA_8B)
    score = apgr(
        router.strong_win_rate(list(held_out.prompts)),
        held_out.strong_quality,
        held_out.weak_quality,
    )
    assert score > 0.53, score  # random: 0.50 +- 0.02 on 1,000 questions
    record = router.training_data_
    assert record.shipped is False and record.eval_files == ("held.jsonl",)
    assert record.resolved_params == router.schedule_
    assert record.resolved_params["batch_size"] == 64
    assert (
        record.validation is not None and record.validation.pair_prompts >= MIN_VALIDATION_PROMPTS
    )
    assert (
        router.training_data_.user_files[0].fit + router.training_data_.user_files[0].validation
        <= 600
    )
    assert read_config(out).calibration.n_prompts >= 500  # the user's own prompts


def test_every_row_of_the_users_files_is_accounted_for(
    data_dir: Path, mmlu_pro: pl.DataFrame, tmp_path: Path
) -> None:
    """Real rows with the problems users' files have: each either reaches the fit or is
    counted under its reason, and the counts add up, on screen and in the artifact."""
    mt_bench = shipped.eval_prompts(data_dir)["mt-bench"]
    questions = _questions(mmlu_pro, 0, 200)
    battles = []
    for i, r in enumerate(questions.filter(pl.col("model") == GEMINI).iter_rows(named=True)):
        battles.append(
            {
                "prompt": r["prompt"],
                "model_a": GEMINI,
                "model_b": LLAMA_8B,
                "winner": "model_a",
                "weight": 0.0 if i < 5 else 1.0,
            }
        )
    battles.append({"prompt": mt_bench[0], "model_a": GEMINI, "model_b": LLAMA_8B, "winner": "tie"})
    battles.append({"prompt": "hi", "model_a": "example", "model_b": GEMINI, "winner": "model_b"})
    battles.append({"prompt": "", "model_a": GEMINI, "model_b": LLAMA_8B, "winner": "tie"})
    battles.append({"prompt": "and", "model_a": GEMINI, "model_b": LLAMA_8B, "winner": "judge"})
    battle_file = _jsonl(tmp_path / "votes.jsonl", battles)
    scored = _questions(mmlu_pro, 200, 400)
    score_file = _scores_file(tmp_path / "graded.jsonl", scored, [GEMINI, LLAMA_8B, LLAMA_70B])
    with score_file.open("a") as fh:  # a model alone on a prompt, and a score given twice
        fh.write(json.dumps({"prompt": "lonely", "model": GEMINI, "correct": True}) + "\n")
        first = scored.row(0, named=True)
        fh.write(
            json.dumps(
                {
                    "prompt_id": first["prompt_id"],
                    "prompt": first["prompt"],
                    "model": first["model"],
                    "correct": False,
                }
            )
            + "\n"
        )
    eval_copy = _jsonl(
        tmp_path / "mine-eval.jsonl",
        [
            {"prompt": r["prompt"], "model": LLAMA_8B, "score": 1.0}
            for r in scored.head(6).iter_rows(named=True)
        ],
    )
    console = Console(file=io.StringIO(), width=400)
    out = training.train_router(
        "random",
        tmp_path / "r",
        data_dir=data_dir,
        battle_files=[battle_file],
        score_files=[score_file],
        shipped=False,
        eval_files=[eval_copy],
        skip_bad=True,
        console=console,
    )
    printed = console.file.getvalue()  # type: ignore[attr-defined]
    accounts = read_config(out).training_data.user_files  # type: ignore[union-attr]
    assert [a.file for a in accounts] == [str(battle_file), str(score_file)]
    votes, graded = accounts
    assert votes.rows == len(battles) and votes.row_losses == {
        "bad records skipped (--skip-bad)": 2
    }
    not_a_model = next(reason for reason in votes.removed if reason.startswith("not a model"))
    assert not_a_model == "not a model (example: rule 'example' in model_filters.toml)"
    assert votes.removed == {
        "weight 0 (the row's own weight)": 5,
        "eval contamination (mt-bench)": 1,
        not_a_model: 1,
    }
    assert graded.rows == 3 * 200 + 2
    assert graded.row_losses == {"no other model scored on the prompt": 1} and graded.averaged == 1
    assert graded.battles == 3 * 200  # three pairs per question
    # the eval file holds 2 of the questions: their 3 pairs each leave the fit
    assert graded.removed == {"eval contamination (eval file mine-eval.jsonl)": 2 * 3}
    for account in accounts:
        assert account.balanced  # battles = removed + validation + fit
        assert account.used_rows + sum(account.row_losses.values()) == account.rows
        assert account.summary() in printed, printed
    # and the counts are the fit's: train_router fitted exactly these rows
    data = training_set(
        data_dir,
        battle_files=[battle_file],
        score_files=[score_file],
        shipped_data=False,
        eval_files=[eval_copy],
        skip_bad=True,
    )
    assert data.accounts == accounts
    for account in accounts:
        in_fit = data.battles.frame.filter(pl.col("dataset") == account.dataset).height
        held = data.validation.frame.filter(pl.col("dataset") == account.dataset).height
        assert (in_fit, held) == (account.fit, account.validation)


def test_small_data_that_learned_nothing_says_so(mmlu_pro: pl.DataFrame, tmp_path: Path) -> None:
    """300 rows with the paper's MF settings make ~10 optimiser steps: every score near 0.5,
    and ``train`` warns; the "auto" defaults on the same rows do not."""
    mine = _scores_file(tmp_path / "mine.jsonl", _questions(mmlu_pro, 0, 300), [GEMINI, LLAMA_8B])
    paper = {"batch_size": 8192, "epochs": 10, "lr": 3e-4, "weight_decay": 0.0}
    console = Console(file=io.StringIO(), width=400)
    common = {"score_files": [mine], "shipped": False, "console": console}
    stuck = training.train_router("mf", tmp_path / "paper", params=paper, **common)
    report = read_config(stuck).training_data.validation  # type: ignore[union-attr]
    assert report is not None and report.score_spread is not None and report.score_spread < 0.01
    assert "warning: the router learned nothing" in console.file.getvalue()  # type: ignore[attr-defined]
    auto = training.train_router("mf", tmp_path / "auto", **common)
    report = read_config(auto).training_data.validation  # type: ignore[union-attr]
    assert report is not None and report.score_spread is not None and report.score_spread > 0.01
    assert report.warning is None  # 60 validation prompts: too few to call it random


# ------------------------------------------------------------------- the pair


def _battles_of(frame: pl.DataFrame, models: list[str]) -> Battles:
    from prefroute.data.augment import battles_from_scores
    from prefroute.data.schema import Scores

    scores = frame.filter(pl.col("model").is_in(models)).drop("rank")
    return battles_from_scores(Scores(scores))


def test_the_pair_is_chosen_from_the_data_when_not_given(mmlu_pro: pl.DataFrame) -> None:
    """The best and the worst model by rating: on MMLU-Pro gemini-1.5-pro (70% right)
    above llama-3.1-70b (63%) above llama-3.1-8b (44%)."""
    battles = _battles_of(_questions(mmlu_pro, 0, 500), [GEMINI, LLAMA_8B, LLAMA_70B])
    chosen = choose_pair(battles)
    assert (chosen.strong, chosen.weak) == (GEMINI, LLAMA_8B)
    assert "chosen from your files" in str(chosen) and "3 models" in chosen.reason
    assert (choose_pair(battles, strong_model=LLAMA_70B).weak) == LLAMA_8B
    assert (choose_pair(battles, weak_model=LLAMA_70B).strong) == GEMINI
    given = choose_pair(battles, "GPT-4o-mini-2024-07-18", "Meta-Llama/Llama-3.1-8B-Instruct")
    assert (given.strong, given.weak, given.reason) == ("gpt-4o-mini", LLAMA_8B, "as given")
    paper = choose_pair(battles, from_files=False)
    assert (paper.strong, paper.weak) == ("gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1")


def test_a_pair_the_data_never_saw_and_impossible_settings_are_refused(
    mmlu_pro: pl.DataFrame, tmp_path: Path
) -> None:
    mine = _scores_file(tmp_path / "mine.jsonl", _questions(mmlu_pro, 0, 100), [GEMINI, LLAMA_8B])
    common: dict[str, Any] = {
        "score_files": [mine],
        "shipped": False,
        "console": Console(file=io.StringIO()),
    }
    with pytest.raises(UnknownModelError, match="unknown strong model 'gpt-4o'"):
        training.train_router("random", tmp_path / "r", strong_model="gpt-4o", **common)
    with pytest.raises(InvalidParameterError, match="MMLU gold slice is shipped data"):
        training.train_router("random", tmp_path / "r", mmlu_gold_slice=100, **common)
    with pytest.raises(InvalidParameterError, match="nothing to weigh them against"):
        training.train_router("random", tmp_path / "r", user_weight=0.3, **common)


# ------------------------------------------------------- with the shipped data


@pytest.fixture(scope="module")
def mixed(data_dir: Path, gpt4o_battles: Path) -> TrainingSet:
    return training_set(
        data_dir,
        battle_files=[gpt4o_battles],
        exclude_datasets=["mmlu-pro-29model"],
        user_weight=0.3,
    )


def test_the_users_rows_carry_their_share_of_the_weight(mixed: TrainingSet) -> None:
    frame = pl.concat([mixed.battles.frame, mixed.validation.frame])
    mine = frame.filter(mixed.is_user())["weight"].sum()
    assert mine / (
        mine + mixed.battles.frame.filter(~mixed.is_user())["weight"].sum()
    ) == pytest.approx(0.3)
    assert mixed.user_weight == 0.3


def test_excluded_sets_leave_the_shipped_data_and_are_reported(
    mixed: TrainingSet, data_dir: Path
) -> None:
    datasets = set(mixed.battles.frame["dataset"].unique())
    assert not {d for d in datasets if d.startswith("mmlu-pro-29model")}
    assert set(mixed.collected.excluded) == {"mmlu-pro-29model/non-mmlu"}
    assert any(line.startswith("left out ") for line in mixed.collected.removal_lines())
    with pytest.raises(InvalidParameterError, match="names no shipped data set: \\['mmlu-pro'\\]"):
        training_set(data_dir, exclude_datasets=["mmlu-pro"])


def test_a_router_no_better_than_random_is_called_so(
    mmlu_pro: pl.DataFrame, tmp_path: Path
) -> None:
    """Random scores on 240 validation prompts: APGR inside the random band, which is
    narrow enough there to say so (the random kind itself is not warned about)."""
    mine = _scores_file(tmp_path / "mine.jsonl", _questions(mmlu_pro, 0, 1200), [GEMINI, LLAMA_8B])
    console = Console(file=io.StringIO(), width=400)
    out = training.train_router(
        "random", tmp_path / "r", score_files=[mine], shipped=False, console=console
    )
    report = read_config(out).training_data.validation  # type: ignore[union-attr]
    assert report is not None and report.pair_prompts >= training.MIN_BAND_PROMPTS
    assert report.random_apgr is not None and report.apgr is not None
    assert report.random_apgr[0] <= report.apgr <= report.random_apgr[1]
    assert report.warning is not None and report.warning.startswith("no measurable gain")
    assert "warning:" not in console.file.getvalue()  # type: ignore[attr-defined]


def test_a_kind_with_a_measured_caveat_says_it_when_the_shipped_data_is_mixed_in(
    mmlu_pro: pl.DataFrame, tmp_path: Path
) -> None:
    """``quality`` loses held-out APGR with the shipped data added to a user's labels
    (docs/own-data.md): train says so when both are in the fit, and only then."""
    mine = _scores_file(tmp_path / "mine.jsonl", _questions(mmlu_pro, 0, 200), [GEMINI, LLAMA_8B])
    alone = training_set(tmp_path, score_files=[mine], shipped_data=False)
    # The same rows presented as mixed with the shipped data (reading the 2.8M real
    # rows takes minutes): what train decides the note on is this record.
    mixed = replace(alone, collected=replace(alone.collected, shipped_data=True))
    printed = {}
    for name, data in (("alone", alone), ("mixed", mixed)):
        console = Console(file=io.StringIO(), width=400)
        training.train_router("quality", tmp_path / name, data=data, console=console)
        printed[name] = console.file.getvalue()  # type: ignore[attr-defined]
    assert "compare with --no-shipped" in printed["mixed"]
    assert "compare with --no-shipped" not in printed["alone"]
    console = Console(file=io.StringIO(), width=400)
    training.train_router("mf", tmp_path / "mf", data=mixed, console=console)
    assert "compare with --no-shipped" not in console.file.getvalue()  # type: ignore[attr-defined]
