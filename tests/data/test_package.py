"""``prefroute.data``'s face: every advertised name resolves, and importing it (or the
model names the CLI and routers read) costs no polars."""

from __future__ import annotations

import subprocess
import sys
from importlib import import_module

import pytest

import prefroute.data


@pytest.mark.parametrize("module", ["prefroute.data", "prefroute.data.model_names"])
def test_import_does_not_load_polars(module: str) -> None:
    code = f"import sys, {module}; print('polars' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_every_name_in_all_is_the_defining_modules_object() -> None:
    for name in prefroute.data.__all__:
        defining = import_module(prefroute.data._LAZY[name])
        assert getattr(prefroute.data, name) is getattr(defining, name), name
    assert sorted(prefroute.data._LAZY) == sorted(prefroute.data.__all__)


def test_unknown_names_and_submodules() -> None:
    with pytest.raises(AttributeError, match="no attribute 'read_battles_report'"):
        prefroute.data.read_battles_report  # noqa: B018
    from prefroute.data import shipped  # a submodule still imports as one

    assert shipped.load_battles is prefroute.data.load_battles
