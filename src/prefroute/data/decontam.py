"""Drop training rows whose prompt is (nearly) an evaluation prompt.

A router trained on MT-Bench / MMLU / GSM8K questions scores well on them for
the wrong reason. Rows go when their prompt equals an eval prompt after
``normalise_prompt``, or when its embedding has cosine >= ``threshold`` (0.95,
as in the paper) to any eval prompt. What was removed, why and against which
eval set is reported, so a user sees the cost of decontamination per set.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np
import polars as pl

from prefroute.data.schema import Battles, Scores

if TYPE_CHECKING:
    from prefroute.embed import Embedder

Table = TypeVar("Table", Battles, Scores)

# Bytes of one (train block x eval) float32 similarity block: memory stays well
# under 1 GB however many prompts there are.
_BLOCK_BYTES = 256 * 2**20
COSINE_THRESHOLD = 0.95
"""Near-copy cutoff, as in the paper: lower also drops paraphrases of eval prompts."""
_EVAL_SET = "eval"
EXTRA_SET = "extra_exact"


def normalise_prompt(text: str) -> str:
    """The key for exact matching: NFKC, case-folded, whitespace collapsed, end punctuation off.

    Copies of a benchmark question differ in exactly these ways: full-width or
    ligature characters (NFKC), capitalisation, line wrapping and indentation,
    and a trailing period, question mark or quotes added or lost in a reformat.
    Punctuation *inside* the text is kept: it can change the meaning (``2.5`` vs
    ``25``), while at the ends it never does.
    """
    text = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    start, end = 0, len(text)
    while start < end and _is_end_noise(text[start]):
        start += 1
    while end > start and _is_end_noise(text[end - 1]):
        end -= 1
    return text[start:end]


def _is_end_noise(char: str) -> bool:
    return char == " " or unicodedata.category(char).startswith("P")


@dataclass(frozen=True)
class DecontamResult(Generic[Table]):
    """The training table without contaminated rows, and what was removed and why.

    ``removed``: rows removed per training dataset; ``by_reason``: rows per
    ``exact`` / ``near``; ``by_eval_set``: rows per (training dataset, eval set
    matched); ``matches``: one row per distinct removed training prompt
    (prompt, reason, eval_set, eval_prompt, cosine) to audit the threshold.
    """

    kept: Table
    removed: dict[str, int]
    by_reason: dict[str, int]
    by_eval_set: dict[tuple[str, str], int]
    matches: pl.DataFrame

    @property
    def n_removed(self) -> int:
        """Rows removed in total."""
        return sum(self.removed.values())


def decontaminate(
    train: Table,
    eval_prompts: Sequence[str] | Mapping[str, Sequence[str]],
    *,
    embedder: Embedder | None = None,
    threshold: float | None = COSINE_THRESHOLD,
    extra_exact: Sequence[str] = (),
    exact_only: Collection[str] = (),
) -> DecontamResult[Table]:
    """Remove training rows whose prompt matches an eval prompt, exactly or nearly.

    ``eval_prompts`` is one list, or eval-set name -> prompts so removals are
    reported per set. ``extra_exact`` adds prompts matched exactly only (e.g.
    RouteLLM's ``contaminated_*`` train prompts); ``exact_only`` names eval sets
    matched exactly only (a user's own held-out file: its prompts share the
    templates of the training prompts, which a static embedder puts at cosine
    >= 0.95 although they are other questions). ``threshold=None`` skips the
    embedding pass; otherwise ``embedder`` (default: the cached ``get_embedder()``) embeds
    each *distinct* prompt once -- training prompts repeat (805 AlpacaEval
    instructions carry 128k rows) -- and the max cosine is taken in float32
    blocks so memory stays bounded.
    """
    sets = dict(eval_prompts) if isinstance(eval_prompts, Mapping) else {_EVAL_SET: eval_prompts}
    eval_frame = pl.DataFrame(
        [(name, p) for name, prompts in sets.items() for p in prompts]
        + [(EXTRA_SET, p) for p in extra_exact],
        schema={"eval_set": pl.String, "eval_prompt": pl.String},
        orient="row",
    ).unique(subset="eval_prompt", keep="first", maintain_order=True)
    distinct = train.frame.select(pl.col("prompt").drop_nulls().unique(maintain_order=True))

    exact = _exact_matches(distinct["prompt"], eval_frame)
    near = pl.DataFrame(schema=exact.schema)
    eval_near = eval_frame.filter(~pl.col("eval_set").is_in([EXTRA_SET, *exact_only]))
    if threshold is not None and eval_near.height:
        rest = distinct.filter(~pl.col("prompt").is_in(exact["prompt"].implode()))["prompt"]
        if rest.len():
            if embedder is None:
                from prefroute.embed import get_embedder

                embedder = get_embedder(cache=True)  # warm re-runs embed nothing
            near = _near_matches(rest, eval_near, embedder, threshold)
    matches = pl.concat([exact, near])

    flagged = train.frame.join(
        matches.select("prompt", "reason", "eval_set"),
        on="prompt",
        how="left",
        maintain_order="left",
    )
    removed = flagged.filter(pl.col("reason").is_not_null())
    kept = type(train)(flagged.filter(pl.col("reason").is_null()).drop("reason", "eval_set"))
    return DecontamResult(
        kept=kept,
        removed=_counts(removed, "dataset"),
        by_reason=_counts(removed, "reason"),
        by_eval_set={
            (d, e): n
            for d, e, n in removed.group_by("dataset", "eval_set").len().sort("dataset").iter_rows()
        },
        matches=matches,
    )


def _counts(frame: pl.DataFrame, column: str) -> dict[str, int]:
    return dict(frame.group_by(column).len().sort(column).iter_rows())


def _exact_matches(prompts: pl.Series, eval_frame: pl.DataFrame) -> pl.DataFrame:
    """Distinct training prompts whose normalised text is an eval prompt's."""
    keys = (
        eval_frame.with_columns(key=_normalised(eval_frame["eval_prompt"]))
        .filter(pl.col("key") != "")
        .unique(subset="key", keep="first", maintain_order=True)
    )
    train = prompts.to_frame().with_columns(key=_normalised(prompts))
    return train.join(keys, on="key", maintain_order="left").select(
        "prompt",
        pl.lit("exact").alias("reason"),
        "eval_set",
        "eval_prompt",
        pl.lit(1.0, dtype=pl.Float32).alias("cosine"),
    )


def _normalised(prompts: pl.Series) -> pl.Series:
    return pl.Series([normalise_prompt(p) for p in prompts], dtype=pl.String)


def _near_matches(
    prompts: pl.Series, eval_frame: pl.DataFrame, embedder: Embedder, threshold: float
) -> pl.DataFrame:
    """Distinct training prompts with cosine >= threshold to some eval prompt (its best match)."""
    eval_vectors = np.asarray(embedder.encode(eval_frame["eval_prompt"].to_list()), np.float32)
    block = max(1, _BLOCK_BYTES // (4 * len(eval_vectors)))
    texts = prompts.to_list()
    best = np.empty(len(texts), dtype=np.float32)
    best_eval = np.empty(len(texts), dtype=np.int64)
    for start in range(0, len(texts), block):
        vectors = np.asarray(embedder.encode(texts[start : start + block]), np.float32)
        cosine = vectors @ eval_vectors.T
        best[start : start + block] = cosine.max(axis=1)
        best_eval[start : start + block] = cosine.argmax(axis=1)
    hit = best >= threshold
    matched = eval_frame[best_eval[hit]]
    return pl.DataFrame(
        {
            "prompt": prompts.filter(pl.Series(hit)),
            "reason": "near",
            "eval_set": matched["eval_set"],
            "eval_prompt": matched["eval_prompt"],
            "cosine": best[hit],
        },
        schema={
            "prompt": pl.String,
            "reason": pl.String,
            "eval_set": pl.String,
            "eval_prompt": pl.String,
            "cosine": pl.Float32,
        },
    )
