"""``prefroute label`` as users run it: one line per mistake, and kill -9 then resume."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

from typer.testing import CliRunner

from prefroute.cli import app
from prefroute.testing import FakeLabelUpstream, LabelScript

from .conftest import JUDGE, STRONG, WEAK, read_jsonl

runner = CliRunner()


def args(fake: FakeLabelUpstream, prompts: Path, out: Path, *extra: str) -> list[str]:
    url = fake.url  # type: ignore[attr-defined]
    return [
        "label", str(prompts), "--out", str(out), "--strong", STRONG, "--weak", WEAK,
        "--judge", JUDGE, "--strong-base-url", url, "--weak-base-url", url,
        "--judge-base-url", url, *extra,
    ]  # fmt: skip


def test_dry_run_estimates_and_calls_nobody(
    fake: FakeLabelUpstream, tmp_path: Path, prompts_file: Path
) -> None:
    fake.reset(LabelScript())
    result = runner.invoke(app, args(fake, prompts_file, tmp_path / "b.jsonl", "--dry-run"))
    assert result.exit_code == 0, result.output
    assert "dry run: 30 prompts" in result.output and "total ~$" in result.output
    assert not fake.calls and not (tmp_path / "b.jsonl").exists()


def test_a_run_prints_its_summary(
    fake: FakeLabelUpstream, tmp_path: Path, prompts_file: Path
) -> None:
    fake.reset(LabelScript())
    result = runner.invoke(app, args(fake, prompts_file, tmp_path / "b.jsonl"))
    assert result.exit_code == 0, result.output
    assert "labelled 30 of 30 prompts" in result.output
    assert f"{STRONG} won" in result.output and "spent $" in result.output
    assert len(read_jsonl(tmp_path / "b.jsonl")) == 30


def test_user_mistakes_are_one_line(
    fake: FakeLabelUpstream, tmp_path: Path, prompts_file: Path
) -> None:
    fake.reset(LabelScript())
    config = tmp_path / "prefroute.toml"
    config.write_text('routers = ["r"]\nport = 9000\n[judge]\nmodle = "gpt-4o"\n')
    out = tmp_path / "b.jsonl"
    cases = {
        "no judge model": (
            ["label", str(prompts_file), "--out", str(out), "--strong", "a", "--weak", "b"],
            "no judge model: pass --judge",
        ),  # fmt: skip
        "a typo in the file": (
            [*args(fake, prompts_file, out), "--config", str(config)],
            "judge.modle",
        ),  # fmt: skip
        "a bad mode": ([*args(fake, prompts_file, out), "--mode", "triple"], "--mode"),
        "no price with --max-cost": (
            [*args(fake, prompts_file, out), "--weak", "my-llama", "--max-cost", "1"],
            "no price for model 'my-llama'",
        ),
    }
    for name, (argv, message) in cases.items():
        result = runner.invoke(app, argv)
        assert result.exit_code == 1, name
        assert message in result.output, (name, result.output)
        assert "Traceback" not in result.output, name
    assert not fake.calls


def test_kill_9_mid_run_then_resume_repeats_no_finished_call(
    fake: FakeLabelUpstream, tmp_path: Path, prompts_file: Path
) -> None:
    fake.reset(LabelScript(delay=0.05, rate_limited=0.05, retry_after=0.1))
    out, store = tmp_path / "b.jsonl", tmp_path / "b.jsonl.calls.sqlite"
    cli = "from prefroute.cli import app; app()"  # what the prefroute script runs
    argv = [sys.executable, "-c", cli, *args(fake, prompts_file, out, "--concurrency", "4")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while sum(fake.answered.values()) < 50:  # of 120 calls
        assert run.poll() is None and time.monotonic() < deadline, run.stderr.read()  # type: ignore[union-attr]
        time.sleep(0.01)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert not out.exists()  # never half written
    with closing(sqlite3.connect(store)) as db:
        finished = {key for (key,) in db.execute("SELECT key FROM calls")}
    assert 0 < len(finished) <= sum(fake.answered.values())
    answered_before = dict(fake.answered)
    resumed = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    repeated = [k for k in finished if fake.answered[k] > answered_before.get(k, 0)]
    assert repeated == []  # no finished call was paid for again
    lost = [k for k, n in fake.answered.items() if n > 1]
    assert len(lost) <= 4  # at most the calls in flight at the kill (--concurrency 4)
    rows = read_jsonl(out)
    ids = [r["prompt_id"] for r in rows]
    assert len(ids) == len(set(ids)) == 30  # no duplicate, no missing row
    assert f"{len(finished)} from the store" in resumed.stdout.replace(",", "")
