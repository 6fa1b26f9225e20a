"""The tables and the PNG."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from prefroute.data.schema import Battles
from prefroute.evals.benchmarks import EvalSet
from prefroute.evals.evaluate import EvalResults, evaluate
from prefroute.evals.report import render, write_plot
from prefroute.routers.random import RandomRouter

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _set(name: str, n: int, seed: int) -> EvalSet:
    rng = np.random.default_rng(seed)
    return EvalSet(
        name=name,
        prompt_ids=tuple(f"q{i}" for i in range(n)),
        prompts=tuple(f"prompt {i}" for i in range(n)),
        strong_quality=rng.integers(0, 2, n).astype(float) + 1.0,
        weak_quality=rng.integers(0, 2, n).astype(float) * 0.5,
        strong_model="big",
        weak_model="small",
        dropped={"contaminated": 3},
    )


@pytest.fixture(scope="module")
def results() -> EvalResults:
    routers = {
        "seed-1": RandomRouter(random_state=1, strong_model="big", weak_model="small"),
        "paper-pair": RandomRouter(random_state=2),  # cannot retarget to big/small: noted
    }
    for router in routers.values():
        router.fit(Battles.empty())
    return evaluate(routers, [_set("mt-bench", 60, 0), _set("mine.jsonl", 200, 1)])


def test_render_prints_a_table_per_set_with_intervals_random_band_and_oracle(
    results: EvalResults,
) -> None:
    console = Console(record=True, width=200)
    render(results, console)
    text = console.export_text()
    for header in ("router", "APGR", "95% CI", "CPT(50%)", "CPT(80%)", "AUC", "saving"):
        assert header in text
    assert "mt-bench: 60 prompts, big vs small" in text and "mine.jsonl: 200 prompts" in text
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in text.splitlines()]
    rows = [row for row in rows if row]
    first, rand, oracle = results.sets[0], results.sets[0].random, results.sets[1].oracle
    seed_1 = first.routers[0]
    assert rows[0][:3] == ["seed-1", f"{seed_1.curve.apgr:.3f}", str(seed_1.apgr_interval)]
    band = first.random_band
    assert ["random line", f"{rand.apgr:.3f}", str(band), "50.0%", "80.0%", f"{rand.auc:.3f}"] == (
        rows[2][:6]
    )
    assert ["oracle", f"{oracle.apgr:.3f}", "", f"{oracle.cpt(0.5):.1%}"] == rows[7][:4]
    assert len(rows) == 8  # two routers, random and oracle, twice
    assert rows[0][-1] == "-"  # big and small have no price: no saving is made up
    assert "saving not priced: no price for model 'big'" in text
    assert "paper-pair *" in text
    assert "* paper-pair: scores unchanged, for its own pair gpt-4-1106-preview" in text
    assert "prompts: 63 prompts in it, 60 used, 3 left out (3 contaminated)" in text
    assert f"random band: 5-95% of 1,000 random routers' APGR on these prompts is {band}" in text


def test_plot_is_a_valid_png_with_one_panel_per_set(results: EvalResults, tmp_path: Path) -> None:
    from PIL import Image

    path = write_plot(results, tmp_path / "new" / "eval.png")
    assert path.read_bytes()[:8] == PNG_MAGIC
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        width, height = image.size
    assert width > 1.8 * height  # two panels side by side


def test_plotting_leaves_the_pyplot_backend_alone(results: EvalResults, tmp_path: Path) -> None:
    write_plot(results, tmp_path / "eval.png")
    assert "matplotlib.pyplot" not in sys.modules
