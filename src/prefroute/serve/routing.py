"""From a chat request to a routing decision: the ``model`` name and the routing text.

The ``model`` field picks a router and a threshold, RouteLLM-compatible:

- ``router-<kind>-<threshold>``, e.g. ``router-mf-0.1159``: strong when score ≥ 0.1159;
- ``router-<kind>@<share>%``, e.g. ``router-mf@30%``: the threshold the artifact's
  calibration gives for sending 30% of queries to the strong model.

The router scores ``prefroute.conversation.conversation_text`` of the messages
under the served turn policy, the text the training readers built, so training
and serving cannot drift apart; a request with no user text routes on the empty
text. Shared by the server and the in-process client.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prefroute.conversation import Turns, conversation_text
from prefroute.errors import InvalidRequestError
from prefroute.routers.base import Router
from prefroute.serve.config import Role, RoutingSettings

NAME = re.compile(r"router-(?P<kind>[a-z0-9_]+)(?:-(?P<threshold>.+)|@(?P<share>.+)%)", re.S)
NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
"""ASCII digits only: ``float`` also reads ``٠.٥`` (Arabic-Indic digits) as 0.5."""
EXAMPLES = (
    "router-<kind>-<threshold> (e.g. router-mf-0.1159) or router-<kind>@<share>% "
    "(e.g. router-mf@30%)"
)


@dataclass(frozen=True)
class Decision:
    """Where one request goes and why; the server shows it in x-prefroute-* headers."""

    kind: str
    role: Role
    score: float
    threshold: float
    models: Mapping[Role, str]

    @property
    def model(self) -> str:
        """The upstream model id to call."""
        return self.models[self.role]

    @property
    def other(self) -> Role:
        """The role to fall back to."""
        return "weak" if self.role == "strong" else "strong"


@dataclass(frozen=True)
class Selection:
    """A router and threshold picked by a ``model`` name; ``decide`` does the CPU work."""

    kind: str
    router: Router
    threshold: float
    turns: Turns
    models: Mapping[Role, str]

    def decide(self, messages: Sequence[Mapping[str, Any]]) -> Decision:
        """Score the routing text and compare with the threshold (as ``Router.route`` does)."""
        return self.decide_text(conversation_text(messages, self.turns) or "")

    def decide_text(self, text: str) -> Decision:
        """``decide`` for a routing text already taken from the messages."""
        score = float(self.router.strong_win_rate([text])[0])
        role: Role = "strong" if score >= self.threshold else "weak"
        return Decision(self.kind, role, score, self.threshold, self.models)


@dataclass(frozen=True)
class Served:
    """One loaded artifact with its turn policy and upstream model ids."""

    router: Router
    turns: Turns
    models: Mapping[Role, str]


class RouterSet:
    """The served routers, keyed by kind, and the upstream model ids each routes to."""

    def __init__(self, served: Mapping[str, Served]) -> None:
        self._by_kind = dict(served)

    @classmethod
    def load(cls, settings: RoutingSettings) -> RouterSet:
        """Load every artifact (settings already checked there is one per kind).

        Each router scores the text its training conversations were read as: the
        artifact's ``training_data.turns``, unless the settings set ``turns``; an
        artifact that recorded none (format 1) was trained on ``first``.
        """
        by_kind = {}
        for path in settings.routers:
            router = Router.load(path)
            recorded = getattr(router, "training_data_", None)
            policy: Turns = (recorded.turns if recorded is not None else None) or "first"
            models: dict[Role, str] = {
                "strong": settings.strong.model or router.strong_model,
                "weak": settings.weak.model or router.weak_model,
            }
            by_kind[router.kind] = Served(router, settings.turns or policy, models)
        return cls(by_kind)

    @property
    def kinds(self) -> list[str]:
        return sorted(self._by_kind)

    def router(self, kind: str) -> Router:
        return self._by_kind[kind].router

    def select(self, name: Any) -> Selection:
        """Parse a ``model`` name; a 400 naming the ``model`` field if it selects nothing."""
        match = NAME.fullmatch(name) if isinstance(name, str) else None
        if match is None:
            raise InvalidRequestError(
                f"model {name!r} is not a prefroute router; use {EXAMPLES}, with <kind> one "
                f"of: {', '.join(self.kinds)}",
                param="model",
                code="model_not_found",
            )
        kind = match["kind"]
        if kind not in self._by_kind:
            raise InvalidRequestError(
                f"no {kind!r} router is served (model {name!r}); served: "
                f"{', '.join(f'router-{k}' for k in self.kinds)}",
                param="model",
                code="model_not_found",
            )
        served = self._by_kind[kind]
        if match["share"] is not None:
            threshold = self._calibrated(served.router, match["share"], name)
        else:
            threshold = _number(match["threshold"])
            if not 0.0 <= threshold <= 1.0:
                raise InvalidRequestError(
                    f"model {name!r}: the threshold after router-{kind}- must be a number "
                    f"in [0, 1] (scores are probabilities), got {match['threshold']!r}",
                    param="model",
                    code="invalid_threshold",
                )
        return Selection(kind, served.router, threshold, served.turns, served.models)

    @staticmethod
    def _calibrated(router: Router, share: str, name: str) -> float:
        percent = _number(share)
        if not 0.0 <= percent <= 100.0:
            raise InvalidRequestError(
                f"model {name!r}: the strong share before % must be a number in [0, 100], "
                f"got {share!r}",
                param="model",
                code="invalid_share",
            )
        if not getattr(router, "calibration_", None):
            raise InvalidRequestError(
                f"model {name!r}: the {router.kind} router has no calibration, so shares "
                f"mean nothing; use router-{router.kind}-<threshold>, or run "
                "`prefroute calibrate DIR` on the artifact",
                param="model",
                code="invalid_share",
            )
        return router.threshold_for_share(percent / 100.0)

    def warm_up(self) -> None:
        """Score a prompt with each router, so no client request pays first-call set-up."""
        for served in self._by_kind.values():
            served.router.strong_win_rate(["Prove that √2 is irrational."])

    def model_names(self) -> list[dict[str, Any]]:
        """``/v1/models`` entries: each router at its calibrated deciles (or at 0.5)."""
        entries = []
        for kind in self.kinds:
            served = self._by_kind[kind]
            info = {"kind": kind, **{f"{r}_model": m for r, m in served.models.items()}}
            calibrated = bool(getattr(served.router, "calibration_", None))
            names = [f"router-{kind}@{p}%" for p in range(10, 100, 10)] if calibrated else []
            names.append(f"router-{kind}-0.5")
            entries += [{"id": name, "prefroute": info} for name in names]
        return entries


def _number(text: str) -> float:
    """A plain decimal number, or NaN (which every range check then refuses)."""
    return float(text) if NUMBER.fullmatch(text) else math.nan
