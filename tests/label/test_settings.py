"""One config file for ``serve`` and ``label``: [judge] beside [strong] and [weak]."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefroute.data.schema import Battles
from prefroute.errors import ConfigError
from prefroute.label import load_label_settings
from prefroute.routers.random import RandomRouter
from prefroute.serve.config import ServeSettings, load_settings

CONFIG = """\
routers = ["router"]
port = 9000
retries = 4
[strong]
model = "gpt-4o"
api_key_env = "OPENAI_API_KEY"
[weak]
model = "llama3.1:8b"
base_url = "http://localhost:11434/v1"
input_cost = 0.0
output_cost = 0.0
[judge]
model = "gpt-4.1"
"""


def test_one_file_serves_both_commands(tmp_path: Path) -> None:
    RandomRouter(strong_model="gpt-4o", weak_model="llama3.1:8b").fit(Battles.empty()).save(
        tmp_path / "router"
    )
    path = tmp_path / "prefroute.toml"
    path.write_text(CONFIG)
    served = load_settings(path, cls=ServeSettings)
    assert served.judge is not None and served.judge.model == "gpt-4.1"
    labelled = load_label_settings(path, {"judge": {"base_url": "http://127.0.0.1:1/v1"}})
    assert (labelled.model("strong"), labelled.model("weak")) == ("gpt-4o", "llama3.1:8b")
    assert labelled.judge.model == "gpt-4.1" and labelled.judge.base_url == "http://127.0.0.1:1/v1"
    assert labelled.retries == 4 and labelled.turns == "first"
    assert labelled.weak.model_fields_set >= {"input_cost", "output_cost"}


def test_an_unknown_key_is_still_an_error(tmp_path: Path) -> None:
    path = tmp_path / "prefroute.toml"
    path.write_text(CONFIG.replace("port = 9000", "prot = 9000"))
    with pytest.raises(ConfigError, match="prot"):
        load_label_settings(path)


def test_a_missing_model_names_the_flag() -> None:
    with pytest.raises(ConfigError, match="pass --judge MODEL or set \\[judge\\] model"):
        load_label_settings(None, {"strong": {"model": "a"}}).model("judge")
