"""``python -m prefroute``: the same command line as ``prefroute``."""

from __future__ import annotations

from prefroute.cli import app

app(prog_name="prefroute")
