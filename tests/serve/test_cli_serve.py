"""``prefroute serve``: bad settings are one line and exit 1; a real process serves the
OpenAI SDK, logs without secrets and finishes in-flight requests on SIGTERM."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
from typer.testing import CliRunner

from prefroute.cli import app
from prefroute.testing import Behaviour, FakeUpstream

from .servers import STRONG, free_port

runner = CliRunner()


def test_bad_settings_are_one_line_and_exit_1(tmp_path: Path, random_dir: Path) -> None:
    config = tmp_path / "prefroute.toml"
    config.write_text("[strong]\nfirst_byte_timeout = -1\n")
    result = runner.invoke(app, ["serve", str(random_dir), "--config", str(config)])
    assert result.exit_code == 1
    assert "strong.first_byte_timeout" in result.stderr and "Traceback" not in result.output
    result = runner.invoke(app, ["serve", str(random_dir), "--workers", "0"])
    assert result.exit_code == 1 and "command line: workers" in result.stderr
    twin = shutil.copytree(random_dir, tmp_path / "twin")
    result = runner.invoke(app, ["serve", str(random_dir), str(twin)])
    assert result.exit_code == 1 and "one artifact per kind" in result.stderr
    result = runner.invoke(
        app, ["serve", str(random_dir), "--upstream-key-env", "PREFROUTE_TEST_UNSET_KEY"]
    )
    assert result.exit_code == 1 and "$PREFROUTE_TEST_UNSET_KEY, which is not set" in result.stderr


def start_serving(random_dir: Path, fake: FakeUpstream, port: int, *flags: str) -> subprocess.Popen:
    """``prefroute serve`` in its own process, returned once /health answers."""
    url = fake.url  # type: ignore[attr-defined]
    command = [
        sys.executable, "-c", "from prefroute.cli import app; app()", "serve", str(random_dir),
        "--strong-base-url", url, "--weak-base-url", url, "--port", str(port), *flags,
    ]  # fmt: skip
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:
        assert server.poll() is None and time.monotonic() < deadline, "server did not start"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return server
        except httpx.ConnectError:
            time.sleep(0.1)


def test_a_served_process_answers_and_drains_on_sigterm(
    random_dir: Path, fake: FakeUpstream
) -> None:
    port = free_port()
    server = start_serving(random_dir, fake, port, "--api-key", "sk-cli-secret")
    try:
        deadline = time.monotonic() + 60
        client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-cli-secret", max_retries=0
        )
        hold = threading.Event()
        fake.behaviours[STRONG] = Behaviour(hold=hold)
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(
                client.chat.completions.create,
                model="router-random-0",
                messages=[{"role": "user", "content": "a private question"}],
            )
            while fake.calls.get(STRONG) != 1:
                assert time.monotonic() < deadline, "request never reached the upstream"
                time.sleep(0.01)
            server.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            hold.set()
            assert pending.result(timeout=30).model == STRONG
        # uvicorn re-raises the signal once drained, so the exit status says SIGTERM
        assert server.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if server.poll() is None:
            server.kill()
        log = server.communicate()[1]
    assert "status=200" in log and "router=random" in log and "Finished server process" in log
    assert "sk-cli-secret" not in log and "private question" not in log


SLOW_LOAD = (
    "import os, time\n"
    "import prefroute.serve.routing as routing\n"
    "load = routing.RouterSet.load.__func__\n"
    "def slow(cls, settings):\n"
    "    while not os.path.exists(os.environ['TEST_LOAD_GATE']):\n"
    "        time.sleep(0.01)\n"
    "    return load(cls, settings)\n"
    "routing.RouterSet.load = classmethod(slow)\n"
    "from prefroute.cli import app; app()\n"
)


def test_the_port_accepts_while_the_routers_load_and_keys_come_from_a_file(
    random_dir: Path, fake: FakeUpstream, tmp_path: Path
) -> None:
    """Connections made during start-up wait and are answered, not refused; the key is
    in a file, so it never shows in ``ps``."""
    port, gate = free_port(), tmp_path / "gate"
    (tmp_path / "keys").write_text("sk-from-file\n")
    url = fake.url  # type: ignore[attr-defined]
    command = [
        sys.executable, "-c", SLOW_LOAD, "serve", str(random_dir), "--strong-base-url", url,
        "--weak-base-url", url, "--port", str(port), "--api-key-file", str(tmp_path / "keys"),
    ]  # fmt: skip
    server = subprocess.Popen(
        command, stderr=subprocess.PIPE, text=True, env={**os.environ, "TEST_LOAD_GATE": str(gate)}
    )
    try:
        deadline = time.monotonic() + 60
        while True:  # the routers cannot load until the gate exists
            assert server.poll() is None and time.monotonic() < deadline, "never listened"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except ConnectionRefusedError:
                time.sleep(0.05)
        client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-from-file", max_retries=0
        )
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(
                client.chat.completions.create, model="router-random-0",
                messages=[{"role": "user", "content": "hi"}],
            )  # fmt: skip
            gate.touch()
            assert pending.result(timeout=60).model == STRONG
        assert "sk-from-file" not in " ".join(command)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
        server.communicate()


def test_workers_share_the_port_with_the_parents_settings(
    random_dir: Path, fake: FakeUpstream
) -> None:
    port = free_port()
    server = start_serving(random_dir, fake, port, "--workers", "2", "--api-key", "sk-w")
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models").status_code == 401  # keys passed on
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-w")
        ask = {"model": "router-random-0", "messages": [{"role": "user", "content": "hi"}]}
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: client.chat.completions.create(**ask), range(24)))
        assert {a.model for a in answers} == {STRONG}
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if server.poll() is None:
            server.kill()
        log = server.communicate()[1]
    workers = set(re.findall(r"Started server process \[(\d+)\]", log))
    assert len(workers) == 2, log
    assert log.count("status=200") == 24 and "sk-w" not in log
