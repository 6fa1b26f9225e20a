"""The gateway under upstream faults, over real HTTP, against ``FaultUpstream``.

``FaultUpstream`` speaks HTTP/1.1 on raw asyncio streams and shares no code
with the server, so each fault reaches prefroute exactly as injected. The
strong model misbehaves, the weak one answers; each test names the finding
of issue 14 it covers.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from prefroute.serve.app import create_app
from prefroute.testing import Fault, FaultUpstream

from .servers import STRONG, WEAK, free_port, serve_in_thread, settings_for, wait_until

TO_STRONG, TO_WEAK = "router-random-0", "router-random-1"
HELLO = [{"role": "user", "content": "Hello there"}]


@pytest.fixture(scope="module")
def faulty() -> Iterator[FaultUpstream]:
    with FaultUpstream() as upstream:
        yield upstream


@pytest.fixture(autouse=True)
def _reset(faulty: FaultUpstream) -> None:
    faulty.reset()


@pytest.fixture(scope="module")
def serve(faulty: FaultUpstream, random_dir: Path) -> Iterator[Callable[..., str]]:
    """``serve(**overrides) -> base URL`` of a server whose models both live on ``faulty``."""
    with ExitStack() as stack:

        def start(**overrides: Any) -> str:
            app = create_app(settings_for(faulty, [random_dir], **overrides))
            url, _ = stack.enter_context(serve_in_thread(app))
            return url

        yield start


@pytest.fixture(scope="module")
def url(serve: Callable[..., str]) -> str:
    """Quick timeouts; a breaker that never opens, so tests do not affect each other."""
    return serve(breaker_failures=0)


def post(url: str, body: Any, **kwargs: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{url}/v1/chat/completions", content=content, timeout=30, **kwargs)


def ask(url: str, model: str = TO_STRONG, **extra: Any) -> httpx.Response:
    return post(url, {"model": model, "messages": HELLO, **extra})


def streamed(url: str, model: str = TO_STRONG) -> tuple[httpx.Response, list[bytes]]:
    body = {"model": model, "messages": HELLO, "stream": True}
    with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=30) as response:
        events = [e for e in response.read().split(b"\n\n") if e]
    return response, events


def health(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/health").json()


PATIENT = {"first_byte_timeout": 30, "answer_timeout": 30}
"""An upstream the server waits on long enough for a test to hang it on purpose."""


# ------------------------------------------------- 1: hung upstream, breaker, slots


@pytest.mark.parametrize("stream", [False, True])
def test_a_hung_model_is_left_after_the_first_byte_timeout_not_retried(
    url: str, faulty: FaultUpstream, stream: bool
) -> None:
    faulty.faults[STRONG] = Fault("hang")
    response = ask(url, stream=stream)
    assert response.status_code == 200
    assert response.headers["x-prefroute-model"] == WEAK
    assert response.headers["x-prefroute-fallback"] == "true"
    assert faulty.calls == {STRONG: 1, WEAK: 1}  # a timeout goes to the other model at once
    wait_until(lambda: faulty.abandoned == 1, "the hung call to be given up")


def test_a_non_streaming_answer_may_take_longer_than_the_chunk_timeout(
    serve: Callable[..., str], faulty: FaultUpstream
) -> None:
    """It comes with its headers, once generated: answer_timeout bounds the wait, not
    chunk_timeout (the socket-read timeout, which also covers waiting for headers)."""
    url = serve(breaker_failures=0, strong={"answer_timeout": 10, "chunk_timeout": 0.3})
    faulty.faults[STRONG] = Fault("slow", delay=1.0)
    response = ask(url)
    assert response.status_code == 200
    assert response.headers["x-prefroute-model"] == STRONG
    assert faulty.calls == {STRONG: 1}


def test_the_breaker_opens_sends_traffic_elsewhere_and_closes_after_a_probe(
    serve: Callable[..., str], faulty: FaultUpstream
) -> None:
    # A cooldown longer than the asks below take on a loaded machine: a probe among
    # them would reach the failing model and count a third call.
    url = serve(breaker_failures=2, breaker_cooldown=3.0)
    faulty.faults[STRONG] = Fault("status", status=503)
    assert ask(url).headers["x-prefroute-model"] == WEAK
    assert faulty.calls[STRONG] == 2  # a try and a retry: two failures open the circuit
    assert health(url)["upstreams"]["strong"]["circuit"] == "open"
    metrics = httpx.get(f"{url}/metrics").text
    assert 'prefroute_upstream_circuit{role="strong",state="open"} 1.0' in metrics
    for _ in range(3):  # straight to the weak model while the circuit is open
        assert ask(url).headers["x-prefroute-model"] == WEAK
    assert faulty.calls[STRONG] == 2
    faulty.faults.clear()
    wait_until(lambda: health(url)["upstreams"]["strong"]["circuit"] == "half_open", "a probe")
    assert ask(url).headers["x-prefroute-model"] == STRONG  # the probe answers: closed again
    assert health(url)["upstreams"]["strong"]["circuit"] == "closed"


def test_weak_routed_requests_are_served_while_the_strong_model_holds_its_slots(
    serve: Callable[..., str], faulty: FaultUpstream
) -> None:
    url = serve(
        max_concurrency=2,
        max_queue=0,
        breaker_failures=0,
        strong=PATIENT,
    )
    faulty.faults[STRONG] = Fault("hang")
    with ThreadPoolExecutor(2) as pool:
        hung = [pool.submit(ask, url) for _ in range(2)]
        wait_until(lambda: faulty.calls[STRONG] == 2, "two strong calls hanging")
        for _ in range(3):
            response = ask(url, TO_WEAK)
            assert response.status_code == 200 and response.headers["x-prefroute-model"] == WEAK
        overflow = ask(url)  # the strong model's slots are full: the weak model answers
        assert overflow.status_code == 200 and overflow.headers["x-prefroute-model"] == WEAK
        faulty.faults.clear()
        faulty.release()  # the hung calls break off and fall back
        assert [f.result().status_code for f in hung] == [200, 200]


def test_clients_that_give_up_free_their_slots_and_are_logged_as_disconnects(
    serve: Callable[..., str], faulty: FaultUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    url = serve(breaker_failures=0, strong=PATIENT)
    faulty.faults[STRONG] = Fault("hang")

    def give_up() -> None:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(
                f"{url}/v1/chat/completions",
                json={"model": TO_STRONG, "messages": HELLO}, timeout=httpx.Timeout(30, read=0.5),
            )  # fmt: skip

    with caplog.at_level(logging.INFO, logger="prefroute.serve"), ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: give_up(), range(8)))
        wait_until(lambda: health(url)["in_flight"] == 0, "every slot to be freed")
        wait_until(lambda: faulty.abandoned == 8, "the upstream calls to be closed")
    assert health(url)["upstreams"]["strong"]["in_flight"] == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "prefroute.serve"]
    disconnects = [line for line in lines if "outcome=client_disconnect" in line]
    assert len(disconnects) == 8 and not [line for line in lines if "outcome=ok" in line]


# ------------------------------------------------------------------- 5: 429 and auth


def test_a_429_falls_back_and_its_retry_after_keeps_the_model_aside(
    serve: Callable[..., str], faulty: FaultUpstream
) -> None:
    url = serve()  # its own: the Retry-After holds the model aside for a minute
    faulty.faults[STRONG] = Fault("status", status=429, retry_after="60")
    first = ask(url)
    assert first.status_code == 200 and first.headers["x-prefroute-model"] == WEAK
    again = ask(url)
    assert again.headers["x-prefroute-model"] == WEAK
    assert faulty.calls[STRONG] == 1  # not asked again within its Retry-After
    assert health(url)["upstreams"]["strong"]["retry_in"] > 0


def test_when_every_model_is_rate_limited_the_client_gets_a_429_with_retry_after(
    serve: Callable[..., str], faulty: FaultUpstream
) -> None:
    url = serve(breaker_failures=0)
    faulty.faults[STRONG] = faulty.faults[WEAK] = Fault("status", status=429, retry_after="2")
    response = ask(url)
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"]["code"] == "upstream_rate_limited"


@pytest.mark.parametrize("status", [401, 403])
def test_the_servers_own_upstream_key_failing_is_a_502_that_does_not_blame_the_client(
    url: str, faulty: FaultUpstream, status: int
) -> None:
    faulty.faults[STRONG] = Fault("status", status=status)
    assert ask(url).headers["x-prefroute-model"] == WEAK  # the other model's key may work
    faulty.faults[WEAK] = Fault("status", status=status)
    response = ask(url)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "upstream_auth_failed", error
    assert "server" in error["message"] and "your" not in error["message"].lower()


# -------------------------------------------------------- 7: what upstreams answer


@pytest.mark.parametrize(
    ("kind", "stream"),
    [(k, s) for k in ("malformed", "wrong_type", "empty", "close") for s in (False, True)]
    + [("drop", False)],  # a stream that drops after its first event: the next test
)
def test_a_broken_answer_falls_back_and_two_are_a_clean_502(
    url: str, faulty: FaultUpstream, kind: str, stream: bool
) -> None:
    faulty.faults[STRONG] = Fault(kind)
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="-", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model=TO_STRONG, messages=HELLO, stream=stream
    )
    assert raw.headers["x-prefroute-model"] == WEAK
    answer = raw.parse()
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in answer if c.choices)
    else:
        text = answer.choices[0].message.content
    assert text == f"answer from {WEAK}"
    faulty.faults[WEAK] = Fault(kind)
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=TO_STRONG, messages=HELLO, stream=stream)
    assert caught.value.status_code == 502
    assert set(caught.value.body) == {"message", "type", "param", "code"}  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["stall", "drop"])
def test_a_stream_that_breaks_off_after_its_first_event_ends_with_an_error_event(
    serve: Callable[..., str], faulty: FaultUpstream, kind: str
) -> None:
    url = serve(strong={"chunk_timeout": 0.5})
    faulty.faults[STRONG] = Fault(kind)
    response, events = streamed(url)
    assert response.status_code == 200 and response.headers["x-prefroute-model"] == STRONG
    error = json.loads(events[-1].removeprefix(b"data: "))["error"]
    assert error["code"] == "upstream_stream_error"
    assert set(error) == {"message", "type", "param", "code"}


def test_negative_usage_still_answers_and_costs_nothing(
    serve: Callable[..., str], faulty: FaultUpstream
) -> None:
    url = serve(strong={"input_cost": 1.0, "output_cost": 1.0})
    faulty.faults[STRONG] = Fault("negative_usage")
    response = ask(url)
    assert response.status_code == 200 and response.json()["usage"]["prompt_tokens"] == -5
    assert (
        f'prefroute_cost_dollars_total{{model="{STRONG}"}}' not in httpx.get(f"{url}/metrics").text
    )


def test_errors_name_the_model_not_the_address_nor_the_upstream_body(
    serve: Callable[..., str], faulty: FaultUpstream
) -> None:
    url = serve(
        strong={"base_url": f"http://127.0.0.1:{free_port()}/v1"}, breaker_failures=0
    )  # refused
    faulty.faults[WEAK] = Fault("status", status=503)
    message = ask(url).json()["error"]["message"]
    assert STRONG in message and WEAK in message
    assert "127.0.0.1" not in message and "fault 503" not in message
    assert "strong" in message and "weak" in message


# ----------------------------------------------------------- 2, 7: pass-through


def test_numbers_and_deep_json_reach_the_upstream_byte_for_byte(
    url: str, faulty: FaultUpstream
) -> None:
    deep = "[" * 300 + "]" * 300
    raw = (
        '{"messages": [{"role": "user", "content": "Hello there"}], "seed": 18446744073709551617, '
        f'"temperature": 1E5, "top_p": 0.10, "x_deep": {deep}, "model": "{TO_WEAK}"}}'
    ).encode()
    response = post(url, raw)
    assert response.status_code == 200
    assert faulty.requests[-1] == raw.replace(TO_WEAK.encode(), WEAK.encode())


def test_json_deeper_than_the_parser_takes_is_a_400_naming_the_limit(url: str) -> None:
    deep = "[" * 1100 + "]" * 1100
    response = post(url, f'{{"model": "{TO_WEAK}", "messages": [], "x": {deep}}}'.encode())
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_json" and "1024" in error["message"]


def test_a_duplicated_model_field_is_a_400(url: str) -> None:
    raw = f'{{"model": "{TO_WEAK}", "messages": {json.dumps(HELLO)}, "model": "{TO_STRONG}"}}'
    response = post(url, raw.encode())
    assert response.status_code == 400 and response.json()["error"]["param"] == "model"


# --------------------------------------------------- 3: connections after errors


def exchange(sock: socket.socket, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send one request on a kept-alive socket and read one whole response."""
    sock.sendall(request)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection without a response"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-response"
        rest += chunk
    return int(lines[0].split()[1]), headers, rest


def request_bytes(body: bytes, path: str = "/v1/chat/completions", **headers: str) -> bytes:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (
        f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{extra}"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        json.dumps({"model": "gpt-4o", "messages": HELLO}).encode(),
        (
            '{"model": "router-random-1", "messages": [{"role": "user", "content": "hi"}], "x": '
            + "[" * 600
            + "]" * 600
            + "}"
        ).encode(),  # fmt: skip
        json.dumps({"model": TO_STRONG, "messages": HELLO}).encode(),  # both models fail: 502
    ],
)
def test_every_error_keeps_the_connection_usable_or_says_close(
    url: str, faulty: FaultUpstream, body: bytes
) -> None:
    faulty.faults[STRONG] = faulty.faults[WEAK] = Fault("status", status=500)
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        status, headers, _ = exchange(sock, request_bytes(body))
        faulty.faults.clear()
        if headers.get("connection") == "close":
            return
        again = json.dumps({"model": TO_WEAK, "messages": HELLO}).encode()
        assert exchange(sock, request_bytes(again))[0] == 200, status


def test_a_bug_is_a_500_in_openai_shape_that_closes_the_connection(
    url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import prefroute.serve.app as app_module

    def broken(raw: bytes) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(app_module, "parse_chat_request", broken)
    port = int(url.rsplit(":", 1)[1])
    with caplog.at_level(logging.ERROR), socket.create_connection(("127.0.0.1", port)) as sock:
        status, headers, body = exchange(sock, request_bytes(b"{}"))
    assert status == 500 and headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "internal_error"
    assert len([r for r in caplog.records if r.exc_info]) == 1  # one traceback, not two


# ----------------------------------------------------------- 4: admission first


def test_a_full_server_answers_before_reading_the_body(
    serve: Callable[..., str], faulty: FaultUpstream
) -> None:
    url = serve(max_concurrency=1, max_queue=0, breaker_failures=0,
                strong=PATIENT, weak=PATIENT)  # fmt: skip
    faulty.faults[STRONG] = faulty.faults[WEAK] = Fault("hang")
    port = int(url.rsplit(":", 1)[1])
    with ThreadPoolExecutor(2) as pool:
        held = [pool.submit(ask, url, TO_STRONG), pool.submit(ask, url, TO_WEAK)]
        wait_until(lambda: health(url)["in_flight"] == 2, "two admitted requests")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            head = request_bytes(b"")[: -len(b"content-length: 0\r\n\r\n")]
            sock.sendall(head + b"content-length: 10000000\r\n\r\n")  # the body never comes
            status, headers, body = exchange(sock, b"")
        assert status == 503 and json.loads(body)["error"]["code"] == "server_overloaded"
        faulty.faults.clear()
        faulty.release()
        assert [f.result().status_code for f in held] == [200, 200]


def test_bodies_wait_for_room_in_the_body_memory_budget(
    serve: Callable[..., str], faulty: FaultUpstream
) -> None:
    url = serve(max_body_bytes=100_000, max_body_memory=150_000, max_queue=0,
                breaker_failures=0, strong=PATIENT)  # fmt: skip
    faulty.faults[STRONG] = Fault("hang")
    big = {"model": TO_STRONG, "messages": [{"role": "user", "content": "x" * 90_000}]}
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(post, url, big)
        wait_until(lambda: health(url)["body_bytes"] > 90_000, "one big body admitted")
        response = post(url, big)  # no room for a second one, and no queue
        assert response.status_code == 503
        assert "body" in response.json()["error"]["message"]
        small = ask(url, TO_WEAK)
        assert small.status_code == 200
        faulty.faults.clear()
        faulty.release()
        assert held.result().status_code == 200
    wait_until(lambda: health(url)["body_bytes"] == 0, "the budget to be returned")


# ----------------------------------------------------- 6: slow clients, shutdown


def test_a_client_slow_to_send_its_headers_is_cut_off(serve: Callable[..., str]) -> None:
    url = serve(client_timeout=0.5)
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n")  # never finished
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 408")


def test_a_client_slow_to_send_its_body_gets_a_408(serve: Callable[..., str]) -> None:
    url = serve(client_timeout=0.5)
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request_bytes(b"")[: -len(b"content-length: 0\r\n\r\n")])
        sock.sendall(b"content-length: 100\r\n\r\n{")
        status, headers, body = exchange(sock, b"")
    assert status == 408 and headers["connection"] == "close"
    assert json.loads(body)["error"]["code"] == "request_timeout"


def test_shutdown_ends_a_stream_longer_than_the_grace_period_with_an_error_event(
    faulty: FaultUpstream, random_dir: Path
) -> None:
    faulty.faults[STRONG] = Fault("stall")
    app = create_app(settings_for(faulty, [random_dir], strong={"chunk_timeout": 60}))
    body = {"model": TO_STRONG, "messages": HELLO, "stream": True}
    with (
        serve_in_thread(app, timeout_graceful_shutdown=1) as (url, server),
        httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=30) as response,
    ):
        chunks = response.iter_raw()
        first = next(chunks)
        server.should_exit = True
        rest = b"".join(chunks)  # a complete chunked body: no RemoteProtocolError
    events = [e for e in (first + rest).split(b"\n\n") if e]
    assert json.loads(events[-1].removeprefix(b"data: "))["error"]["code"] == (
        "server_shutting_down"
    )


def test_docs_and_schema_need_a_key_when_keys_are_set(serve: Callable[..., str]) -> None:
    url = serve(api_keys=["sk-docs"])
    for path in ("/docs", "/openapi.json", "/redoc"):
        assert httpx.get(f"{url}{path}").status_code == 401, path
    auth = {"authorization": "Bearer sk-docs"}
    assert httpx.get(f"{url}/openapi.json", headers=auth).json()["info"]["title"] == "prefroute"
    assert httpx.get(f"{url}/docs", headers=auth).status_code == 200
