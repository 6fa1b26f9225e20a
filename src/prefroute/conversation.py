"""The text a router sees in a conversation: one definition for training and serving.

A router learns from the text of training conversations and scores the text of
live requests. Built twice, the two drift apart and the router scores text
unlike any it learned from, so the data readers (training) and the server and
the in-process client (serving) all call ``conversation_text``. The rules:

- **Roles.** ``user`` and ``human`` (the spelling of Arena and ShareGPT
  exports) are the user; ``assistant`` messages are the answers. Nothing else
  is the query: ``system`` / ``developer`` messages are the deployment's
  instructions, usually the same on every request, and ``tool`` / ``function``
  messages are machine output; no training conversation (Arena, Kaggle)
  carries either, so a router has never seen such text.
- **Text.** A message's text is its ``content`` string, or the ``text`` of the
  ``{"type": "text"}`` parts of a content list, one per line. Image and audio
  parts, tool calls and anything else carry no text a router was trained on,
  so they count for nothing rather than being refused. A message whose text is
  empty or blank (an image-only turn, an assistant turn holding only tool
  calls) is skipped as if absent.
- **Policies** (``Turns``): ``first`` user message with text (the default: a
  router decides before any answer exists, and the shipped artifacts are
  trained on it), ``last``, or ``all``: the user and assistant messages as
  ``role: text`` lines (``human`` written ``user``), the form the training
  readers have always produced, so multi-turn studies see the context.
- **No user text** (a system prompt only, an image only, an empty content):
  ``None``, for every policy. The training readers report such a record as
  bad, since a battle with no user text says nothing a router could learn;
  serving routes such a request on the empty text (the router's score for a
  query it knows nothing about) rather than refusing a valid request or
  scoring a system prompt or tool output it was never trained on.

Standard library only: the serving path imports this.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

__all__ = [
    "TURN_POLICIES",
    "USER_ROLES",
    "Turns",
    "conversation_text",
    "message_text",
]

Turns = Literal["first", "last", "all"]
TURN_POLICIES: tuple[Turns, ...] = get_args(Turns)
USER_ROLES = frozenset({"user", "human"})
ASSISTANT_ROLES = frozenset({"assistant"})


def message_text(content: Any) -> str:
    """The text of one message's ``content``: a string, or the text parts of a list.

    Anything else (``None`` for an assistant turn with tool calls, a number) has no text.
    """
    if content.__class__ is str:
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, Mapping)
            and part.get("type") == "text"
            and isinstance(part.get("text"), str)
        )
    return ""


def conversation_text(messages: Sequence[Mapping[str, Any]], turns: Turns) -> str | None:
    """The text a router scores for ``messages`` under the ``turns`` policy.

    ``None`` when no user message has text (see the module docstring for why).
    """
    dialogue: list[tuple[str, str]] = []
    users: list[str] = []
    for message in messages:
        role = message.get("role")
        is_user = role in USER_ROLES
        if not is_user and role not in ASSISTANT_ROLES:
            continue
        text = message_text(message.get("content"))
        if not text.strip():
            continue
        if is_user:
            users.append(text)
        dialogue.append(("user" if is_user else "assistant", text))
    if not users:
        return None
    if turns == "first":
        return users[0]
    if turns == "last":
        return users[-1]
    return "\n".join(f"{role}: {text}" for role, text in dialogue)
