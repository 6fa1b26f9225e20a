"""The router contract, checked on the random baseline: route, save, load, refuse; the typed
artifact config, old formats, declared parameters and the light import paths."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from prefroute.data.schema import Battles
from prefroute.errors import ArtifactError, InvalidParameterError, NotFittedError, UnknownModelError
from prefroute.routers.artifact import (
    FORMAT_VERSION,
    Calibration,
    Models,
    QualityTarget,
    TrainingData,
    read_config,
    update_config,
)
from prefroute.routers.base import Router, unknown_model
from prefroute.routers.params import Interval, Options, check_params
from prefroute.routers.random import RandomRouter
from prefroute.routers.registry import router_class

PROMPTS = ["What is 2 + 2?", "Prove the Riemann hypothesis.", "Write a haiku about rain."] * 50
FORMAT_1 = Path(__file__).parent / "format1" / "random"
"""A calibrated random artifact as prefroute main (format 1, commit 517947b) wrote it:
``Router.save(extra=...)`` with the ``training_data`` and ``calibration`` that
``prefroute train`` recorded."""


def test_random_scores_are_uniform_deterministic_and_route_by_threshold() -> None:
    router = RandomRouter(random_state=1).fit(Battles.empty())
    prompts = [f"prompt {i}" for i in range(4000)]
    scores = router.strong_win_rate(prompts)
    assert scores.dtype == np.float32 and scores.shape == (4000,)
    assert scores.min() >= 0.0 and scores.max() <= 1.0
    assert abs(float((scores >= 0.7).mean()) - 0.3) < 0.03  # uniform: share = 1 - t
    np.testing.assert_array_equal(scores[:10], router.strong_win_rate(prompts[:10]))
    other = RandomRouter(random_state=2).fit(Battles.empty()).strong_win_rate(prompts)
    assert not np.array_equal(scores, other)
    routed = router.route(prompts[:100], 0.5)
    expected = np.where(scores[:100] >= 0.5, router.strong_model, router.weak_model)
    assert routed == expected.tolist()


def test_unfitted_router_refuses() -> None:
    with pytest.raises(NotFittedError, match="fit"):
        RandomRouter().strong_win_rate(["x"])


def test_save_load_round_trip_keeps_calibration_and_training_data(tmp_path: Path) -> None:
    router = RandomRouter(random_state=7, strong_model="big", weak_model="small").fit(
        Battles.empty()
    )
    thresholds = tuple(1.0 - p / 100 for p in range(101))
    q95 = QualityTarget("quality", 0.95, 0.41, 0.62, 0.953, "mine.jsonl", 300)
    router.calibration_ = Calibration(thresholds, prompts="my prompts", n_prompts=3, targets=(q95,))
    router.training_data_ = TrainingData(rows=12, turns="all", gold_slice_ids=("mmlu/x/1",))
    router.save(tmp_path / "art")
    loaded = Router.load(tmp_path / "art")
    assert isinstance(loaded, RandomRouter)
    assert loaded.get_params() == router.get_params()
    np.testing.assert_array_equal(loaded.strong_win_rate(PROMPTS), router.strong_win_rate(PROMPTS))
    assert loaded.calibration_ == router.calibration_
    assert loaded.threshold_for_share(0.3) == pytest.approx(0.7)
    assert loaded.calibration_.target("q95") == q95 and loaded.calibration_.target("q90") is None
    assert loaded.training_data_ == router.training_data_
    config = read_config(tmp_path / "art")
    assert (config.format_version, config.kind) == (FORMAT_VERSION, "random")
    assert config.models == Models(strong="big", weak="small")
    # Saved again from the loaded router: the same file, nothing lost on the way.
    loaded.save(tmp_path / "again")
    assert (tmp_path / "again" / "router.json").read_text() == (
        tmp_path / "art" / "router.json"
    ).read_text()


def test_refitting_or_retargeting_drops_a_calibration_of_other_scores(tmp_path: Path) -> None:
    router = RandomRouter().fit(Battles.empty())
    router.calibration_ = Calibration(tuple(0.5 for _ in range(101)))
    router.training_data_ = TrainingData(rows=1)
    router.models_ = ["gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1", "a", "b"]  # as MF
    retargeted = router.retarget("a", "b")
    assert not hasattr(retargeted, "calibration_")
    with pytest.raises(ArtifactError, match="no calibration.*retargeting drops the old one"):
        retargeted.threshold_for_share(0.3)
    retargeted.save(tmp_path / "retargeted")  # and the saved copy has none to serve
    assert read_config(tmp_path / "retargeted").calibration is None
    del router.models_
    router.fit(Battles.empty())
    assert not hasattr(router, "calibration_") and not hasattr(router, "training_data_")
    with pytest.raises(ArtifactError, match="no calibration"):
        router.threshold_for_share(0.5)


def test_kinds_without_per_model_parameters_refuse_to_retarget() -> None:
    router = RandomRouter().fit(Battles.empty())
    with pytest.raises(UnknownModelError, match="a random router cannot retarget to a vs b"):
        router.retarget("a", "b")
    same = router.retarget(router.strong_model, router.weak_model)  # its own pair: a copy
    assert same is not router and same.strong_win_rate(["x"]) == router.strong_win_rate(["x"])


def test_format_1_artifacts_load_as_the_typed_config(tmp_path: Path) -> None:
    config = read_config(FORMAT_1)
    raw = json.loads((FORMAT_1 / "router.json").read_text())
    assert raw["format_version"] == 1 and config.format_version == FORMAT_VERSION
    assert config.models == Models("gpt-4-1106-preview", "mixtral-8x7b-instruct-v0.1")
    assert config.training_data is not None and config.calibration is not None
    assert config.training_data.rows == raw["training_data"]["battles"]
    assert config.training_data.gold_slice_ids == tuple(raw["training_data"]["mmlu_gold_slice"])
    assert dict(config.training_data.decontaminated) == raw["training_data"]["decontaminated"]
    assert config.training_data.turns is None  # format 1 never recorded it
    table = raw["calibration"]["thresholds"]
    assert config.calibration.thresholds == tuple(table[str(p)] for p in range(101))
    router = Router.load(FORMAT_1)
    expected = RandomRouter(random_state=3).fit(Battles.empty())
    np.testing.assert_array_equal(
        router.strong_win_rate(PROMPTS), expected.strong_win_rate(PROMPTS)
    )
    assert router.threshold_for_share(0.25) == table["25"]
    # Rewritten by any update as the current format, keeping every field.
    copy = shutil.copytree(FORMAT_1, tmp_path / "old")
    updated = update_config(copy, calibration=None)
    assert json.loads((copy / "router.json").read_text())["format_version"] == FORMAT_VERSION
    assert read_config(copy) == updated and updated.training_data == config.training_data


def test_load_refuses_other_format_versions_and_non_artifacts(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no router.json"):
        Router.load(tmp_path)
    path = RandomRouter().fit(Battles.empty()).save(tmp_path / "art")
    config = json.loads((path / "router.json").read_text())
    config["format_version"] = FORMAT_VERSION + 1
    (path / "router.json").write_text(json.dumps(config))
    with pytest.raises(ArtifactError, match=r"format version 3.*prefroute train KIND --out"):
        Router.load(path)
    (path / "router.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        Router.load(path)


def test_damaged_fields_are_named(tmp_path: Path) -> None:
    path = RandomRouter().fit(Battles.empty()).save(tmp_path / "art")
    good = json.loads((path / "router.json").read_text())
    table = {str(p): 0.5 for p in range(101)}
    target = {
        "measure": "quality", "target": 0.95, "threshold": 0.4, "strong_share": 0.6,
        "reached": 0.96, "eval_file": "mine.jsonl", "n_prompts": 10,
    }  # fmt: skip
    cases = [
        ({"training_data": {"turns": "middle"}}, r"'training_data.turns': expected one of"),
        ({"training_data": {"rows": "many"}}, r"'training_data.rows': expected an int"),
        ({"calibration": {"thresholds": {"0": 0.5}}}, r"'calibration.thresholds'"),
        (
            {"calibration": {"thresholds": table, "targets": {"q95": {**target, "target": 2}}}},
            r"'calibration.targets.q95': expected a quality target is in \(0, 1\]",
        ),
        (
            {"calibration": {"thresholds": table, "targets": {"q90": target}}},
            r"'calibration.targets.q90': expected the target named 'q95'",
        ),
        ({"models": {"strong": "x", "weak": "y"}}, r"disagree with its params"),
        ({"params": {**good["params"], "depth": 3}}, r"sets \['depth'\], which RandomRouter"),
        ({"extras": 1}, r"unknown field\(s\) extras"),
    ]
    for change, message in cases:
        (path / "router.json").write_text(json.dumps({**good, **change}))
        with pytest.raises(ArtifactError, match=message):
            Router.load(path)


def test_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(ArtifactError, match=r"unknown router kind 'nope'.*'mf'"):
        router_class("nope")


def test_declared_parameters_are_checked_at_fit_with_one_message() -> None:
    with pytest.raises(  # a ValueError too, and one line from the CLI
        InvalidParameterError,
        match=r"^RandomRouter: parameter 'random_state' must be an int or None, got",
    ):
        RandomRouter(random_state="seven").fit(Battles.empty())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="parameter 'strong_model' must be a str, got 3"):
        RandomRouter(strong_model=3).fit(Battles.empty())  # type: ignore[arg-type]
    table = {
        "n": [Interval(int, 1, None)],
        "p": [Interval(float, 0, 1, closed="neither")],
        "how": [Options("a", "b")],
    }
    check_params("X", {"n": 2, "p": 0.5, "how": "a"}, table)
    for params, message in [
        ({"n": 0, "p": 0.5, "how": "a"}, "X: parameter 'n' must be an int >= 1, got 0"),
        ({"n": True, "p": 0.5, "how": "a"}, "parameter 'n' must be an int >= 1, got True"),
        ({"n": 1, "p": 1.0, "how": "a"}, r"'p' must be a number in \(0, 1\), got 1.0"),
        ({"n": 1, "p": float("nan"), "how": "a"}, "'p' must be a number in"),
        ({"n": 1, "p": 0.5, "how": "c"}, r"'how' must be one of \['a', 'b'\], got 'c'"),
    ]:
        with pytest.raises(ValueError, match=message):
            check_params("X", params, table)


def test_repr_shows_the_parameters_that_differ_from_their_defaults() -> None:
    assert repr(RandomRouter()) == "RandomRouter()"
    assert repr(RandomRouter(random_state=5, weak_model="w")) == (
        "RandomRouter(weak_model='w', random_state=5)"
    )


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_the_routers_face_is_lazy() -> None:
    """``prefroute.routers`` gives ``KINDS`` and ``load`` without importing numpy."""
    out = _run(
        "import sys\n"
        "from prefroute.routers import KINDS, load\n"
        "import prefroute\n"
        "assert 'mf' in KINDS and callable(prefroute.load)\n"
        "print(sys.modules.get('numpy') is not None)\n"
        "from prefroute.routers import Router, MFRouter\n"
        "print(Router.__module__, MFRouter.kind, prefroute.Router is Router)\n"
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "prefroute.routers.base", "mf", "True"]


def test_prefroute_help_imports_neither_polars_nor_numpy() -> None:
    out = _run(
        "import sys\n"
        "sys.argv = ['prefroute', '--help']\n"
        "from prefroute.cli import app\n"
        "try:\n"
        "    app()\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "print('IMPORTED', [m for m in ('polars', 'numpy') if sys.modules.get(m) is not None])\n"
    )
    assert out.returncode == 0, out.stderr
    assert "Learn LLM routers" in out.stdout  # the help was printed, not an error
    assert out.stdout.strip().splitlines()[-1] == "IMPORTED []"


def test_a_dated_release_is_the_first_suggestion_for_its_undated_name() -> None:
    learned = ["gpt-4", "gpt-4o-mini", "gpt-4-0613", "gpt-4o-2024-05-13", "gpt-4o-2024-08-06"]
    message = str(unknown_model("gpt-4o", learned))
    assert "closest: gpt-4o-2024-08-06, gpt-4o-2024-05-13, " in message
    assert "closest: gpt-4o-mini" in str(unknown_model("gpt-4o-mnii", learned))
