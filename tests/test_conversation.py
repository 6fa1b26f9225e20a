"""The text a router sees: the rules of ``conversation_text``, and the parity that
motivates it: training readers and the running server give the same text for the
same conversation under every turn policy."""

from __future__ import annotations

import gzip
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

# tests/serve is importable as ``serve`` (pytest puts tests/ on sys.path)
from serve.servers import STRONG, WEAK, serve_in_thread, settings_for

from prefroute.conversation import TURN_POLICIES, Turns, conversation_text, message_text
from prefroute.data.prompts import read_prompts
from prefroute.data.readers import read_battles
from prefroute.data.schema import Battles
from prefroute.errors import DataError
from prefroute.routers.random import RandomRouter
from prefroute.serve.app import create_app
from prefroute.serve.schema import parse_chat_request
from prefroute.testing import FakeUpstream

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
AUDIO = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}


# --------------------------------------------------------------------- rules


def test_the_module_needs_only_the_standard_library() -> None:
    """Serving imports it on every request path, so it must not bring a dependency."""
    code = (
        "import sys; before = set(sys.modules); import prefroute.conversation; "
        "print(sorted({m.split('.')[0] for m in set(sys.modules) - before}"
        " - set(sys.stdlib_module_names)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['prefroute']"


def test_message_text_takes_text_parts_only() -> None:
    parts = [
        {"type": "text", "text": "look"},
        IMAGE,
        AUDIO,
        {"type": "text", "text": "here"},
        "not a part",
        {"type": "text", "text": None},
        {"text": "a part without a type"},
    ]
    assert message_text(parts) == "look\nhere"
    assert message_text(None) == "" and message_text(5) == "" and message_text("plain") == "plain"


def test_policies_on_one_chat() -> None:
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": [{"type": "text", "text": "Prove it"}, IMAGE]},
    ]
    assert conversation_text(chat, "first") == "Hi"
    assert conversation_text(chat, "last") == "Prove it"
    assert conversation_text(chat, "all") == "user: Hi\nassistant: Hello\nuser: Prove it"


def test_human_is_the_user_and_textless_turns_are_skipped() -> None:
    chat = [
        {"role": "human", "content": [IMAGE]},  # an image only: no text
        {"role": "human", "content": "What is this?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]},
        {"role": "tool", "tool_call_id": "1", "content": "a cat"},
        {"role": "developer", "content": "Answer in French."},
        {"role": "human", "content": "   "},
    ]
    as_user = [m | {"role": "user"} if m["role"] == "human" else m for m in chat]
    for turns in TURN_POLICIES:
        assert conversation_text(chat, turns) == conversation_text(as_user, turns)
    assert conversation_text(chat, "last") == "What is this?"
    assert conversation_text(chat, "all") == "user: What is this?"


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "system", "content": "Summarise the news."}],
        [{"role": "user", "content": [IMAGE]}, {"role": "assistant", "content": "A cat."}],
        [{"role": "user", "content": ""}, {"role": "user", "content": None}],
        [],
    ],
)
def test_no_user_text_is_none_for_every_policy(messages: list[dict[str, Any]]) -> None:
    assert {conversation_text(messages, turns) for turns in TURN_POLICIES} == {None}


# -------------------------------------------------------------------- parity


@pytest.fixture(scope="module")
def conversations(data_dir: Path) -> dict[str, list[dict[str, Any]]]:
    """Real Arena chats, and the shapes serving meets that Arena files never hold."""
    with gzip.open(data_dir / "chatbot-arena-fastchat-sample" / "battles.jsonl.gz") as fh:
        arena = [orjson.loads(line)["conversation_a"] for line in fh]
    single = next(c for c in arena if len(c) == 2)
    multi = next(c for c in arena if len(c) >= 6)
    question, follow_up = multi[0]["content"], multi[2]["content"]
    return {
        "plain": single,
        "multi-turn": multi,
        "tool calls": [
            {"role": "system", "content": "You can call tools."},
            {"role": "user", "content": question},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": '{"result": 42}'},
            {"role": "assistant", "content": multi[1]["content"]},
            {"role": "user", "content": follow_up},
        ],
        "image parts": [
            {"role": "user", "content": [IMAGE]},
            {"role": "user", "content": [{"type": "text", "text": question}, IMAGE, AUDIO]},
            {"role": "assistant", "content": [{"type": "text", "text": multi[1]["content"]}]},
            {"role": "user", "content": [AUDIO, {"type": "text", "text": follow_up}]},
        ],
        "human role": [m | {"role": "human"} if m["role"] == "user" else m for m in multi],
        "system-only": [{"role": "system", "content": question}],
        "empty contents": [
            {"role": "user", "content": ""},
            {"role": "user", "content": []},
            {"role": "assistant", "content": None},
        ],
        "empty then text": [
            {"role": "user", "content": None},
            {"role": "user", "content": " "},
            {"role": "user", "content": question},
        ],
    }


NO_USER_TEXT = {"system-only", "empty contents"}


def _battle_file(path: Path, conversations: dict[str, list[dict[str, Any]]]) -> Path:
    records = [
        {
            "question_id": name,
            "model_a": STRONG,
            "model_b": WEAK,
            "winner": "model_a",
            "conversation_a": messages,
        }
        for name, messages in conversations.items()
    ]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[Turns, str]]:
    """A real server per turn policy, routing with a random router (score = hash of the text)."""
    router = RandomRouter(strong_model=STRONG, weak_model=WEAK).fit(Battles.empty())
    path = router.save(tmp_path_factory.mktemp("routers") / "random")
    fake = FakeUpstream()
    with ExitStack() as stack:
        url, _ = stack.enter_context(serve_in_thread(fake.app))
        fake.url = f"{url}/v1"  # type: ignore[attr-defined]
        yield {
            turns: stack.enter_context(
                serve_in_thread(create_app(settings_for(fake, [path], turns=turns)))
            )[0]
            for turns in TURN_POLICIES
        }


def _served_score(url: str, messages: list[dict[str, Any]]) -> str:
    body = {"model": "router-random-0.5", "messages": messages}
    response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=20)
    assert response.status_code == 200, response.text
    return response.headers["x-prefroute-score"]


@pytest.mark.parametrize("turns", TURN_POLICIES)
def test_training_and_serving_see_the_same_text(
    tmp_path: Path,
    conversations: dict[str, list[dict[str, Any]]],
    servers: dict[Turns, str],
    turns: Turns,
) -> None:
    names = list(conversations)
    report = read_battles(
        _battle_file(tmp_path / "arena.jsonl", conversations), turns=turns, skip_bad=True
    )
    trained = dict(report.table.frame.select("prompt_id", "prompt").iter_rows())
    reported = {names[p.line - 1] for p in report.problems}
    assert reported == NO_USER_TEXT  # a battle with no user text is reported, never trained on
    assert set(trained) == set(names) - NO_USER_TEXT

    with_text = {name: conversations[name] for name in trained}
    prompts_file = tmp_path / "prompts.jsonl"
    prompts_file.write_bytes(
        b"".join(orjson.dumps({"id": n, "messages": m}) + b"\n" for n, m in with_text.items())
    )
    assert dict(zip(*read_prompts(prompts_file, turns=turns), strict=True)) == trained

    router = RandomRouter().fit(Battles.empty())
    for name, messages in conversations.items():
        request = parse_chat_request(orjson.dumps({"model": "router-x-0", "messages": messages}))
        served_text = conversation_text(request.data["messages"], turns)
        assert served_text == trained.get(name), name
        expected = router.strong_win_rate([trained.get(name, "")])[0]  # no user text routes on ""
        assert _served_score(servers[turns], messages) == f"{expected:.6g}", name


def test_prompt_files_report_conversations_without_user_text(
    tmp_path: Path, conversations: dict[str, list[dict[str, Any]]]
) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_bytes(
        b"".join(orjson.dumps({"messages": m}) + b"\n" for m in conversations.values())
    )
    with pytest.raises(DataError) as caught:
        read_prompts(path)
    names = list(conversations)
    assert {names[p.line - 1] for p in caught.value.problems} == NO_USER_TEXT
    assert {p.field for p in caught.value.problems} == {"messages"}
