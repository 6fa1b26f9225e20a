"""The label pipeline: answers, verdicts, battles, as many at once as the upstreams allow.

For each prompt both models answer (or the user's answers are used), then the
judge compares them in both orders (or grades each). Every call goes through
the store first: a call it has is not sent again, and a call that returns is
stored before anything else happens, so running the same command again
resumes where a crash left off. Prompts run concurrently, up to a window a
few times the upstreams' call slots, so the lanes stay full while memory stays
bounded; rows are written in prompt order (not completion order) to a
temporary file renamed over ``--out`` at the end, so the same inputs and
store give the same bytes, and ``--out`` is never half written.

Nothing is dropped silently: a verdict that does not parse is asked again
once, then reported with its prompt id (and the judge's reply, in
``<out>.failures.jsonl``); a call that fails after its retries is reported
the same way and is retried by the next run; ``--max-cost`` stops the run
before a call could take its spending past the limit.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from prefroute.errors import CostLimitError, UnknownPriceError, UpstreamError, UpstreamRefusedError
from prefroute.label.calls import Caller
from prefroute.label.inputs import (
    NO_ANSWERS,
    GivenAnswers,
    LabelPrompt,
    read_answers,
    read_label_prompts,
)
from prefroute.label.judge import (
    GRADE_VERSION,
    PAIRWISE_VERSION,
    combine,
    grade_messages,
    pairwise_messages,
    parse_grade,
    parse_verdict,
    reminder_messages,
    render_conversation,
)
from prefroute.label.plan import Job, RoleCalls
from prefroute.label.settings import ANSWERING, ROLES, LabelSettings, Role
from prefroute.label.store import CallStore, StoredCall, request_key
from prefroute.prices import Price, price_table
from prefroute.tokens import message_tokens, text_tokens

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

RESERVE_INPUT_FACTOR = 1.25
"""``--max-cost`` holds back, for each call in flight, its price at 1.25x the estimated
input tokens and the full ``max_tokens`` of output: the most it could cost."""
WINDOW_PER_SLOT = 1
"""Prompts in flight per call slot. A prompt has at most two calls out at once (both
answers, or both verdicts), so one prompt per slot keeps every slot busy."""


@dataclass(frozen=True)
class Failure:
    """A prompt that got no row, or fewer rows than it should: which call, and why."""

    prompt_id: str
    call: str
    reason: str
    reply: str | None = None


@dataclass
class Summary:
    """What a run did: the CLI prints ``lines()``; ``complete`` says whether to run again."""

    out: Path
    mode: str
    prompts: int
    rows: int = 0
    labelled: int = 0
    wins: Counter[str] = field(default_factory=Counter)
    grades: dict[str, list[float]] = field(default_factory=dict)
    parse_failures: list[Failure] = field(default_factory=list)
    call_failures: list[Failure] = field(default_factory=list)
    not_started: int = 0
    unfinished: int = 0
    stopped: str | None = None
    refused: str | None = None
    cached: int = 0
    answers_given: int = 0
    asked_again: int = 0
    rate_limited: int = 0
    usage_missing: int = 0
    usage: dict[Role, RoleCalls] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def calls(self) -> int:
        return sum(u.calls for u in self.usage.values())

    @property
    def cost(self) -> float:
        return sum(u.cost or 0.0 for u in self.usage.values())

    @property
    def complete(self) -> bool:
        """Every prompt either has its rows or a reported parse failure."""
        return not (self.call_failures or self.not_started or self.unfinished or self.stopped)

    def lines(self) -> list[str]:
        rate = self.calls / self.seconds if self.seconds else 0.0
        lines = [
            f"labelled {self.labelled:,} of {self.prompts:,} prompts: {self.rows:,} rows in "
            f"{self.out} ({self.mode})",
            "  "
            + ", ".join(
                [f"{name} won {n:,}" for name, n in self.wins.most_common()]
                + [f"{m} graded {sum(g) / len(g):.2f} on average" for m, g in self.grades.items()]
            ),
            f"  calls: {self.calls:,} made ({rate:,.0f}/s, {self.rate_limited:,} rate-limited "
            f"waits), {self.cached:,} from the store, {self.answers_given:,} answers given; "
            f"{self.asked_again:,} unparseable replies asked again",
        ]
        for role, u in self.usage.items():
            cost = "$ unknown (no price)" if u.cost is None else f"${u.cost:,.4f}"
            lines.append(
                f"  {role:<6} {u.model}: {u.calls:,} calls, {u.input_tokens:,.0f} input + "
                f"{u.output_tokens:,.0f} output tokens, {cost}"
            )
        lines.append(f"  spent ${self.cost:,.4f} this run in {self.seconds:,.1f} s")
        if self.usage_missing:
            lines.append(
                f"  {self.usage_missing:,} replies came without token counts; their tokens "
                "and $ are estimated"
            )
        for label, failures in (
            ("replies that did not parse", self.parse_failures),
            ("calls that failed", self.call_failures),
        ):
            if failures:
                prompt_ids = list(dict.fromkeys(f.prompt_id for f in failures))
                ids = ", ".join(prompt_ids[:10])
                more = f" and {len(prompt_ids) - 10:,} more" if len(prompt_ids) > 10 else ""
                lines.append(
                    f"  {len(failures):,} {label} (prompts {ids}{more}); every one is in "
                    f"{failures_path(self.out)}"
                )
        if self.stopped:
            lines.append(
                f"  stopped: {self.stopped}; {self.unfinished:,} prompts left unfinished, "
                f"{self.not_started:,} not started"
            )
        if not self.complete:
            lines.append("  run the same command again to finish: finished calls are not repeated")
        return lines


def failures_path(out: Path) -> Path:
    return out.with_name(out.name + ".failures.jsonl")


def label(job: Job, settings: LabelSettings, *, console: Console | None = None) -> Summary:
    """Run ``job``: read the prompts, make (or reuse) every call, write ``job.out``."""
    prompts = read_label_prompts(job.prompts, settings.turns)
    given = read_answers(job.answers) if job.answers else NO_ANSWERS
    table = price_table(job.prices)
    prices = {r: settings.upstream(r).price(settings.model(r), table) for r in ROLES}
    if job.max_cost is not None:
        for role, price in prices.items():
            if price is None:
                raise UnknownPriceError(settings.model(role), [*table.sources, "--config"])
    with CallStore(job.store_path) as store:
        run = _Run(job, settings, prompts, given, store, prices)
        return asyncio.run(run.main(console))


class _Run:
    def __init__(
        self,
        job: Job,
        settings: LabelSettings,
        prompts: Sequence[LabelPrompt],
        given: GivenAnswers,
        store: CallStore,
        prices: dict[Role, Price | None],
    ) -> None:
        self.job = job
        self.settings = settings
        self.prompts = prompts
        self.given = given
        self.store = store
        self.prices = prices
        self.models = {role: settings.model(role) for role in ROLES}
        self.summary = Summary(
            job.out,
            job.mode,
            len(prompts),
            usage={role: RoleCalls(role, self.models[role], prices[role]) for role in ROLES},
        )
        self.reserved = 0.0
        self.stopping: str | None = None
        """Why no new prompt starts; prompts under way still make calls that fit --max-cost."""
        self.refused: str | None = None
        """An upstream refused a call: no call is sent any more."""
        self._rows: dict[int, list[bytes]] = {}
        self._sending: dict[str, asyncio.Future[StoredCall]] = {}
        self._next_row = 0

    async def main(self, console: Console | None) -> Summary:
        started = time.perf_counter()
        upstreams = {role: self.settings.upstream(role) for role in ROLES}
        lanes = len({u.base_url for u in upstreams.values()})
        window = self.job.concurrency * lanes * WINDOW_PER_SLOT
        tmp = self.job.out.with_name(f".{self.job.out.name}.{os.getpid()}.tmp")
        self.job.out.parent.mkdir(parents=True, exist_ok=True)
        async with Caller.make_session(self.job.concurrency * lanes) as session:
            self.caller = Caller(
                upstreams,
                session,
                concurrency=self.job.concurrency,
                rpm=self.job.rpm,
                retries=self.settings.retries,
                backoff=self.settings.backoff,
            )
            with tmp.open("wb") as self._file, _progress(console) as progress:
                task = progress.add_task("labelling", total=len(self.prompts), rate="", cost="")
                await self._all(window, progress, task, started)
        os.replace(tmp, self.job.out)
        self._write_failures()
        self.summary.rate_limited = self.caller.rate_limited
        self.summary.seconds = time.perf_counter() - started
        return self.summary

    async def _all(self, window: int, progress: Progress, task: TaskID, started: float) -> None:
        slots = asyncio.Semaphore(window)
        pending: set[asyncio.Task[None]] = set()

        def done(finished: asyncio.Task[None]) -> None:
            pending.discard(finished)
            slots.release()
            elapsed = time.perf_counter() - started
            progress.update(
                task,
                advance=1,
                rate=f"{self.summary.calls / elapsed if elapsed else 0:,.0f} calls/s",
                cost=f"${self.summary.cost:,.4f}",
            )

        for index, prompt in enumerate(self.prompts):
            await slots.acquire()
            if self.stopping:
                self.summary.not_started = len(self.prompts) - index
                break
            job = asyncio.create_task(self._one(index, prompt))
            pending.add(job)
            job.add_done_callback(done)
        while pending:
            await asyncio.gather(*list(pending))
        self._flush(final=True)
        if self.stopping:
            self.summary.stopped = self.stopping
        self.summary.refused = self.refused

    async def _one(self, index: int, prompt: LabelPrompt) -> None:
        rows: list[dict[str, Any]] = []
        try:
            rows = await self._label(prompt)
        except CostLimitError as exc:
            self.stopping = self.stopping or str(exc)
            self.summary.unfinished += 1
        except UpstreamRefusedError as exc:
            self.stopping = self.refused = str(exc)
            self.summary.unfinished += 1
        except _Stopped:
            self.summary.unfinished += 1
        except UpstreamError as exc:
            self.summary.call_failures.append(Failure(prompt.id, "call", str(exc)))
        if rows:
            self.summary.labelled += 1
            self.summary.rows += len(rows)
        self._rows[index] = [orjson.dumps(row) + b"\n" for row in rows]
        self._flush()

    async def _label(self, prompt: LabelPrompt) -> list[dict[str, Any]]:
        answers = await _all_or_raise(self._answer(role, prompt) for role in ANSWERING)
        strong, weak = answers
        conversation = render_conversation(prompt.messages)
        if self.job.mode == "single":
            grades = await _all_or_raise(
                self._judged(prompt, grade_messages(conversation, a), "grade", grade=True)
                for a in answers
            )
            rows = []
            for role, answer, (reply, grade) in zip(ANSWERING, answers, grades, strict=True):
                if grade is None:
                    self._parse_failure(prompt, f"grade of {role}", reply)
                    continue
                self.summary.grades.setdefault(self.models[role], []).append(grade)
                row: dict[str, Any] = {
                    "prompt_id": prompt.id,
                    "prompt": prompt.text,
                    "model": self.models[role],
                    "score": grade,
                    "source": "judge",
                    "judge": self.models["judge"],
                    "judge_prompt": GRADE_VERSION,
                }
                if self.job.keep_answers:
                    row["response"] = answer
                rows.append(row)
            return rows
        (reply_a, a_first), (reply_b, b_first) = await _all_or_raise(
            [
                self._judged(prompt, pairwise_messages(conversation, strong, weak), "a_first"),
                self._judged(prompt, pairwise_messages(conversation, weak, strong), "b_first"),
            ]
        )
        if a_first is None or b_first is None:
            orders = [("a_first", reply_a, a_first), ("b_first", reply_b, b_first)]
            for order, reply, verdict in orders:
                if verdict is None:
                    self._parse_failure(prompt, f"verdict {order}", reply)
            return []
        outcome = combine(str(a_first), str(b_first))
        winner = {"model_a": self.models["strong"], "model_b": self.models["weak"]}
        self.summary.wins[winner.get(outcome.winner, "nobody (tie)")] += 1
        row = {
            "prompt_id": prompt.id,
            "prompt": prompt.text,
            "model_a": self.models["strong"],
            "model_b": self.models["weak"],
            "winner": outcome.winner,
            "source": "judge",
            "judge": self.models["judge"],
            "judge_prompt": PAIRWISE_VERSION,
            "verdicts": {"a_first": a_first, "b_first": b_first},
            "strength": outcome.strength,
        }
        if self.job.keep_answers:
            row["response_a"], row["response_b"] = strong, weak
        return [row]

    async def _answer(self, role: Role, prompt: LabelPrompt) -> str:
        text = self.given.get(prompt, self.models[role])
        if text is not None:
            self.summary.answers_given += 1
            return text
        body = self.job.answer_body(self.models[role], prompt.messages)
        return (await self._call(role, body)).content

    async def _judged(
        self, prompt: LabelPrompt, messages: list[dict[str, Any]], call: str, *, grade: bool = False
    ) -> tuple[str, Any]:
        """The judge's reply and what it says (a verdict or grade), asked again once if unclear."""
        parse = parse_grade if grade else parse_verdict
        reply = await self._call("judge", self.job.judge_body(self.models["judge"], messages))
        parsed = parse(reply.content)
        if parsed is None:
            self.summary.asked_again += 1
            again = reminder_messages(messages, reply.content, grade=grade)
            reply = await self._call("judge", self.job.judge_body(self.models["judge"], again))
            parsed = parse(reply.content)
        return reply.content, parsed

    async def _call(self, role: Role, body: dict[str, Any]) -> StoredCall:
        """The stored reply to ``body``, or a new call, stored before this returns.

        Two prompts can need the same call (the same question twice in a file): the
        second waits for the first's reply instead of sending the request again.
        """
        key = request_key(body)
        stored = self.store.get(key)
        if stored is not None:
            self.summary.cached += 1
            return stored
        if key in self._sending:
            self.summary.cached += 1
            return await self._sending[key]
        self._sending[key] = sending = asyncio.ensure_future(self._send(role, key, body))
        try:
            return await sending
        finally:
            del self._sending[key]

    async def _send(self, role: Role, key: str, body: dict[str, Any]) -> StoredCall:
        if self.refused:
            raise _Stopped
        price = self.prices[role]
        reserve = self._reserve(price, body)
        try:
            reply = await self.caller.complete(role, body)
        finally:
            self.reserved -= reserve
        prompt_tokens, completion_tokens = reply.prompt_tokens, reply.completion_tokens
        if prompt_tokens is None or completion_tokens is None:
            self.summary.usage_missing += 1
            prompt_tokens = round(message_tokens(body["messages"]))
            completion_tokens = round(text_tokens(reply.content))
        cost = None if price is None else price.cost(prompt_tokens, completion_tokens)
        call = StoredCall(
            role, body["model"], reply.content, prompt_tokens, completion_tokens, cost
        )
        self.store.put(key, call)
        self.summary.usage[role].add(prompt_tokens, completion_tokens)
        return call

    def _reserve(self, price: Price | None, body: dict[str, Any]) -> float:
        """Hold back the most this call could cost, or refuse it (``CostLimitError``)."""
        if self.job.max_cost is None or price is None:
            return 0.0
        worst = price.cost(
            RESERVE_INPUT_FACTOR * message_tokens(body["messages"]), body["max_tokens"]
        )
        if self.summary.cost + self.reserved + worst > self.job.max_cost:
            raise CostLimitError(self.job.max_cost)
        self.reserved += worst
        return worst

    def _parse_failure(self, prompt: LabelPrompt, call: str, reply: str) -> None:
        self.summary.parse_failures.append(
            Failure(
                prompt.id, call, f"no {call.split()[0]} in the judge's reply, asked twice", reply
            )
        )

    def _flush(self, *, final: bool = False) -> None:
        """Write finished rows in prompt order; ``final`` writes what is left past gaps."""
        while self._next_row in self._rows or (final and self._rows):
            lines = self._rows.pop(self._next_row, [])
            self._file.write(b"".join(lines))
            self._next_row += 1

    def _write_failures(self) -> None:
        path = failures_path(self.job.out)
        failures = self.summary.parse_failures + self.summary.call_failures
        if not failures:
            path.unlink(missing_ok=True)  # a previous run's list is out of date
            return
        order = {p.id: n for n, p in enumerate(self.prompts)}
        failures.sort(key=lambda f: (order[f.prompt_id], f.call))
        with path.open("wb") as file:
            for f in failures:
                file.write(orjson.dumps(f.__dict__) + b"\n")


class _Stopped(Exception):
    """A call not sent because an upstream refused one; never leaves ``_Run``."""


async def _all_or_raise(calls: Any) -> list[Any]:
    """Await calls together; when one fails, the others still finish (and are stored)
    before the first error is raised, so a rerun does not pay for them again."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return list(results)


class _NoProgress:
    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None


def _progress(console: Console | None) -> Any:
    """A rich progress bar on ``console`` (prompts, calls/s, $ so far, ETA), or nothing."""
    if console is None:
        return _NoProgress()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[cost]}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        refresh_per_second=4,
    )
