"""Serve settings: a TOML file, flags on top, every mistake one line naming where and what."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from prefroute.errors import ConfigError
from prefroute.serve.config import API_KEYS_ENV, RoutingSettings, ServeSettings, load_settings


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_file_then_flags(tmp_path: Path, random_dir: Path) -> None:
    shutil.copytree(random_dir, tmp_path / "routers" / "random")
    config = write(
        tmp_path / "prefroute.toml",
        'routers = ["routers/random"]\nport = 9001\nturns = "last"\n'
        '[strong]\nmodel = "gpt-4o"\nbase_url = "http://localhost:8000/v1/"\ninput_cost = 2.5\n'
        '[weak]\nmodel = "llama3.1:8b"\n',
    )
    settings = load_settings(config, {"strong": {"model": "gpt-4.1"}, "host": "0.0.0.0"})
    assert settings.routers == [tmp_path / "routers" / "random"]  # relative to the file
    assert (settings.port, settings.host, settings.turns) == (9001, "0.0.0.0", "last")
    assert settings.strong.model == "gpt-4.1"  # the flag wins, the rest of [strong] stays
    assert settings.strong.base_url == "http://localhost:8000/v1"
    assert settings.strong.input_cost == 2.5
    assert settings.weak.model == "llama3.1:8b"
    assert settings.weak.base_url == "https://api.openai.com/v1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("port = -1\n", r"prefroute.toml: port: .*greater than or equal to 0 \(got -1\)"),
        (
            "[strong]\nfirst_byte_timeout = 0\n",
            r"prefroute.toml: strong.first_byte_timeout: .*greater than 0",
        ),
        ("[weak]\nbase_ur = 'x'\n", r"prefroute.toml: weak.base_ur: Extra inputs"),
        ("[weak]\nbase_url = 'localhost:11434'\n", r"weak.base_url: .*http:// or https://"),
        ('turns = "middle"\n', r"turns: Input should be 'first', 'last' or 'all'"),
        ("routing = 5\n", r"prefroute.toml: routing: "),
        ("routers = [\n", r"prefroute.toml: not valid TOML"),
    ],
)
def test_file_mistakes_name_the_file_and_field(
    tmp_path: Path, random_dir: Path, text: str, message: str
) -> None:
    config = write(tmp_path / "prefroute.toml", text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config, {"routers": [str(random_dir)]})


def test_flag_mistakes_say_command_line_and_all_problems_show(
    tmp_path: Path, random_dir: Path
) -> None:
    config = write(tmp_path / "prefroute.toml", "[strong]\nchunk_timeout = -5\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config, {"routers": [str(random_dir)], "port": 70000})
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert f"{config}: strong.chunk_timeout: Input should be greater than 0 (got -5)" in lines
    assert any(line.startswith("command line: port: ") and "70000" in line for line in lines)


def test_routers_must_be_artifacts_one_per_kind(tmp_path: Path, random_dir: Path) -> None:
    with pytest.raises(ConfigError, match=r"^settings: routers: Field required$"):
        load_settings(None, {})
    with pytest.raises(ConfigError, match="routers: .*at least 1 item"):
        load_settings(None, {"routers": []})
    with pytest.raises(ConfigError, match="no router.json"):
        load_settings(None, {"routers": [str(tmp_path)]})
    twin = shutil.copytree(random_dir, tmp_path / "twin")
    with pytest.raises(ConfigError, match=r"two 'random' routers .* one artifact per kind"):
        load_settings(None, {"routers": [str(random_dir), str(twin)]})
    with pytest.raises(ConfigError, match="no such config file"):
        load_settings(tmp_path / "missing.toml", {})


def test_upstream_keys_come_from_named_variables_and_are_checked(
    random_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(
        None,
        {
            "routers": [str(random_dir)],
            "strong": {"api_key_env": "TEST_STRONG_KEY"},
            "weak": {"api_key_env": "TEST_AZURE_KEY", "auth_header": "api-key"},
        },
        cls=RoutingSettings,
    )
    monkeypatch.delenv("TEST_STRONG_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"\$TEST_STRONG_KEY, which is not set"):
        settings.strong.headers()
    monkeypatch.setenv("TEST_STRONG_KEY", "sk-1")
    monkeypatch.setenv("TEST_AZURE_KEY", "az-2")
    assert settings.strong.headers() == {"authorization": "Bearer sk-1"}
    assert settings.weak.headers() == {"api-key": "az-2"}
    assert RoutingSettings.model_validate({"routers": [random_dir]}).strong.headers() == {}


def test_keys_from_a_file_and_a_body_budget_that_fits_the_largest_body(
    tmp_path: Path, random_dir: Path
) -> None:
    keys = write(tmp_path / "keys.txt", "sk-one\n\n  sk-two  \n")
    config = write(tmp_path / "prefroute.toml", 'api_key_file = "keys.txt"\n')
    settings = load_settings(config, {"routers": [str(random_dir)]})
    assert settings.api_key_file == keys and settings.accepted_keys() == ["sk-one", "sk-two"]
    missing = load_settings(None, {"routers": [str(random_dir)], "api_key_file": "nope.txt"})
    with pytest.raises(ConfigError, match="api_key_file: cannot read nope.txt"):
        missing.accepted_keys()
    with pytest.raises(ConfigError, match="max_body_memory .* smaller than max_body_bytes"):
        load_settings(None, {"routers": [str(random_dir)], "max_body_memory": 10})


def test_server_keys_flags_over_file_over_environment(
    random_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(API_KEYS_ENV, "env-1, env-2")
    assert ServeSettings(routers=[random_dir]).accepted_keys() == ["env-1", "env-2"]
    given = ServeSettings.model_validate({"routers": [random_dir], "api_keys": ["flag-key"]})
    assert given.accepted_keys() == ["flag-key"]
    assert "flag-key" not in repr(given)  # secrets stay out of reprs and logs
    with pytest.raises(ConfigError) as caught:
        load_settings(None, {"routers": [str(random_dir)], "api_keys": [12345678]})
    assert "12345678" not in str(caught.value)
