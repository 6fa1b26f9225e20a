"""From a chat request to a routing decision: the ``model`` name and the routing text.

The ``model`` field picks a router and a threshold, RouteLLM-compatible:

- ``router-<kind>-<threshold>``, e.g. ``router-mf-0.1159``: strong when score ≥ 0.1159;
- ``router-<kind>@<share>%``, e.g. ``router-mf@30%``: the threshold the artifact's
  calibration gives for sending 30% of queries to the strong model;
- ``router-<kind>@q<Q>%`` / ``router-<kind>@pgr<G>%``, e.g. ``router-mf@q95%``: the
  cheapest threshold that kept 95% of the strong model's quality (``pgr80``: 80% of
  the gap between the models) on the user's eval file (``prefroute calibrate
  --quality 0.95`` / ``--gap-recovered 0.8``).

The router scores ``prefroute.conversation.conversation_text`` of the messages
under the served turn policy, the text the training readers built, so training
and serving cannot drift apart; a request with no user text routes on the empty
text. Shared by the server and the in-process client.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prefroute.conversation import Turns, conversation_text
from prefroute.errors import InvalidRequestError
from prefroute.routers.base import Router
from prefroute.serve.config import ROLES, Role, RoutingSettings

NAME = re.compile(r"router-(?P<kind>[a-z0-9_]+)(?:-(?P<threshold>.+)|@(?P<share>.+)%)", re.S)
NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
"""ASCII digits only: ``float`` also reads ``٠.٥`` (Arabic-Indic digits) as 0.5."""
log = logging.getLogger(__name__)
TARGET = re.compile(r"(?P<prefix>q|pgr)(?P<percent>.*)", re.ASCII)
"""A quality target's name after ``@``: ``q95`` or ``pgr80`` (``QualityTarget.name``)."""
EXAMPLES = (
    "router-<kind>-<threshold> (e.g. router-mf-0.1159), router-<kind>@<share>% "
    "(e.g. router-mf@30%) or a calibrated quality target router-<kind>@q<Q>% / "
    "@pgr<G>% (e.g. router-mf@q95%)"
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
            warning = pair_warning(router, models)
            if warning is not None:
                log.warning(warning)
            by_kind[router.kind] = Served(router, settings.turns or policy, models)
        return cls(by_kind)

    def upstream_models(self) -> list[tuple[Role, str]]:
        """Every (role, upstream model id) some served router calls, once each."""
        seen = {(role, s.models[role]) for s in self._by_kind.values() for role in ROLES}
        return sorted(seen)

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
        target = TARGET.fullmatch(match["share"]) if match["share"] is not None else None
        if target is not None:
            threshold = self._target(served.router, target, name)
        elif match["share"] is not None:
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

    @staticmethod
    def _target(router: Router, target: re.Match[str], name: str) -> float:
        """The stored threshold of a quality target, or a 400 saying how to calibrate one."""
        percent = _number(target["percent"])
        if not 0.0 < percent <= 100.0:
            raise InvalidRequestError(
                f"model {name!r}: the quality target after @{target['prefix']} must be a "
                f"number in (0, 100], got {target['percent']!r}",
                param="model",
                code="invalid_target",
            )
        wanted = f"{target['prefix']}{round(percent, 6):g}"
        calibration = getattr(router, "calibration_", None)
        found = calibration.target(wanted) if calibration is not None else None
        if found is None:
            stored = [t.name for t in calibration.targets] if calibration is not None else []
            flag = "--quality" if target["prefix"] == "q" else "--gap-recovered"
            raise InvalidRequestError(
                f"model {name!r}: the {router.kind} router has no quality target {wanted} "
                f"(stored: {', '.join(stored) or 'none'}); run `prefroute calibrate DIR "
                f"{flag} {percent / 100:g} --eval-file YOUR_LABELS` on the artifact",
                param="model",
                code="invalid_target",
            )
        return found.threshold

    def warm_up(self) -> None:
        """Score a prompt with each router, so no client request pays first-call set-up."""
        for served in self._by_kind.values():
            served.router.strong_win_rate(["Prove that √2 is irrational."])

    def model_names(self) -> list[dict[str, Any]]:
        """``/v1/models`` entries: each router at its calibrated deciles and quality targets
        (or at 0.5)."""
        entries = []
        for kind in self.kinds:
            served = self._by_kind[kind]
            info = {"kind": kind, **{f"{r}_model": m for r, m in served.models.items()}}
            calibration = getattr(served.router, "calibration_", None)
            names = []
            if calibration is not None:
                names += [f"router-{kind}@{p}%" for p in range(10, 100, 10)]
                names += [f"router-{kind}@{t.name}%" for t in calibration.targets]
            names.append(f"router-{kind}-0.5")
            entries += [{"id": name, "prefroute": info} for name in names]
        return entries


def pair_warning(router: Router, models: Mapping[Role, str]) -> str | None:
    """Why a router's scores may not fit the upstreams it is given, or None when they do.

    A router learned P(strong beats weak) for its own pair; routing other models
    with it silently applies that pair's preferences (and its calibration) to them.
    Names are compared canonically, so ``gpt-4o-2024-08-06`` is ``gpt-4o``.
    """
    from prefroute.data.model_names import canonical_name

    own = {"strong": router.strong_model, "weak": router.weak_model}
    if all(canonical_name(models[role]) == canonical_name(own[role]) for role in ROLES):
        return None
    return (
        f"router {router.kind} was trained for {own['strong']} (strong) vs {own['weak']} "
        f"(weak) but routes to upstream models {models['strong']} (strong) and "
        f"{models['weak']} (weak): its scores and calibration are its own pair's; if "
        "these are other models, retarget it (mf, sw_ranking) or train one for them, "
        "then run `prefroute calibrate`"
    )


def _number(text: str) -> float:
    """A plain decimal number, or NaN (which every range check then refuses)."""
    return float(text) if NUMBER.fullmatch(text) else math.nan
