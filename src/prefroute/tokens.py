"""Tokens of a request, estimated by a rule rather than a tokenizer.

Every provider tokenizes differently and a cost estimate must not need one.
The rule is the mean of two rules of thumb, ~4 characters a token and a token
per word or run of punctuation; on the shipped data it came within 7% of
OpenAI's o200k tokenizer (AlpacaEval answers +7%, Arena-Hard prompts -3%, Arena
battles -7%, MMLU-Pro +3%), where either rule alone was off by up to 20%. Each
message adds 4 tokens of chat formatting and each request 3. Used wherever
prefroute prices calls before making them (``label --dry-run``, ``route``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from prefroute.conversation import message_text

__all__ = ["MESSAGE_OVERHEAD", "REQUEST_OVERHEAD", "message_tokens", "text_tokens"]

_PIECES = re.compile(r"\w+|[^\w\s]+")
MESSAGE_OVERHEAD = 4
REQUEST_OVERHEAD = 3


def text_tokens(text: str) -> float:
    """Estimated tokens of ``text`` (see the module docstring for the rule)."""
    return (len(text) / 4 + len(_PIECES.findall(text))) / 2


def message_tokens(messages: Sequence[Mapping[str, Any]]) -> float:
    """Estimated input tokens of a chat request."""
    texts = [message_text(m.get("content")) for m in messages]
    return sum(text_tokens(t) + MESSAGE_OVERHEAD for t in texts) + REQUEST_OVERHEAD
