"""Loading and scoring an artifact imports only what scoring needs.

A server and ``prefroute route`` load MF and SW ranking artifacts; neither needs
torch, polars, model2vec, transformers or scikit-learn for that, so a process
where those cannot be imported must load and score with the same bits, and
``prefroute route`` must read a JSONL prompt file and report a bad one there too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from battle_rows import battles_from_rows
from shipped_prompts import read_prompts

from prefroute.routers.mf import MFRouter
from prefroute.routers.sw_ranking import SWRankingRouter

BLOCKED = ("torch", "polars", "model2vec", "transformers", "sklearn")
UNNEEDED = (*BLOCKED, "huggingface_hub", "httpx", "yaml", "joblib", "tqdm")
STRONG, WEAK, OTHER = "strong", "weak", "other"

SCORE = """
import json, sys
blocked, unneeded, paths = sys.argv[1].split(","), sys.argv[2].split(","), sys.argv[3:]
for name in blocked:
    sys.modules[name] = None  # any import of it now raises
from prefroute.routers import load
prompts = json.loads(sys.stdin.read())
print(json.dumps({p: load(p).strong_win_rate(prompts).tolist() for p in paths}))
print(json.dumps(sorted(m for m in unneeded if sys.modules.get(m) is not None)))
"""


ROUTE = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
sys.argv = ["prefroute", *sys.argv[2:]]
from prefroute.cli import app
app(prog_name="prefroute")
"""


@pytest.fixture(scope="module")
def prompts(data_dir: Path) -> list[str]:
    """Real prompts: AlpacaEval instructions, MMLU questions, long Arena-Hard prompts."""
    return (
        read_prompts(data_dir / "alpaca-eval" / "instructions.jsonl.gz", "instruction", 60)
        + read_prompts(data_dir / "routellm-evals" / "mmlu_golden.jsonl.gz", "prompt", 60)
        + read_prompts(data_dir / "arena-hard-v0.1-prompts" / "prompts.jsonl.gz", "prompt", 30)
    )


@pytest.fixture(scope="module")
def artifacts(prompts: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small MF (needs torch to train) and SW ranking router: strong wins the MMLU ones."""
    pytest.importorskip("torch")
    rows = []
    for i, prompt in enumerate(prompts[:120]):
        strong_wins = 60 <= i < 120
        rows.append((prompt, STRONG, WEAK, "model_a" if strong_wins else "model_b"))
        rows.append((prompt, OTHER, WEAK, "tie"))
    battles = battles_from_rows(rows, dataset="test")
    root = tmp_path_factory.mktemp("light")
    pair = {"strong_model": STRONG, "weak_model": WEAK}
    mf = MFRouter(dim=8, epochs=5, batch_size=64, verbose=False, **pair).fit(battles)
    sw = SWRankingRouter(k=16, **pair).fit(battles)
    return {"mf": mf.save(root / "mf"), "sw_ranking": sw.save(root / "sw")}


def _score(paths: list[Path], prompts: list[str], blocked: tuple[str, ...]) -> tuple[dict, list]:
    args = [",".join(blocked) or "-", ",".join(UNNEEDED), *map(str, paths)]
    out = subprocess.run(
        [sys.executable, "-c", SCORE, *args],
        input=json.dumps(prompts),
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    scores, imported = out.stdout.strip().splitlines()
    return json.loads(scores), json.loads(imported)


def test_mf_and_sw_load_and_score_with_heavy_modules_unimportable(
    artifacts: dict[str, Path], prompts: list[str]
) -> None:
    from prefroute.routers import load

    paths = list(artifacts.values())
    scores, _ = _score(paths, prompts, BLOCKED)
    for path in paths:
        expected = load(path).strong_win_rate(prompts)
        np.testing.assert_array_equal(np.array(scores[str(path)], dtype=np.float32), expected)


def test_loading_imports_none_of_them_when_they_are_there(
    artifacts: dict[str, Path], prompts: list[str]
) -> None:
    """Nothing blocked: a ``try: import x`` would pass the test above; this one sees it."""
    _, imported = _score(list(artifacts.values()), prompts[:5], ())
    assert imported == []


def _route(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", ROUTE, ",".join(BLOCKED), "route", *args]
    return subprocess.run(command, capture_output=True, text=True)


def test_route_reads_jsonl_and_scores_with_heavy_modules_unimportable(
    artifacts: dict[str, Path], prompts: list[str], tmp_path: Path
) -> None:
    from prefroute.routers import load

    chosen = prompts[::10]
    records = [{"id": f"q{i}", "prompt": p} for i, p in enumerate(chosen)]
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), "utf-8")
    done = _route(str(artifacts["mf"]), str(path), "--threshold", "0.5")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    expected = load(artifacts["mf"]).strong_win_rate(chosen)
    assert [line["id"] for line in lines] == [r["id"] for r in records]
    assert [line["score"] for line in lines] == [round(float(s), 6) for s in expected]
    assert {line["model"] for line in lines} <= {STRONG, WEAK}

    path.write_text(path.read_text("utf-8") + '{"id": "bad", "prompt": 7}\n', "utf-8")
    done = _route(str(artifacts["mf"]), str(path), "--threshold", "0.5")
    assert done.returncode == 1 and done.stdout == ""
    assert f"{path}:{len(records) + 1}: field 'prompt': expected a non-empty string" in done.stderr
    assert "Traceback" not in done.stderr
