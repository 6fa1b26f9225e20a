"""An on-disk vector cache around any embedder: a repeated text costs a lookup.

Decontaminating the same shipped data on every ``data stats`` run, or re-fitting
a router on the same battles, embeds the same prompts again and again; with
``minilm`` (~10 ms a prompt) or an API (money) that is worth keeping.

Storage: one SQLite file per embedder identity (its ``cache_id``, else its spec)
under ``<cache root>/vectors/``. A row is (first 8 bytes of sha256(text) as the
integer primary key, the full sha256, the float32 vector bytes). SQLite gives
atomic appends, safe concurrent readers and writers (WAL) and batched lookups by
primary key (~190k vectors/s here) with nothing to install.

Texts are de-duplicated before lookup, so a list with many repeats (AlpacaEval
repeats 805 instructions across 128k rows) is embedded once per distinct text.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from prefroute.embed._util import as_texts, batches
from prefroute.embed.paths import cache_root
from prefroute.errors import EmbedderError

if TYPE_CHECKING:
    from prefroute.embed import Embedder

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vectors (
    id INTEGER PRIMARY KEY, sha256 BLOB NOT NULL, vector BLOB NOT NULL
);
"""


def vector_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """``<cache root>/vectors``: where ``CachedEmbedder`` files go by default."""
    return cache_root(cache_dir) / "vectors"


class CachedEmbedder:
    """Wrap ``embedder`` so each distinct text is embedded once, ever, per embedder.

    Same ``spec`` and ``dim`` as the wrapped embedder; vectors read back are
    bit-identical to the ones computed. Misses are embedded and stored in chunks
    of ``chunk_size``, so an interrupted 500k-text run keeps what it finished.
    ``hits`` and ``misses`` count distinct texts since construction.
    """

    def __init__(
        self,
        embedder: Embedder,
        cache_dir: str | os.PathLike[str] | None = None,
        *,
        chunk_size: int = 4096,
    ) -> None:
        self.embedder = embedder
        self.cache_dir = Path(cache_dir) if cache_dir is not None else vector_cache_dir()
        self.chunk_size = chunk_size
        self.spec = embedder.spec
        self.cache_id = str(getattr(embedder, "cache_id", embedder.spec))
        digest = hashlib.sha256(self.cache_id.encode()).hexdigest()[:12]
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", self.spec)[:60]
        self.path = self.cache_dir / f"{slug}-{digest}.sqlite"
        self.hits = 0
        self.misses = 0
        self._con: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CachedEmbedder({self.embedder!r}, path={str(self.path)!r})"

    @property
    def dim(self) -> int:
        return self.embedder.dim

    def __len__(self) -> int:
        """Number of vectors stored."""
        with self._lock:
            return int(self._db().execute("SELECT COUNT(*) FROM vectors").fetchone()[0])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One L2-normalised float32 row per text, shape (len(texts), dim)."""
        texts = as_texts(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        first: dict[str, int] = {}
        where = np.fromiter(
            (first.setdefault(t, len(first)) for t in texts), dtype=np.int64, count=len(texts)
        )
        distinct = list(first)
        digests = [hashlib.sha256(t.encode("utf-8", "surrogatepass")).digest() for t in distinct]
        with self._lock:
            found = self._lookup(digests)
        missing = [i for i in range(len(distinct)) if i not in found]
        self.hits += len(found)
        self.misses += len(missing)

        computed: dict[int, np.ndarray] = {}
        for part in batches(len(missing), self.chunk_size):
            rows = missing[part]
            vectors = np.asarray(self.embedder.encode([distinct[i] for i in rows]), np.float32)
            with self._lock:
                self._store([digests[i] for i in rows], vectors)
            computed.update(zip(rows, vectors, strict=True))

        dim = self._width(found, computed)
        unique = np.empty((len(distinct), dim), dtype=np.float32)
        if found:
            rows = list(found)
            stored = np.frombuffer(b"".join(found[i] for i in rows), np.float32)
            unique[rows] = stored.reshape(-1, dim)
        if computed:
            unique[list(computed)] = np.stack(list(computed.values()))
        return unique[where]

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    def __getstate__(self) -> dict[str, Any]:  # picklable for worker processes
        return {k: v for k, v in self.__dict__.items() if k not in ("_con", "_lock")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _con=None, _lock=threading.Lock())

    # -- storage ----------------------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        if self._con is None:
            try:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                con = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
                con.execute("PRAGMA page_size = 16384")  # 1.5 kB rows: fewer half-empty pages
                con.execute("PRAGMA journal_mode = WAL")
                con.execute("PRAGMA synchronous = NORMAL")
                con.executescript(_SCHEMA)
                con.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('cache_id', ?), ('spec', ?)",
                    (self.cache_id, self.spec),
                )
                con.commit()
            except sqlite3.Error as exc:
                raise EmbedderError(
                    f"cannot open the vector cache {self.path}: {exc}; delete it or pass "
                    "another cache_dir"
                ) from exc
            self._con = con
        return self._con

    def _lookup(self, digests: list[bytes]) -> dict[int, bytes]:
        """Position in ``digests`` → stored vector bytes, for the texts already cached."""
        con = self._db()
        ids = [int.from_bytes(d[:8], "little", signed=True) for d in digests]
        position = dict(zip(ids, range(len(ids)), strict=True))
        step = min(con.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER), 10_000)
        found: dict[int, bytes] = {}
        for part in batches(len(ids), step):
            chunk = ids[part]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT id, sha256, vector FROM vectors WHERE id IN ({marks})"
            for key, sha, vector in con.execute(query, chunk):
                i = position[key]
                if sha == digests[i]:  # an 8-byte prefix collision counts as a miss
                    found[i] = vector
        return found

    def _store(self, digests: list[bytes], vectors: np.ndarray) -> None:
        con = self._db()
        self._check_dim(vectors.shape[1], con)
        rows = (
            (int.from_bytes(d[:8], "little", signed=True), d, v.tobytes())
            for d, v in zip(digests, vectors, strict=True)
        )
        with con:
            con.executemany("INSERT OR IGNORE INTO vectors VALUES (?, ?, ?)", rows)

    def _check_dim(self, dim: int, con: sqlite3.Connection) -> None:
        con.execute("INSERT OR IGNORE INTO meta VALUES ('dim', ?)", (str(dim),))
        stored = int(con.execute("SELECT value FROM meta WHERE key = 'dim'").fetchone()[0])
        if stored != dim:
            raise EmbedderError(
                f"the vector cache {self.path} holds {stored}-dim vectors but {self.spec} "
                f"now gives {dim}-dim ones; delete the file"
            )

    def _width(self, found: dict[int, bytes], computed: dict[int, np.ndarray]) -> int:
        if computed:
            dim = len(next(iter(computed.values())))
        else:
            dim = len(next(iter(found.values()))) // 4
        bad = [i for i, v in found.items() if len(v) != 4 * dim]
        if bad:
            raise EmbedderError(
                f"the vector cache {self.path} holds vectors of mixed sizes; delete the file"
            )
        return dim
