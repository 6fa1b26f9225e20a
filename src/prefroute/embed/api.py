"""Any OpenAI-compatible ``/v1/embeddings`` endpoint: OpenAI, vLLM, TEI, Ollama, LiteLLM.

Spec ``api:<model>``. The endpoint and key come from the environment so that a
spec stored in an artifact carries no secret:

    PREFROUTE_EMBED_BASE_URL   default https://api.openai.com/v1
    PREFROUTE_EMBED_API_KEY    else OPENAI_API_KEY; optional (local servers)

Requests are batched (by count and by characters), retried with exponential
backoff on 429, 5xx, timeouts and connection errors (honouring Retry-After),
and every failure becomes an ``EmbedderError`` naming the URL, the status and
the server's own message. The key never appears in messages.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from prefroute.embed._util import as_texts, l2_normalise
from prefroute.errors import EmbedderError

if TYPE_CHECKING:
    import httpx

BASE_URL_ENV = "PREFROUTE_EMBED_BASE_URL"
API_KEY_ENVS = ("PREFROUTE_EMBED_API_KEY", "OPENAI_API_KEY")
DEFAULT_BASE_URL = "https://api.openai.com/v1"
MAX_RETRY_AFTER = 60.0


class ApiEmbedder:
    """Vectors from a remote embeddings endpoint, L2-normalised to float32.

    NOTE: empty texts are not sent (OpenAI rejects them) and get the zero vector.
    Texts longer than ``max_chars`` are cut, so one long prompt cannot fail a
    whole batch on the model's token limit (16,000 chars is ~4k English tokens,
    half of text-embedding-3's 8,191).
    NOTE: ``dim`` is known after the first call; reading it before then sends one
    short probe request.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        batch_size: int = 128,
        max_batch_chars: int = 400_000,
        max_chars: int = 16_000,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not model:
            raise EmbedderError("api embedder needs a model name: 'api:<model>'")
        self.model = model
        self.base_url = (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")
        self._api_key = api_key or next(
            (os.environ[name] for name in API_KEY_ENVS if os.environ.get(name)), None
        )
        self.batch_size = batch_size
        self.max_batch_chars = max_batch_chars
        self.max_chars = max_chars
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.transport = transport
        self.spec = f"api:{model}"
        self.url = f"{self.base_url}/embeddings"
        self._dim: int | None = None
        self._client: httpx.Client | None = None

    def __repr__(self) -> str:
        return f"ApiEmbedder(spec={self.spec!r}, url={self.url!r})"

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.encode(["dimension probe"])
        assert self._dim is not None
        return self._dim

    @property
    def cache_id(self) -> str:
        """What ``CachedEmbedder`` keys on: two servers may serve different 'same' models."""
        return f"{self.spec}@{self.base_url}"

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised float32 row per text, shape (len(texts), dim)."""
        texts = [t[: self.max_chars] for t in as_texts(texts)]
        todo = [i for i, t in enumerate(texts) if t]
        rows = [self._post(batch) for batch in self._batches([texts[i] for i in todo])]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)  # no rows yet: dim probes
        if rows:
            out[todo] = np.concatenate(rows)
        return l2_normalise(out)

    def close(self) -> None:
        """Close the HTTP connection pool; the embedder reopens one if used again."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> ApiEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:  # picklable for worker processes
        return {**self.__dict__, "_client": None}

    # -- internals --------------------------------------------------------------

    def _batches(self, texts: list[str]) -> Iterator[list[str]]:
        batch: list[str] = []
        chars = 0
        for text in texts:
            full = len(batch) >= self.batch_size or chars + len(text) > self.max_batch_chars
            if batch and full:
                yield batch
                batch, chars = [], 0
            batch.append(text)
            chars += len(text)
        if batch:
            yield batch

    def _http(self) -> httpx.Client:
        if self._client is None:
            import httpx

            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            self._client = httpx.Client(
                timeout=self.timeout, headers=headers, transport=self.transport
            )
        return self._client

    def _post(self, batch: list[str]) -> np.ndarray:
        import httpx

        body = {"model": self.model, "input": batch}
        last = ""
        for attempt in range(self.max_retries + 1):
            delay = self.backoff * 2**attempt * random.uniform(1.0, 1.25)
            try:
                response = self._http().post(self.url, json=body)
            except httpx.TimeoutException:
                last = f"timed out after {self.timeout:g} s (raise timeout= for slow servers)"
            except httpx.TransportError as exc:
                last = f"cannot connect ({type(exc).__name__}: {exc}); is the server up?"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return self._parse(response, len(batch))
                message = _server_message(response)
                if status != 429 and status != 408 and status < 500:
                    raise EmbedderError(self._refused(status, message))
                last = f"HTTP {status}: {message}"
                delay = _retry_after(response) or delay
            if attempt < self.max_retries:
                time.sleep(delay)
        raise EmbedderError(
            f"POST {self.url} (model {self.model!r}) failed after {self.max_retries + 1} "
            f"attempts; last error: {last}"
        )

    def _refused(self, status: int, message: str) -> str:
        text = f"POST {self.url} (model {self.model!r}) was refused: HTTP {status}: {message}"
        if status in (401, 403):
            key = "no API key was sent" if self._api_key is None else "the API key was rejected"
            return f"{text} ({key}; set PREFROUTE_EMBED_API_KEY or OPENAI_API_KEY)"
        if status == 404:
            return f"{text} (check the model name, and that {self.base_url!r} ends in /v1)"
        return text

    def _parse(self, response: httpx.Response, n: int) -> np.ndarray:
        expected = f"{{'data': [{{'index': i, 'embedding': [floats]}}, ...]}} with {n} items"
        try:
            payload = response.json()
        except ValueError:
            raise EmbedderError(
                f"unexpected response from {self.url}: expected JSON {expected}, got "
                f"{response.text[:200]!r}"
            ) from None
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list) or len(data) != n:
            got = f"{len(data)} items" if isinstance(data, list) else _describe(payload)
            raise EmbedderError(
                f"unexpected response from {self.url}: expected {expected}, got {got}"
            )
        try:
            if all(isinstance(item, dict) and "index" in item for item in data):
                data = sorted(data, key=lambda item: item["index"])
            vectors = np.asarray([item["embedding"] for item in data], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbedderError(
                f"unexpected response from {self.url}: expected {expected}, got items like "
                f"{_describe(data[0])} ({type(exc).__name__}: {exc})"
            ) from None
        if vectors.ndim != 2 or vectors.shape[1] == 0 or not np.isfinite(vectors).all():
            raise EmbedderError(
                f"unexpected response from {self.url}: embeddings must be equal-length, "
                f"non-empty lists of finite numbers; got array of shape {vectors.shape}"
            )
        if self._dim is None:
            self._dim = int(vectors.shape[1])
        elif vectors.shape[1] != self._dim:
            raise EmbedderError(
                f"{self.url} returned {vectors.shape[1]}-dim vectors after {self._dim}-dim "
                "ones; is another model behind the same name?"
            )
        return vectors


def _server_message(response: httpx.Response) -> str:
    """The server's error text: OpenAI's ``error.message``, FastAPI's ``detail``, or the body."""
    try:
        payload = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("error", "detail", "message"):
            if payload.get(key):
                return str(payload[key])[:300]
    return str(payload)[:300]


def _retry_after(response: httpx.Response) -> float | None:
    try:
        seconds = float(response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
