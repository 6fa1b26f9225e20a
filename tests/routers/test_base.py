"""The router contract, checked on the random baseline: route, save, load, refuse."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from prefroute.data.schema import Battles
from prefroute.errors import ArtifactError, NotFittedError
from prefroute.routers.base import FORMAT_VERSION, Router
from prefroute.routers.random import RandomRouter
from prefroute.routers.registry import router_class

PROMPTS = ["What is 2 + 2?", "Prove the Riemann hypothesis.", "Write a haiku about rain."] * 50


def test_random_scores_are_uniform_deterministic_and_route_by_threshold() -> None:
    router = RandomRouter(random_state=1).fit(Battles.empty())
    prompts = [f"prompt {i}" for i in range(4000)]
    scores = router.strong_win_rate(prompts)
    assert scores.dtype == np.float32 and scores.shape == (4000,)
    assert scores.min() >= 0.0 and scores.max() <= 1.0
    assert abs(float((scores >= 0.7).mean()) - 0.3) < 0.03  # uniform: share = 1 - t
    np.testing.assert_array_equal(scores[:10], router.strong_win_rate(prompts[:10]))
    other = RandomRouter(random_state=2).fit(Battles.empty()).strong_win_rate(prompts)
    assert not np.array_equal(scores, other)
    routed = router.route(prompts[:100], 0.5)
    expected = np.where(scores[:100] >= 0.5, router.strong_model, router.weak_model)
    assert routed == expected.tolist()


def test_unfitted_router_refuses() -> None:
    with pytest.raises(NotFittedError, match="fit"):
        RandomRouter().strong_win_rate(["x"])


def test_save_load_round_trip(tmp_path: Path) -> None:
    router = RandomRouter(random_state=7, strong_model="big", weak_model="small").fit(
        Battles.empty()
    )
    router.save(tmp_path / "art")
    loaded = Router.load(tmp_path / "art")
    assert isinstance(loaded, RandomRouter)
    assert loaded.get_params() == router.get_params()
    np.testing.assert_array_equal(loaded.strong_win_rate(PROMPTS), router.strong_win_rate(PROMPTS))


def test_load_refuses_other_format_version_and_non_artifacts(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no router.json"):
        Router.load(tmp_path)
    path = RandomRouter().fit(Battles.empty()).save(tmp_path / "art")
    config = json.loads((path / "router.json").read_text())
    config["format_version"] = FORMAT_VERSION + 1
    (path / "router.json").write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match="format version"):
        Router.load(path)
    (path / "router.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        Router.load(path)


def test_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(ArtifactError, match=r"unknown router kind 'nope'.*'mf'"):
        router_class("nope")


def test_loading_needs_no_torch(tmp_path: Path) -> None:
    """A process where importing torch fails still loads and routes an artifact."""
    path = RandomRouter().fit(Battles.empty()).save(tmp_path / "art")
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any 'import torch' now raises
        "from prefroute.routers.base import Router\n"
        f"r = Router.load({str(path)!r})\n"
        "print(r.route(['hello'], 0.5)[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() in {"gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1"}
