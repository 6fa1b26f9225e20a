"""prefroute.Client and AsyncClient: route in-process, then the official SDK to the fake."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import openai
import pytest

import prefroute
from prefroute.errors import InvalidRequestError
from prefroute.testing import Behaviour, FakeUpstream

from .servers import STRONG, WEAK, free_port

HELLO = [{"role": "user", "content": "Hello there"}]


def upstreams(fake: FakeUpstream, **strong: object) -> dict[str, dict[str, object]]:
    url = fake.url  # type: ignore[attr-defined]
    return {"strong": {"base_url": url, **strong}, "weak": {"base_url": url}}


@pytest.fixture(scope="module")
def client(fake: FakeUpstream, random_dir: Path) -> prefroute.Client:
    return prefroute.Client([random_dir], retries=0, **upstreams(fake))


def test_routes_in_process_and_answers_through_the_sdk(
    client: prefroute.Client, fake: FakeUpstream
) -> None:
    completion = client.chat.completions.create(model="router-random-0", messages=HELLO)
    assert isinstance(completion, openai.types.chat.ChatCompletion)
    assert completion.model == STRONG
    assert client.chat.completions.create(model="router-random-1", messages=HELLO).model == WEAK
    assert [r["model"] for r in fake.requests] == [STRONG, WEAK]
    decision = client.route("router-random@30%", HELLO)
    assert decision.model in (STRONG, WEAK) and 0.0 <= decision.score <= 1.0


def test_streams_and_extra_arguments_pass_through(
    client: prefroute.Client, fake: FakeUpstream
) -> None:
    stream = client.chat.completions.create(
        model="router-random-1", messages=HELLO, stream=True, temperature=0.5,
        extra_body={"x_vendor": [1, 2]},
    )  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == f"answer from {WEAK}"
    assert fake.requests[-1]["temperature"] == 0.5 and fake.requests[-1]["x_vendor"] == [1, 2]


def test_a_bad_model_name_raises_before_any_call(
    client: prefroute.Client, fake: FakeUpstream
) -> None:
    with pytest.raises(InvalidRequestError, match="router-<kind>") as caught:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert caught.value.param == "model" and isinstance(caught.value, ValueError)
    assert not fake.requests


def test_a_failing_model_falls_back_unless_told_not_to(
    fake: FakeUpstream, random_dir: Path
) -> None:
    down = upstreams(fake, base_url=f"http://127.0.0.1:{free_port()}/v1")
    client = prefroute.Client([random_dir], retries=0, **down)
    assert client.chat.completions.create(model="router-random-0", messages=HELLO).model == WEAK
    strict = prefroute.Client([random_dir], retries=0, fallback=False, **down)
    with pytest.raises(openai.APIConnectionError):
        strict.chat.completions.create(model="router-random-0", messages=HELLO)
    fake.behaviours[STRONG] = Behaviour(status=500)
    strict = prefroute.Client([random_dir], retries=0, fallback=False, **upstreams(fake))
    with pytest.raises(openai.InternalServerError):
        strict.chat.completions.create(model="router-random-0", messages=HELLO)
    fake.reset()
    fake.behaviours[STRONG] = Behaviour(status=400)
    client = prefroute.Client([random_dir], retries=0, **upstreams(fake))
    with pytest.raises(openai.BadRequestError):  # a client error is not tried elsewhere
        client.chat.completions.create(model="router-random-0", messages=HELLO)
    assert fake.calls.get(WEAK) is None


@pytest.mark.parametrize("status", [429, 401, 403])
def test_a_rate_limited_or_refused_model_falls_back(
    fake: FakeUpstream, random_dir: Path, status: int
) -> None:
    client = prefroute.Client([random_dir], retries=0, **upstreams(fake))
    fake.behaviours[STRONG] = Behaviour(status=status)
    assert client.chat.completions.create(model="router-random-0", messages=HELLO).model == WEAK


def test_the_breaker_skips_a_failing_model(fake: FakeUpstream, random_dir: Path) -> None:
    client = prefroute.Client(
        [random_dir], retries=0, breaker_failures=2, breaker_cooldown=60, **upstreams(fake)
    )
    fake.behaviours[STRONG] = Behaviour(status=503)
    for _ in range(4):
        assert client.chat.completions.create(model="router-random-0", messages=HELLO).model == (
            WEAK
        )
    assert fake.calls == {STRONG: 2, WEAK: 4}  # the circuit opened after two failures
    assert client.breakers["strong"].state == "open"


def test_upstream_keys_come_from_the_named_environment_variable(
    fake: FakeUpstream, random_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_UPSTREAM_KEY", "sk-test-123")
    client = prefroute.Client(
        [random_dir], retries=0, **upstreams(fake, api_key_env="TEST_UPSTREAM_KEY")
    )
    client.chat.completions.create(model="router-random-0", messages=HELLO)
    assert fake.headers[-1]["authorization"] == "Bearer sk-test-123"


def test_async_client_routes_streams_and_falls_back(fake: FakeUpstream, random_dir: Path) -> None:
    async def main() -> tuple[str, str]:
        client = prefroute.AsyncClient([random_dir], retries=0, **upstreams(fake))
        completion = await client.chat.completions.create(model="router-random-0", messages=HELLO)
        fake.behaviours[STRONG] = Behaviour(status=503)
        stream = await client.chat.completions.create(
            model="router-random-0", messages=HELLO, stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        await client.close()
        return completion.model, text

    assert asyncio.run(main()) == (STRONG, f"answer from {WEAK}")


def test_a_client_for_other_models_than_the_artifacts_warns_once(
    fake: FakeUpstream, random_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="prefroute"):
        prefroute.Client([random_dir], **upstreams(fake, model="gpt-4o")).close()
    (line,) = [r.getMessage() for r in caplog.records]
    assert f"trained for {STRONG} (strong) vs {WEAK} (weak)" in line
    assert "routes to upstream models gpt-4o (strong)" in line
