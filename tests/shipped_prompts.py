"""Real prompts from the shipped data sets, for tests that score or tokenise them.

Importable from every test module: ``tests/`` is on ``sys.path`` through its
conftest.py (pytest's default import mode).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path


def read_prompts(path: Path, key: str, limit: int) -> list[str]:
    """First ``limit`` distinct non-empty prompts of a shipped .jsonl.gz file."""
    seen: dict[str, None] = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            text = json.loads(line)[key]
            if text:
                seen.setdefault(text, None)
            if len(seen) >= limit:
                break
    return list(seen)
