"""Routers whose whole model is one ONNX graph: prompt tokens in, three label logits out.

The classifier (fine-tuned MiniLM + a 3-way head) and the causal-LLM router
(a small chat LM read at its answer token) differ only in their network and
in how a prompt is framed into tokens (``LabelNetwork``, built by a subclass's
``_build``). Everything else lives here, once:

- training (torch, imported inside the functions that use it): battles ->
  soft targets (``prefroute.data.labels``), a seeded, length-bucketed AdamW loop,
  then export to ONNX (+ int8, ``prefroute.onnx_models``); every phase says what
  it does and, done, how long it took (``FitLog``: the fits take 25-35 min);
- serving (tokenizers + onnxruntime, no torch): frame, tokenise, run, softmax;
- the artifact: ``<kind>.onnx`` and ``tokenizer.json`` beside ``router.json``.

Score: P(strong wins) = softmax(logits)[strong], as RouteLLM's BERT router
(``1 - P(tie) - P(weak wins)``). A tie says the weak model's answer was as good,
which is a reason to call the weak model, so no share of it counts for strong.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from prefroute.data.labels import LABELS
from prefroute.embed._util import as_texts, batches
from prefroute.embed.paths import TRAIN_EXTRA_HINT
from prefroute.embed.quiet import quiet_transformers
from prefroute.errors import ArtifactError, DataError, InvalidParameterError
from prefroute.onnx_models import (
    export_onnx,
    inference_session,
    load_tokenizer,
    quantize_int8,
    run_by_length,
)
from prefroute.routers.base import DEFAULT_STRONG, DEFAULT_WEAK, ParameterTable, Router
from prefroute.routers.params import Interval

if TYPE_CHECKING:
    import re

    import polars as pl
    from rich.console import Console

    from prefroute.data.schema import Battles

TOKENIZER_FILE = "tokenizer.json"


# -- serving -------------------------------------------------------------------------


SEPARATOR = " ... "
"""Text put between a long prompt's head and tail, so the model sees that a middle is left out."""


@dataclass(frozen=True)
class Framing:
    """How a prompt becomes model input: ``prefix_ids + prompt tokens + suffix_ids``.

    A prompt of more than ``head_length + tail_length`` tokens keeps its first
    ``head_length`` and its last ``tail_length``, joined by ``separator_ids``:
    few-shot and templated prompts put the question last, where a head alone
    never reaches. Kept as ids, so serving needs no chat template. An artifact
    written before tails existed stores ``max_length`` alone: its head, no tail.
    """

    prefix_ids: tuple[int, ...]
    suffix_ids: tuple[int, ...]
    head_length: int
    tail_length: int = 0
    separator_ids: tuple[int, ...] = ()

    @property
    def truncation(self) -> int | None:
        """Where a tokenizer may stop reading: after the head, unless a tail is kept."""
        return None if self.tail_length else self.head_length

    def cut(self, ids: list[int]) -> list[int]:
        """A prompt's token ids as the model reads them (head, separator, tail)."""
        if len(ids) <= self.head_length + self.tail_length:
            return ids
        if not self.tail_length:
            return ids[: self.head_length]
        return [*ids[: self.head_length], *self.separator_ids, *ids[-self.tail_length :]]

    def frame(self, ids: list[int]) -> list[int]:
        """A prompt's token ids (no special tokens) as model input: framed and cut."""
        return [*self.prefix_ids, *self.cut(ids), *self.suffix_ids]

    def encode(self, tokenizer: Any, prompts: Sequence[str]) -> list[list[int]]:
        """Token ids of each prompt, framed and cut; ``tokenizer`` may truncate at
        ``truncation`` (it saves tokenising what is cut anyway)."""
        return [
            self.frame(e.ids)
            for e in tokenizer.encode_batch(list(prompts), add_special_tokens=False)
        ]

    def describe(self, lengths: Sequence[int]) -> str:
        """What the cut does to prompts of ``lengths`` tokens, for progress lines."""
        counts = np.asarray(lengths, dtype=np.int64)
        cut = int((counts > self.head_length + self.tail_length).sum())
        kept = f"first {self.head_length}" + (
            f" + last {self.tail_length}" if self.tail_length else ""
        )
        median = int(np.median(counts)) if len(counts) else 0
        return f"median {median} tokens; {cut:,} longer prompts cut to their {kept} tokens"

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, info: dict[str, Any]) -> Framing:
        return cls(
            prefix_ids=tuple(info["prefix_ids"]),
            suffix_ids=tuple(info["suffix_ids"]),
            head_length=int(info["head_length"] if "head_length" in info else info["max_length"]),
            tail_length=int(info.get("tail_length", 0)),
            separator_ids=tuple(info.get("separator_ids", ())),
        )


class LabelHead:
    """Prompts -> P(label) with tokenizers and onnxruntime only (no torch).

    Prompts are sorted by length and batched ``batch_size`` at a time.
    """

    CHUNK = 1024  # prompts tokenised at a time: bounds memory on large batch files

    def __init__(
        self,
        model: Path,
        tokenizer: Path,
        framing: Framing,
        *,
        batch_size: int = 32,
        num_threads: int | None = None,
    ) -> None:
        self.model_path = Path(model)
        self.framing = framing
        self.batch_size = batch_size
        self._session = inference_session(model, num_threads)
        self._tokenizer = load_tokenizer(tokenizer, framing.truncation)

    def probabilities(self, prompts: Sequence[str]) -> np.ndarray:
        """Softmax over the label logits, shape (len(prompts), 3), columns as ``LABELS``."""
        texts = as_texts(prompts)
        logits = np.empty((len(texts), len(LABELS)), dtype=np.float64)
        for part in batches(len(texts), self.CHUNK):
            ids = self.framing.encode(self._tokenizer, texts[part])
            logits[part] = run_by_length(self._session, ids, self.batch_size)
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def strong_win_rate(self, prompts: Sequence[str]) -> np.ndarray:
        """P(label = strong) per prompt, float32 in [0, 1]."""
        return np.clip(self.probabilities(prompts)[:, 0], 0.0, 1.0).astype(np.float32)


# -- the router ----------------------------------------------------------------------


class FitLog:
    """What a long fit says on stderr: each phase while it runs (a spinner on a
    terminal) and, done, one line with what it found and how long it took.

    The lines also reach logs and pipes, where rich draws no spinner or bar, so a
    25-minute ``prefroute train classifier`` is never silent. ``verbose=False``
    says nothing.
    """

    def __init__(self, verbose: bool) -> None:
        from rich.console import Console

        self.console: Console | None = (
            Console(stderr=True, highlight=False, soft_wrap=True) if verbose else None
        )

    @contextmanager
    def phase(self, doing: str) -> Iterator[list[str]]:
        """Show ``doing`` while the block runs; what the block appends to the list it
        gets is said on the closing line."""
        found: list[str] = []
        if self.console is None:
            yield found
            return
        started = time.perf_counter()
        with self.console.status(f"{doing} ..."):
            yield found
        detail = f": {'; '.join(found)}" if found else ""
        self.console.print(
            f"{doing}{detail} ({clock(time.perf_counter() - started)})", markup=False
        )


def clock(seconds: float) -> str:
    """``4.2 s`` under a minute, else ``25:07`` (or ``1:02:03``)."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass(frozen=True)
class LabelNetwork:
    """What a ``LabelHeadRouter`` subclass builds: all that differs between the kinds."""

    module: Any
    """``(input_ids, attention_mask) -> (n, 3)`` logits over ``LABELS`` (torch), with
    only the parameters to fine-tune requiring grad."""
    tokenizer: Any
    """The artifact's ``tokenizers.Tokenizer`` (``framing`` cuts what it reads)."""
    framing: Framing
    name: str
    """What is fine-tuned, for the progress line."""
    keep_fp32: re.Pattern[str] | None
    """MatMuls an int8 export keeps fp32 (``prefroute.onnx_models``)."""
    pad_id: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    """Facts about the network for router.json's ``training``."""


@dataclass(frozen=True)
class _Tiers:
    """A parameter constraint: a non-empty list (or tuple) of tier numbers, ints >= 1."""

    def accepts(self, value: Any) -> bool:
        return (
            isinstance(value, list | tuple)
            and len(value) > 0
            and all(isinstance(t, int) and not isinstance(t, bool) and t >= 1 for t in value)
        )

    def __str__(self) -> str:
        return "a non-empty list of ints >= 1"


class LabelHeadRouter(Router):
    """A router learned by fine-tuning a network to predict the battle label of a prompt.

    ``fit(battles)`` fits model tiers on the battles given, keeps battles of a
    strong-class against a weak-class model (``prefroute.data.labels.preference_labels``),
    turns them into one soft target per distinct prompt and trains on a seeded
    sample of at most ``max_examples`` prompts. ``fit_labels(frame)`` starts from a
    ready ``prompt, label[, weight]`` frame instead, for labels made another way:
    other tiers (``tier_labels(ts.battles, ts.tiers())`` for a ``TrainingSet``'s),
    hand labels, an LLM judge's.

    ``_train`` is the one training recipe (tokenise, fine-tune, export); a subclass
    gives only its network, in ``_build``.
    """

    model_file: ClassVar[str]
    added_params: ClassVar[dict[str, Any]] = {"tail_length": 0, "verbose": True}
    _parameter_constraints: ClassVar[ParameterTable] = {
        "max_examples": [Interval(int, 1, None), None],
        "epochs": [Interval(int, 1, None)],
        "max_length": [Interval(int, 1, None)],
        "tail_length": [Interval(int, 0, None)],
        "batch_size": [Interval(int, 1, None)],
        "lr": [Interval(float, 0, None, closed="neither")],
        "quantize": [bool],
        "strong_tiers": [_Tiers()],
        "weak_tiers": [_Tiers()],
        "verbose": [bool],
    }

    def __init__(
        self,
        *,
        max_examples: int | None,
        epochs: int,
        max_length: int,
        tail_length: int,
        batch_size: int,
        lr: float,
        quantize: bool,
        strong_tiers: Sequence[int] = (1, 2),
        weak_tiers: Sequence[int] = (3,),
        strong_model: str = DEFAULT_STRONG,
        weak_model: str = DEFAULT_WEAK,
        random_state: int | None = 0,
        verbose: bool = True,
    ) -> None:
        super().__init__(
            strong_model=strong_model, weak_model=weak_model, random_state=random_state
        )
        self.max_examples = max_examples
        self.epochs = epochs
        self.max_length = max_length
        self.tail_length = tail_length
        self.batch_size = batch_size
        self.lr = lr
        self.quantize = quantize
        self.strong_tiers = strong_tiers
        self.weak_tiers = weak_tiers
        self.verbose = verbose

    def _validate_params(self) -> None:
        super()._validate_params()
        if self.tail_length > self.max_length:
            raise InvalidParameterError(
                f"{type(self).__name__}: parameter 'tail_length' must be an int in "
                f"[0, max_length={self.max_length}], got {self.tail_length!r}"
            )

    # ------------------------------------------------------------------ learning
    def fit(self, battles: Battles) -> LabelHeadRouter:
        """Learn from strong-class vs weak-class battles; returns self."""
        from prefroute.data.labels import preference_labels
        from prefroute.data.schema import Battles

        self._begin_fit()
        if not isinstance(battles, Battles):
            raise TypeError(
                f"fit() takes Battles, got {type(battles).__name__}"
                + (": pass its .battles" if hasattr(battles, "battles") else "")
            )
        log = FitLog(self.verbose)
        with log.phase(f"labelling prompts: model tiers from {len(battles):,} battles") as found:
            labels = preference_labels(
                battles,
                strong_model=self.strong_model,
                weak_model=self.weak_model,
                strong_tiers=self.strong_tiers,
                weak_tiers=self.weak_tiers,
                random_state=self.random_state,
            )
            found.append(f"{len(labels):,} battles of a strong-class vs a weak-class model")
        return self._fit_labels(labels, log)

    def fit_labels(self, labels: pl.DataFrame) -> LabelHeadRouter:
        """Learn from a ``prompt, label[, weight]`` frame (``tier_labels``'s shape), labels
        in ``LABELS``; returns self."""
        self._begin_fit()
        return self._fit_labels(labels, FitLog(self.verbose))

    def _fit_labels(self, labels: pl.DataFrame, log: FitLog) -> LabelHeadRouter:
        from prefroute.data.labels import soft_targets

        prompts, targets = soft_targets(labels)
        if not prompts:
            raise DataError(
                "no battle of a strong-class model against a weak-class model to learn from: "
                f"check strong_tiers={tuple(self.strong_tiers)}, weak_tiers="
                f"{tuple(self.weak_tiers)}, or that the data holds battles of "
                f"{self.strong_model!r} vs {self.weak_model!r}"
            )
        available = len(prompts)
        rng = np.random.default_rng(self.random_state)
        if self.max_examples is not None and available > self.max_examples:
            keep = np.sort(rng.choice(available, self.max_examples, replace=False))
            prompts, targets = [prompts[i] for i in keep], targets[keep]
        work = tempfile.TemporaryDirectory(prefix=f"prefroute-{self.kind}-")
        started = time.perf_counter()
        framing, info = self._train(prompts, targets, Path(work.name), log)
        self._work = work  # keeps the exported files until save() copies them
        self.framing_ = framing
        self.training_ = {
            "examples": len(prompts),
            "prompts_available": available,
            "seconds": round(time.perf_counter() - started, 1),
            **info,
        }
        self.head_ = self._head(Path(work.name), framing)
        return self

    def _train(
        self, prompts: list[str], targets: np.ndarray, out_dir: Path, log: FitLog
    ) -> tuple[Framing, dict[str, Any]]:
        """Fine-tune ``_build``'s network on ``prompts`` (soft ``targets`` over
        ``LABELS``) and export it as ``out_dir/model_file``; return the framing and
        facts about the run for router.json.

        The network is built inside a forked torch RNG seeded with ``random_state``,
        so new layers (the classifier's head) start the same every fit and the
        caller's global torch seed is left alone.
        """
        seed = 0 if self.random_state is None else int(self.random_state)
        with log.phase("loading torch and the base model") as found:
            torch = import_torch()
            with torch.random.fork_rng(devices=[]), quiet_transformers():
                torch.manual_seed(seed)
                net = self._build(torch, out_dir)
            weights = list(net.module.parameters())
            trained = [w for w in weights if w.requires_grad]
            found.append(f"{net.name}, {_count(weights):,} weights, {_count(trained):,} trained")
        with log.phase(f"tokenising {len(prompts):,} prompts") as found:
            tokens = [e.ids for e in net.tokenizer.encode_batch(prompts, add_special_tokens=False)]
            ids = [net.framing.frame(t) for t in tokens]
            found.append(net.framing.describe([len(t) for t in tokens]))
        info = train_label_model(
            net.module,
            ids,
            targets,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            random_state=seed,
            description=f"fine-tuning {net.name} on {len(ids):,} prompts",
            pad_id=net.pad_id,
            console=log.console,
        )
        info |= export_label_model(
            net.module,
            out_dir,
            self.model_file,
            quantize=self.quantize,
            keep_fp32=net.keep_fp32,
            log=log,
        )
        return net.framing, {**net.info, **info}

    def _build(self, torch: Any, out_dir: Path) -> LabelNetwork:
        """The network to fine-tune, its trainable parts chosen, and how prompts reach it;
        writes ``tokenizer.json`` into ``out_dir`` (``_copy_tokenizer``)."""
        raise NotImplementedError

    def _copy_tokenizer(self, source: Path, out_dir: Path) -> Any:
        """Copy ``source``'s tokenizer.json into the artifact and load it, reading whole
        prompts (``Framing.cut`` keeps the head and tail)."""
        shutil.copyfile(source / TOKENIZER_FILE, out_dir / TOKENIZER_FILE)
        return load_tokenizer(out_dir / TOKENIZER_FILE, None)

    def _framing(self, tokenizer: Any, prefix: Sequence[int], suffix: Sequence[int]) -> Framing:
        """``prefix + prompt + suffix`` ids, the prompt cut to ``max_length`` tokens of
        which the last ``tail_length`` come from its end."""
        return Framing(
            prefix_ids=tuple(prefix),
            suffix_ids=tuple(suffix),
            head_length=int(self.max_length) - int(self.tail_length),
            tail_length=int(self.tail_length),
            separator_ids=tuple(tokenizer.encode(SEPARATOR, add_special_tokens=False).ids)
            if self.tail_length
            else (),
        )

    # ------------------------------------------------------------------- scoring
    def strong_win_rate(self, prompts: Sequence[str]) -> np.ndarray:
        self.check_is_fitted()
        return self.head_.strong_win_rate(prompts)

    def label_probabilities(self, prompts: Sequence[str]) -> np.ndarray:
        """P(strong wins), P(tie), P(weak wins) per prompt, shape (n, 3)."""
        self.check_is_fitted()
        return self.head_.probabilities(prompts)

    def _head(self, root: Path, framing: Framing) -> LabelHead:
        for name in (self.model_file, TOKENIZER_FILE):
            if not (root / name).is_file():
                raise ArtifactError(f"{root}: {name} is missing; the artifact is incomplete")
        # NOTE: dynamic int8 scales activations over the whole batch, so in a batch
        # a prompt's score would move with its companions; int8 graphs score one
        # prompt per run, and a prompt always gets the same score.
        batch_size = 1 if self.quantize else self.batch_size
        return LabelHead(
            root / self.model_file, root / TOKENIZER_FILE, framing, batch_size=batch_size
        )

    # --------------------------------------------------------------- persistence
    def save(self, path: str | Path) -> Path:
        """Copy the ONNX graph and tokenizer in first, so a readable router.json
        always means a complete artifact."""
        self.check_is_fitted()
        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        source = self.head_.model_path.parent
        for name in (self.model_file, TOKENIZER_FILE):
            if not (root / name).exists() or not (root / name).samefile(source / name):
                shutil.copyfile(source / name, root / name)
        return super().save(root)

    def _state(self) -> dict[str, Any]:
        return {
            "model_file": self.model_file,
            "labels": list(LABELS),
            "framing": self.framing_.to_json(),
            "training": self.training_,
        }

    def _restore(self, arrays: dict[str, np.ndarray], state: dict[str, Any], root: Path) -> None:
        if state.get("labels") != list(LABELS) or state.get("model_file") != self.model_file:
            raise ArtifactError(
                f"{root}: expected a {self.kind} graph {self.model_file} over labels "
                f"{list(LABELS)}, found {state.get('model_file')} over {state.get('labels')}"
            )
        self.framing_ = Framing.from_json(state["framing"])
        self.training_ = state.get("training", {})
        self.head_ = self._head(root, self.framing_)


# -- training (torch: the train extra) -------------------------------------------------


def import_torch() -> Any:
    """torch, or an error naming the extra that provides it."""
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"training this router needs torch and transformers: {TRAIN_EXTRA_HINT}"
        ) from None
    return torch


def length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[Any]:
    """Shuffled batches of similar-length rows: sorted within random pools of 50 batches,
    so padding stays small while each batch is still a random draw."""
    order = rng.permutation(len(lengths))
    pool = 50 * batch_size
    out: list[np.ndarray] = []
    for start in range(0, len(order), pool):
        chunk = order[start : start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        out.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [out[i] for i in rng.permutation(len(out))]


def train_only(module: Any, layers: Sequence[Any], count: int | None, *also: Any) -> None:
    """Freeze ``module`` except the top ``count`` of ``layers`` and ``also``; None trains all.

    ``count`` is within ``0..len(layers)``: the routers' parameter tables check it
    before the model is loaded."""
    if count is None:
        return
    module.requires_grad_(False)
    for part in [*list(layers)[len(layers) - count :], *also]:
        part.requires_grad_(True)


def train_label_model(
    module: Any,
    ids: list[list[int]],
    targets: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    random_state: int | None,
    description: str,
    pad_id: int = 0,
    console: Console | None = None,
) -> dict[str, Any]:
    """Fit ``module(input_ids, attention_mask) -> (n, 3) logits`` to soft ``targets``.

    AdamW (weight decay 0.01) on the parameters that require grad, linear warm-up
    over the first 6% of steps then linear decay, gradient norm clipped at 1.
    Right-padded batches of similar lengths. Seeded with ``random_state`` inside a
    forked torch RNG, so the caller's global torch seed is left alone.

    Progress goes to ``console`` (None: silent): a bar with the smoothed loss and
    the time left on a terminal; elsewhere (a log, a pipe) a line every tenth of
    the steps; and a closing line either way.
    """
    torch = import_torch()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    seed = 0 if random_state is None else int(random_state)
    rng = np.random.default_rng(seed)
    lengths = np.array([len(row) for row in ids])
    plan = [length_batches(lengths, batch_size, rng) for _ in range(epochs)]
    total = sum(len(p) for p in plan)
    warmup = max(1, math.ceil(0.06 * total))
    params = [p for p in module.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda step: min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup))),
    )
    target = torch.from_numpy(np.asarray(targets, dtype=np.float32))
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    smoothed = float("nan")
    lines = console is not None and not console.is_terminal
    every = max(1, math.ceil(total / 10))
    started = time.perf_counter()
    bar = Progress(*columns, console=console, disable=console is None or lines)
    with torch.random.fork_rng(devices=[]), bar:
        torch.manual_seed(seed)
        task = bar.add_task(description, total=total, loss=float("nan"))
        module.train()
        step = 0
        for epoch, epoch_plan in enumerate(plan, 1):
            for rows in epoch_plan:
                width = int(lengths[rows].max())
                input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(rows), width), dtype=torch.long)
                for r, i in enumerate(rows):
                    input_ids[r, : lengths[i]] = torch.tensor(ids[i])
                    mask[r, : lengths[i]] = 1
                logits = module(input_ids, mask)
                loss = -(target[rows] * torch.log_softmax(logits, dim=-1)).sum(-1).mean()
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimiser.step()
                schedule.step()
                value = float(loss.detach())
                smoothed = value if math.isnan(smoothed) else 0.95 * smoothed + 0.05 * value
                bar.update(task, advance=1, loss=smoothed)
                step += 1
                if lines and console is not None and step % every == 0 and step < total:
                    elapsed = time.perf_counter() - started
                    console.print(
                        f"{description}: step {step:,}/{total:,} (epoch {epoch}/{epochs}), "
                        f"loss {smoothed:.4f}, {clock(elapsed)} elapsed, "
                        f"~{clock(elapsed / step * (total - step))} left",
                        markup=False,
                    )
    module.eval()
    if console is not None:
        console.print(
            f"{description}: {total:,} steps, final loss {smoothed:.4f} "
            f"({clock(time.perf_counter() - started)})",
            markup=False,
        )
    return {"steps": total, "final_loss": round(smoothed, 4), "trained_params": _count(params)}


def export_label_model(
    module: Any,
    out_dir: Path,
    model_file: str,
    *,
    quantize: bool,
    keep_fp32: re.Pattern[str] | None,
    log: FitLog | None = None,
) -> dict[str, Any]:
    """Write ``module`` as ``out_dir/model_file`` (ONNX, logits output), int8 if ``quantize``."""
    torch = import_torch()
    log = log or FitLog(False)
    fp32 = out_dir / f"{Path(model_file).stem}-fp32.onnx"
    with log.phase("exporting to ONNX") as found:
        export_onnx(torch, module.eval(), fp32, "logits")
        found.append(f"fp32, {_megabytes(fp32)}")
    kept: list[str] = []
    if quantize:
        with log.phase("quantising to int8") as found:
            kept = quantize_int8(fp32, out_dir / model_file, keep_fp32=keep_fp32)
            fp32.unlink()
            found.append(
                f"{_megabytes(out_dir / model_file)}, {len(kept)} feed-forward outputs kept fp32"
            )
    else:
        os.replace(fp32, out_dir / model_file)
    return {"precision": "int8" if quantize else "fp32", "fp32_matmuls_in_int8": len(kept)}


def _megabytes(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.1f} MB"


def _count(params: Sequence[Any]) -> int:
    return int(sum(p.numel() for p in params))
