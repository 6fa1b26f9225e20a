"""Verdict and grade parsing, and how the two orders combine."""

from __future__ import annotations

import pytest

from prefroute.label import judge
from prefroute.label.judge import combine, parse_grade, parse_verdict


@pytest.mark.parametrize("verdict", list(judge.VERDICTS))
def test_each_verdict_parses_at_the_end_of_a_reply(verdict: str) -> None:
    reply = f"A is terse; B is thorough.\n[[{verdict}]]"
    assert parse_verdict(reply) == verdict
    spaced = f"{verdict[0]} {verdict[1:-1]} {verdict[-1]}"  # "A >> B"
    assert parse_verdict(f"Reasons.\n[[ {spaced} ]]") == verdict
    assert parse_verdict(f"  {verdict}\n") == verdict  # a bare verdict, as a reply to the reminder


def test_no_verdict_or_conflicting_ones_do_not_parse() -> None:
    assert parse_verdict("Both are fine. A>B, I think.") is None
    assert parse_verdict("[[A>B]] at first sight, but on reflection [[B>A]]") is None
    assert parse_verdict("[[A>C]]") is None
    assert parse_verdict("The scale is [[A>B]]; my verdict: [[A>B]]") == "A>B"


def test_grades_parse_within_one_to_ten() -> None:
    assert parse_grade("Good.\nRating: [[7]]") == 7.0
    assert parse_grade("[[3]] then revised to [[8.5]]") == 8.5
    assert parse_grade("8") == 8.0
    assert parse_grade("[[11]]") is None
    assert parse_grade("[[0]]") is None
    assert parse_grade("seven out of ten") is None


@pytest.mark.parametrize(
    ("a_first", "b_first", "winner", "strength"),
    [
        ("A>>B", "B>>A", "model_a", 2),  # model_a much better in both orders
        ("A>>B", "B>A", "model_a", 1),  # the weaker margin counts
        ("B>A", "A>B", "model_b", 1),
        ("B>>A", "A>>B", "model_b", 2),
        ("A>B", "A>B", "tie", 0),  # the first answer wins in both orders: position bias
        ("A=B", "B>A", "tie", 0),
        ("A=B", "A=B", "tie", 0),
    ],
)
def test_two_orders_combine_into_winner_and_strength(
    a_first: str, b_first: str, winner: str, strength: int
) -> None:
    assert combine(a_first, b_first) == judge.Outcome(winner, strength)  # type: ignore[arg-type]


def test_prompt_versions_name_the_wording() -> None:
    assert judge.PAIRWISE_VERSION.startswith("prefroute-pairwise-1-")
    assert judge._version("x", "one wording") != judge._version("x", "another wording")


def test_the_judge_sees_the_question_and_both_answers_in_the_order_given() -> None:
    messages = judge.pairwise_messages("What is 2+2?", "four", "five")
    assert messages[0]["content"] == judge.PAIRWISE_SYSTEM
    user = messages[1]["content"]
    assert user.index("What is 2+2?") < user.index("four") < user.index("five")
    chat = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Tell me a joke"},
    ]
    rendered = judge.render_conversation(chat)
    assert rendered.index("Hi") < rendered.index("Hello!") < rendered.index("Tell me a joke")
    assert judge.render_conversation(chat[:1]) == "Hi"
