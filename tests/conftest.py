"""Shared fixtures: the real shipped data directory, located as users locate it."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefroute.data.location import data_dir as resolve_data_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shipped data sets (../shared/data next to the checkout)."""
    return resolve_data_dir()
