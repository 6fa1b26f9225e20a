"""What a label-head router reads of a prompt (``Framing``), without torch.

The routers' own tests fit real networks; this one checks the cut on real
tokenizers and real few-shot prompts, and that artifacts written before tails
existed still read their prompts as before.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from prefroute.data import shipped
from prefroute.embed.paths import packaged_minilm_dir
from prefroute.onnx_models import load_tokenizer
from prefroute.routers.onnx_head import SEPARATOR, Framing, clock

SEP = (7, 7)


def framing(head: int, tail: int) -> Framing:
    return Framing((1,), (2,), head_length=head, tail_length=tail, separator_ids=SEP)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(packaged_minilm_dir() / "tokenizer.json", None)


@pytest.fixture(scope="module")
def few_shot(data_dir: Path) -> list[str]:
    """RouterBench's 5-shot ARC prompts: the question to route comes after five solved ones."""
    frame = shipped.load_scores(data_dir).table.frame
    arc = frame.filter(pl.col("dataset") == "routerbench-routerdc/arc-challenge")
    return arc.unique("prompt_id").sort("prompt_id")["prompt"].head(20).to_list()


def test_short_prompts_are_kept_whole_and_long_ones_keep_head_and_tail() -> None:
    ids = list(range(100, 120))
    assert framing(8, 4).cut(ids[:12]) == ids[:12]
    assert framing(8, 4).cut(ids[:13]) == [*ids[:8], *SEP, *ids[9:13]]
    assert framing(8, 4).cut(ids) == [*ids[:8], *SEP, *ids[-4:]]
    assert framing(8, 0).cut(ids) == ids[:8]
    assert framing(0, 5).cut(ids) == [*SEP, *ids[-5:]]


def test_an_artifact_without_tail_fields_reads_the_head_only() -> None:
    """Artifacts written before tails existed store ``max_length`` alone."""
    old = Framing.from_json({"prefix_ids": [101], "suffix_ids": [102], "max_length": 128})
    assert old == Framing((101,), (102,), head_length=128)
    assert old.tail_length == 0 and old.separator_ids == () and old.truncation == 128
    new = framing(96, 32)
    assert Framing.from_json(new.to_json()) == new
    assert new.truncation is None  # a tail needs the whole prompt tokenised


def test_the_question_of_a_few_shot_prompt_reaches_the_model_only_with_a_tail(
    tokenizer, few_shot
) -> None:
    separator = tuple(tokenizer.encode(SEPARATOR, add_special_tokens=False).ids)
    head_only = Framing((101,), (102,), head_length=128)
    head_tail = Framing((101,), (102,), head_length=64, tail_length=64, separator_ids=separator)
    distinct_heads = {tuple(ids) for ids in head_only.encode(tokenizer, few_shot)}
    framed = head_tail.encode(tokenizer, few_shot)
    assert len(distinct_heads) == 1  # 128 head tokens: the same solved examples every time
    assert len({tuple(ids) for ids in framed}) == len(set(few_shot))
    for prompt, ids in zip(few_shot, framed, strict=True):
        question = prompt.rsplit("\n\n", 1)[-1]  # the last block: the question to route
        question_ids = tokenizer.encode(question, add_special_tokens=False).ids
        assert len(ids) == 1 + 64 + len(separator) + 64 + 1
        n = min(64, len(question_ids))
        assert ids[-1 - n : -1] == question_ids[-n:]


def test_a_truncating_tokenizer_reads_the_same_head(tokenizer, few_shot) -> None:
    """Serving truncates while tokenising (head-only framings); the ids are the cut's."""
    head_only = Framing((101,), (102,), head_length=100)
    truncating = load_tokenizer(packaged_minilm_dir() / "tokenizer.json", head_only.truncation)
    assert head_only.encode(truncating, few_shot) == head_only.encode(tokenizer, few_shot)


def test_describe_counts_the_cut_prompts() -> None:
    assert framing(8, 4).describe([5, 12, 13, 40]) == (
        "median 12 tokens; 2 longer prompts cut to their first 8 + last 4 tokens"
    )
    assert (
        framing(8, 0).describe([9])
        == "median 9 tokens; 1 longer prompts cut to their first 8 tokens"
    )


@pytest.mark.parametrize(
    ("seconds", "text"), [(4.24, "4.2 s"), (65, "1:05"), (25 * 60 + 7, "25:07"), (3723, "1:02:03")]
)
def test_clock(seconds: float, text: str) -> None:
    assert clock(seconds) == text
