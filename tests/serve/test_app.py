"""The server over real HTTP: OpenAI SDK calls routed to a fake OpenAI upstream.

``router-random-0`` always picks the strong model (every score is >= 0) and
``router-random-1`` the weak one, so each test knows where a request goes.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from prefroute.serve.app import THREAD_ROUTING_MIN_CHARS, create_app
from prefroute.testing import Behaviour, FakeUpstream

from .servers import STRONG, WEAK, free_port, serve_in_thread, settings_for, wait_until

TO_STRONG, TO_WEAK = "router-random-0", "router-random-1"
HELLO = [{"role": "user", "content": "Hello there"}]


@pytest.fixture(scope="module")
def url(start_server: Callable[..., str], random_dir: Path) -> str:
    return start_server([random_dir])


@pytest.fixture(scope="module")
def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def post(url: str, body: Any, **kwargs: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{url}/v1/chat/completions", content=content, timeout=20, **kwargs)


# ------------------------------------------------------------------ routing


def test_answer_comes_from_the_routed_model_with_the_reasons_in_headers(
    client: openai.OpenAI, fake: FakeUpstream
) -> None:
    for name, model in ((TO_STRONG, STRONG), (TO_WEAK, WEAK)):
        raw = client.chat.completions.with_raw_response.create(model=name, messages=HELLO)
        completion = raw.parse()
        assert completion.model == model
        assert completion.choices[0].message.content == f"answer from {model}"
        assert raw.headers["x-prefroute-model"] == model
        assert raw.headers["x-prefroute-threshold"] == name.rsplit("-", 1)[1]
        assert 0.0 <= float(raw.headers["x-prefroute-score"]) < 1.0
        assert raw.headers["x-request-id"]
        assert fake.requests[-1]["model"] == model


def test_share_names_use_the_artifact_calibration(client: openai.OpenAI, random_dir: Path) -> None:
    table = json.loads((random_dir / "router.json").read_text())["calibration"]["thresholds"]
    strong = 0
    for i in range(60):
        raw = client.chat.completions.with_raw_response.create(
            model="router-random@30%", messages=[{"role": "user", "content": f"question {i}"}]
        )
        assert float(raw.headers["x-prefroute-threshold"]) == pytest.approx(table["30"], 1e-5)
        strong += raw.headers["x-prefroute-model"] == STRONG
    assert 5 <= strong <= 35  # about 30% of 60 (scores are a hash of the prompt)


def score(client: openai.OpenAI, messages: list[dict[str, Any]], model: str = TO_STRONG) -> str:
    raw = client.chat.completions.with_raw_response.create(model=model, messages=messages)
    assert raw.http_response.status_code == 200
    return raw.headers["x-prefroute-score"]


def test_tool_and_multimodal_messages_route_on_their_text(client: openai.OpenAI) -> None:
    text_only = score(client, [{"role": "user", "content": "What is in this picture?"}])
    conversation = [
        {"role": "system", "content": "You are helpful."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "look", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
    ]
    assert score(client, conversation) == text_only


def test_the_first_user_turn_routes_by_default(
    client: openai.OpenAI, start_server: Callable[..., str], random_dir: Path
) -> None:
    first = {"role": "user", "content": "first question"}
    later = [first, {"role": "assistant", "content": "ok"}, {"role": "user", "content": "next"}]
    assert score(client, later) == score(client, [first])
    last = openai.OpenAI(
        base_url=f"{start_server([random_dir], turns='last')}/v1", api_key="-", max_retries=0
    )
    assert score(last, later) == score(last, [{"role": "user", "content": "next"}])


def test_two_router_kinds_are_served_side_by_side(
    start_server: Callable[..., str], random_dir: Path, mf_dir: Path
) -> None:
    client = openai.OpenAI(
        base_url=f"{start_server([random_dir, mf_dir])}/v1", api_key="-", max_retries=0
    )
    math = [{"role": "user", "content": "Solve 7x + 3 = 21 for x and prove it."}]
    chat = [{"role": "user", "content": "Write a short friendly note to my friend number 9."}]
    routed = {
        name: client.chat.completions.create(model="router-mf@50%", messages=m).model
        for name, m in (("math", math), ("chat", chat))
    }
    assert routed == {"math": STRONG, "chat": WEAK}
    assert client.chat.completions.create(model=TO_WEAK, messages=math).model == WEAK
    ids = {m.id for m in client.models.list()}
    assert {"router-mf@30%", "router-random@30%", "router-mf-0.5"} <= ids


def test_every_routing_mode_gives_the_same_decision(
    client: openai.OpenAI, start_server: Callable[..., str], random_dir: Path
) -> None:
    long = [{"role": "user", "content": "Explain the proof step by step. " * 50}]
    assert len(long[0]["content"]) > THREAD_ROUTING_MIN_CHARS  # auto scores it in a thread
    for mode in ("inline", "thread"):
        other = openai.OpenAI(
            base_url=f"{start_server([random_dir], routing=mode)}/v1", api_key="-", max_retries=0
        )
        assert score(other, HELLO) == score(client, HELLO), mode
        assert score(other, long) == score(client, long), mode


# ----------------------------------------------------------- passthrough


def test_the_body_reaches_the_upstream_untouched_apart_from_model(
    url: str, fake: FakeUpstream
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "when": {
                "type": "object",
                "properties": {"days": {"type": "array", "items": {"enum": ["mon", "tue"]}}},
                "required": ["days"],
            },
        },
        "required": ["city"],
        "additionalProperties": False,
    }
    body = {
        "model": TO_STRONG,
        "messages": HELLO,
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": schema}}],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": schema}},
        "n": 2,
        "logprobs": True,
        "top_logprobs": 3,
        "temperature": 0.25,
        "x_vendor_option": {"deep": [1, {"a": None}], "unicode": "é ✓"},
    }
    response = post(url, body)
    assert response.status_code == 200
    assert fake.requests[-1] == {**body, "model": STRONG}
    assert response.json()["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == (
        "weather"
    )


def test_tool_calls_reach_the_sdk_in_streams_and_not(client: openai.OpenAI) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    completion = client.chat.completions.create(model=TO_WEAK, messages=HELLO, tools=tools)
    assert completion.choices[0].message.tool_calls[0].function.name == "lookup"
    chunks = list(
        client.chat.completions.create(model=TO_WEAK, messages=HELLO, tools=tools, stream=True)
    )
    calls = [
        c.choices[0].delta.tool_calls for c in chunks if c.choices and c.choices[0].delta.tool_calls
    ]
    assert calls[0][0].function.name == "lookup"


def test_upstream_client_errors_pass_through_without_retries(url: str, fake: FakeUpstream) -> None:
    for status in (400, 404, 422):  # a 429 or 401/403 is the server's problem: test_faults
        fake.reset()
        fake.behaviours[STRONG] = Behaviour(status=status)
        response = post(url, {"model": TO_STRONG, "messages": HELLO})
        assert response.status_code == status
        assert response.json()["error"]["message"] == f"fake failure {status}"
        assert fake.calls == {STRONG: 1}


# ------------------------------------------------------------- streaming


def test_streams_arrive_chunk_by_chunk_through_the_sdk(
    client: openai.OpenAI, fake: FakeUpstream
) -> None:
    hold = threading.Event()
    fake.behaviours[STRONG] = Behaviour(chunks=3, hold=hold)
    stream = client.chat.completions.create(
        model=TO_STRONG, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    first = next(iter(stream))  # arrives while the upstream still holds the rest
    assert first.choices[0].delta.role == "assistant" and not hold.is_set()
    hold.set()
    rest = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in rest if c.choices) == (
        f"answer from {STRONG}"
    )
    assert {c.model for c in [first, *rest]} == {STRONG}
    assert rest[-1].usage is not None and rest[-1].usage.completion_tokens == 3


def test_an_upstream_dropping_mid_stream_ends_with_an_error_event(
    url: str, client: openai.OpenAI, fake: FakeUpstream
) -> None:
    fake.behaviours[STRONG] = Behaviour(chunks=4, drop_after=2)
    stream = client.chat.completions.create(model=TO_STRONG, messages=HELLO, stream=True)
    with pytest.raises(openai.APIError, match="stream broke off"):
        list(stream)
    with httpx.stream(
        "POST",
        f"{url}/v1/chat/completions",
        json={"model": TO_STRONG, "messages": HELLO, "stream": True},
        timeout=10,  # fmt: skip
    ) as response:
        events = [e for e in response.read().split(b"\n\n") if e]
    assert response.status_code == 200
    assert len(events) == 3  # two chunks, then the error
    assert json.loads(events[-1].removeprefix(b"data: "))["error"]["code"] == (
        "upstream_stream_error"
    )


def test_a_client_disconnect_cancels_the_upstream_stream(url: str, fake: FakeUpstream) -> None:
    fake.behaviours[STRONG] = Behaviour(chunks=200, chunk_delay=0.05)
    body = {"model": TO_STRONG, "messages": HELLO, "stream": True}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=10) as response:
        next(response.iter_raw())
    wait_until(lambda: fake.cancelled == 1, "the upstream stream to be cancelled")


# ----------------------------------------------------------- reliability


def test_a_5xx_is_retried_and_then_answered(url: str, fake: FakeUpstream) -> None:
    fake.behaviours[STRONG] = Behaviour(status=500, fail_times=1)
    response = post(url, {"model": TO_STRONG, "messages": HELLO})
    assert response.status_code == 200
    assert response.headers["x-prefroute-model"] == STRONG
    assert response.headers["x-prefroute-fallback"] == "false"
    assert fake.calls == {STRONG: 2}


@pytest.mark.parametrize("stream", [False, True])
def test_a_failing_model_falls_back_to_the_other(
    client: openai.OpenAI, fake: FakeUpstream, stream: bool
) -> None:
    fake.behaviours[STRONG] = Behaviour(status=503)
    raw = client.chat.completions.with_raw_response.create(
        model=TO_STRONG, messages=HELLO, stream=stream
    )
    assert raw.headers["x-prefroute-model"] == WEAK
    assert raw.headers["x-prefroute-fallback"] == "true"
    answer = raw.parse()
    if stream:
        assert "".join(c.choices[0].delta.content or "" for c in answer) == f"answer from {WEAK}"
    else:
        assert answer.model == WEAK
    assert fake.calls == {STRONG: 2, WEAK: 1}  # one retry, then the other model


def test_an_answer_broken_off_midway_is_retried_elsewhere(url: str, fake: FakeUpstream) -> None:
    fake.behaviours[STRONG] = Behaviour(drop_after=0)
    response = post(url, {"model": TO_STRONG, "messages": HELLO})
    assert response.status_code == 200 and response.json()["model"] == WEAK
    assert fake.calls == {STRONG: 2, WEAK: 1}
    fake.behaviours[WEAK] = Behaviour(drop_after=0)
    response = post(url, {"model": TO_STRONG, "messages": HELLO})
    assert response.status_code == 502
    assert "closed before the answer was complete" in response.json()["error"]["message"]


def test_a_refused_connection_falls_back(
    start_server: Callable[..., str], random_dir: Path, fake: FakeUpstream
) -> None:
    url = start_server([random_dir], strong={"base_url": f"http://127.0.0.1:{free_port()}/v1"})
    response = post(url, {"model": TO_STRONG, "messages": HELLO})
    assert response.status_code == 200
    assert response.json()["model"] == WEAK
    assert fake.calls == {WEAK: 1}


def test_without_fallback_failures_are_502_and_timeouts_504(
    start_server: Callable[..., str], random_dir: Path, fake: FakeUpstream
) -> None:
    url = start_server(
        [random_dir], fallback=False, retries=0, breaker_failures=0,
        strong={"answer_timeout": 10.0}, weak={"answer_timeout": 0.3},
    )  # fmt: skip
    # Only the weak model's timeout is short: a busy machine may take longer
    # than that to answer even a 500, which would turn the 502 into a 504.
    fake.behaviours[STRONG] = Behaviour(status=500)
    response = post(url, {"model": TO_STRONG, "messages": HELLO})
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "upstream_unavailable" and STRONG in error["message"]
    assert fake.calls == {STRONG: 1}
    fake.behaviours[WEAK] = Behaviour(delay=2.0)
    response = post(url, {"model": TO_WEAK, "messages": HELLO})
    assert response.status_code == 504
    assert response.json()["error"]["code"] == "upstream_timeout"


def test_when_both_models_fail_the_sdk_gets_a_502(
    client: openai.OpenAI, fake: FakeUpstream
) -> None:
    fake.behaviours[STRONG] = fake.behaviours[WEAK] = Behaviour(status=502)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model=TO_WEAK, messages=HELLO)
    assert caught.value.status_code == 502
    assert caught.value.body["type"] == "upstream_error"  # type: ignore[index]
    assert fake.calls == {WEAK: 2, STRONG: 2}


def test_a_saturated_server_answers_503_and_queues_within_bounds(
    start_server: Callable[..., str], random_dir: Path, fake: FakeUpstream
) -> None:
    # one slot per model, so two requests are admitted (one per model) and one queues
    url = start_server([random_dir], max_concurrency=1, max_queue=1)
    hold = threading.Event()
    fake.behaviours[STRONG] = fake.behaviours[WEAK] = Behaviour(hold=hold)
    body = {"model": TO_STRONG, "messages": HELLO}
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(post, url, body)
        wait_until(lambda: fake.calls.get(STRONG) == 1, "the first request upstream")
        second = pool.submit(post, url, body)  # the strong slot is taken: the weak model
        wait_until(lambda: fake.calls.get(WEAK) == 1, "the second request upstream")
        third = pool.submit(post, url, body)
        wait_until(lambda: httpx.get(f"{url}/health").json()["queued"] == 1, "a queued request")
        rejected = post(url, body)
        hold.set()
        assert [f.result().status_code for f in (first, second, third)] == [200, 200, 200]
        assert second.result().headers["x-prefroute-fallback"] == "true"
    assert rejected.status_code == 503
    assert rejected.headers["retry-after"] == "1"
    assert rejected.json()["error"]["code"] == "server_overloaded"


def test_shutdown_lets_in_flight_requests_finish(random_dir: Path, fake: FakeUpstream) -> None:
    hold = threading.Event()
    fake.behaviours[STRONG] = Behaviour(hold=hold)
    app = create_app(settings_for(fake, [random_dir]))
    with serve_in_thread(app) as (url, server), ThreadPoolExecutor(1) as pool:
        pending = pool.submit(post, url, {"model": TO_STRONG, "messages": HELLO})
        wait_until(lambda: fake.calls.get(STRONG) == 1, "the request upstream")
        server.should_exit = True
        time.sleep(0.2)  # let the server close its listening socket first
        hold.set()
        response = pending.result()
    assert response.status_code == 200 and response.json()["model"] == STRONG
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health")


# ------------------------------------------------------------ bad input

BAD_BODIES = [
    (b"{not json", 400, None, "invalid_json"),
    (b"[1, 2]", 400, None, "invalid_json"),
    ({"messages": HELLO}, 400, "model", "missing"),
    ({"model": 5, "messages": HELLO}, 400, "model", "string_type"),
    ({"model": TO_STRONG}, 400, "messages", "missing"),
    ({"model": TO_STRONG, "messages": []}, 400, "messages", "too_short"),
    ({"model": TO_STRONG, "messages": "hi"}, 400, "messages", "list_type"),
    ({"model": TO_STRONG, "messages": [{"content": "hi"}]}, 400, "messages.0.role", "missing"),
    (
        {"model": TO_STRONG, "messages": [{"role": "user", "content": 5}]},
        400,
        "messages.0.content.str",
        "string_type",
    ),  # fmt: skip
    ({"model": TO_STRONG, "messages": HELLO, "stream": "yes"}, 400, "stream", "bool_type"),
    ({"model": "gpt-4o", "messages": HELLO}, 400, "model", "model_not_found"),
    ({"model": "router-bert-0.5", "messages": HELLO}, 400, "model", "model_not_found"),
    ({"model": "router-random-abc", "messages": HELLO}, 400, "model", "invalid_threshold"),
    ({"model": "router-random-1.5", "messages": HELLO}, 400, "model", "invalid_threshold"),
    ({"model": "router-random-nan", "messages": HELLO}, 400, "model", "invalid_threshold"),
    ({"model": "router-random@150%", "messages": HELLO}, 400, "model", "invalid_share"),
    ({"model": "router-random@x%", "messages": HELLO}, 400, "model", "invalid_share"),
]


@pytest.mark.parametrize(("body", "status", "param", "code"), BAD_BODIES)
def test_client_mistakes_are_4xx_naming_the_field(
    url: str, fake: FakeUpstream, body: Any, status: int, param: str | None, code: str
) -> None:
    response = post(url, body)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)
    if param:
        assert param.split(".")[0] in error["message"]
    assert not fake.requests  # nothing reached the upstream


def test_the_sdk_sees_a_bad_model_name_as_a_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError, match="router-<kind>@<share>%") as caught:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert caught.value.param == "model"


def test_a_body_over_the_limit_is_413_declared_or_not(
    start_server: Callable[..., str], random_dir: Path
) -> None:
    url = start_server([random_dir], max_body_bytes=2000)
    big = {"model": TO_STRONG, "messages": [{"role": "user", "content": "x" * 5000}]}
    assert post(url, big).status_code == 413

    def chunks() -> Any:  # no content-length: the limit applies while reading
        yield json.dumps(big).encode()

    response = httpx.post(f"{url}/v1/chat/completions", content=chunks(), timeout=10)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert post(url, {"model": TO_STRONG, "messages": HELLO}).status_code == 200


def test_unknown_paths_and_methods_answer_in_the_openai_error_shape(url: str) -> None:
    missing = httpx.get(f"{url}/v1/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "invalid_request_error"
    wrong = httpx.get(f"{url}/v1/chat/completions")
    assert wrong.status_code == 405 and "GET" in wrong.json()["error"]["message"]


# ---------------------------------------------------- auth, logs, metrics


def test_keys_are_required_except_for_health(
    start_server: Callable[..., str], random_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = start_server([random_dir], api_keys=["sk-right-one", "sk-other"])
    body = {"model": TO_STRONG, "messages": HELLO}
    with caplog.at_level(logging.INFO, logger="prefroute.serve"):
        assert post(url, body).status_code == 401
        wrong = post(url, body, headers={"authorization": "Bearer sk-wrong"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
        assert post(url, body, headers={"authorization": "Bearer sk-other"}).status_code == 200
    for path in ("/v1/models", "/metrics"):
        assert httpx.get(f"{url}{path}").status_code == 401
    assert httpx.get(f"{url}/health").status_code == 200
    sdk = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-right-one", max_retries=0)
    assert sdk.chat.completions.create(model=TO_STRONG, messages=HELLO).model == STRONG
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{url}/v1", api_key="nope", max_retries=0).models.list()
    assert "sk-" not in caplog.text


def test_one_log_line_per_request_without_the_prompt(
    client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "my card number is 4111 1111"
    with caplog.at_level(logging.INFO, logger="prefroute.serve"):
        client.chat.completions.create(
            model=TO_WEAK, messages=[{"role": "user", "content": secret}]
        )
    (line,) = [r.getMessage() for r in caplog.records if r.name == "prefroute.serve"]
    assert "status=200" in line and f"model={WEAK}" in line and "router=random" in line
    assert "4111" not in line


def test_metrics_count_requests_routes_errors_and_cost(
    start_server: Callable[..., str], random_dir: Path, fake: FakeUpstream
) -> None:
    url = start_server(
        [random_dir], strong={"input_cost": 10.0, "output_cost": 30.0}, weak={"input_cost": 1.0}
    )
    sdk = openai.OpenAI(base_url=f"{url}/v1", api_key="-", max_retries=0)
    sdk.chat.completions.create(model=TO_STRONG, messages=HELLO)  # 2 prompt, 3 answer tokens
    list(sdk.chat.completions.create(model=TO_WEAK, messages=HELLO, stream=True,
                                     stream_options={"include_usage": True}))  # fmt: skip
    post(url, {"model": "nope", "messages": HELLO})
    fake.behaviours[STRONG] = Behaviour(status=500)
    post(url, {"model": TO_STRONG, "messages": HELLO})  # falls back to weak
    text = httpx.get(f"{url}/metrics").text
    expected = [
        'prefroute_requests_total{status="200"} 3.0',
        'prefroute_requests_total{status="400"} 1.0',
        'prefroute_routed_total{role="strong",router="random"} 2.0',
        'prefroute_routed_total{role="weak",router="random"} 1.0',
        'prefroute_errors_total{kind="invalid_request"} 1.0',
        'prefroute_upstream_retries_total{role="strong"} 1.0',
        'prefroute_fallbacks_total{to_role="weak"} 1.0',
        f'prefroute_tokens_total{{direction="output",model="{STRONG}"}} 3.0',
        f'prefroute_cost_dollars_total{{model="{STRONG}"}} 0.00011',
        f'prefroute_cost_dollars_total{{model="{WEAK}"}} 4e-06',
        "prefroute_routing_seconds_count 3.0",
        'prefroute_upstream_seconds_count{role="strong"} 3.0',  # one answer, two 500s
    ]
    missing = [line for line in expected if line not in text]
    assert not missing, text


def test_the_cost_metric_prices_unpriced_upstreams_from_the_table_and_says_so(
    start_server: Callable[..., str], random_dir: Path, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    prices = tmp_path / "prices.toml"
    prices.write_text('["my-finetune"]\ninput = 1.0\noutput = 4.0\ndate = "2025-02-01"\n')
    with caplog.at_level(logging.INFO, logger="prefroute"):
        url = start_server(
            [random_dir], strong={"model": "gpt-4o-2024-08-06"}, weak={"model": "llama-local"},
            prices=[str(prices)],
        )  # fmt: skip
        other = start_server([random_dir], strong={"model": "my-finetune"}, prices=[str(prices)])
    said = [r.getMessage() for r in caplog.records]
    assert (
        "cost metric prices gpt-4o-2024-08-06 $2.5 in / $10 out per 1M tokens (2024-08-06, "
        "prefroute/prices.toml) (strong upstream)"
    ) in said
    assert any(m.startswith("no price for upstream model llama-local (weak)") for m in said)
    assert any("my-finetune $1 in / $4 out per 1M tokens (2025-02-01, " in m for m in said)
    # the routers were built for big-model vs small-model: one warning line per router
    warnings = [m for m in said if m.startswith("router random was trained for")]
    (warning,) = [m for m in warnings if "gpt-4o" in m]
    assert "routes to upstream models gpt-4o-2024-08-06 (strong) and llama-local (weak)" in warning
    sdk = openai.OpenAI(base_url=f"{url}/v1", api_key="-", max_retries=0)
    sdk.chat.completions.create(model=TO_STRONG, messages=HELLO)  # 2 prompt, 3 answer tokens
    sdk.chat.completions.create(model=TO_WEAK, messages=HELLO)
    text = httpx.get(f"{url}/metrics").text
    assert 'prefroute_cost_dollars_total{model="gpt-4o-2024-08-06"} 3.5e-05' in text
    assert 'prefroute_tokens_total{direction="output",model="llama-local"} 3.0' in text
    assert 'prefroute_cost_dollars_total{model="llama-local"}' not in text  # no $0 made up
    httpx.post(f"{other}/v1/chat/completions", json={"model": TO_STRONG, "messages": HELLO})
    assert (
        'prefroute_cost_dollars_total{model="my-finetune"} 1.4e-05'
        in httpx.get(f"{other}/metrics").text
    )


def test_health_and_models_list(client: openai.OpenAI, url: str) -> None:
    idle = {"in_flight": 0, "circuit": "closed", "retry_in": None}
    assert httpx.get(f"{url}/health").json() == {
        "status": "ok", "routers": ["random"], "in_flight": 0, "queued": 0, "body_bytes": 0,
        "upstreams": {"strong": idle, "weak": idle},
    }  # fmt: skip
    models = list(client.models.list())
    assert "router-random@30%" in {m.id for m in models}
    assert models[0].owned_by == "prefroute"


def test_importing_the_app_leaves_torch_out() -> None:
    code = (
        "import sys\n"
        "import prefroute.serve.app\n"
        "heavy = ('torch', 'transformers', 'sentence_transformers')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
