"""From a chat request to a routing decision: the ``model`` name and the routing text.

The ``model`` field picks a router and a threshold, RouteLLM-compatible:

- ``router-<kind>-<threshold>``, e.g. ``router-mf-0.1159``: strong when score ≥ 0.1159;
- ``router-<kind>@<share>%``, e.g. ``router-mf@30%``: the threshold the artifact's
  calibration gives for sending 30% of queries to the strong model;
- ``router-<kind>@q<Q>%`` / ``router-<kind>@pgr<G>%``, e.g. ``router-mf@q95%``: the
  cheapest threshold that kept 95% of the strong model's quality (``pgr80``: 80% of
  the gap between the models) on the user's eval file (``prefroute calibrate
  --quality 0.95`` / ``--gap-recovered 0.8``).

Among the N upstreams of ``[models.<name>]`` (routers that score each model:
``Router.model_quality``), by expected quality minus λ·cost (``prefroute.policy``):

- ``router-<kind>@budget=<B>``, e.g. ``router-quality@budget=0.5``: the best
  predicted quality within $0.5 per 1M tokens on the calibration prompts
  (``@budget=<B>/1k``: $B per 1,000 requests); λ is calibrated once per name;
- ``router-<kind>:<point>``, e.g. ``router-quality:cheap``: an operating point stored
  by ``prefroute calibrate DIR --models ... --name cheap``, with its own λ and prices.

The answer's fallback order is the policy's ranking: the candidate with the next
highest q − λ·c is what the policy would choose were the failed model not there.

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
from typing import TYPE_CHECKING, Any

from prefroute.conversation import Turns, conversation_text
from prefroute.errors import (
    ConfigError,
    InvalidParameterError,
    InvalidRequestError,
    PrefrouteError,
    UnknownModelError,
)
from prefroute.routers.base import Router
from prefroute.serve.config import ROLES, Role, RoutingSettings

if TYPE_CHECKING:
    from prefroute.policy import CallCosts, Frontier, Policy
    from prefroute.prices import Price, PriceTable

NAME = re.compile(
    r"router-(?P<kind>[a-z0-9_]+)"
    r"(?:-(?P<threshold>.+)|@budget=(?P<budget>.+)|@(?P<share>.+)%|:(?P<point>.+))",
    re.S,
)
BUDGET = re.compile(r"(?P<amount>[^/]*)(?:/(?P<unit>1m|1k))?", re.S)
"""A budget after ``@budget=``: $ per 1M tokens, or with ``/1k`` $ per 1,000 requests."""
BUDGET_UNITS = {None: "1m-tokens", "1m": "1m-tokens", "1k": "1k-requests"}
MAX_CACHED_BUDGETS = 256
"""Budget names keep their λ; clients choose the names, so the cache is bounded."""
PROBE = "Prove that √2 is irrational."
NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
"""ASCII digits only: ``float`` also reads ``٠.٥`` (Arabic-Indic digits) as 0.5."""
log = logging.getLogger(__name__)
TARGET = re.compile(r"(?P<prefix>q|pgr)(?P<percent>.*)", re.ASCII)
"""A quality target's name after ``@``: ``q95`` or ``pgr80`` (``QualityTarget.name``)."""
EXAMPLES = (
    "router-<kind>-<threshold> (e.g. router-mf-0.1159), router-<kind>@<share>% "
    "(e.g. router-mf@30%), a calibrated quality target router-<kind>@q<Q>% / "
    "@pgr<G>% (e.g. router-mf@q95%), or among the [models] upstreams a budget "
    "router-<kind>@budget=<$ per 1M tokens> (e.g. router-quality@budget=0.5, or "
    "@budget=2/1k for $ per 1k requests) or a stored operating point "
    "router-<kind>:<point> (e.g. router-quality:cheap)"
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

    @property
    def plan(self) -> tuple[tuple[str, str], ...]:
        """(upstream, model id) to call in turn: the decided role, then the other."""
        return tuple((role, self.models[role]) for role in (self.role, self.other))

    def headers(self, answered: str) -> dict[str, str]:
        """The ``x-prefroute-*`` headers that say why, once ``answered`` (a role) answered."""
        return {
            "x-prefroute-role": answered,
            "x-prefroute-score": f"{self.score:.6g}",
            "x-prefroute-threshold": f"{self.threshold:.6g}",
        }


@dataclass(frozen=True)
class Choice:
    """Where one request goes among N models and why: every candidate, ranked.

    ``candidates`` are upstream names (``[models.<name>]``), ``upstream_models``
    the ids they are called with, ``quality`` each one's predicted quality and
    ``ranking`` the policy's order (best q − λ·c first, ties to the cheaper): the
    chosen model, then the fallback order.
    """

    kind: str
    label: str
    candidates: tuple[str, ...]
    upstream_models: tuple[str, ...]
    quality: tuple[float, ...]
    ranking: tuple[int, ...]
    lam: float

    @property
    def chosen(self) -> str:
        return self.candidates[self.ranking[0]]

    @property
    def score(self) -> float:
        """The chosen model's predicted quality."""
        return self.quality[self.ranking[0]]

    @property
    def model(self) -> str:
        """The upstream model id of the chosen candidate."""
        return self.upstream_models[self.ranking[0]]

    @property
    def runner_up(self) -> str | None:
        """The policy's second choice (the first fallback); None with one candidate."""
        return self.candidates[self.ranking[1]] if len(self.ranking) > 1 else None

    @property
    def plan(self) -> tuple[tuple[str, str], ...]:
        return tuple((self.candidates[i], self.upstream_models[i]) for i in self.ranking)

    def headers(self, answered: str) -> dict[str, str]:
        """The chosen model and its score, the runner-up and its score, λ (``answered``
        is in ``x-prefroute-model`` already). Names are percent-encoded beyond ASCII, as
        header values must be."""
        headers = {
            "x-prefroute-chosen": _header(self.chosen),
            "x-prefroute-score": f"{self.score:.6g}",
            "x-prefroute-lambda": f"{self.lam:.6g}",
            "x-prefroute-policy": _header(self.label),
        }
        if len(self.ranking) > 1:
            second = self.ranking[1]
            headers["x-prefroute-runner-up"] = _header(self.candidates[second])
            headers["x-prefroute-runner-up-score"] = f"{self.quality[second]:.6g}"
        return headers


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
class PolicySelection:
    """A router and an N-model policy picked by a ``model`` name; ``decide`` scores once."""

    kind: str
    router: Router
    policy: Policy
    candidates: tuple[str, ...]
    upstream_models: tuple[str, ...]
    turns: Turns
    label: str

    def decide(self, messages: Sequence[Mapping[str, Any]]) -> Choice:
        """Score every candidate on the routing text (one ``model_quality`` call), rank."""
        return self.decide_text(conversation_text(messages, self.turns) or "")

    def decide_text(self, text: str) -> Choice:
        """``decide`` for a routing text already taken from the messages."""
        decision = self.policy.route(self.router, [text])
        return Choice(
            self.kind,
            self.label,
            self.candidates,
            self.upstream_models,
            tuple(decision.quality[0].tolist()),
            tuple(decision.ranking[0].tolist()),
            self.policy.lam,
        )


@dataclass(frozen=True)
class BudgetCalibration:
    """The calibration prompts' per-call costs and frontier, for budget names' λ."""

    tokens: Any  # (n,) tokens per call
    per_call: Any  # (n, N) $ per call
    frontier: Frontier
    prompts: str


class Ladder:
    """A router's N-model candidates: the ``[models]`` upstreams it learned, with prices.

    ``names`` are upstream names, ``learned`` the router's own names for them (a
    config name is matched as given, then canonically). Budget names get their λ
    from ``calibration`` once and keep it; ``unusable`` says why budgets cannot be
    served when the calibration prompts could not be read.
    """

    def __init__(
        self,
        names: Sequence[str],
        learned: Sequence[str],
        upstream_models: Sequence[str],
        costs: CallCosts,
        calibration: BudgetCalibration | None,
        unusable: str | None = None,
    ) -> None:
        self.names, self.learned = tuple(names), tuple(learned)
        self.upstream_models = tuple(upstream_models)
        self.costs = costs
        self.calibration = calibration
        self.unusable = unusable
        self._budgets: dict[tuple[float, str], Policy] = {}

    def upstream_of(self, learned: str) -> tuple[str, str] | None:
        """(upstream name, model id) serving the router's model ``learned``, if any."""
        if learned not in self.learned:
            return None
        i = self.learned.index(learned)
        return self.names[i], self.upstream_models[i]

    def budget_policy(self, amount: float, unit: str, name: str) -> Policy:
        """The policy with the λ whose mean cost on the calibration prompts fits the budget."""
        from prefroute.policy import Policy, budget_per_call, lambda_for_budget

        key = (amount, unit)
        if key in self._budgets:
            return self._budgets[key]
        calibration = self.calibration
        if calibration is None:
            raise InvalidRequestError(
                f"model {name!r}: budget names are calibrated on prompts, and {self.unusable}",
                param="model",
                code="invalid_budget",
            )
        allowed = budget_per_call(amount, unit, calibration.tokens)
        cheapest = float(calibration.per_call.min(axis=1).mean())
        if allowed < cheapest * (1 - 1e-12):  # a budget of exactly the cheapest mix fits
            per_1k = unit == "1k-requests"
            least = cheapest * (1000 if per_1k else 1e6 / float(calibration.tokens.mean()))
            among = ", ".join(self.names) if len(self.names) <= 5 else f"{len(self.names)} models"
            raise InvalidRequestError(
                f"model {name!r}: a budget of ${amount:g} per "
                f"{'1k requests' if per_1k else '1M tokens'} is below the cheapest mix of "
                f"{among} on the calibration prompts: ${least:.4g}",
                param="model",
                code="invalid_budget",
            )
        lam = lambda_for_budget(calibration.frontier, calibration.per_call, allowed)
        policy = Policy(costs=self.costs, lam=lam)
        if len(self._budgets) >= MAX_CACHED_BUDGETS:
            del self._budgets[next(iter(self._budgets))]
        self._budgets[key] = policy
        return policy


@dataclass(frozen=True)
class Served:
    """One loaded artifact with its turn policy, upstream model ids and N-model ladder."""

    router: Router
    turns: Turns
    models: Mapping[Role, str]
    ladder: Ladder | None = None


class RouterSet:
    """The served routers, keyed by kind, and the upstream model ids each routes to."""

    def __init__(self, served: Mapping[str, Served]) -> None:
        self._by_kind = dict(served)

    @classmethod
    def load(cls, settings: RoutingSettings) -> RouterSet:
        """Load every artifact (settings already checked there is one per kind).

        Each router scores the text its training conversations were read as: the
        artifact's ``training_data.turns``, unless the settings set ``turns``; an
        artifact that recorded none (format 1) was trained on ``first``. Routers
        that score each model get a ``Ladder`` over the ``[models]`` upstreams.
        """
        from prefroute.prices import price_table

        table = price_table(settings.prices)
        by_kind = {}
        calibration_prompts: list[str] | str | None = None
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
            ladder = None
            if settings.models and router.per_model_quality:
                if calibration_prompts is None:
                    calibration_prompts = _calibration_prompts(settings)
                ladder = _ladder(router, settings, table, calibration_prompts)
            by_kind[router.kind] = Served(router, settings.turns or policy, models, ladder)
        return cls(by_kind)

    def upstream_models(self) -> list[tuple[str, str]]:
        """Every (upstream, upstream model id) some served router calls, once each."""
        seen: set[tuple[str, str]] = {
            (role, s.models[role]) for s in self._by_kind.values() for role in ROLES
        }
        for served in self._by_kind.values():
            if served.ladder is not None:
                seen |= set(zip(served.ladder.names, served.ladder.upstream_models, strict=True))
        return sorted(seen)

    @property
    def kinds(self) -> list[str]:
        return sorted(self._by_kind)

    def router(self, kind: str) -> Router:
        return self._by_kind[kind].router

    def select(self, name: Any) -> Selection | PolicySelection:
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
        if match["budget"] is not None or match["point"] is not None:
            return self._among_models(served, match, name)
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
    def _among_models(served: Served, match: re.Match[str], name: str) -> PolicySelection:
        """A budget or operating-point name: the policy over the served ``[models]``."""
        from prefroute.policy import Policy

        router, ladder = served.router, served.ladder
        if ladder is None:
            why = (
                f"the {router.kind} router routes between its two models only; use one that "
                "scores each model (quality, mf, sw_ranking)"
                if not router.per_model_quality
                else f"the {router.kind} router knows none of the server's [models] upstreams"
            )
            raise InvalidRequestError(
                f"model {name!r}: choosing among N models needs [models.<name>] upstreams and "
                f"a router that learned them; {why}",
                param="model",
                code="model_not_found",
            )
        if match["budget"] is not None:
            budget = BUDGET.fullmatch(match["budget"])
            amount = _number(budget["amount"]) if budget is not None else math.nan
            if budget is None or not (math.isfinite(amount) and amount > 0):
                raise InvalidRequestError(
                    f"model {name!r}: the budget after @budget= must be a positive number of $ "
                    f"per 1M tokens, or per 1k requests with /1k (e.g. router-{router.kind}"
                    f"@budget=0.5 or @budget=2/1k), got {match['budget']!r}",
                    param="model",
                    code="invalid_budget",
                )
            unit = BUDGET_UNITS[budget["unit"]]
            policy = ladder.budget_policy(amount, unit, name)
            names, ids = ladder.names, ladder.upstream_models
            label = f"budget={amount:g}" + ("/1k" if unit == "1k-requests" else "")
        else:
            try:
                point = router.operating_point(match["point"])
            except PrefrouteError as exc:
                raise InvalidRequestError(
                    f"model {name!r}: {exc}", param="model", code="model_not_found"
                ) from None
            served_by = [ladder.upstream_of(m) for m in point.models]
            missing = [m for m, up in zip(point.models, served_by, strict=True) if up is None]
            if missing:
                raise InvalidRequestError(
                    f"model {name!r}: operating point {point.name!r} chooses among "
                    f"{', '.join(point.models)}, and this server has no [models] upstream for "
                    f"{', '.join(missing)}",
                    param="model",
                    code="model_not_found",
                )
            policy = Policy.from_operating_point(point)
            names = tuple(up[0] for up in served_by if up is not None)
            ids = tuple(up[1] for up in served_by if up is not None)
            label = f"point={point.name}"
        return PolicySelection(router.kind, router, policy, names, ids, served.turns, label)

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
            served.router.strong_win_rate([PROBE])
            if served.ladder is not None:
                served.router.model_quality([PROBE], served.ladder.learned)

    def model_names(self) -> list[dict[str, Any]]:
        """``/v1/models`` entries: each router at its calibrated deciles and quality targets
        (or at 0.5)."""
        entries = []
        for kind in self.kinds:
            served = self._by_kind[kind]
            info: dict[str, Any] = {
                "kind": kind,
                **{f"{r}_model": m for r, m in served.models.items()},
            }
            calibration = getattr(served.router, "calibration_", None)
            names = []
            if calibration is not None:
                names += [f"router-{kind}@{p}%" for p in range(10, 100, 10)]
                names += [f"router-{kind}@{t.name}%" for t in calibration.targets]
            names.append(f"router-{kind}-0.5")
            ladder = served.ladder
            if ladder is not None:
                info["models"] = list(ladder.names)
                points = getattr(served.router, "operating_points_", ())
                names += [
                    f"router-{kind}:{p.name}"
                    for p in points
                    if all(ladder.upstream_of(m) is not None for m in p.models)
                ]
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


def _ladder(
    router: Router,
    settings: RoutingSettings,
    table: PriceTable,
    prompts: list[str] | str,
) -> Ladder | None:
    """The ``[models]`` upstreams ``router`` learned, priced, with its calibration frontier.

    A configured model the router never learned is left out of its ladder (and
    said); ``prompts`` is the calibration prompts, or why they could not be read.
    """
    from prefroute.policy import CallCosts, Frontier

    names, learned = [], []
    for name in settings.models:
        try:
            known, _ = router.candidate_index([name])
        except UnknownModelError:
            log.warning(
                "router %s learned no model %s: its N-model names choose among the others",
                router.kind, name,
            )  # fmt: skip
            continue
        names.append(name)
        learned.append(known[0])
    if not names:
        log.warning("router %s learned none of the [models] upstreams", router.kind)
        return None
    costs = CallCosts(
        models=tuple(learned),
        input_prices=tuple(model_price(settings, n, table).input for n in names),
        output_prices=tuple(model_price(settings, n, table).output for n in names),
    )
    upstream_models = [settings.models[n].model or n for n in names]
    if isinstance(prompts, str):
        return Ladder(names, learned, upstream_models, costs, None, prompts)
    per_call = costs.per_call(prompts)
    quality = router.model_quality(prompts, learned)
    calibration = BudgetCalibration(
        costs.tokens(prompts), per_call, Frontier.of(quality, per_call), f"{len(prompts)} prompts"
    )
    return Ladder(names, learned, upstream_models, costs, calibration)


def model_price(settings: RoutingSettings, name: str, table: PriceTable) -> Price:
    """The price of the ``[models.<name>]`` upstream's calls; ``ConfigError`` when unknown,
    since a budget cannot be kept with a model of unknown cost."""
    upstream = settings.models[name]
    price = upstream.price(name, table)
    if price is None and upstream.model is not None:
        price = upstream.price(upstream.model, table)
    if price is None:
        raise ConfigError(
            f"models.{name}: no price for {name}: set input_cost and output_cost ($ per 1M "
            f"tokens) in its [models.{name}] table, or give a price file (prices, --prices)"
        )
    return price


def _calibration_prompts(settings: RoutingSettings) -> list[str] | str:
    """The prompts budget names calibrate on, or why there are none (budgets then 400)."""
    from prefroute.data.location import data_dir
    from prefroute.data.prompts import read_prompts

    if settings.calibration_prompts is not None:
        try:
            return read_prompts(settings.calibration_prompts)[1]
        except (PrefrouteError, OSError) as exc:
            raise ConfigError(f"calibration_prompts: {exc}") from None
    try:
        from prefroute.data import shipped

        return shipped.arena_prompts(data_dir())
    except (PrefrouteError, OSError, InvalidParameterError) as exc:
        message = (
            f"no calibration prompts: set calibration_prompts in the config, or give the "
            f"shipped data ({exc})"
        )
        log.warning("budget names are not available: %s", message)
        return message


def _header(text: str) -> str:
    """``text`` as a header value: printable ASCII as it is, anything else percent-encoded."""
    from urllib.parse import quote

    return text if text.isascii() and text.isprintable() else quote(text, safe="")


def _number(text: str) -> float:
    """A plain decimal number, or NaN (which every range check then refuses)."""
    return float(text) if NUMBER.fullmatch(text) else math.nan
