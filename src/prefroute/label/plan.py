"""One ``prefroute label`` command as data: what to label, how, and what each call sends.

``Job`` holds the command's choices; the request bodies are built here, once,
for the run and for the dry-run estimate alike, so the estimate prices exactly
the calls the run would make and finds exactly the calls the store already has.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from prefroute.errors import ConfigError
from prefroute.prices import PAPER_MIX, Price

Mode = Literal["pairwise", "single"]
MODES: tuple[Mode, ...] = ("pairwise", "single")
JUDGE_REPLY_TOKENS = 150
"""What the estimate assumes a judge writes: the prompt asks for at most five
sentences of reasons, then the verdict."""


@dataclass(frozen=True)
class Job:
    """The choices of one label run; ``store`` defaults to ``<out>.calls.sqlite``.

    ``answer_tokens`` is only what the dry-run estimate assumes an answer's
    length to be (default: the paper's typical answer, 264 tokens); the calls
    themselves are capped by ``max_tokens`` and ``judge_max_tokens``.
    """

    prompts: Path
    out: Path
    mode: Mode = "pairwise"
    answers: Path | None = None
    store: Path | None = None
    keep_answers: bool = False
    max_cost: float | None = None
    prices: tuple[Path, ...] = ()
    concurrency: int = 16
    rpm: float | None = None
    seed: int = 0
    temperature: float = 0.0
    max_tokens: int = 1024
    judge_max_tokens: int = 1024
    answer_tokens: int = round(PAPER_MIX.output_tokens)

    def __post_init__(self) -> None:
        checks = [
            ("--mode", self.mode in MODES, f"one of {', '.join(MODES)}", self.mode),
            ("--concurrency", self.concurrency >= 1, "at least 1", self.concurrency),
            ("--rpm", self.rpm is None or self.rpm > 0, "a number > 0", self.rpm),
            ("--max-cost", self.max_cost is None or self.max_cost >= 0, ">= 0", self.max_cost),
            ("--temperature", 0 <= self.temperature <= 2, "between 0 and 2", self.temperature),
            ("--max-tokens", self.max_tokens >= 1, "at least 1", self.max_tokens),
            (
                "--judge-max-tokens",
                self.judge_max_tokens >= 1,
                "at least 1",
                self.judge_max_tokens,
            ),  # fmt: skip
            ("--answer-tokens", self.answer_tokens >= 0, ">= 0", self.answer_tokens),
        ]
        for flag, ok, expected, got in checks:
            if not ok:
                raise ConfigError(f"{flag}: expected {expected}, got {got!r}")

    @property
    def store_path(self) -> Path:
        return self.store or self.out.with_name(self.out.name + ".calls.sqlite")

    def answer_body(self, model: str, messages: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """What a model is asked to answer a prompt with."""
        return {
            "model": model,
            "messages": list(messages),
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
        }

    def judge_body(self, model: str, messages: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """What the judge is asked with: temperature 0, as MT-Bench and Arena-Hard judge."""
        return {
            "model": model,
            "messages": list(messages),
            "temperature": 0.0,
            "max_tokens": self.judge_max_tokens,
            "seed": self.seed,
        }


@dataclass
class RoleCalls:
    """One role's calls and their tokens and $: estimated (``--dry-run``) or used (a run).

    ``cached`` counts calls the store already has, which cost nothing.
    """

    role: str
    model: str
    price: Price | None
    calls: int = 0
    cached: int = 0
    input_tokens: float = 0
    output_tokens: float = 0

    @property
    def cost(self) -> float | None:
        """$ at ``price``; None when the model has no price."""
        if self.price is None:
            return None
        return self.price.cost(self.input_tokens, self.output_tokens)

    def add(self, input_tokens: float, output_tokens: float) -> None:
        self.calls += 1
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens
