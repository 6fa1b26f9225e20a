"""Serve fixtures: a fake OpenAI upstream and prefroute servers on 127.0.0.1.

Both are real uvicorn servers in background threads on free ports, built once
per session (the upstream) or per module (servers), so the whole directory
runs in seconds. The upstream's script is reset before every test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from battle_rows import battles_from_rows

from prefroute.calibrate import calibration_table
from prefroute.data.schema import Battles
from prefroute.routers.artifact import Calibration
from prefroute.routers.random import RandomRouter
from prefroute.serve.app import create_app
from prefroute.testing import FakeUpstream

from .servers import STRONG, WEAK, serve_in_thread, settings_for


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeUpstream]:
    """The fake upstream; ``fake.url`` is its OpenAI base URL (…/v1)."""
    upstream = FakeUpstream()
    with serve_in_thread(upstream.app) as (url, _):
        upstream.url = f"{url}/v1"  # type: ignore[attr-defined]
        yield upstream


@pytest.fixture(autouse=True)
def _reset_fake(request: pytest.FixtureRequest) -> None:
    if "fake" in request.fixturenames:
        request.getfixturevalue("fake").reset()


@pytest.fixture(scope="session")
def random_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A calibrated random router artifact between STRONG and WEAK."""
    router = RandomRouter(strong_model=STRONG, weak_model=WEAK).fit(Battles.empty())
    scores = router.strong_win_rate([f"calibration prompt {i}" for i in range(2000)])
    path = tmp_path_factory.mktemp("routers") / "random"
    router.calibration_ = Calibration(calibration_table(scores))
    return router.save(path)


@pytest.fixture(scope="session")
def mf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small MF router (math prompts -> strong), calibrated; needs torch to train."""
    pytest.importorskip("torch")

    from prefroute.routers.mf import MFRouter

    rng = np.random.default_rng(0)
    math = [
        f"Solve {a}x + {b} = {a * b} for x and prove it." for a, b in rng.integers(2, 99, (60, 2))
    ]
    chat = [f"Write a short friendly note to my friend number {i}." for i in range(60)]
    rows = [(p, STRONG, WEAK, "model_a" if p in math else "model_b") for p in math + chat]
    battles = battles_from_rows(rows, dataset="synthetic")
    router = MFRouter(
        strong_model=STRONG, weak_model=WEAK, dim=8, epochs=20, lr=1e-2, batch_size=64,
        verbose=False,
    ).fit(battles)  # fmt: skip
    scores = router.strong_win_rate(math + chat)
    path = tmp_path_factory.mktemp("routers") / "mf"
    router.calibration_ = Calibration(calibration_table(scores))
    return router.save(path)


@pytest.fixture(scope="module")
def start_server(fake: FakeUpstream) -> Iterator[Callable[..., str]]:
    """``start_server(routers, **overrides) -> base URL``; all stopped when the module ends."""
    with ExitStack() as stack:

        def start(routers: list[Path], **overrides: Any) -> str:
            app = create_app(settings_for(fake, routers, **overrides))
            url, _ = stack.enter_context(serve_in_thread(app))
            return url

        yield start
