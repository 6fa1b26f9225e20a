"""The call store: durable, keyed by the whole request, one run at a time."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from prefroute.errors import StoreError
from prefroute.label.store import CallStore, StoredCall, request_key

CALL = StoredCall("judge", "gpt-4o", "Reasons.\n[[A>B]]", 812, 40, 0.0024)


def test_a_stored_call_is_read_back_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite"
    key = request_key({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})
    with CallStore(path) as store:
        store.put(key, CALL)
        assert store.get("another key") is None
    with CallStore(path) as store:
        assert store.get(key) == CALL
        assert len(store) == 1
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_the_key_is_the_request_whatever_the_order_of_its_fields() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "seed": 0}
    assert request_key(body) == request_key(dict(reversed(list(body.items()))))
    assert request_key(body) != request_key({**body, "seed": 1})
    assert request_key(body) != request_key({**body, "model": "other"})


def test_a_put_is_on_disk_before_it_returns(tmp_path: Path) -> None:
    """A process killed right after ``put`` (no close, no exit handlers) keeps the call."""
    path = tmp_path / "calls.sqlite"
    code = (
        "import os; from prefroute.label.store import CallStore, StoredCall\n"
        f"s = CallStore({str(path)!r}); s.put('k', StoredCall('weak', 'm', 'text', 1, 2, None))\n"
        "os.kill(os.getpid(), 9)"
    )
    subprocess.run([sys.executable, "-c", code], check=False)
    with CallStore(path) as store:
        assert store.get("k") == StoredCall("weak", "m", "text", 1, 2, None)


def test_a_second_run_on_the_same_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "calls.sqlite"
    with CallStore(path), pytest.raises(StoreError, match="another prefroute label run"):
        CallStore(path)
    with CallStore(path) as store:  # released on close
        assert len(store) == 0


def test_a_file_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.sqlite"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(StoreError, match="not a"):
        CallStore(path)
