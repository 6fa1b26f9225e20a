"""The judge: what it is asked, and how its replies become verdicts and grades.

Pairwise judging follows MT-Bench and Arena-Hard: the judge sees the
conversation and two answers and ends its reply with one verdict on
Arena-Hard's five-point scale, ``[[A>>B]]`` … ``[[B>>A]]``. Each pair is
judged twice with the answers swapped, because judges favour a position (the
first answer, mostly); the two verdicts combine into a winner only when both
orders pick the same side, as MT-Bench does, and into a tie otherwise. The
single-answer mode grades one answer from 1 to 10 (MT-Bench's scale).

The wording is our own. Every call's store key is a hash of the whole request,
so a change of wording makes new calls rather than reusing old verdicts; the
``*_VERSION`` strings (a name plus a hash of the text) go into the output so
labels made with different prompts can be told apart.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from prefroute.conversation import conversation_text, message_text

Winner = Literal["model_a", "model_b", "tie"]

PAIRWISE_SYSTEM = """\
You compare two AI assistants' answers to the same conversation with a user and decide \
which answer to the user's last message is better.

Judge what a careful user would value: first whether the answer is correct and safe, then \
whether it does what was asked, completely and directly, then how clear it is. Follow the \
user's own instructions about format and length. Length is no merit in itself: a padded or \
wandering answer is worse than a short one that is right. When the request has a checkable \
answer (mathematics, code, facts), work it out yourself before you judge, and count a wrong \
answer as worse than an incomplete one.

The order in which the answers are shown says nothing about their quality.

Give your reasons in at most five sentences. Then end your reply with exactly one verdict, \
on a line of its own, chosen from:
[[A>>B]] if answer A is much better,
[[A>B]] if answer A is better,
[[A=B]] if they are about as good (or as bad) as each other,
[[B>A]] if answer B is better,
[[B>>A]] if answer B is much better."""

PAIRWISE_USER = """\
<conversation>
{conversation}
</conversation>

<answer_a>
{answer_a}
</answer_a>

<answer_b>
{answer_b}
</answer_b>

Which answer to the user's last message is better? End with your verdict."""

GRADE_SYSTEM = """\
You grade one AI assistant's answer to the last message of a conversation with a user, \
on a scale from 1 (useless or wrong) to 10 (as good as an expert's answer could be).

Judge what a careful user would value: first whether the answer is correct and safe, then \
whether it does what was asked, completely and directly, then how clear it is. Follow the \
user's own instructions about format and length; length is no merit in itself. When the \
request has a checkable answer (mathematics, code, facts), work it out yourself first.

Give your reasons in at most five sentences. Then end your reply with the grade on a line \
of its own, in the form [[rating]], for example [[7]]."""

GRADE_USER = """\
<conversation>
{conversation}
</conversation>

<answer>
{answer}
</answer>

How good is this answer to the user's last message? End with your grade as [[rating]]."""

VERDICT_REMINDER = (
    "Your reply did not end with one verdict in the required form. Reply with the verdict "
    "only: [[A>>B]], [[A>B]], [[A=B]], [[B>A]] or [[B>>A]]."
)
GRADE_REMINDER = (
    "Your reply did not end with one grade in the required form. Reply with the grade only, "
    "a whole number from 1 to 10 in double brackets, for example [[7]]."
)

VERDICTS: dict[str, int] = {"A>>B": 2, "A>B": 1, "A=B": 0, "B>A": -1, "B>>A": -2}
"""Each verdict as a signed strength for answer A: 2 much better … -2 much worse."""

_VERDICT = re.compile(r"\[\[\s*(A\s*>>\s*B|A\s*>\s*B|A\s*=\s*B|B\s*>\s*A|B\s*>>\s*A)\s*\]\]")
_GRADE = re.compile(r"\[\[\s*(\d+(?:\.\d+)?)\s*\]\]")


def _version(name: str, *texts: str) -> str:
    digest = hashlib.sha256("\0".join(texts).encode()).hexdigest()[:8]
    return f"{name}-{digest}"


PAIRWISE_VERSION = _version(
    "prefroute-pairwise-1", PAIRWISE_SYSTEM, PAIRWISE_USER, VERDICT_REMINDER
)
GRADE_VERSION = _version("prefroute-grade-1", GRADE_SYSTEM, GRADE_USER, GRADE_REMINDER)


def render_conversation(messages: Sequence[dict[str, Any]]) -> str:
    """The conversation as the judge reads it: the lone question, or ``role: text`` lines."""
    if len(messages) == 1:
        return message_text(messages[0].get("content"))
    return conversation_text(messages, "all") or ""


def pairwise_messages(conversation: str, answer_a: str, answer_b: str) -> list[dict[str, str]]:
    """The judge's request: answer A is shown first."""
    user = PAIRWISE_USER.format(conversation=conversation, answer_a=answer_a, answer_b=answer_b)
    return [{"role": "system", "content": PAIRWISE_SYSTEM}, {"role": "user", "content": user}]


def grade_messages(conversation: str, answer: str) -> list[dict[str, str]]:
    user = GRADE_USER.format(conversation=conversation, answer=answer)
    return [{"role": "system", "content": GRADE_SYSTEM}, {"role": "user", "content": user}]


def reminder_messages(
    messages: Sequence[Mapping[str, Any]], reply: str, *, grade: bool
) -> list[dict[str, Any]]:
    """The one retry for an unparseable reply: the judge sees its reply and a reminder."""
    reminder = GRADE_REMINDER if grade else VERDICT_REMINDER
    return [
        *map(dict, messages),
        {"role": "assistant", "content": reply},
        {"role": "user", "content": reminder},
    ]


def parse_verdict(reply: str) -> str | None:
    """The verdict in ``reply`` (e.g. ``"A>B"``), or None when there is none or two that differ.

    Judges sometimes quote the scale before deciding, so a reply that names
    one verdict several times counts; one that names different verdicts does not.
    A reply that is nothing but a verdict counts with or without its brackets.
    """
    bare = re.sub(r"\s+", "", reply)
    if bare in VERDICTS:
        return bare
    found = {re.sub(r"\s+", "", m) for m in _VERDICT.findall(reply)}
    return found.pop() if len(found) == 1 else None


def parse_grade(reply: str) -> float | None:
    """The last ``[[n]]`` grade in ``reply`` (or a reply that is only a number) within 1–10."""
    found = _GRADE.findall(reply) or re.findall(r"^\s*(\d+(?:\.\d+)?)\s*$", reply)
    if not found:
        return None
    grade = float(found[-1])
    return grade if 1 <= grade <= 10 else None


@dataclass(frozen=True)
class Outcome:
    """Two verdicts combined: the winner, and ``strength`` 0 (tie), 1 (better) or 2 (much).

    ``strength`` is the weaker of the two orders' margins: "much better" in one
    order and "better" in the other is "better".
    """

    winner: Winner
    strength: int


def combine(a_first: str, b_first: str) -> Outcome:
    """Combine the verdict with model_a shown first and the one with model_b shown first."""
    for_a = (VERDICTS[a_first], -VERDICTS[b_first])  # both as model_a's margin over model_b
    if min(for_a) > 0:
        return Outcome("model_a", min(for_a))
    if max(for_a) < 0:
        return Outcome("model_b", min(-m for m in for_a))
    return Outcome("tie", 0)
