"""The shipped sets load with MANIFEST's row counts (less documented drops), one
canonical name per model across sets, and the eval prompts decontamination needs."""

from __future__ import annotations

import time
import tomllib
from importlib.resources import files
from pathlib import Path

import polars as pl
import pytest

from prefroute.data.model_names import canonical_name, normalise
from prefroute.data.schema import Battles, Scores
from prefroute.data.shipped import (
    ANONYMOUS_MODEL,
    BENCHMARK_OVERLAP,
    COPILOT_CURSOR,
    SHIPPED,
    LoadReport,
    contaminated_prompts,
    eval_prompts,
    load_battles,
    load_eval_scores,
    load_judge_preferences,
    load_scores,
)
from prefroute.errors import DataError

STRONG, WEAK = "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"


@pytest.fixture(scope="module")
def battles(data_dir: Path) -> LoadReport[Battles]:
    return load_battles(data_dir)


@pytest.fixture(scope="module")
def scores(data_dir: Path) -> LoadReport[Scores]:
    return load_scores(data_dir)


@pytest.fixture(scope="module")
def evals(data_dir: Path) -> LoadReport[Scores]:
    return load_eval_scores(data_dir)


@pytest.fixture(scope="module")
def prefs(data_dir: Path) -> LoadReport[pl.DataFrame]:
    return load_judge_preferences(data_dir)


def _counts(frame: pl.DataFrame) -> dict[str, int]:
    return dict(frame.group_by("dataset").len().iter_rows())


def _drops(report: LoadReport) -> dict[tuple[str, str], int]:
    return {(d.dataset, d.reason): d.rows for d in report.dropped}


# ------------------------------------------------------------------- battles


def test_battle_counts_match_manifest(battles: LoadReport[Battles]) -> None:
    assert _counts(battles.table.frame) == {
        "chatbot-arena-fastchat-sample": 100,
        "copilot-arena-sample": 113 - 1,  # one null winner (acceptedIndex missing)
        "pandalm-testset": 999,
        "llmfao/crowd": 8_931,
        "llmfao/gpt4": 3_236,
        "llmfao/gpt3": 3_236,
        "vicuna-bench-gpt4-reviews": 1_360 - 1,  # one review with unparsable scores
        "prd-vicuna80-pairwise/human": 7_040,
        "prd-vicuna80-pairwise/llm-judges": 8_160,
    }
    assert _drops(battles) == {
        (
            "vibecheck-llama3-70b-arena",
            "opponent anonymous; include_anonymous=True keeps them",
        ): 1414,
        ("copilot-arena-sample", "winner unknown (null)"): 1,
        ("vicuna-bench-gpt4-reviews", "winner unknown (null)"): 1,
    }


def test_battle_sources(battles: LoadReport[Battles]) -> None:
    frame = battles.table.frame.with_columns(pl.col("source").cast(pl.String))
    sources = dict(frame.group_by("dataset").agg(pl.col("source").unique()).iter_rows())
    judged = {"llmfao/gpt4", "llmfao/gpt3", "vicuna-bench-gpt4-reviews"}
    judged.add("prd-vicuna80-pairwise/llm-judges")
    assert {d for d, s in sources.items() if s == ["judge"]} == judged
    assert all(s == ["human"] for d, s in sources.items() if d not in judged)
    assert frame["prompt_id"].null_count() == 0
    assert (frame["prompt"].str.strip_chars() == "").sum() == 0
    assert (frame["model_a"] == frame["model_b"]).sum() == 0


def test_arena_sample_winners_and_turns(data_dir: Path, battles: LoadReport[Battles]) -> None:
    arena = battles.table.frame.filter(pl.col("dataset") == "chatbot-arena-fastchat-sample")
    assert arena["winner"].cast(pl.String).value_counts().sort("winner").rows() == [
        ("model_a", 35),
        ("model_b", 24),
        ("tie", 22),
        ("tie_bothbad", 19),
    ]
    raw = pl.read_ndjson(
        data_dir / "chatbot-arena-fastchat-sample" / "battles.jsonl.gz",
        schema={"prompt_id": pl.String, "prompt": pl.String, "turn": pl.Int64},
    )
    # "first" is the file's own prompt field (the first user turn).
    assert arena.select("prompt_id", "prompt").equals(raw.select("prompt_id", "prompt"))
    last = load_battles(data_dir, turns="last").table.frame.filter(
        pl.col("dataset") == "chatbot-arena-fastchat-sample"
    )
    changed = (last["prompt"] != arena["prompt"]).sum()
    assert 0 < changed <= (raw["turn"] > 1).sum()


def test_vibecheck_only_on_request(data_dir: Path) -> None:
    table = load_battles(data_dir, include_anonymous=True).table.frame
    vibe = table.filter(pl.col("dataset") == "vibecheck-llama3-70b-arena")
    assert vibe.height == 1414
    assert vibe["model_a"].unique().to_list() == ["llama-3-70b-instruct"]
    assert vibe["model_b"].unique().to_list() == [ANONYMOUS_MODEL]


def test_copilot_prompt_has_both_sides_of_the_cursor(battles: LoadReport[Battles]) -> None:
    copilot = battles.table.frame.filter(pl.col("dataset") == "copilot-arena-sample")
    with_suffix = copilot.filter(pl.col("prompt").str.contains(COPILOT_CURSOR, literal=True))
    assert 0 < with_suffix.height < copilot.height


# -------------------------------------------------------------------- scores


def test_score_counts_match_manifest(scores: LoadReport[Scores]) -> None:
    counts = _counts(scores.table.frame)
    totals: dict[str, int] = {}
    for name, n in counts.items():
        key = name.split("/")[0] + ("/" + name.split("/")[1] if "llmrouter" in name else "")
        totals[key] = totals.get(key, 0) + n
    assert totals == {
        "routerbench-routerdc": 24_453 - 92,  # 92 null scores
        "routerdc-7model": 144_200,
        "mmlu-pro-29model": 347_215,
        "llmrouter-uiuc-9model/train": 50_238,
        "llmrouter-uiuc-9model/test": 4_464,
        "prometheus-gpt4-rubric-scores": 320,  # the Vicuna-Bench part; MT-Bench is eval
        "just-eval-safety-scores": 3_000,
    }
    assert _drops(scores) == {("routerbench-routerdc", "score unknown (null)"): 92}
    frame = scores.table.frame
    golden = frame.filter(pl.col("source") == "golden")
    assert golden["score"].min() >= 0.0 and golden["score"].max() <= 1.0
    judged = frame.filter(pl.col("source") == "judge")
    assert set(judged["dataset"]) == {
        "prometheus-gpt4-rubric-scores/vicuna_bench",
        "just-eval-safety-scores",
    }
    assert judged["score"].min() >= 1.0 and judged["score"].max() <= 5.0


def test_benchmark_overlap_names_exist(scores: LoadReport[Scores]) -> None:
    counts = _counts(scores.table.frame)
    for names in BENCHMARK_OVERLAP.values():
        assert all(counts.get(name, 0) > 0 for name in names)
    questions = counts["mmlu-pro-29model/from-mmlu"] / 29
    assert 6_000 < questions < 6_810  # 6,810 questions; a few models miss some


def test_eval_scores(evals: LoadReport[Scores]) -> None:
    counts = _counts(evals.table.frame)
    assert counts == {
        "routellm-evals/mmlu": 28_084,
        "routellm-evals/gsm8k": 2_638,
        "routellm-evals/mt_bench/turn1": 160,
        "routellm-evals/mt_bench/turn2": 160,
        "routellm-evals/mt_bench_commercial/turn1": 160,
        "routellm-evals/mt_bench_commercial/turn2": 159,
        "prometheus-gpt4-rubric-scores/mt_bench": 320,
    }
    assert _drops(evals) == {("routellm-evals/mt_bench_commercial", "judge failed (score -1)"): 1}
    frame = evals.table.frame
    turn2 = frame.filter(pl.col("dataset") == "routellm-evals/mt_bench/turn2")
    turn1 = frame.filter(pl.col("dataset") == "routellm-evals/mt_bench/turn1")
    assert set(turn1["prompt"]).isdisjoint(turn2["prompt"])  # each turn routes on its question


# --------------------------------------------------------------- names, prefs


def test_paper_pair_has_one_name_everywhere(
    scores: LoadReport[Scores], evals: LoadReport[Scores], prefs: LoadReport[pl.DataFrame]
) -> None:
    def models(frame: pl.DataFrame, prefix: str) -> set[str]:
        return set(frame.filter(pl.col("dataset").str.starts_with(prefix))["model"])

    assert {STRONG, WEAK} <= models(scores.table.frame, "routerbench-routerdc")
    assert models(evals.table.frame, "routellm-evals/mmlu") == {STRONG, WEAK}
    assert models(evals.table.frame, "routellm-evals/mt_bench/") == {STRONG, WEAK}
    assert WEAK in models(scores.table.frame, "mmlu-pro-29model")  # no GPT-4 in MMLU-Pro
    alpaca = prefs.table
    assert STRONG in set(alpaca["baseline"]) and WEAK in set(alpaca["model"])
    assert not any(m.startswith(("gpt4", "mixtral-8x7b-chat")) for m in alpaca["model"].unique())


@pytest.mark.parametrize(
    ("spelling", "canonical"),
    [
        ("gpt4_1106_preview", STRONG),
        ("mistralai/mixtral-8x7b-chat", WEAK),
        ("Mixtral-8x7B-Instruct-v0.1", WEAK),
        ("Meta-Llama-3_1-70B-Instruct", "llama-3.1-70b-instruct"),
        ("vicuna-13b:20230322-clean-lang", "vicuna-13b"),
        ("gpt-3.5-turbo:20230327", "gpt-3.5-turbo"),
        ("gpt35", "gpt-3.5-turbo"),
        ("chatgpt", "gpt-3.5-turbo-0301"),  # AlpacaEval's chatgpt: identical outputs
        ("gpt4", "gpt-4"),
        ("gpt4_0613", "gpt-4-0613"),
        ("meta/llama-2-70b-chat", "llama-2-70b-chat"),
        ("Llama-2-70b-chat-hf", "llama-2-70b-chat"),
        ("anthropic/claude-2", "claude-v2"),
        # an undated name that only ever meant one snapshot joins it
        ("anthropic/claude-3-opus", "claude-3-opus-20240229"),
        ("claude-3-opus-latest", "claude-3-opus-20240229"),
        ("anthropic.claude-3-haiku-20240307-v1:0", "claude-3-haiku-20240307"),
        ("claude-3-5-sonnet@20240620", "claude-3-5-sonnet-20240620"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai/gpt-4o-mini", "gpt-4o-mini"),
        ("anthropic/claude-3.5-haiku", "claude-3-5-haiku-20241022"),
        # an undated name that moved between snapshots stays apart from each
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),
        ("gpt-4o-2024-08-06", "gpt-4o-2024-08-06"),
        ("chatgpt-4o-latest", "chatgpt-4o-latest"),
        ("claude-3-5-sonnet", "claude-3.5-sonnet"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet-20241022"),
        # different models stay apart
        ("gpt-3.5-turbo-0301", "gpt-3.5-turbo-0301"),
        ("Mixtral-8x7B-v0.1", "mixtral-8x7b-v0.1"),
        ("vicuna-13b:20230322-new-hp-fp16", "vicuna-13b-20230322-new-hp-fp16"),
        ("Mixtral-8x7B-Instruct-v0.1_concise", "mixtral-8x7b-instruct-v0.1-concise"),
    ],
)
def test_canonical_names(spelling: str, canonical: str) -> None:
    assert canonical_name(spelling) == canonical


def test_alias_table_is_unambiguous() -> None:
    text = files("prefroute.data").joinpath("model_aliases.toml").read_text("utf-8")
    owner: dict[str, str] = {}
    for canonical, spellings in tomllib.loads(text)["aliases"].items():
        assert canonical == normalise(canonical), f"{canonical!r} is not in canonical style"
        for spelling in [canonical, *spellings]:
            key = normalise(spelling)
            assert owner.setdefault(key, canonical) == canonical, f"{spelling!r} maps twice"


def test_judge_preferences(prefs: LoadReport[pl.DataFrame]) -> None:
    table = prefs.table
    assert table.columns == [
        "prompt_id",
        "prompt",
        "model",
        "baseline",
        "preference",
        "annotator",
        "dataset",
    ]
    # gpt4_turbo is gpt4_1106_preview and chatgpt is gpt-3.5-turbo-0301 (identical
    # outputs): each instruction, baseline and annotator keeps one judgement.
    again = "judged again under another name of the same model (model_aliases.toml)"
    assert _drops(prefs) == {
        ("alpaca-eval", "model is the baseline"): 1_866,
        ("alpaca-eval", again): 804 + 3_219,
    }
    assert table.height == 128_439 - 1_866 - 804 - 3_219
    assert not table.select("prompt_id", "model", "baseline", "annotator").is_duplicated().any()
    assert table["prompt_id"].n_unique() == 805
    assert table["prompt"].null_count() == 0
    assert table["preference"].min() >= 0.0 and table["preference"].max() <= 1.0
    assert set(table["baseline"]) == {STRONG, "gpt-4-0613", "text-davinci-003"}


# ------------------------------------------------------------------- prompts


def test_eval_prompts(data_dir: Path) -> None:
    prompts = eval_prompts(data_dir)
    assert {k: len(v) for k, v in prompts.items()} == {
        "mt-bench": 80,
        "mt-bench-turn2": 80,
        "mmlu": 14_042,
        "gsm8k": 1_319,
    }
    assert prompts["mt-bench"][0].startswith("Compose an engaging travel blog post")
    assert all(p.rstrip().endswith("Answer:") for p in prompts["mmlu"])
    contaminated = contaminated_prompts(data_dir)
    assert len(contaminated) == 5 + 12 + 8
    assert all(p.strip() for p in contaminated)


# -------------------------------------------------------------- catalogue, io


def test_catalogue_covers_every_set(data_dir: Path) -> None:
    on_disk = {p.name for p in data_dir.iterdir() if p.is_dir()}
    assert {s.name for s in SHIPPED} == on_disk
    assert all(s.kind and s.labels and s.use and s.licence for s in SHIPPED)


def test_missing_shipped_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"battles\.jsonl\.gz: expected a shipped data file"):
        load_battles(tmp_path)


def test_everything_loads_fast(data_dir: Path) -> None:
    start = time.perf_counter()
    load_battles(data_dir)
    load_scores(data_dir)
    load_eval_scores(data_dir)
    load_judge_preferences(data_dir)
    eval_prompts(data_dir)
    contaminated_prompts(data_dir)
    elapsed = time.perf_counter() - start
    assert elapsed < 10.0, f"loading every shipped set took {elapsed:.1f}s"
