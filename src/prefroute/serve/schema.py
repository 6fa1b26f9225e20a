"""The part of a chat-completions request prefroute reads; everything else passes through.

Only ``model``, ``messages`` and ``stream`` are checked, strictly (no
``"true"`` for ``true``), so a client mistake is a 400 naming the field
instead of a confusing upstream error; tools, response_format, n, logprobs
and fields prefroute has never heard of go to the upstream untouched. The
same model documents the request body in the OpenAPI schema.
"""

from __future__ import annotations

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


def parse_chat_request(raw: bytes) -> dict[str, Any]:
    """The request as plain JSON (to forward), after checking the fields prefroute reads."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"the request body is not valid JSON: {exc}", code="invalid_json"
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
    return body


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
