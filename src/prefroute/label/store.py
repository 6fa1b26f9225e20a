"""The call store: every finished answer and verdict, on disk the moment it returns.

A label run makes thousands of paid calls; a crash, a ``kill -9`` or a full
disk must not make the user pay for them twice. Each call is keyed by a hash
of its whole request body (model, messages, sampling parameters; for the
judge its prompt and the order of the answers), so a call is found again
exactly when the same request would be sent, and any change of prompt,
model or parameter makes a new call. A reply is committed before the next
line of the pipeline runs: SQLite in WAL mode survives the process being
killed, so at most the calls in flight are lost.

One run at a time: the store is opened in exclusive locking mode, so a second
run on the same store fails at once instead of paying for the same calls in
parallel. The lock dies with the process that held it.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from prefroute.errors import StoreError

SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS calls (
    key TEXT PRIMARY KEY,          -- sha256 of the request body (request_key)
    role TEXT NOT NULL,            -- strong, weak or judge
    model TEXT NOT NULL,
    content TEXT NOT NULL,         -- the reply's message text
    prompt_tokens INTEGER,         -- the upstream's usage; NULL when it sent none
    completion_tokens INTEGER,
    cost REAL                      -- $ at the price of the run that paid; NULL if unpriced
);
"""


def request_key(body: Mapping[str, Any]) -> str:
    """The store key of a request: sha256 of its JSON with sorted keys."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class StoredCall:
    """One finished call as the store keeps it."""

    role: str
    model: str
    content: str
    prompt_tokens: int | None
    completion_tokens: int | None
    cost: float | None


class CallStore:
    """Finished calls by ``request_key``; ``put`` commits before it returns."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=0, isolation_level=None)
            self._db.execute("PRAGMA locking_mode=EXCLUSIVE")
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: survives kill -9
            self._db.executescript(_SCHEMA)  # also takes the exclusive lock
            self._check_version()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                raise StoreError(
                    f"{self.path}: another prefroute label run is using this store; wait for "
                    "it to finish, or give this run its own --store FILE"
                ) from None
            raise StoreError(f"{self.path}: not a usable call store ({exc})") from None
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a prefroute call store ({exc})") from None

    def _check_version(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE name = 'schema'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif row[0] != SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: a call store of schema {row[0]}, this prefroute writes "
                f"{SCHEMA_VERSION}; give this run a new --store FILE"
            )

    def get(self, key: str) -> StoredCall | None:
        row = self._db.execute(
            "SELECT role, model, content, prompt_tokens, completion_tokens, cost "
            "FROM calls WHERE key = ?",
            (key,),
        ).fetchone()
        return None if row is None else StoredCall(*row)

    def put(self, key: str, call: StoredCall) -> None:
        """Write one finished call and commit it (autocommit: one transaction per call)."""
        self._db.execute(
            "INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                call.role,
                call.model,
                call.content,
                call.prompt_tokens,
                call.completion_tokens,
                call.cost,
            ),
        )

    def __len__(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM calls").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> CallStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
