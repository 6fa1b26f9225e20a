"""``prefroute label`` at scale: calls/s, its own CPU per call, peak RSS, and kill -9 resume.

    python benchmarks/label.py [--prompts 2000] [--concurrency 64] [--delay 0.2]
        [--kill-at 0.4] [--train] [--seed 0]

Real prompts from the shipped data (all 805 AlpacaEval instructions, the 498
Arena-Hard questions, then VibeCheck's Arena prompts up to ``--prompts``) are
labelled for the paper's pair, gpt-4-1106-preview vs Mixtral-8x7B-Instruct,
with gpt-4o as the judge. Three processes: the fake OpenAI upstream
(``python -m prefroute.testing --label``: a fixed ``--delay`` before every
answer; on AlpacaEval instructions it answers with the two models' real
AlpacaEval outputs, elsewhere with made-up text), ``prefroute label`` with
``--concurrency`` calls in flight (all three roles share the fake's base URL,
so that is the total), and this script.

Rows: calls/s (the run's new calls over its own wall time), prefroute's CPU ms
per call (the label process's user + system time, start-up included, over its
calls), peak RSS (its ``ru_maxrss``), the dry-run estimate against the tokens
the fake reported, and the resume check: a second run on a fresh store is
killed with SIGKILL after ``--kill-at`` of its calls, then run again; a
finished call (one in the store at the kill) that the fake answers again
counts as repeated, and the resumed output must equal the first run's bytes.
``--train`` then trains MF on the labels (``prefroute train mf --battles``)
and checks every labelled row reached the fit.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shlex
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import closing
from pathlib import Path

from embed import machine  # benchmarks/embed.py, this script's directory is on sys.path
from server_load import free_port, wait_for_port

from prefroute.data.location import data_dir
from prefroute.label import Job, estimate, load_label_settings

STRONG, WEAK, JUDGE = "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1", "gpt-4o"
TARGETS = {"calls/s": 250.0, "CPU ms per call": 2.0, "peak RSS MB": 300.0, "repeated calls": 0}


def real_prompts(root: Path, n: int) -> tuple[list[dict], list[dict]]:
    """``n`` prompts as ``{id, prompt}``, and the real answers the fake gives to some."""

    def rows(path: str) -> list[dict]:
        with gzip.open(root / path) as file:
            return [json.loads(line) for line in file]

    outputs = {
        model: {r["prompt_id"]: r for r in rows(f"alpaca-eval/outputs_{name}.jsonl.gz")}
        for model, name in ((STRONG, "gpt4_1106_preview"), (WEAK, "Mixtral-8x7B-Instruct-v0.1"))
    }
    prompts = [{"id": r["prompt_id"], "prompt": r["instruction"]} for r in outputs[STRONG].values()]
    answers = [
        {"model": model, "prompt": r["instruction"], "response": r["output"]}
        for model, by_id in outputs.items()
        for r in by_id.values()
    ]
    prompts += [{"id": r["prompt_id"], "prompt": r["prompt"]}
                for r in rows("arena-hard-v0.1-prompts/prompts.jsonl.gz")]  # fmt: skip
    seen = {p["prompt"] for p in prompts}
    for r in rows("vibecheck-llama3-70b-arena/battles.jsonl.gz"):
        if len(prompts) >= n:
            break
        if r["prompt"].strip() and r["prompt"] not in seen:
            seen.add(r["prompt"])
            prompts.append({"id": r["prompt_id"], "prompt": r["prompt"]})
    if len(prompts) < n:
        raise SystemExit(f"only {len(prompts)} distinct real prompts in the shipped data")
    return prompts[:n], answers


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def answered(port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/fake/answered", timeout=30) as reply:
        return json.loads(reply.read())


def label_argv(prompts: Path, out: Path, url: str, concurrency: int) -> list[str]:
    return [
        sys.executable, "-c", "from prefroute.cli import app; app()", "label", str(prompts),
        "--out", str(out), "--strong", STRONG, "--weak", WEAK, "--judge", JUDGE,
        "--strong-base-url", url, "--weak-base-url", url, "--judge-base-url", url,
        "--concurrency", str(concurrency),
    ]  # fmt: skip


def run_label(argv: list[str]) -> tuple[float, float, float, str]:
    """Wall s, CPU s (user + system) and peak RSS MB of one label process, and its output."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    output = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"label failed:\n{output}")
    return (
        time.perf_counter() - started,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss / 1024,
        output,
    )


def store_keys(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as db:
        return {key for (key,) in db.execute("SELECT key FROM calls")}


def store_tokens(path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(path)) as db:
        prompt, completion = db.execute(
            "SELECT sum(prompt_tokens), sum(completion_tokens) FROM calls"
        ).fetchone()
    return {"input": prompt, "output": completion}


def summary_number(output: str, after: str) -> float:
    """A number printed in the label summary right after ``after``."""
    tail = output.split(after, 1)[1].split()[0]
    return float(tail.replace(",", "").replace("$", "").rstrip("s"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--kill-at", type=float, default=0.4)
    parser.add_argument("--train", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    command = "python benchmarks/label.py " + shlex.join(sys.argv[1:])
    print(f"machine: {machine()}", flush=True)

    work = Path(tempfile.mkdtemp(prefix="prefroute-label-bench-"))
    prompts, answers = real_prompts(data_dir(), args.prompts)
    prompts_file = write_jsonl(work / "prompts.jsonl", prompts)
    answers_file = write_jsonl(work / "answers.jsonl", answers)
    port = free_port()
    fake = subprocess.Popen(
        [sys.executable, "-m", "prefroute.testing", "--label", "--port", str(port),
         "--delay", str(args.delay), "--answers", str(answers_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port, fake, "the fake upstream")
        url = f"http://127.0.0.1:{port}/v1"

        # 1. a whole run, measured
        first = work / "first.jsonl"
        wall, cpu, rss, output = run_label(label_argv(prompts_file, first, url, args.concurrency))
        calls = int(summary_number(output, "calls: "))
        run_seconds = summary_number(output, "this run in ")
        print(output, flush=True)
        settings = load_label_settings(
            None, {r: {"model": m, "base_url": url} for r, m in
                   (("strong", STRONG), ("weak", WEAK), ("judge", JUDGE))},
        )  # fmt: skip
        guess = estimate(Job(prompts_file, work / "estimate.jsonl"), settings)
        reported = store_tokens(work / "first.jsonl.calls.sqlite")

        # 2. kill -9 partway through a second run on a fresh store, then resume
        second = work / "second.jsonl"
        argv = label_argv(prompts_file, second, url, args.concurrency)
        before = answered(port)
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while sum(answered(port).values()) - sum(before.values()) < args.kill_at * calls:
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        finished = store_keys(work / "second.jsonl.calls.sqlite")
        at_kill = answered(port)
        run_label(argv)
        after = answered(port)
        repeated = sum(1 for key in finished if after.get(key, 0) > at_kill.get(key, 0))
        in_flight = sum(1 for key in after if after[key] - before.get(key, 0) > 1)
        same_bytes = second.read_bytes() == first.read_bytes()
    finally:
        fake.send_signal(signal.SIGTERM)
        fake.wait()

    measured = {
        "calls/s": calls / run_seconds,
        "CPU ms per call": 1000 * cpu / calls,
        "peak RSS MB": rss,
        "repeated calls": repeated,
    }
    print(f"\n`{command}` (seed {args.seed}; {machine()}; the machine was shared)\n")
    print("| metric | measured | target |\n|---|---:|---:|")
    for name, value in measured.items():
        target = TARGETS[name]
        op = ">=" if name == "calls/s" else "<="
        shown = f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"
        print(f"| {name} | {shown} | {op} {target:g} |")
    print(f"| calls (prompts x 4, plus retries) | {calls:,} | |")
    print(f"| wall s (run / process) | {run_seconds:.1f} / {wall:.1f} | |")
    for part, estimated in (("input", guess.input_tokens), ("output", guess.output_tokens)):
        print(f"| {part} tokens: dry-run estimate / fake's usage | {estimated:,.0f} / "
              f"{reported[part]:,} ({estimated / reported[part] - 1:+.0%}) | |")  # fmt: skip
    print(f"| resume: finished calls at kill -9 / repeated / lost in flight | "
          f"{len(finished):,} / {repeated} / {in_flight} | |")  # fmt: skip
    print(f"| resumed output == uninterrupted output (bytes) | {same_bytes} | True |")

    if args.train:
        train(first, work)


def train(battles: Path, work: Path) -> None:
    """``prefroute train mf --battles`` on the labels; every labelled row must reach the fit."""
    from prefroute.data.recipe import training_set

    rows = sum(1 for _ in battles.open())
    data = training_set(battle_files=[battles])
    used = data.battles.frame.filter(data.battles.frame["dataset"] == "first").height
    print(f"\ntraining set: {used:,} of {rows:,} labelled rows reach the fit")
    out = work / "mf"
    argv = [sys.executable, "-c", "from prefroute.cli import app; app()", "train", "mf",
            "--out", str(out), "--battles", str(battles),
            "--strong", STRONG, "--weak", WEAK]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(argv, check=True)
    print(f"`prefroute train mf --battles {battles.name} ...` saved {out} in "
          f"{time.perf_counter() - started:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
