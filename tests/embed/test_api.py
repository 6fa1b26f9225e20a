"""ApiEmbedder against a real OpenAI-compatible server on 127.0.0.1 (and MockTransport)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import numpy as np
import pytest

from prefroute.embed import ApiEmbedder, CachedEmbedder, get_embedder
from prefroute.errors import EmbedderError

DIM = 12


def fake_vector(text: str) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    return (np.random.default_rng(seed).standard_normal(DIM) * 3).tolist()  # not unit length


class FakeOpenAI(BaseHTTPRequestHandler):
    """POST /v1/embeddings as OpenAI answers it; ``server.plan`` scripts failures."""

    server: EmbeddingServer

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        request = {"path": self.path, "body": body, "headers": dict(self.headers)}
        self.server.requests.append(request)
        step = self.server.plan.pop(0) if self.server.plan else "ok"
        if step == "slow":
            time.sleep(0.5)
            step = "ok"
        if step == "ok":
            inputs = body["input"]
            data = [
                {"object": "embedding", "index": i, "embedding": fake_vector(t)}
                for i, t in enumerate(inputs)
            ]
            data.reverse()  # servers may answer out of order; 'index' says where each goes
            self.reply(200, {"object": "list", "data": data, "model": body["model"]})
        elif step == "500":
            self.reply(500, {"error": {"message": "upstream overloaded", "type": "server_error"}})
        elif step == "429":
            self.reply(429, {"error": {"message": "rate limited"}}, {"Retry-After": "0"})
        elif step == "401":
            self.reply(401, {"error": {"message": "Incorrect API key provided: sk-***"}})
        elif step == "badjson":
            self.reply_raw(200, b"<html>proxy error</html>")
        elif step == "short":
            self.reply(200, {"data": [{"index": 0, "embedding": [1.0] * DIM}]})
        elif step == "noembedding":
            self.reply(200, {"data": [{"index": i} for i in range(len(body["input"]))]})

    def reply(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        self.reply_raw(status, json.dumps(payload).encode(), headers)

    def reply_raw(self, status: int, raw: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass


class EmbeddingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FakeOpenAI)
        self.plan: list[str] = []
        self.requests: list[dict] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


@pytest.fixture
def server() -> Iterator[EmbeddingServer]:
    srv = EmbeddingServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def env(server, monkeypatch):
    monkeypatch.setenv("PREFROUTE_EMBED_BASE_URL", server.base_url)
    monkeypatch.setenv("PREFROUTE_EMBED_API_KEY", "sk-test-secret")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def embedder(**kw) -> ApiEmbedder:
    return ApiEmbedder("text-embedding-test", backoff=0.01, **kw)


def test_batches_normalises_and_keeps_order(server, env):
    emb = get_embedder("api:text-embedding-test", cache=False)
    assert isinstance(emb, ApiEmbedder) and emb.spec == "api:text-embedding-test"
    emb.batch_size = 4
    texts = [f"prompt number {i}" for i in range(10)]
    out = emb.encode(texts)
    assert out.shape == (10, DIM) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    expected = np.array([fake_vector(t) for t in texts], dtype=np.float32)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert [len(r["body"]["input"]) for r in server.requests] == [4, 4, 2]
    first = server.requests[0]
    assert first["path"] == "/v1/embeddings"
    assert first["body"]["model"] == "text-embedding-test"
    assert first["headers"]["Authorization"] == "Bearer sk-test-secret"
    assert emb.dim == DIM


def test_batches_also_by_characters_and_cuts_long_texts(server, env):
    emb = embedder(batch_size=100, max_batch_chars=25, max_chars=10)
    emb.encode(["a" * 50, "b" * 10, "c" * 10, "d"])
    sent = [r["body"]["input"] for r in server.requests]
    assert sent == [["a" * 10, "b" * 10], ["c" * 10, "d"]]


def test_empty_texts_are_zero_rows_and_not_sent(server, env):
    out = embedder().encode(["", "real text", ""])
    assert [r["body"]["input"] for r in server.requests] == [["real text"]]
    assert not out[0].any() and not out[2].any()
    assert embedder(batch_size=3).encode([]).shape == (0, DIM)  # probes the dim once


def test_retries_500_and_429_then_succeeds(server, env):
    server.plan = ["500", "429"]
    out = embedder().encode(["x", "y"])
    assert out.shape == (2, DIM)
    assert len(server.requests) == 3


def test_gives_up_after_max_retries_with_the_last_error(server, env):
    server.plan = ["500"] * 3
    with pytest.raises(EmbedderError, match=r"after 3 attempts.*HTTP 500: upstream overloaded"):
        embedder(max_retries=2).encode(["x"])


def test_401_is_not_retried_and_says_what_to_do(server, env):
    server.plan = ["401"]
    with pytest.raises(EmbedderError) as info:
        embedder().encode(["x"])
    message = str(info.value)
    assert "HTTP 401" in message and "Incorrect API key provided" in message
    assert "PREFROUTE_EMBED_API_KEY" in message
    assert "sk-test-secret" not in message
    assert len(server.requests) == 1


def test_key_is_optional_for_local_servers(server, env, monkeypatch):
    monkeypatch.delenv("PREFROUTE_EMBED_API_KEY")
    embedder().encode(["x"])
    assert "Authorization" not in server.requests[0]["headers"]


@pytest.mark.parametrize(
    ("step", "pattern"),
    [
        ("badjson", r"expected JSON .*proxy error"),
        ("short", r"with 2 items, got 1 items"),
        ("noembedding", r"got items like \{'index': 0\}"),
    ],
)
def test_wrong_response_shapes_are_clear_errors(server, env, step, pattern):
    server.plan = [step]
    with pytest.raises(EmbedderError, match=pattern):
        embedder().encode(["x", "y"])


def test_timeout_is_retried_then_reported(server, env):
    server.plan = ["slow", "slow"]
    with pytest.raises(EmbedderError, match=r"timed out after 0.1 s"):
        embedder(timeout=0.1, max_retries=1).encode(["x"])


def test_connection_refused_is_reported(monkeypatch):
    with EmbeddingServer() as srv:
        url = srv.base_url  # a port that was free a moment ago, now closed
    monkeypatch.setenv("PREFROUTE_EMBED_BASE_URL", url)
    with pytest.raises(EmbedderError, match=r"cannot connect .*is the server up"):
        embedder(max_retries=1).encode(["x"])


def test_cached_by_default_and_a_hit_makes_no_request(server, env, tmp_path):
    emb = get_embedder("api:text-embedding-test", cache_dir=tmp_path)
    assert isinstance(emb, CachedEmbedder)
    first = emb.encode(["cached prompt", "another"])
    n = len(server.requests)
    np.testing.assert_array_equal(emb.encode(["another", "cached prompt"]), first[::-1])
    assert len(server.requests) == n


def test_mock_transport_dimension_change_is_caught():
    dims = iter([4, 5])

    def handler(request: httpx.Request) -> httpx.Response:
        n = len(json.loads(request.content)["input"])
        d = next(dims)
        return httpx.Response(200, json={"data": [{"embedding": [1.0] * d} for _ in range(n)]})

    emb = ApiEmbedder("m", base_url="http://fake/v1", transport=httpx.MockTransport(handler))
    emb.batch_size = 1
    with pytest.raises(EmbedderError, match="returned 5-dim vectors after 4-dim ones"):
        emb.encode(["a", "b"])
