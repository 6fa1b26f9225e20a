"""The shipped data sets (``../shared/data``, described by its MANIFEST.md) as tables.

- ``load_battles``: the pairwise sets (human and LLM-judge votes) -> ``Battles``;
- ``load_scores``: per-model correctness and judge grades for training -> ``Scores``;
- ``load_eval_scores``: the RouteLLM benchmarks (MMLU, GSM8K, MT-Bench) -> ``Scores``,
  kept apart because they are evaluation data and must never be trained on;
- ``load_judge_preferences``: AlpacaEval's model-vs-baseline judge preferences;
- ``eval_prompts`` / ``contaminated_prompts``: the prompts decontamination removes.

Each loader reads only the fields it needs with a fixed schema (fast, and
immune to polars guessing an integer column from the first rows of a float
one), canonicalises model names, and counts every row it drops with the
reason: each returns a ``LoadReport`` (``.table``, ``.dropped``). The drops are the
documented unknowns of the shipped files (a null winner, a null score), not
user errors, so they never raise.

``dataset`` names the set, plus the sub-file or task where one set mixes
several (``llmfao/crowd``, ``routerdc-7model/gsm8k-test``), so overlap with the
eval benchmarks (``BENCHMARK_OVERLAP``) can be dropped by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import polars as pl

from prefroute.conversation import TURN_POLICIES, Turns, conversation_text
from prefroute.data.fields import check_choice, is_blank
from prefroute.data.model_names import canonicalise
from prefroute.data.schema import WINNER_SYNONYMS, Battles, Scores
from prefroute.errors import DataError

__all__ = [
    "ANONYMOUS_MODEL",
    "arena_prompts",
    "BENCHMARK_OVERLAP",
    "COPILOT_CURSOR",
    "SHIPPED",
    "Dropped",
    "LoadReport",
    "ShippedSet",
    "contaminated_prompts",
    "eval_prompts",
    "load_battles",
    "load_eval_scores",
    "load_judge_preferences",
    "load_scores",
    "read_shipped",
]

T = TypeVar("T")

# Copilot Arena asks for code at the cursor: the routing prompt is the code
# before it, this marker, then the code after it (when there is any), so a
# router sees both sides of a fill-in-the-middle request.
COPILOT_CURSOR = "\n<CURSOR>\n"
# Stands in for VibeCheck's unnamed opponent when include_anonymous=True.
ANONYMOUS_MODEL = "arena-anonymous"

# Dataset names (as in the tables) holding questions of each eval benchmark;
# drop them before evaluating on that benchmark (MANIFEST "Caveats").
BENCHMARK_OVERLAP: dict[str, tuple[str, ...]] = {
    "mmlu": (
        "mmlu-pro-29model/from-mmlu",
        "routerdc-7model/mmlu_test",
        "routerdc-7model/mmlu_train",
        "llmrouter-uiuc-9model/train/mmlu",
        "llmrouter-uiuc-9model/test/mmlu",
    ),
    "gsm8k": (
        "routerdc-7model/gsm8k-test",
        "llmrouter-uiuc-9model/train/gsm8k",
        "llmrouter-uiuc-9model/test/gsm8k",
        # MGSM's English problems are GSM8K test problems, each with an answer-format
        # instruction appended; embedding similarity missed 21 of the 250
        "llmrouter-uiuc-9model/train/agentverse-mgsm",
        "llmrouter-uiuc-9model/test/agentverse-mgsm",
    ),
    "mt-bench": (),
}


@dataclass(frozen=True)
class ShippedSet:
    """One shipped set: what it holds, its labels, how to use it, its licence."""

    name: str
    kind: str  # battles | scores | eval | judge-preferences | prompts
    labels: str  # human | judge | golden | human+judge | golden+judge | none
    use: str  # train | augment | eval
    licence: str
    files: tuple[str, ...]
    note: str = ""


SHIPPED: tuple[ShippedSet, ...] = (
    ShippedSet(
        "routellm-evals", "eval", "golden+judge", "eval", "Apache-2.0",
        ("mmlu_golden", "gsm8k_golden", "mt_bench_questions", "mt_bench_judgements",
         "mt_bench_commercial_router_judgements", "contaminated_{mmlu,gsm8k,mt_bench}"),
        "the RouteLLM benchmarks; never train on them",
    ),
    ShippedSet(
        "alpaca-eval", "judge-preferences", "judge", "augment",
        "Apache-2.0 (outputs under each provider's terms)",
        ("preferences", "instructions"), "112 models vs a baseline on 805 instructions",
    ),
    ShippedSet(
        "chatbot-arena-fastchat-sample", "battles", "human", "train", "Apache-2.0 (LMSYS data)",
        ("battles",), "100 Arena battles, skewed to refusals",
    ),
    ShippedSet(
        "vibecheck-llama3-70b-arena", "battles", "human", "augment", "no licence file",
        ("battles",), "opponent anonymous: left out of load_battles unless include_anonymous",
    ),
    ShippedSet(
        "copilot-arena-sample", "battles", "human", "augment", "Apache-2.0", ("battles",),
        "code completions; prompt = prefix + COPILOT_CURSOR + suffix",
    ),
    ShippedSet(
        "llmfao", "battles", "human+judge", "augment", "CC-BY-4.0",
        ("crowd-comparisons", "gpt4-comparisons", "gpt3-comparisons"), "only 19 prompts",
    ),
    ShippedSet(
        "pandalm-testset", "battles", "human", "augment", "Apache-2.0", ("battles",),
        "5 small models only",
    ),
    ShippedSet(
        "routerbench-routerdc", "scores", "golden", "train",
        "no licence file (RouterBench: MIT)", ("golden_train",), "11 models incl. the paper pair",
    ),
    ShippedSet(
        "routerdc-7model", "scores", "golden", "augment", "no licence file", ("golden",),
        "contains GSM8K test and MMLU: see BENCHMARK_OVERLAP",
    ),
    ShippedSet(
        "arena-hard-v0.1-prompts", "prompts", "none", "augment", "Apache-2.0", ("prompts",),
        "unlabelled prompts; no loader here",
    ),
    ShippedSet(
        "mmlu-pro-29model", "scores", "golden", "train", "Apache-2.0",
        ("questions", "correctness"), "6,810 questions from MMLU: see BENCHMARK_OVERLAP",
    ),
    ShippedSet(
        "llmrouter-uiuc-9model", "scores", "golden", "augment", "MIT",
        ("scores_train", "scores_test"), "open models only; MMLU/GSM8K tasks overlap",
    ),
    ShippedSet(
        "prometheus-gpt4-rubric-scores", "scores", "judge", "augment", "Apache-2.0",
        ("vicuna_bench_scores", "mt_bench_scores"),
        "Vicuna-Bench part for training; MT-Bench part is eval only",
    ),
    ShippedSet(
        "vicuna-bench-gpt4-reviews", "battles", "judge", "augment", "Apache-2.0",
        ("battles",), "80 prompts",
    ),
    ShippedSet(
        "prd-vicuna80-pairwise", "battles", "human+judge", "augment", "MIT",
        ("battles_human", "battles_llm_judges"), "80 prompts, many model pairs",
    ),
    ShippedSet(
        "just-eval-safety-scores", "scores", "judge", "augment", "MIT", ("safety_scores",),
        "safety grades; almost all 5/5",
    ),
)  # fmt: skip


@dataclass(frozen=True)
class Dropped:
    """Rows of a shipped set left out of a table, and why."""

    dataset: str
    reason: str
    rows: int

    def __str__(self) -> str:
        return f"{self.dataset}: dropped {self.rows} rows ({self.reason})"


@dataclass(frozen=True)
class LoadReport(Generic[T]):
    """A loaded table and every row drop, so nothing leaves the data unannounced."""

    table: T
    dropped: tuple[Dropped, ...]


class _Drops:
    def __init__(self) -> None:
        self.items: list[Dropped] = []

    def apply(self, frame: pl.DataFrame, mask: pl.Expr, dataset: str, reason: str) -> pl.DataFrame:
        """Drop rows where ``mask`` holds, counting them under ``reason``."""
        hit = frame.select(mask.fill_null(True).sum()).item()
        if hit:
            self.items.append(Dropped(dataset, reason, hit))
            frame = frame.filter(~mask.fill_null(True))
        return frame


def read_shipped(data_dir: str | Path, set_name: str, file: str, schema: dict) -> pl.DataFrame:
    """One shipped file, only the listed fields, typed as given."""
    path = Path(data_dir) / set_name / f"{file}.jsonl.gz"
    if not path.is_file():
        raise DataError.file(path, "a shipped data file (see MANIFEST.md)", "no such file")
    return pl.read_ndjson(path, schema=schema)


# ------------------------------------------------------------------- battles

_S = pl.String()
_BATTLE_FIELDS = {"prompt_id": _S, "prompt": _S, "model_a": _S, "model_b": _S, "winner": _S}


def _battles(frame: pl.DataFrame, dataset: str, source: str, drops: _Drops) -> Battles:
    frame = frame.with_columns(
        canonicalise(pl.col("model_a")),
        canonicalise(pl.col("model_b")),
        pl.col("winner").replace(WINNER_SYNONYMS),
    )
    frame = drops.apply(frame, pl.col("winner").is_null(), dataset, "winner unknown (null)")
    frame = drops.apply(frame, is_blank("prompt"), dataset, "empty prompt")
    frame = drops.apply(
        frame, pl.col("model_a") == pl.col("model_b"), dataset, "same model on both sides"
    )
    return Battles(
        frame.select(
            "prompt_id",
            "prompt",
            "model_a",
            "model_b",
            "winner",
            pl.lit(source).alias("source"),
            pl.lit(dataset).alias("dataset"),
            pl.lit(1.0).alias("weight"),
        )
    )


def _arena_sample(data_dir: Path, turns: Turns, drops: _Drops) -> Battles:
    message = pl.Struct({"role": pl.String, "content": pl.String})
    schema = {**_BATTLE_FIELDS, "conversation_a": pl.List(message)}
    frame = read_shipped(data_dir, "chatbot-arena-fastchat-sample", "battles", schema)
    prompts = [
        conversation_text(c, turns) if c is not None else None
        for c in frame["conversation_a"].to_list()
    ]
    frame = frame.with_columns(pl.Series("prompt", prompts, dtype=pl.String))
    return _battles(frame, "chatbot-arena-fastchat-sample", "human", drops)


def _vibecheck(data_dir: Path, include: bool, drops: _Drops) -> Battles:
    name = "vibecheck-llama3-70b-arena"
    frame = read_shipped(data_dir, name, "battles", _BATTLE_FIELDS)
    if not include:
        reason = "opponent anonymous; include_anonymous=True keeps them"
        drops.items.append(Dropped(name, reason, frame.height))
        return Battles.empty()
    frame = frame.with_columns(pl.lit(ANONYMOUS_MODEL).alias("model_b"))
    return _battles(frame, name, "human", drops)


def _copilot(data_dir: Path, drops: _Drops) -> Battles:
    schema = {**_BATTLE_FIELDS, "prompt_prefix": _S, "prompt_suffix": _S}
    schema.pop("prompt")
    frame = read_shipped(data_dir, "copilot-arena-sample", "battles", schema)
    prefix = pl.col("prompt_prefix").fill_null("")
    suffix = pl.col("prompt_suffix").fill_null("")
    frame = frame.with_columns(
        pl.when(suffix.str.strip_chars() == "")
        .then(prefix)
        .otherwise(prefix + COPILOT_CURSOR + suffix)
        .alias("prompt")
    )
    return _battles(frame, "copilot-arena-sample", "human", drops)


# (set, file, dataset, source) of the pairwise files that need no special handling.
_PAIRWISE = (
    ("pandalm-testset", "battles", "pandalm-testset", "human"),
    ("llmfao", "crowd-comparisons", "llmfao/crowd", "human"),
    ("llmfao", "gpt4-comparisons", "llmfao/gpt4", "judge"),
    ("llmfao", "gpt3-comparisons", "llmfao/gpt3", "judge"),
    ("vicuna-bench-gpt4-reviews", "battles", "vicuna-bench-gpt4-reviews", "judge"),
    ("prd-vicuna80-pairwise", "battles_human", "prd-vicuna80-pairwise/human", "human"),
    ("prd-vicuna80-pairwise", "battles_llm_judges", "prd-vicuna80-pairwise/llm-judges", "judge"),
)


def load_battles(
    data_dir: str | Path, *, turns: Turns = "first", include_anonymous: bool = False
) -> LoadReport[Battles]:
    """Every shipped pairwise set as one ``Battles`` table, with the rows dropped.

    ``turns`` applies to the Arena sample, the one set with whole conversations.
    VibeCheck's battles are left out unless ``include_anonymous``: their
    opponent's identity was removed at the source, so they say nothing about
    which of two known models wins; kept, the opponent is ``ANONYMOUS_MODEL``.
    """
    check_choice(turns, TURN_POLICIES, "turns")
    data_dir = Path(data_dir)
    drops = _Drops()
    parts = [
        _arena_sample(data_dir, turns, drops),
        _vibecheck(data_dir, include_anonymous, drops),
        _copilot(data_dir, drops),
    ]
    for set_name, file, dataset, source in _PAIRWISE:
        frame = read_shipped(data_dir, set_name, file, _BATTLE_FIELDS)
        parts.append(_battles(frame, dataset, source, drops))
    return LoadReport(Battles.concat(parts), tuple(drops.items))


# -------------------------------------------------------------------- scores

_F = pl.Float64()
_SCORE_FIELDS = {"prompt_id": _S, "prompt": _S, "model": _S, "score": _F}


def _scores(
    frame: pl.DataFrame, name: str, source: str, drops: _Drops, dataset: pl.Expr | None = None
) -> Scores:
    """Canonical names, drops counted under ``name``; ``dataset`` defaults to ``name``."""
    frame = frame.with_columns(
        canonicalise(pl.col("model")),
        (pl.lit(name) if dataset is None else dataset).alias("dataset"),
    )
    frame = drops.apply(frame, pl.col("score").is_null(), name, "score unknown (null)")
    frame = drops.apply(frame, is_blank("prompt"), name, "empty prompt")
    return Scores(
        frame.select(
            "prompt_id", "prompt", "model", "score", pl.lit(source).alias("source"), "dataset"
        )
    )


def _correct(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col("correct").cast(pl.Float64).alias("score"))


def _task_scores(data_dir: Path, set_name: str, file: str, prefix: str, drops: _Drops) -> Scores:
    frame = read_shipped(data_dir, set_name, file, {**_SCORE_FIELDS, "task": _S})
    return _scores(frame, prefix, "golden", drops, pl.lit(prefix + "/") + pl.col("task"))


def _mmlu_pro(data_dir: Path, drops: _Drops) -> Scores:
    name = "mmlu-pro-29model"
    questions = read_shipped(
        data_dir, name, "questions", {"prompt_id": _S, "prompt": _S, "from_mmlu": pl.Boolean}
    )
    correct = read_shipped(
        data_dir, name, "correctness", {"prompt_id": _S, "model": _S, "correct": pl.Boolean}
    )
    frame = _correct(correct.join(questions, on="prompt_id", how="left"))
    part = pl.when(pl.col("from_mmlu")).then(pl.lit("from-mmlu")).otherwise(pl.lit("non-mmlu"))
    return _scores(frame, name, "golden", drops, pl.lit(name + "/") + part)


def load_scores(data_dir: str | Path) -> LoadReport[Scores]:
    """Every shipped per-model score set for training as one ``Scores`` table.

    Golden correctness (RouterBench, RouterDC, MMLU-Pro, LLMRouter) and judge
    grades (prometheus Vicuna-Bench 1-5, just-eval safety 1-5), each on its own
    scale. The eval benchmarks are not here: see ``load_eval_scores``.
    """
    data_dir = Path(data_dir)
    drops = _Drops()
    parts = [
        _task_scores(
            data_dir, "routerbench-routerdc", "golden_train", "routerbench-routerdc", drops
        ),
        _task_scores(data_dir, "routerdc-7model", "golden", "routerdc-7model", drops),
        _mmlu_pro(data_dir, drops),
        _task_scores(
            data_dir, "llmrouter-uiuc-9model", "scores_train", "llmrouter-uiuc-9model/train", drops
        ),
        _task_scores(
            data_dir, "llmrouter-uiuc-9model", "scores_test", "llmrouter-uiuc-9model/test", drops
        ),
        _scores(
            read_shipped(
                data_dir, "prometheus-gpt4-rubric-scores", "vicuna_bench_scores", _SCORE_FIELDS
            ),
            "prometheus-gpt4-rubric-scores/vicuna_bench",
            "judge",
            drops,
        ),
        _scores(
            read_shipped(data_dir, "just-eval-safety-scores", "safety_scores", _SCORE_FIELDS),
            "just-eval-safety-scores",
            "judge",
            drops,
        ),
    ]
    return LoadReport(Scores.concat(parts), tuple(drops.items))


def _mt_bench(data_dir: Path, file: str, dataset: str, drops: _Drops) -> Scores:
    """MT-Bench judgements, one row per model x question x turn; the prompt is
    that turn's question, the text a router sees when routing that turn."""
    name = "routellm-evals"
    questions = read_shipped(
        data_dir, name, "mt_bench_questions", {"prompt_id": _S, "turns": pl.List(_S)}
    )
    judged = read_shipped(
        data_dir, name, file, {"prompt_id": _S, "turn": pl.Int64, "model": _S, "score": _F}
    )
    frame = judged.join(questions, on="prompt_id", how="left").with_columns(
        pl.col("turns").list.get(pl.col("turn") - 1, null_on_oob=True).alias("prompt")
    )
    frame = drops.apply(frame, pl.col("score") == -1, dataset, "judge failed (score -1)")
    turn = pl.lit(dataset + "/turn") + pl.col("turn").cast(pl.String)
    return _scores(frame, dataset, "judge", drops, turn)


def load_eval_scores(data_dir: str | Path) -> LoadReport[Scores]:
    """The RouteLLM eval benchmarks as ``Scores``: never training data.

    ``routellm-evals/mmlu`` and ``/gsm8k`` (golden, the paper pair),
    ``routellm-evals/mt_bench/turn{1,2}`` (GPT-4 1-10), the two commercial
    routers' MT-Bench grades (``routellm-evals/mt_bench_commercial/turn{1,2}``,
    models ``martian``/``unify``), and prometheus' MT-Bench turn-2 rubric grades
    (``prometheus-gpt4-rubric-scores/mt_bench``, 1-5). Filter by ``dataset``.
    """
    data_dir = Path(data_dir)
    drops = _Drops()
    golden = {"prompt_id": _S, "prompt": _S, "model": _S, "correct": pl.Boolean}
    parts = [
        _scores(
            _correct(read_shipped(data_dir, "routellm-evals", "mmlu_golden", golden)),
            "routellm-evals/mmlu",
            "golden",
            drops,
        ),
        _scores(
            _correct(read_shipped(data_dir, "routellm-evals", "gsm8k_golden", golden)),
            "routellm-evals/gsm8k",
            "golden",
            drops,
        ),
        _mt_bench(data_dir, "mt_bench_judgements", "routellm-evals/mt_bench", drops),
        _mt_bench(
            data_dir,
            "mt_bench_commercial_router_judgements",
            "routellm-evals/mt_bench_commercial",
            drops,
        ),
        _scores(
            read_shipped(
                data_dir, "prometheus-gpt4-rubric-scores", "mt_bench_scores", _SCORE_FIELDS
            ),
            "prometheus-gpt4-rubric-scores/mt_bench",
            "judge",
            drops,
        ),
    ]
    return LoadReport(Scores.concat(parts), tuple(drops.items))


# ------------------------------------------------------- judge preferences


def load_judge_preferences(data_dir: str | Path) -> LoadReport[pl.DataFrame]:
    """AlpacaEval's judge preferences with the instruction text as the prompt.

    Columns ``prompt_id, prompt, model, baseline, preference, annotator,
    dataset``; ``preference`` is P(model's answer beats the baseline's) in
    [0, 1] (AlpacaEval ``model_win``; a draw is 0.5). Rows with an invalid
    judgement (null) are dropped, and so are rows whose model is the baseline
    under canonical names (AlpacaEval's ``gpt4_turbo`` is ``gpt4_1106_preview``:
    identical outputs, every judgement 0.5), as they compare a model with itself.
    Two entries that are one model under canonical names (``chatgpt`` and
    ``gpt-3.5-turbo-0301``: identical outputs) keep one judgement per
    instruction, baseline and annotator, not the same judgement twice.
    """
    name = "alpaca-eval"
    drops = _Drops()
    prefs = read_shipped(
        data_dir,
        name,
        "preferences",
        {"prompt_id": _S, "model": _S, "baseline": _S, "annotator": _S, "model_win": _F},
    )
    instructions = read_shipped(
        data_dir, name, "instructions", {"prompt_id": _S, "instruction": _S}
    )
    frame = prefs.join(instructions, on="prompt_id", how="left").with_columns(
        canonicalise(pl.col("model")),
        canonicalise(pl.col("baseline")),
    )
    frame = drops.apply(frame, pl.col("model_win").is_null(), name, "invalid judgement (null)")
    frame = drops.apply(frame, is_blank("instruction"), name, "instruction not found")
    frame = drops.apply(frame, pl.col("model") == pl.col("baseline"), name, "model is the baseline")
    frame = drops.apply(
        frame,
        ~pl.struct("prompt_id", "model", "baseline", "annotator").is_first_distinct(),
        name,
        "judged again under another name of the same model (model_aliases.toml)",
    )
    table = frame.select(
        "prompt_id",
        pl.col("instruction").alias("prompt"),
        "model",
        "baseline",
        pl.col("model_win").alias("preference"),
        "annotator",
        pl.lit(name).alias("dataset"),
    )
    return LoadReport(table, tuple(drops.items))


# ------------------------------------------------------------------ prompts


def _unique_prompts(frame: pl.DataFrame, column: str) -> list[str]:
    return frame.unique("prompt_id", maintain_order=True)[column].to_list()


def eval_prompts(data_dir: str | Path) -> dict[str, list[str]]:
    """The eval benchmarks' prompts, to remove from training data before a fit.

    ``mt-bench`` holds the 80 turn-1 questions, ``mt-bench-turn2`` the 80
    follow-ups, ``mmlu`` the 14,042 questions (one per prompt id; a few texts
    repeat), ``gsm8k`` the 1,319 problems.
    """
    questions = read_shipped(
        data_dir, "routellm-evals", "mt_bench_questions", {"prompt_id": _S, "turns": pl.List(_S)}
    )
    golden = {"prompt_id": _S, "prompt": _S}
    mmlu = read_shipped(data_dir, "routellm-evals", "mmlu_golden", golden)
    gsm8k = read_shipped(data_dir, "routellm-evals", "gsm8k_golden", golden)
    turns = questions["turns"]
    return {
        "mt-bench": turns.list.get(0).to_list(),
        "mt-bench-turn2": turns.list.get(1).to_list(),
        "mmlu": _unique_prompts(mmlu, "prompt"),
        "gsm8k": _unique_prompts(gsm8k, "prompt"),
    }


def contaminated_prompts(data_dir: str | Path) -> list[str]:
    """RouteLLM's Arena training prompts found to near-copy an eval prompt.

    Exact copies of these in any training set must go, whatever the embedding
    similarity says.
    """
    out: list[str] = []
    for bench in ("mmlu", "gsm8k", "mt_bench"):
        frame = read_shipped(
            data_dir, "routellm-evals", f"contaminated_{bench}", {"train_prompt": _S}
        )
        out.extend(frame["train_prompt"].to_list())
    return out


def arena_prompts(data_dir: str | Path) -> list[str]:
    """Real Chatbot Arena prompts, the default traffic to calibrate thresholds on.

    The FastChat sample, the VibeCheck battles and Arena-Hard's questions
    (distinct, in file order): real user queries, unlike the benchmarks.
    """
    sources = [
        ("chatbot-arena-fastchat-sample", "battles"),
        ("vibecheck-llama3-70b-arena", "battles"),
        ("arena-hard-v0.1-prompts", "prompts"),
    ]
    frames = [read_shipped(data_dir, name, file, {"prompt": _S}) for name, file in sources]
    prompts = pl.concat(frames)["prompt"].drop_nulls()
    return prompts.filter(prompts.str.strip_chars() != "").unique(maintain_order=True).to_list()
