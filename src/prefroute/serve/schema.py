"""The part of a chat-completions request prefroute reads; everything else passes through.

Only ``model``, ``messages`` and ``stream`` are checked, strictly (no
``"true"`` for ``true``), so a client mistake is a 400 naming the field
instead of a confusing upstream error; tools, response_format, n, logprobs
and fields prefroute has never heard of go to the upstream untouched, byte
for byte: the upstream gets the client's own bytes with only the ``model``
value replaced, never a re-encoding, so integers above 2^64, ``1E5`` and
JSON nested as deep as the parser takes arrive as the client wrote them.
The same model documents the request body in the OpenAPI schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from prefroute.errors import InvalidRequestError


class ContentPart(BaseModel):
    """One part of a multi-part message: ``text``, ``image_url``, ``input_audio``, ..."""

    model_config = ConfigDict(extra="allow", strict=True)

    type: str
    text: str | None = None


class Message(BaseModel):
    """A chat message; ``content`` may be null (an assistant turn with tool calls)."""

    model_config = ConfigDict(extra="allow", strict=True)

    role: str
    content: str | list[ContentPart] | None = None


class ChatRequest(BaseModel):
    """``POST /v1/chat/completions``: ``model`` names a router (``router-mf@30%``)."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: str = Field(examples=["router-mf@30%", "router-mf-0.1159"])
    messages: list[Message] = Field(min_length=1)
    stream: bool | None = False


_CHECK = TypeAdapter(ChatRequest)
MAX_DEPTH = 1024
"""How deep the JSON parser (orjson) nests; a deeper body is a 400 that says so."""
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[][{}]')
_COLON = re.compile(rb"[ \t\r\n]*:[ \t\r\n]*")


@dataclass(frozen=True)
class ChatBody:
    """A checked request: its JSON (for routing) and its raw bytes (to forward)."""

    data: dict[str, Any]
    raw: bytes | bytearray
    model_span: tuple[int, int]
    """Where the top-level ``model`` value (with its quotes) sits in ``raw``."""

    def payload(self, model: str) -> bytearray:
        """The client's bytes with ``model`` as the model: one copy, nothing re-encoded."""
        start, end = self.model_span
        value = orjson.dumps(model)
        out = bytearray(len(self.raw) - (end - start) + len(value))
        view = memoryview(self.raw)
        out[:start] = view[:start]
        out[start : start + len(value)] = value
        out[start + len(value) :] = view[end:]
        return out


def parse_chat_request(raw: bytes | bytearray) -> ChatBody:
    """The request, after checking the fields prefroute reads."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        why = str(exc)
        if why.startswith("depth limit"):
            why = f"it nests deeper than {MAX_DEPTH} levels, the server's limit ({why})"
        raise InvalidRequestError(
            f"the request body is not valid JSON: {why}", code="invalid_json"
        ) from None
    if not isinstance(body, dict):
        raise InvalidRequestError(
            f"the request body must be a JSON object, got {type(body).__name__}",
            code="invalid_json",
        )
    try:
        _CHECK.validate_python(body)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in err["loc"])
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise InvalidRequestError(
            f"{field}: {err['msg']}{more}", param=field, code=err["type"]
        ) from None
    return ChatBody(body, raw, _model_span(raw))


def _model_span(raw: bytes | bytearray) -> tuple[int, int]:
    """The byte span of the top-level ``model`` value in valid JSON ``raw``.

    Walks the strings and brackets (each a C-speed regex match) up to the key at
    depth 1; clients put it first or right after ``messages``, so the walk is
    short. A second top-level ``model`` (the parser keeps the last, an upstream
    might keep the first) is refused rather than guessed at.
    """
    depth, span = 0, None
    for match in _TOKEN.finditer(raw):
        token = match.group()
        if token in (b"{", b"["):
            depth += 1
        elif token in (b"}", b"]"):
            depth -= 1
        elif depth == 1 and (colon := _COLON.match(raw, match.end())) and _is_model(token):
            value = _STRING.match(raw, colon.end())
            assert value is not None  # the parsed body's model is a string
            span = value.span()
            break
    assert span is not None  # the parsed body has a top-level model
    rest = span[1]
    if raw.find(b'"model"', rest) >= 0 or raw.find(b"\\u", rest) >= 0:
        # a later key could be another "model": check by parsing what would be sent
        sent = orjson.loads(ChatBody({}, raw, span).payload("\x00"))
        if sent["model"] != "\x00":
            raise InvalidRequestError(
                "the request has more than one top-level 'model' field", param="model",
                code="duplicate_field",
            )  # fmt: skip
    return span


def _is_model(token: bytes) -> bool:
    if token == b'"model"':
        return True
    return b"\\" in token and orjson.loads(token) == "model"


def openapi_body() -> dict[str, Any]:
    """``openapi_extra`` for the route: the body schema, documented but not parsed by FastAPI
    (the body is forwarded as sent)."""
    schema = ChatRequest.model_json_schema()
    defs = schema.pop("$defs", {})
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _inline(schema, defs)}},
        }
    }


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    """Replace ``$ref``s to ``$defs`` by the definitions (these models do not recurse)."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
        return {key: _inline(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(value, defs) for value in node]
    return node
