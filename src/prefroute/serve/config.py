"""Settings for ``prefroute serve`` and ``prefroute.Client``: a TOML file, flags on top.

One pydantic model validates both sources, so a typo in the file and a bad
flag fail the same way: one line naming where (file or command line), the
field and what is wrong. Unknown keys are errors, not silently ignored.

A config file (every key optional except ``routers``)::

    routers = ["routers/mf"]          # relative to this file
    prices = ["my-prices.toml"]       # price files over the shipped table, relative too
    [strong]
    model = "gpt-4o"                  # default: the artifact's strong model name
    base_url = "https://api.openai.com/v1"
    api_key_env = "OPENAI_API_KEY"
    input_cost = 2.5                  # $ per 1M tokens; default: the price table's
    output_cost = 10.0
    [weak]
    model = "llama3.1:8b"
    base_url = "http://localhost:11434/v1"
    [judge]                           # read by `prefroute label` only
    model = "gpt-4o"

Choosing among N models (``router-<kind>@budget=B``, ``router-<kind>:<point>``),
one table per candidate, named as the router learned the model (quote names
with dots), with the same fields as ``[strong]``::

    [models.gpt-4o]
    api_key_env = "OPENAI_API_KEY"
    [models."llama-3.1-8b-instruct"]
    model = "llama3.1:8b"             # the upstream's own id, when it differs
    base_url = "http://localhost:11434/v1"
    input_cost = 0.0                  # a local model: free, but say so
    output_cost = 0.0
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from prefroute.conversation import Turns
from prefroute.errors import ConfigError, PrefrouteError

if TYPE_CHECKING:
    from prefroute.prices import Price, PriceTable

Role = Literal["strong", "weak"]
ROLES: tuple[Role, Role] = ("strong", "weak")
"""The two-model upstreams; an N-model upstream is named by its ``[models.<name>]`` table."""
API_KEYS_ENV = "PREFROUTE_API_KEYS"
"""Comma-separated server API keys, used when neither ``--api-key`` nor the file sets any."""
SETTINGS_ENV = "PREFROUTE_SETTINGS"
"""Where ``prefroute serve --workers N`` hands its validated settings to the workers."""


class UpstreamSettings(BaseModel):
    """One OpenAI-compatible upstream: where it is, how to authenticate, what it costs.

    ``base_url`` is the part before ``/chat/completions`` (OpenAI, vLLM, Ollama's
    ``/v1``, LiteLLM, Together, or an Azure deployment URL with ``query =
    {"api-version" = "..."}`` and ``auth_header = "api-key"``).

    Timeouts, per attempt: ``connect_timeout`` to open a connection;
    ``first_byte_timeout`` from sending a streaming request to its first event,
    ``answer_timeout`` from sending a non-streaming request to its response
    headers; ``chunk_timeout`` between the chunks of a body after that. A
    stream's first event usually comes in about a second, so six seconds of
    silence mean a hung upstream, worth leaving for the other model while the
    client still waits. A non-streaming answer arrives all at once, when it is
    fully generated, so its wait bounds the whole generation: a minute, since
    leaving a strong model's long answer for the weak one would silently trade
    quality (and pay twice) on every long answer, and repeated cut-offs would
    open the circuit breaker on a healthy model. No HTTP signal tells a slow
    upstream from a hung one before its headers.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = Field(default=None, min_length=1)
    base_url: str = "https://api.openai.com/v1"
    api_key_env: str | None = Field(default=None, min_length=1)
    auth_header: str = Field(default="authorization", min_length=1)
    query: dict[str, str] = {}
    connect_timeout: PositiveFloat = 3.0
    first_byte_timeout: PositiveFloat = 6.0
    answer_timeout: PositiveFloat = 60.0
    chunk_timeout: PositiveFloat = 30.0
    input_cost: NonNegativeFloat = 0.0
    output_cost: NonNegativeFloat = 0.0

    def read_timeout(self, stream: bool) -> float:
        """The socket-read bound of one attempt (aiohttp's ``sock_read``), which also
        covers the wait for the headers: for a non-streaming call, which gets its
        headers with the whole answer, chunk_timeout alone would cut answer_timeout
        short (and a labelling run would pay again for every long answer)."""
        return max(self.chunk_timeout, self.first_byte_timeout if stream else self.answer_timeout)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value.rstrip("/")

    def price(self, model: str, table: PriceTable) -> Price | None:
        """What this upstream's calls cost: its own ``input_cost``/``output_cost`` when the
        config sets them, else the price table's entry for ``model``, else None
        (unknown: asked for, never invented)."""
        from prefroute.prices import Price

        if self.model_fields_set & {"input_cost", "output_cost"}:
            return Price(self.input_cost, self.output_cost, source="config")
        return table.get(model)

    def api_key(self) -> str | None:
        """The key from ``api_key_env``; None when no variable is named (local servers)."""
        if self.api_key_env is None:
            return None
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ConfigError(
                f"api_key_env names ${self.api_key_env}, which is not set; export it or "
                "drop api_key_env for an upstream without keys"
            )
        return key

    def headers(self) -> dict[str, str]:
        """Authentication headers for every request to this upstream."""
        key = self.api_key()
        if key is None:
            return {}
        if self.auth_header.lower() == "authorization":
            return {"authorization": f"Bearer {key}"}
        return {self.auth_header: key}


class RoutingSettings(BaseModel):
    """What both the server and the in-process client need: routers and upstreams.

    ``turns`` picks the routing text from the conversation: ``first`` user
    message (what the shipped artifacts are trained on), ``last`` or ``all``;
    unset, it follows the artifact's own policy. ``retries`` counts extra
    attempts per upstream on connect errors and 5xx, ``backoff`` seconds
    doubling between them; a timeout, a 429 or a refused upstream key is not
    retried on the same model. Then ``fallback`` tries the other model. Every
    attempt of one request, retries and fallback included, fits in
    ``deadline`` seconds (for a stream: until its first event).

    The circuit breaker: ``breaker_failures`` failed attempts in a row (0: no
    breaker) open an upstream's circuit, and its requests go straight to the
    other model for ``breaker_cooldown`` seconds; then one request probes it,
    and its success closes the circuit again.
    ``prices`` are price files laid over the shipped table (``prefroute.prices``): the
    cost metric prices an upstream without ``input_cost``/``output_cost`` from them.
    ``judge`` is for ``prefroute label``, which reads the same file; the server never calls it.

    ``models`` are the N-model candidates, one upstream each, keyed by the name
    the routers learned the model under (``UpstreamSettings.model``, when set, is
    the id the upstream knows it by). Budget model names calibrate λ on
    ``calibration_prompts`` (a prompts file, as ``prefroute calibrate --prompts``
    reads), by default on the shipped Chatbot Arena prompts, as ``prefroute
    calibrate --models ... --budget`` does, so both give the same λ.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    routers: list[Path] = Field(min_length=1)
    prices: list[Path] = []
    strong: UpstreamSettings = UpstreamSettings()
    weak: UpstreamSettings = UpstreamSettings()
    judge: UpstreamSettings | None = None
    models: dict[str, UpstreamSettings] = {}
    calibration_prompts: Path | None = None
    turns: Turns | None = None
    fallback: bool = True
    retries: NonNegativeInt = 2
    backoff: NonNegativeFloat = 0.25
    deadline: PositiveFloat = 90.0
    breaker_failures: NonNegativeInt = 5
    breaker_cooldown: PositiveFloat = 10.0

    @field_validator("routers")
    @classmethod
    def _one_artifact_per_kind(cls, paths: list[Path]) -> list[Path]:
        """Model names say only the kind (``router-mf-…``), so two of a kind would clash."""
        from prefroute.routers.artifact import read_config

        seen: dict[str, Path] = {}
        for path in paths:
            try:
                kind = read_config(path).kind
            except PrefrouteError as exc:
                raise ValueError(str(exc)) from None
            if kind in seen:
                raise ValueError(
                    f"two {kind!r} routers ({seen[kind]} and {path}); the model name "
                    f"router-{kind}-… selects by kind, so serve one artifact per kind"
                )
            seen[kind] = path
        return paths

    @field_validator("models")
    @classmethod
    def _model_names(cls, models: dict[str, UpstreamSettings]) -> dict[str, UpstreamSettings]:
        """Upstreams are named by role or by model, in metrics and ``/health``: keep them apart."""
        for name in models:
            if name in ROLES or not name.strip():
                raise ValueError(
                    f"{name!r} cannot name an N-model upstream: {' and '.join(ROLES)} are the "
                    "two-model upstreams' tables; name each [models.<name>] table after the model"
                )
        return models

    def upstreams(self) -> dict[str, UpstreamSettings]:
        """Every upstream by name: ``strong``, ``weak``, then each of ``models``."""
        return {"strong": self.strong, "weak": self.weak, **self.models}

    def upstream(self, name: str) -> UpstreamSettings:
        """The upstream called ``name`` (a role or a ``models`` key)."""
        if name == "strong":
            return self.strong
        if name == "weak":
            return self.weak
        return self.models[name]


class ServeSettings(RoutingSettings):
    """The server's own knobs on top of routing.

    Admission comes before any work: a request is admitted (or queued) from
    its headers alone, before its body is read. At most ``max_concurrency``
    calls run at once on each upstream, so a hung model fills its own slots
    only; a request whose model has no free slot goes to the other one. The
    server admits twice that (a full set per upstream) and at most
    ``max_body_memory`` bytes of request bodies; ``max_queue`` more wait up to
    ``queue_timeout`` s, then a 503 tells clients to back off rather than
    letting latency and memory grow without bound. A client gets
    ``client_timeout`` s to send its request head, and again between the
    parts of its body. ``routing``: ``inline``
    scores prompts on the event loop, ``thread`` in the threadpool, ``auto``
    inline unless the prompt is long. Inline gave the lower added p50 at every
    load (benchmarks/server_load.py), the threadpool the lower p99 under load:
    the tokenizer releases the GIL, so a long prompt tokenized in a thread does
    not stall the other requests' streams. ``auto`` takes both. ``workers``
    server processes share the port, each with its own event loop, routers
    and limits: one event loop saturates one core.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    api_keys: list[SecretStr] = []
    api_key_file: Path | None = None
    max_concurrency: PositiveInt = 256
    max_queue: NonNegativeInt = 1024
    queue_timeout: PositiveFloat = 10.0
    max_body_bytes: PositiveInt = 16 * 2**20
    max_body_memory: PositiveInt = 128 * 2**20
    client_timeout: PositiveFloat = 10.0
    routing: Literal["auto", "inline", "thread"] = "auto"
    log_prompts: bool = False
    shutdown_timeout: PositiveInt = 30
    workers: PositiveInt = 1

    @model_validator(mode="after")
    def _a_largest_body_fits(self) -> ServeSettings:
        if self.max_body_memory < self.max_body_bytes:
            raise ValueError(
                f"max_body_memory ({self.max_body_memory:,}) is smaller than max_body_bytes "
                f"({self.max_body_bytes:,}), so a body of the largest allowed size could never "
                "be admitted"
            )
        return self

    def to_env(self) -> str:
        """These settings as JSON for worker processes (``from_env`` reads them back).

        Keys are written in clear: the workers are this process's own children.
        """
        data = self.model_dump(mode="json")
        data["api_keys"] = [k.get_secret_value() for k in self.api_keys]
        return json.dumps(data)

    @classmethod
    def from_env(cls) -> ServeSettings:
        """The settings a parent passed in ``$PREFROUTE_SETTINGS``, else ``$PREFROUTE_CONFIG``'s."""
        passed = os.environ.get(SETTINGS_ENV)
        if passed is not None:
            return cls.model_validate_json(passed)
        return load_settings(os.environ.get("PREFROUTE_CONFIG"))

    def accepted_keys(self) -> list[str]:
        """Accepted bearer keys: ``api_keys`` and the lines of ``api_key_file``, else
        ``$PREFROUTE_API_KEYS``. A file or the variable keeps keys out of ``ps``."""
        keys = [k.get_secret_value() for k in self.api_keys]
        if self.api_key_file is not None:
            try:
                text = self.api_key_file.read_text("utf-8")
            except OSError as exc:
                raise ConfigError(
                    f"api_key_file: cannot read {self.api_key_file} ({exc.strerror})"
                ) from None
            keys += [line.strip() for line in text.splitlines() if line.strip()]
            if not keys:
                raise ConfigError(f"api_key_file: {self.api_key_file} holds no key")
        if keys:
            return keys
        return [k.strip() for k in os.environ.get(API_KEYS_ENV, "").split(",") if k.strip()]


S = TypeVar("S", bound=BaseModel)


def load_settings(
    path: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    *,
    cls: type[S] = ServeSettings,  # type: ignore[assignment]
) -> S:
    """Read the TOML file (if any), lay ``overrides`` (flags) over it, validate.

    Router paths and ``api_key_file`` in the file are relative to the file, as users
    write them next to it. Every problem is reported at once, each with its source.
    """
    data: dict[str, Any] = {}
    where = "settings"
    if path is not None:
        path = Path(path)
        where = str(path)
        try:
            data = tomllib.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
        for key in ("routers", "prices"):
            if isinstance(data.get(key), list):
                data[key] = [path.parent / str(r) for r in data[key]]
        for key in ("api_key_file", "calibration_prompts"):
            if isinstance(data.get(key), str):
                data[key] = path.parent / data[key]
    overrides = overrides or {}
    merged = _merge(data, overrides)
    try:
        return cls.model_validate(merged)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            source = "command line" if _has(overrides, err["loc"]) else where
            secret = err["loc"][:1] == ("api_keys",)  # never echo a key
            shown = field and not secret and err["type"] != "missing"
            got = f" (got {err['input']!r})" if shown else ""
            lines.append(f"{source}: {field or 'settings'}: {err['msg']}{got}")
        raise ConfigError("\n".join(lines)) from None


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``, table by table ([strong], [models.<name>]), key by key."""
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _has(tree: dict[str, Any], loc: tuple[int | str, ...]) -> bool:
    """Whether the error location lies under a value the overrides set."""
    node: Any = tree
    for part in loc:
        if not isinstance(node, dict):
            return True  # inside a value set as a whole, e.g. the list of routers
        if part not in node:
            return False
        node = node[part]
    return True
