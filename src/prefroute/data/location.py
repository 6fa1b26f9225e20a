"""Where the data directory is.

Order: an explicit ``--data-dir``, then ``PREFROUTE_DATA_DIR``, then
``../shared/data`` next to the checkout (the project's shipped data sets).
"""

from __future__ import annotations

import os
from pathlib import Path

from prefroute.errors import DataDirNotFoundError

DATA_DIR_ENV = "PREFROUTE_DATA_DIR"


def _checkout_default() -> Path:
    # src/prefroute/data/registry.py -> <checkout>/../shared/data
    return Path(__file__).resolve().parents[3].parent / "shared" / "data"


def data_dir(explicit: str | Path | None = None) -> Path:
    """Resolve the data directory, or say where it was looked for and how to set it."""
    candidates: list[tuple[str, Path]] = []
    if explicit is not None:
        candidates.append(("--data-dir", Path(explicit)))
    elif os.environ.get(DATA_DIR_ENV):
        candidates.append((DATA_DIR_ENV, Path(os.environ[DATA_DIR_ENV])))
    else:
        candidates.append(("../shared/data", _checkout_default()))
        candidates.append(("./shared/data", Path.cwd().parent / "shared" / "data"))
    for _, path in candidates:
        if path.is_dir():
            return path.resolve()
    raise DataDirNotFoundError([f"{label}={path}" for label, path in candidates])
