"""Serving scores the text the router was trained on: the artifact's turn policy.

``prefroute train`` records ``training_data.turns``; a server follows it unless its
settings set ``turns``, and an artifact that recorded none (format 1) routes on
the first user turn, the policy such artifacts were trained with.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from prefroute.data.schema import Battles
from prefroute.routers.artifact import TrainingData
from prefroute.routers.random import RandomRouter
from prefroute.serve.config import RoutingSettings
from prefroute.serve.routing import RouterSet

from .servers import STRONG, WEAK

FORMAT_1 = Path(__file__).parents[1] / "routers" / "format1" / "random"
CHAT = [
    {"role": "user", "content": "Hi there, a quick question."},
    {"role": "assistant", "content": "Sure, ask away."},
    {"role": "user", "content": "Prove that there are infinitely many primes."},
]


@pytest.fixture(scope="module")
def last_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random router recorded as trained on the last user turn."""
    router = RandomRouter(strong_model=STRONG, weak_model=WEAK).fit(Battles.empty())
    router.training_data_ = TrainingData(turns="last")
    return router.save(tmp_path_factory.mktemp("turns") / "random")


def _score(text: str) -> float:
    router = RandomRouter(strong_model=STRONG, weak_model=WEAK).fit(Battles.empty())
    return float(router.strong_win_rate([text])[0])


def test_router_set_follows_the_artifact_unless_the_settings_say(last_dir: Path) -> None:
    served = RouterSet.load(RoutingSettings(routers=[last_dir])).select("router-random-0.5")
    assert served.turns == "last"
    assert served.decide(CHAT).score == pytest.approx(_score(CHAT[-1]["content"]), abs=1e-9)
    chosen = RouterSet.load(RoutingSettings(routers=[last_dir], turns="first"))
    assert chosen.select("router-random-0.5").turns == "first"


def test_an_artifact_without_a_policy_routes_on_the_first_turn(tmp_path: Path) -> None:
    old = shutil.copytree(FORMAT_1, tmp_path / "old")
    served = RouterSet.load(RoutingSettings(routers=[old])).select("router-random-0.5")
    assert served.turns == "first"


def test_the_server_scores_the_artifacts_policy(start_server, last_dir: Path) -> None:
    url = start_server([last_dir])
    body = {"model": "router-random-0.5", "messages": CHAT}
    reply = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=10)
    assert reply.status_code == 200, reply.text
    score = float(reply.headers["x-prefroute-score"])
    assert score == pytest.approx(_score(CHAT[-1]["content"]), abs=1e-6)
    assert score != pytest.approx(_score(CHAT[0]["content"]), abs=1e-6)
