"""``prefroute label --dry-run``: the tokens and $ a run will cost, before any call.

Input tokens are counted from the very requests the run would send (the same
builders, ``plan.Job``), by ``prefroute.tokens``' rule rather than a tokenizer.

What no rule can know is how long the answers will be: the estimate assumes
``Job.answer_tokens`` per answer (given answers are counted as they are) and
``JUDGE_REPLY_TOKENS`` per verdict, and says so. Calls already in the store are
free and counted apart; verdict retries (an unparseable reply, asked once more)
are not foreseen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from prefroute.errors import UnknownPriceError
from prefroute.label.inputs import NO_ANSWERS, read_answers, read_label_prompts
from prefroute.label.judge import grade_messages, pairwise_messages, render_conversation
from prefroute.label.plan import JUDGE_REPLY_TOKENS, Job, RoleCalls
from prefroute.label.settings import ANSWERING, ROLES, LabelSettings, Role
from prefroute.label.store import CallStore, request_key
from prefroute.prices import price_table
from prefroute.tokens import message_tokens


@dataclass(frozen=True)
class Estimate:
    """Per-role calls, tokens and $ of a run, and what was assumed to get them."""

    prompts: int
    answers_given: int
    roles: tuple[RoleCalls, ...]
    answer_tokens: int

    @property
    def cost(self) -> float:
        return sum(r.cost or 0.0 for r in self.roles)

    @property
    def input_tokens(self) -> float:
        return sum(r.input_tokens for r in self.roles)

    @property
    def output_tokens(self) -> float:
        return sum(r.output_tokens for r in self.roles)

    def lines(self) -> list[str]:
        """The estimate as the CLI prints it."""
        out = [f"dry run: {self.prompts:,} prompts, {self.answers_given:,} answers given"]
        for r in self.roles:
            out.append(
                f"  {r.role:<6} {r.model}: {r.calls:,} calls ({r.cached:,} more in the store, "
                f"free), ~{r.input_tokens:,.0f} input + ~{r.output_tokens:,.0f} output tokens, "
                f"~${r.cost or 0:,.4f} at {r.price}"
            )
        out.append(
            f"  total ~${self.cost:,.4f}, assuming {self.answer_tokens} tokens an answer "
            f"(--answer-tokens) and {JUDGE_REPLY_TOKENS} a verdict; unparseable verdicts "
            "asked again would add to it"
        )
        return out


def estimate(job: Job, settings: LabelSettings) -> Estimate:
    """Estimate ``job`` without calling anyone; a role with calls and no price is an error."""
    prompts = read_label_prompts(job.prompts, settings.turns)
    given = read_answers(job.answers) if job.answers else NO_ANSWERS
    table = price_table(job.prices)
    roles = {
        role: RoleCalls(
            role,
            settings.model(role),
            settings.upstream(role).price(settings.model(role), table),
        )
        for role in ROLES
    }
    store = CallStore(job.store_path) if job.store_path.exists() else None
    answers_given = 0
    try:
        for prompt in prompts:
            answers: dict[Role, str | None] = {}
            for role in ANSWERING:
                text = given.get(prompt, roles[role].model)
                answers_given += text is not None
                if text is None:
                    body = job.answer_body(roles[role].model, prompt.messages)
                    stored = store.get(request_key(body)) if store else None
                    if stored is not None:
                        roles[role].cached += 1
                        text = stored.content
                    else:
                        roles[role].add(message_tokens(body["messages"]), job.answer_tokens)
                answers[role] = text
            _judge_calls(job, roles["judge"], prompt.messages, answers, store)
    finally:
        if store is not None:
            store.close()
    unpriced = [r.model for r in roles.values() if r.calls and r.price is None]
    if unpriced:
        raise UnknownPriceError(unpriced, table.sources)
    return Estimate(len(prompts), answers_given, tuple(roles.values()), job.answer_tokens)


def _judge_calls(
    job: Job,
    judge: RoleCalls,
    messages: Sequence[dict[str, Any]],
    answers: dict[Role, str | None],
    store: CallStore | None,
) -> None:
    conversation = render_conversation(messages)
    strong, weak = answers["strong"], answers["weak"]
    placeholder = ""
    if job.mode == "pairwise":
        requests = [
            pairwise_messages(conversation, strong or placeholder, weak or placeholder),
            pairwise_messages(conversation, weak or placeholder, strong or placeholder),
        ]
    else:
        requests = [grade_messages(conversation, a or placeholder) for a in (strong, weak)]
    unknown = [a is None for a in (strong, weak)]
    for n, request in enumerate(requests):
        missing = sum(unknown) if job.mode == "pairwise" else int(unknown[n])
        body = job.judge_body(judge.model, request)
        if not missing and store is not None and store.get(request_key(body)) is not None:
            judge.cached += 1
            continue
        judge.add(message_tokens(request) + missing * job.answer_tokens, JUDGE_REPLY_TOKENS)
