"""Label fixtures: the fake upstream on 127.0.0.1 and real prompts and answers from the data.

The fake (``prefroute.testing.FakeLabelUpstream``) plays the strong model, the
weak model and the judge over real HTTP; it is started once per session and
given a fresh script by each test. Prompts are real Arena-Hard questions;
answers, where a test needs real ones, are GPT-4-turbo's and Mixtral's own
answers to AlpacaEval instructions (the shipped ``outputs_*`` files).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from serve.servers import serve_in_thread  # tests/serve/servers.py: uvicorn in a thread

from prefroute.label import LabelSettings, load_label_settings
from prefroute.testing import FakeLabelUpstream

STRONG, WEAK, JUDGE = "gpt-4o", "gpt-4o-mini", "gpt-4.1"


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeLabelUpstream]:
    """The fake upstream; ``fake.url`` is its OpenAI base URL (…/v1)."""
    upstream = FakeLabelUpstream()
    with serve_in_thread(upstream.app) as (url, _):
        upstream.url = f"{url}/v1"  # type: ignore[attr-defined]
        yield upstream


def settings_for(fake: FakeLabelUpstream, **overrides: Any) -> LabelSettings:
    """All three roles on the fake, with quick retries."""
    base: dict[str, Any] = {
        role: {"model": model, "base_url": fake.url, "answer_timeout": 5.0, "chunk_timeout": 5.0}  # type: ignore[attr-defined]
        for role, model in (("strong", STRONG), ("weak", WEAK), ("judge", JUDGE))
    }
    base |= {"retries": 2, "backoff": 0.01}
    for key, value in overrides.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) else value
    return load_label_settings(None, base)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


@pytest.fixture(scope="session")
def arena_hard(data_dir: Path) -> list[dict[str, Any]]:
    """The first 30 Arena-Hard prompts as ``{id, prompt}``."""
    with gzip.open(data_dir / "arena-hard-v0.1-prompts" / "prompts.jsonl.gz") as file:
        rows = [orjson.loads(line) for line in file][:30]
    return [{"id": r["prompt_id"], "prompt": r["prompt"]} for r in rows]


@pytest.fixture
def prompts_file(tmp_path: Path, arena_hard: list[dict[str, Any]]) -> Path:
    return write_jsonl(tmp_path / "prompts.jsonl", arena_hard)


@pytest.fixture(scope="session")
def alpaca(data_dir: Path) -> list[dict[str, Any]]:
    """24 AlpacaEval instructions with GPT-4-turbo's and Mixtral's real answers."""
    outputs = {}
    for name in ("gpt4_1106_preview", "Mixtral-8x7B-Instruct-v0.1"):
        with gzip.open(data_dir / "alpaca-eval" / f"outputs_{name}.jsonl.gz") as file:
            outputs[name] = {r["prompt_id"]: r for r in map(orjson.loads, file)}
    ids = sorted(outputs["gpt4_1106_preview"])[:24]
    return [
        {
            "id": i,
            "prompt": outputs["gpt4_1106_preview"][i]["instruction"],
            "strong": outputs["gpt4_1106_preview"][i]["output"],
            "weak": outputs["Mixtral-8x7B-Instruct-v0.1"][i]["output"],
        }
        for i in ids
    ]
