"""Each ``benchmarks/`` script runs end to end on tiny arguments and prints its table.

Smoke runs only: the numbers are not checked (speed is the scripts' business,
never a test's), but a script that no longer runs, or prints no table, fails here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run(script: str, *args: str, timeout: float = 120) -> str:
    """The script's stdout; the whole of stderr in the message when it fails."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def table_rows(out: str, header: str) -> list[list[str]]:
    """The cells of each row of the markdown table whose header starts with ``header``."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    assert re.fullmatch(r"\|(-*:?\|)+", lines[start + 1].replace("---", "-")), lines[start + 1]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def started_with_load_average(out: str) -> None:
    assert re.search(r"load average at start \d+\.\d, \d+\.\d, \d+\.\d", out), out[:500]


@pytest.fixture(scope="module")
def routing_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """routing.py on the random kind; its artifact is kept for the server benchmark."""
    out_dir = tmp_path_factory.mktemp("routing")
    args = ["--kinds", "random", "--n-single", "5", "--n-batch", "20", "--out-dir", str(out_dir)]
    return run("routing.py", *args), out_dir / "random"


def test_embed_benchmark_prints_its_table() -> None:
    out = run("embed.py", "--latency-n", "5", "--throughput-n", "20", "--backends", "static")
    rows = table_rows(out, "| backend |")
    assert [row[0] for row in rows] == ["static", "static + cache, cold", "static + cache, warm"]
    started_with_load_average(out)


def test_routing_benchmark_prints_its_table(routing_run: tuple[str, Path]) -> None:
    out, _ = routing_run
    rows = table_rows(out, "| kind |")
    assert [row[0] for row in rows] == ["random"]
    started_with_load_average(out)


def test_server_load_benchmark_prints_its_table(routing_run: tuple[str, Path]) -> None:
    _, artifact = routing_run
    args = ["--router", str(artifact), "--requests", "30", "--warmup", "5"]
    out = run("server_load.py", *args, "--concurrency", "2", "--routing", "auto")
    rows = table_rows(out, "| clients |")
    assert [row[1] for row in rows] == [
        "direct to upstream",
        "through prefroute serve (routing auto)",
    ]
    assert all(row[2] == "30" and row[8] == "0" and row[9] == "0" for row in rows)  # no errors
    assert "router-random@50%" in out
    started_with_load_average(out)


def test_paper_table_benchmark_prints_its_table(tmp_path: Path) -> None:
    args = ["--kinds", "random", "--breakdown", "", "--mmlu-sample", "100"]
    out = run("paper_table.py", *args, "--out-dir", str(tmp_path))
    rows = table_rows(out, "| router |")
    assert [row[0] for row in rows[:3]] == ["random", "random", "oracle"]
    assert any(row[0] == "paper: mf" for row in rows)
    started_with_load_average(out)


def test_own_data_weight_benchmark_prints_its_table(tmp_path: Path) -> None:
    args = ["--pairs", "mmlu-pro", "--labels", "60", "--seeds", "1", "--shares", "0.5"]
    out = run("own_data_weight.py", *args, "--kind", "random", "--out-dir", str(tmp_path))
    rows = table_rows(out, "| pair |")
    assert [row[0] for row in rows] == ["mmlu-pro", "**mmlu-pro mean**", "CPU s per run (mean)"]
    assert len(rows[0]) == 4  # pair, seed, yours alone, + shipped at 0.5
    started_with_load_average(out)


def test_startup_benchmark_prints_its_tables(tmp_path: Path, data_dir: Path) -> None:
    """On a tiny MF (torch to train) and SW ranking router over real AlpacaEval prompts."""
    pytest.importorskip("torch")
    import polars as pl
    from battle_rows import battles_from_rows

    from prefroute.routers.mf import MFRouter
    from prefroute.routers.sw_ranking import SWRankingRouter

    prompts = pl.read_ndjson(data_dir / "alpaca-eval" / "instructions.jsonl.gz")["instruction"]
    rows = [
        (p, "gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1", "model_a") for p in prompts[:40]
    ]
    battles = battles_from_rows(rows, dataset="test")
    mf = MFRouter(dim=4, epochs=1, verbose=False).fit(battles).save(tmp_path / "mf")
    sw = SWRankingRouter(k=8).fit(battles).save(tmp_path / "sw")
    args = ["--mf", str(mf), "--sw", str(sw), "--repeats", "1", "--passes", "1", "--busy", "1"]
    out = run("startup.py", *args, timeout=300)
    loads = table_rows(out, "| fresh process |")
    assert [row[0].split(":")[0] for row in loads[:2]] == ["mf", "sw_ranking"]
    assert "polars" not in loads[0][-1] and "model2vec" not in loads[0][-1]
    assert len(table_rows(out, "| MF on Arena-Hard")) == 1
    assert len(table_rows(out, "| SW ranking")) == 2
    started_with_load_average(out)


def test_n_models_benchmark_prints_its_tables() -> None:
    out = run(
        "n_models.py", "--sets", "llmrouter", "--kinds", "quality", "--seeds", "0",
        "--max-prompts", "200", "--timing-n", "0",
    )  # fmt: skip
    rows = table_rows(out, "| router | AIQ |")
    assert [row[0] for row in rows] == ["quality", "25-NN", "singles hull", "oracle"]
    assert table_rows(out, "| set |")[0][:2] == ["llmrouter", "quality"]
    started_with_load_average(out)


def test_own_data_benchmark_prints_its_table_and_plot(tmp_path: Path) -> None:
    """--smoke: one pair, 40 of its prompts as the user's labels, random and quality, one seed."""
    pytest.importorskip("sklearn")
    plot = tmp_path / "curves.png"
    out = run("own_data.py", "--smoke", "--plot", str(plot), timeout=600)
    rows = table_rows(out, "| pair | router / baseline |")
    methods = [row[1] for row in rows if not row[0].startswith("mean")]
    assert methods == ["random draws", "length", "knn25", "logreg", "random", "quality"]
    assert all(re.fullmatch(r"-?\d\.\d{3}( ± \d\.\d{3}| \[.*\])", row[2]) for row in rows[:6])
    assert "quality − knn25 =" in out
    assert re.search(r"`train quality` on 200 prompts, no shipped data: \d+\.\d s wall", out)
    assert plot.stat().st_size > 10_000 and plot.read_bytes()[:4] == b"\x89PNG"
    started_with_load_average(out)
