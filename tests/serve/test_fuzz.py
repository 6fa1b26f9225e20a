"""Schemathesis fuzzes the server from its own OpenAPI schema: no input may cause a 5xx.

Valid (positive) and invalid (negative) requests for every operation; half of
the chat requests get a served router name, so fuzzed messages and unknown
fields also travel the whole way to the fake upstream and back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from prefroute.testing import FakeUpstream

schemathesis = pytest.importorskip("schemathesis")


@pytest.fixture(scope="module")
def api_schema(start_server: Callable[..., str], random_dir: Path, fake: FakeUpstream) -> Any:
    return schemathesis.openapi.from_url(f"{start_server([random_dir])}/openapi.json")


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_request_makes_a_server_error(api_schema: Any, fake: FakeUpstream, mode: str) -> None:
    @given(case=api_schema.as_strategy(schemathesis.GenerationMode(mode)))
    @settings(
        max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def check(case: Any) -> None:
        if isinstance(case.body, dict) and len(repr(case.body)) % 2:
            case.body["model"] = "router-random@50%"
        response = case.call(timeout=20)
        assert response.status_code < 500, (case.as_curl_command(), response.text)
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"message", "type", "param", "code"}

    check()
    if mode == "positive":
        assert fake.requests, "no fuzzed request reached the upstream"
