"""Decontamination: exact (normalised) and near (embedding) matches to eval prompts."""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from prefroute.data import decontam
from prefroute.data.decontam import decontaminate, normalise_prompt
from prefroute.data.schema import Battles, Scores
from prefroute.embed import Embedder


def _read(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def mt_bench(data_dir: Path) -> list[str]:
    """MT-Bench turn-1 questions, in question-id order."""
    rows = _read(data_dir / "routellm-evals" / "mt_bench_questions.jsonl.gz")
    return [r["turns"][0] for r in sorted(rows, key=lambda r: r["question_id"])]


@pytest.fixture(scope="module")
def alpaca(data_dir: Path) -> list[str]:
    return [r["instruction"] for r in _read(data_dir / "alpaca-eval" / "instructions.jsonl.gz")]


class TfidfEmbedder:
    """A real (if lexical) embedder satisfying the protocol: TF-IDF, L2-normalised."""

    spec = "test:tfidf"

    def __init__(self, corpus: Sequence[str]) -> None:
        self._vectoriser = TfidfVectorizer().fit(corpus)
        self.dim = len(self._vectoriser.vocabulary_)
        self.calls: list[int] = []

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(len(texts))
        return self._vectoriser.transform(list(texts)).toarray().astype(np.float32)


def _scores(prompts: Sequence[str], dataset: str, repeat: int = 1) -> Scores:
    frame = pl.DataFrame({"prompt": list(prompts) * repeat}).with_columns(
        prompt_id=pl.lit(None, pl.String),
        model=pl.lit("m"),
        score=pl.lit(1.0),
        source=pl.lit("judge"),
        dataset=pl.lit(dataset),
    )
    return Scores(frame)


def test_normalise_prompt_ignores_formatting_only() -> None:
    assert normalise_prompt("  What is\n\tRAM?  ") == "what is ram"
    assert normalise_prompt("«Ｗｈａｔ is RAM»") == "what is ram"  # NFKC + end quotes
    assert normalise_prompt("STRASSE") == normalise_prompt("straße")  # case-folding
    assert normalise_prompt("x = 2.5") != normalise_prompt("x = 25")  # inner punctuation kept
    assert normalise_prompt("...?!") == ""


def test_exact_variants_removed_and_counted_per_dataset() -> None:
    eval_prompts = {"mt_bench": ["What is the capital of France?"], "gsm8k": ["Add 2 and 3."]}
    train = Scores.concat(
        [
            _scores(["what is the capital of  france", "What is the capital of Spain?"], "a"),
            _scores(["ADD 2 AND 3", "Add 2 and 3 apples."], "b", repeat=2),
        ]
    )
    result = decontaminate(train, eval_prompts, threshold=None)
    assert isinstance(result.kept, Scores)
    assert sorted(result.kept.prompts) == sorted(
        ["What is the capital of Spain?"] + ["Add 2 and 3 apples."] * 2
    )
    assert result.removed == {"a": 1, "b": 2}
    assert result.n_removed == 3
    assert result.by_reason == {"exact": 3}
    assert result.by_eval_set == {("a", "mt_bench"): 1, ("b", "gsm8k"): 2}
    assert result.matches.height == 2  # distinct prompts


def test_battles_stay_battles_and_extra_exact_is_matched() -> None:
    battles = Battles(
        pl.DataFrame(
            {
                "prompt_id": ["1", "2", "3"],
                "prompt": ["Known leak.", "Fine prompt", None],
                "model_a": ["a"] * 3,
                "model_b": ["b"] * 3,
                "winner": ["model_a", "tie", "model_b"],
                "source": ["human"] * 3,
                "dataset": ["arena"] * 3,
                "weight": [1.0] * 3,
            }
        )
    )
    result = decontaminate(battles, ["unrelated"], threshold=None, extra_exact=["known leak"])
    assert isinstance(result.kept, Battles)
    assert result.kept.frame["prompt_id"].to_list() == ["2", "3"]  # null prompt kept
    assert result.by_eval_set == {("arena", "extra_exact"): 1}


def test_alpaca_eval_shares_two_instructions_with_mt_bench(
    mt_bench: list[str], alpaca: list[str]
) -> None:
    result = decontaminate(
        _scores(alpaca, "alpaca-eval", repeat=3), {"mt_bench": mt_bench}, threshold=None
    )
    assert result.removed == {"alpaca-eval": 6}
    assert sorted(result.matches["eval_prompt"]) == sorted([mt_bench[0], mt_bench[49]])
    assert len(result.kept) == 3 * (805 - 2)


def test_near_duplicates_removed_unrelated_kept(
    mt_bench: list[str], alpaca: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    long_question = next(q for q in mt_bench if q.startswith("Evaluate the following movie"))
    one_word_changed = long_question.replace("movie", "film", 1)
    assert one_word_changed != long_question
    shared = [a for a in alpaca if a in set(mt_bench)]
    train = [one_word_changed, *shared, *[a for a in alpaca[:300] if a not in shared]]
    embedder = TfidfEmbedder(mt_bench + train)
    assert isinstance(embedder, Embedder)
    # Tiny similarity blocks: the blocked max must equal the one-shot max.
    monkeypatch.setattr(decontam, "_BLOCK_BYTES", 4 * len(mt_bench) * 64)

    result = decontaminate(
        _scores(train, "mixed", repeat=2), {"mt_bench": mt_bench}, embedder=embedder
    )
    near = result.matches.filter(pl.col("reason") == "near")
    assert near["prompt"].to_list() == [one_word_changed]
    assert near["eval_prompt"].to_list() == [long_question]
    assert 0.95 <= near["cosine"][0] < 1.0
    assert result.by_reason == {"exact": 4, "near": 2}
    assert len(result.kept) == 2 * (len(train) - 3)
    # Each distinct non-exact training prompt embedded once, in blocks of 64.
    assert embedder.calls[0] == len(mt_bench)
    assert sum(embedder.calls[1:]) == len(train) - 2
    assert max(embedder.calls[1:]) == 64


def test_default_embedder_is_the_package_default(
    mt_bench: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import prefroute.embed

    near_copy = mt_bench[10].replace("Mars", "the Moon")
    embedder = TfidfEmbedder(mt_bench)
    monkeypatch.setattr(prefroute.embed, "get_embedder", lambda **kwargs: embedder, raising=False)
    result = decontaminate(_scores([near_copy], "d"), mt_bench, threshold=0.5)
    assert result.by_eval_set == {("d", "eval"): 1}
    assert embedder.calls == [len(mt_bench), 1]


@pytest.mark.slow  # builds the default static model on first use (then cached)
def test_static_embedder_finds_alpaca_eval_near_copies_of_mt_bench(
    mt_bench: list[str], alpaca: list[str]
) -> None:
    from prefroute.embed import get_embedder

    elon = next(q for q in mt_bench if "Elon Musk" in q)
    edited = elon.replace("Mars", "the Moon")
    result = decontaminate(
        _scores([edited, *alpaca], "alpaca-eval"),
        {"mt_bench": mt_bench},
        embedder=get_embedder("static"),
    )
    near = dict(
        result.matches.filter(pl.col("reason") == "near").select("prompt", "eval_prompt").rows()
    )
    # One word changed, and AlpacaEval's copy of MT-Bench's f(2) question with other numbers.
    assert near == {
        edited: elon,
        "Given that f(x) = 5x^3 - 2x + 3, find the value of f(2).": next(
            q for q in mt_bench if q.startswith("Given that f(x) = 4x^3")
        ),
    }
    assert result.by_reason == {"exact": 2, "near": 2}
    assert len(result.kept) == 805 - 3


def test_exact_only_sets_keep_near_copies(mt_bench: list[str], alpaca: list[str]) -> None:
    """A user's held-out file is matched exactly only: its near copies stay in the fit."""
    long_question = next(q for q in mt_bench if q.startswith("Evaluate the following movie"))
    one_word_changed = long_question.replace("movie", "film", 1)
    held_out = [long_question, alpaca[0]]
    train = [one_word_changed, alpaca[0].upper(), *alpaca[1:50]]
    embedder = TfidfEmbedder(mt_bench + train)
    sets = {"mt_bench": mt_bench[:0], "eval file held.jsonl": held_out}
    near_too = decontaminate(_scores(train, "mine"), sets, embedder=embedder)
    assert near_too.by_reason == {"exact": 1, "near": 1}
    exact = decontaminate(
        _scores(train, "mine"), sets, embedder=embedder, exact_only=["eval file held.jsonl"]
    )
    assert exact.by_reason == {"exact": 1}
    assert exact.matches["prompt"].to_list() == [alpaca[0].upper()]
    assert one_word_changed in exact.kept.frame["prompt"].to_list()
