"""What the label-head routers should read of a long prompt: its head, its tail, or both.

    python benchmarks/label_head_framing.py [--prompts 2000] [--seeds 3]
        [--framings 128,64+64,0+128,256,128+128,64,32+32,0+64] [--pairs 0,2,3]
        [--router classifier] [--router-framings 128,64+64] [--router-seeds 1]

The classifier reads 128 prompt tokens, the causal LLM 64. On few-shot and
templated prompts (RouterBench's 5-shot ARC, MMLU-Pro's ten options) the
question is at the end, past what a head reads. A framing ``H+T`` keeps a
prompt's first H and last T tokens joined by ``prefroute.routers.onnx_head.SEPARATOR``
(``H`` alone: the head, as before); ``Framing.cut`` is the cut the routers use.

Proxy (default): the classifier's starting point, the frozen mean-pooled
MiniLM (``minilm:onnx-fp32``) over ``[CLS] + cut prompt + [SEP]``, with a
3-way logistic-regression head (strong wins / tie / weak wins from the pair's
scores) fitted to convergence on one half of ``--prompts`` prompts and scored
on the other: the classifier at ``train_layers=0``, trained to convergence. The
score is P(strong wins), as the router's. Per pair (own-data pairs of shipped
training sets, ``pairs.py``) and framing: APGR on the held-out half, and AUC of
the score for "the strong model scored higher", mean ± sd over ``--seeds`` splits.

``--router classifier``: the real ``ClassifierRouter`` (``train_layers=1``,
3 epochs, lr 3e-4, int8) trained on the same halves' battles for
``--router-framings``, ``--router-seeds`` splits, as a check on the proxy.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import polars as pl
from embed import machine  # benchmarks/embed.py, this script's directory is on sys.path
from pairs import PAIRS, PairTable, pair_tables

from prefroute.data.location import data_dir
from prefroute.data.schema import Battles
from prefroute.embed.minilm import default_minilm_dir
from prefroute.evals.metrics import curve
from prefroute.onnx_models import inference_session, load_tokenizer, run_by_length
from prefroute.routers.onnx_head import SEPARATOR, Framing


@dataclass(frozen=True)
class Spec:
    head: int
    tail: int

    @classmethod
    def parse(cls, text: str) -> Spec:
        head, _, tail = text.partition("+")
        return cls(int(head), int(tail or 0))

    def __str__(self) -> str:
        return f"{self.head}+{self.tail}" if self.tail else f"{self.head}"

    def framing(self, tokenizer) -> Framing:  # type: ignore[no-untyped-def]
        return Framing(
            prefix_ids=(tokenizer.token_to_id("[CLS]"),),
            suffix_ids=(tokenizer.token_to_id("[SEP]"),),
            head_length=self.head,
            tail_length=self.tail,
            separator_ids=tuple(tokenizer.encode(SEPARATOR, add_special_tokens=False).ids)
            if self.tail
            else (),
        )


def labels(table: PairTable, rows: np.ndarray) -> np.ndarray:
    """0 strong wins, 1 tie, 2 weak wins (``prefroute.data.labels.LABELS`` order)."""
    diff = table.strong[rows] - table.weak[rows]
    return np.where(diff > 0, 0, np.where(diff < 0, 2, 1))


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """P(a positive scores above a negative), ties half (Mann-Whitney)."""
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def measure(table: PairTable, score: np.ndarray, held: np.ndarray) -> tuple[float, float]:
    apgr = curve(score, table.strong[held], table.weak[held]).apgr
    return apgr, auc(score, table.strong[held] > table.weak[held])


def proxy(
    tables: list[PairTable], specs: list[Spec], n_prompts: int, seeds: int
) -> dict[tuple[str, str], list[tuple[float, float]]]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    root = default_minilm_dir()
    session = inference_session(root / "model-fp32.onnx")
    tokenizer = load_tokenizer(root / "tokenizer.json", None)
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for table in tables:
        sample = np.sort(
            np.random.default_rng(0).permutation(len(table))[: min(n_prompts, len(table))]
        )
        texts = [table.prompts[i] for i in sample]
        tokens = [e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
        lengths = np.array([len(t) for t in tokens])
        print(
            f"{table.pair.name}: {len(sample)} prompts, tokens p50 {np.median(lengths):.0f}, "
            f"> 128 tokens {np.mean(lengths > 128):.0%}",
            file=sys.stderr,
        )
        for spec in specs:
            framing = spec.framing(tokenizer)
            ids = [[*framing.prefix_ids, *framing.cut(t), *framing.suffix_ids] for t in tokens]
            started = time.process_time()
            vectors = run_by_length(session, ids, 32).astype(np.float64)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            print(
                f"  {spec}: encoded in {time.process_time() - started:.0f} CPU s", file=sys.stderr
            )
            for seed in range(seeds):
                order = np.random.default_rng(seed).permutation(len(sample))
                fit, held = order[: len(order) // 2], order[len(order) // 2 :]
                y = labels(table, sample[fit])
                scaler = StandardScaler().fit(vectors[fit])
                head = LogisticRegression(C=0.1, max_iter=2000)
                head.fit(scaler.transform(vectors[fit]), y)
                proba = head.predict_proba(scaler.transform(vectors[held]))
                strong_col = list(head.classes_).index(0)
                result = measure(table, proba[:, strong_col], sample[held])
                results.setdefault((table.pair.name, str(spec)), []).append(result)
    return results


def router_check(
    tables: list[PairTable], specs: list[Spec], n_prompts: int, seeds: int
) -> dict[tuple[str, str], list[tuple[float, float]]]:
    from prefroute.data.augment import battles_from_scores
    from prefroute.data.schema import Scores
    from prefroute.routers.classifier import ClassifierRouter

    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for table in tables:
        sample = np.sort(
            np.random.default_rng(0).permutation(len(table))[: min(n_prompts, len(table))]
        )
        for seed in range(seeds):
            order = np.random.default_rng(seed).permutation(len(sample))
            fit, held = sample[order[: len(order) // 2]], sample[order[len(order) // 2 :]]
            rows = pl.DataFrame(table.scores_rows(fit)).with_columns(
                source=pl.lit("golden"), dataset=pl.lit("own")
            )
            battles: Battles = battles_from_scores(Scores(rows))
            for spec in specs:
                started = time.process_time()
                router = ClassifierRouter(
                    train_layers=1,
                    max_length=spec.head + spec.tail,
                    tail_length=spec.tail,
                    epochs=3,
                    lr=3e-4,
                    strong_model=table.pair.strong,
                    weak_model=table.pair.weak,
                    random_state=seed,
                ).fit(battles)
                score = router.strong_win_rate([table.prompts[i] for i in held])
                result = measure(table, score, held)
                print(
                    f"  {table.pair.name} {spec} seed {seed}: APGR {result[0]:.3f} AUC "
                    f"{result[1]:.3f} ({time.process_time() - started:.0f} CPU s)",
                    file=sys.stderr,
                )
                results.setdefault((table.pair.name, str(spec)), []).append(result)
    return results


def render(results: dict[tuple[str, str], list[tuple[float, float]]], specs: list[Spec]) -> str:
    names = list(dict.fromkeys(name for name, _ in results))
    head = "| framing (head+tail tokens) | " + " | ".join(names) + " | mean APGR |"
    lines = [head, "|---|" + "---:|" * (len(names) + 1)]
    for spec in specs:
        cells, means = [], []
        for name in names:
            got = np.array(results[(name, str(spec))])
            cells.append(
                f"{got[:, 0].mean():.3f} ± {got[:, 0].std():.3f} (AUC {got[:, 1].mean():.3f})"
            )
            means.append(got[:, 0].mean())
        lines.append(f"| {spec} | " + " | ".join(cells) + f" | {np.mean(means):.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--framings", default="128,64+64,0+128,256,128+128,64,32+32,0+64")
    parser.add_argument("--pairs", default="0,2,3", help="indices into pairs.PAIRS")
    parser.add_argument("--router", choices=["classifier"], default=None)
    parser.add_argument("--router-framings", default="128,64+64")
    parser.add_argument("--router-seeds", type=int, default=1)
    args = parser.parse_args(argv)

    command = "python benchmarks/label_head_framing.py " + " ".join(sys.argv[1:])
    where = machine()
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    tables = pair_tables(data_dir(), tuple(PAIRS[int(i)] for i in args.pairs.split(",")))
    specs = [Spec.parse(s) for s in args.framings.split(",")]
    print(f"`{command}`  \n{datetime.now(UTC):%Y-%m-%d}; {where}\n")
    print(
        f"Proxy: frozen MiniLM (fp32) + a 3-way logistic head; {args.prompts} prompts per "
        f"pair split in halves, {args.seeds} seeds; APGR ± sd (AUC) on the held-out half.\n"
    )
    print(render(proxy(tables, specs, args.prompts, args.seeds), specs))
    if args.router:
        router_specs = [Spec.parse(s) for s in args.router_framings.split(",")]
        print(
            f"\nClassifierRouter (train_layers=1, 3 epochs, lr 3e-4, int8), the same halves, "
            f"{args.router_seeds} seed(s):\n"
        )
        print(
            render(
                router_check(tables, router_specs, args.prompts, args.router_seeds), router_specs
            )
        )
    print(
        f"\n{time.process_time() - started_cpu:.0f} CPU s (this process), "
        f"{time.perf_counter() - started_wall:.0f} s wall."
    )


if __name__ == "__main__":
    main()
