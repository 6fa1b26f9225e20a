"""Model names to routers and thresholds (the routing text: tests/test_conversation.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from prefroute.data.schema import Battles
from prefroute.errors import InvalidRequestError
from prefroute.routers.random import RandomRouter
from prefroute.serve.config import RoutingSettings
from prefroute.serve.routing import RouterSet

from .servers import STRONG, WEAK


@pytest.fixture(scope="module")
def routers(random_dir: Path) -> RouterSet:
    return RouterSet.load(RoutingSettings(routers=[random_dir], weak={"model": "local-llama"}))


def test_threshold_and_share_names(routers: RouterSet, random_dir: Path) -> None:
    table = json.loads((random_dir / "router.json").read_text())["calibration"]["thresholds"]
    assert routers.select("router-random-0.1159").threshold == 0.1159
    assert routers.select("router-random-.5").threshold == 0.5
    assert routers.select("router-random-1e-1").threshold == pytest.approx(0.1)
    assert routers.select("router-random-1").threshold == 1.0
    assert routers.select("router-random@30%").threshold == table["30"]
    assert routers.select("router-random@0%").threshold == table["0"]
    assert routers.select("router-random@100%").threshold == table["100"]


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("gpt-4o", "model_not_found"),
        ("router-random", "model_not_found"),
        ("router-mf-0.5", "model_not_found"),
        ("router-random-", "model_not_found"),
        ("router-random- 0.5", "invalid_threshold"),
        ("router-random-0x1", "invalid_threshold"),
        ("router-random-1_0", "invalid_threshold"),
        ("router-random--0.1", "invalid_threshold"),
        ("router-random-inf", "invalid_threshold"),
        ("router-random-\u0660.\u0665", "invalid_threshold"),  # Arabic-Indic ٠.٥, not 0.5
        ("router-random@\u0663\u0660%", "invalid_share"),
        ("router-random@-5%", "invalid_share"),
        ("router-random@101%", "invalid_share"),
        ("router-random@30", "model_not_found"),  # no %
        ("", "model_not_found"),
    ],
)
def test_bad_names_are_400s_on_the_model_field(routers: RouterSet, name: str, code: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        routers.select(name)
    assert (caught.value.param, caught.value.code, caught.value.status) == ("model", code, 400)
    assert repr(name) in caught.value.message


def test_shares_need_a_calibrated_artifact(tmp_path: Path) -> None:
    path = RandomRouter().fit(Battles.empty()).save(tmp_path / "uncalibrated")
    routers = RouterSet.load(RoutingSettings(routers=[path]))
    with pytest.raises(InvalidRequestError, match="prefroute calibrate") as caught:
        routers.select("router-random@30%")
    assert caught.value.code == "invalid_share"
    assert routers.select("router-random-0.3").threshold == 0.3
    assert [m["id"] for m in routers.model_names()] == ["router-random-0.5"]


def test_upstream_model_ids_default_to_the_artifact_names(routers: RouterSet) -> None:
    decision = routers.select("router-random-0").decide([{"role": "user", "content": "hi"}])
    assert (decision.role, decision.model, decision.other) == ("strong", STRONG, "weak")
    assert decision.models == {"strong": STRONG, "weak": "local-llama"}
    assert WEAK not in decision.models.values()
