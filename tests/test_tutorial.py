"""docs/own-data.md runs as written: every ```bash block, in order, in one scratch directory.

The tutorial's stand-in for a user's labels is a shipped set (MMLU-Pro answers
of two models, split by prompt), so the commands are the user's commands on
real data. Two substitutions only, both said here: ``prefroute`` and
``python`` are this checkout's (PATH and PYTHONPATH), and the tutorial's ports
8000 and 9000 become free ones, so a test run beside another server cannot
collide. A block that starts processes in the background runs in its own
process group, ended when the block is done.

A block marked ``<!-- not run by tests/test_tutorial.py: REASON -->`` on the line
before it is skipped; the test pins which blocks those are, so skipping cannot
grow unnoticed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from serve.servers import free_port

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "own-data.md"
SKIP = re.compile(r"<!-- not run by tests/test_tutorial\.py: (.+?) -->\s*$")
SKIPPED = {
    "the shipped data: 2.8M rows, minutes",
    "the learning curves, 26 minutes (tests/test_benchmark_scripts.py runs --smoke)",
}
"""Reasons of the blocks the test leaves out (each one block)."""


def blocks(text: str) -> list[tuple[str, str | None]]:
    """(code, skip reason or None) of each ```bash block, in order."""
    out = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            start = i + 1
            end = next(j for j in range(start, len(lines)) if lines[j].strip() == "```")
            marker = SKIP.match(lines[i - 1]) if i else None
            out.append(("\n".join(lines[start:end]), marker.group(1) if marker else None))
            i = end
        i += 1
    return out


def test_the_tutorial_runs_as_written(tmp_path: Path) -> None:
    pytest.importorskip("torch")  # prefroute train mf fits with torch
    found = blocks(TUTORIAL.read_text(encoding="utf-8"))
    assert len(found) >= 5, "the tutorial lost its commands"
    assert {reason for _, reason in found if reason} == SKIPPED
    assert sum(1 for _, reason in found if reason) == len(SKIPPED)
    ports = {"8000": str(free_port()), "9000": str(free_port())}
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT / "src"),
        "COLUMNS": "100",
    }
    outputs = []
    for code, reason in found:
        if reason:
            continue
        script = re.sub(r"\b(8000|9000)\b", lambda m: ports[m.group(1)], code)
        process = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            out, _ = process.communicate(timeout=180)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        assert process.returncode == 0, f"$ {code}\n{out[-4000:]}"
        outputs.append(out)
    everything = "\n".join(outputs)
    check_what_the_tutorial_says(everything, tmp_path)


def quoted(text: str) -> list[str]:
    """The lines of each ```text block: output the tutorial shows as its commands'."""
    found = re.findall(r"^```text\n(.*?)^```", text, flags=re.S | re.M)
    return [line.strip() for block in found for line in block.splitlines() if line.strip()]


def check_what_the_tutorial_says(out: str, work: Path) -> None:
    """The figures the text quotes come from these commands, line for line."""
    lines = {line.strip() for line in out.splitlines()}
    shown = quoted(TUTORIAL.read_text(encoding="utf-8"))
    assert len(shown) >= 6, "the tutorial lost its quoted output"
    missing = [line for line in shown if line not in lines]
    assert not missing, f"quoted but not printed: {missing}\n{out[-4000:]}"
    assert "strong gemini-1.5-pro-002 0.715, weak llama-3.1-8b-instruct 0.425" in out
    routed = [json.loads(line) for line in out.splitlines() if line.startswith('{"id": "')]
    assert [r["id"] for r in routed] == ["1", "2"]
    served = json.loads(next(line for line in out.splitlines() if "chat.completion" in line))
    assert served["model"] in {"gemini-1.5-pro-002", "llama-3.1-8b-instruct"}
    assert (work / "my-router" / "router.json").is_file()
