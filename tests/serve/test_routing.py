"""Model names to routers and thresholds (the routing text: tests/test_conversation.py)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from prefroute.data.schema import Battles
from prefroute.errors import InvalidRequestError
from prefroute.routers.artifact import Calibration, QualityTarget
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
        ("router-random@q0%", "invalid_target"),
        ("router-random@q101%", "invalid_target"),
        ("router-random@qx%", "invalid_target"),
        ("router-random@q95%", "invalid_target"),  # not calibrated for it
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


def test_quality_targets_are_served_by_name(tmp_path: Path) -> None:
    router = RandomRouter(strong_model=STRONG, weak_model=WEAK).fit(Battles.empty())
    q95 = QualityTarget("quality", 0.95, 0.25, 0.7, 0.951, "mine.jsonl", 400)
    pgr80 = QualityTarget("gap", 0.8, 0.4, 0.55, 0.81, "mine.jsonl", 400)
    router.calibration_ = Calibration(tuple(np.linspace(1, 0, 101)), targets=(q95, pgr80))
    routers = RouterSet.load(RoutingSettings(routers=[router.save(tmp_path / "r")]))
    assert routers.select("router-random@q95%").threshold == 0.25
    assert routers.select("router-random@q95.0%").threshold == 0.25
    assert routers.select("router-random@pgr80%").threshold == 0.4
    assert routers.select("router-random@30%").threshold == pytest.approx(0.7)  # shares too
    with pytest.raises(InvalidRequestError, match=r"no quality target q90 \(stored: pgr80, q95\)"):
        routers.select("router-random@q90%")
    with pytest.raises(InvalidRequestError, match="--gap-recovered 0.5 --eval-file"):
        routers.select("router-random@pgr50%")
    names = [m["id"] for m in routers.model_names()]
    assert "router-random@q95%" in names and "router-random@pgr80%" in names


def test_retargeted_or_uncalibrated_routers_say_to_calibrate_for_any_share_or_target(
    tmp_path: Path,
) -> None:
    router = RandomRouter(strong_model=STRONG, weak_model=WEAK).fit(Battles.empty())
    router.models_ = [STRONG, WEAK, "other"]  # as MF: it can retarget
    router.calibration_ = Calibration(tuple(np.linspace(1, 0, 101)))
    path = router.retarget("other", WEAK).save(tmp_path / "retargeted")
    routers = RouterSet.load(RoutingSettings(routers=[path]))
    for name in ("router-random@30%", "router-random@q95%"):
        with pytest.raises(InvalidRequestError, match="prefroute calibrate"):
            routers.select(name)


def test_a_pair_other_than_the_artifacts_is_one_warning_per_router(
    random_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="prefroute.serve.routing"):
        RouterSet.load(RoutingSettings(routers=[random_dir]))  # the artifact's own names
        RouterSet.load(RoutingSettings(routers=[random_dir], strong={"model": STRONG.upper()}))
        assert caplog.records == []  # canonical names compare equal
        RouterSet.load(RoutingSettings(routers=[random_dir], weak={"model": "local-llama"}))
    (record,) = caplog.records
    assert record.getMessage().startswith(
        f"router random was trained for {STRONG} (strong) vs {WEAK} (weak) but routes to "
        f"upstream models {STRONG} (strong) and local-llama (weak)"
    )
