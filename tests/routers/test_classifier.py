"""The MiniLM classifier router: a tiny real fit, scores, artifact, torch-free routing.

The fit is on real shipped prompts with a pattern a classifier can learn:
MATH prealgebra problems (routerdc-7model) won by the strong model, short
AlpacaEval chat instructions won by the weak one; held-out prompts of each kind
must land on their side.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from prefroute.data import shipped
from prefroute.data.schema import Battles
from prefroute.errors import DataError, InvalidParameterError, NotFittedError
from prefroute.routers.base import DEFAULT_STRONG, DEFAULT_WEAK, Router
from prefroute.routers.classifier import ClassifierRouter

pytest.importorskip("torch")
pytest.importorskip("transformers")


def math_vs_chat(data_dir: Path, n_train: int = 100, n_test: int = 30) -> dict[str, list[str]]:
    """Real prompts: MATH prealgebra problems and short AlpacaEval instructions with no
    digits, split into train and held-out parts (seeded)."""
    scores = shipped.load_scores(data_dir).table.frame
    math = scores.filter(pl.col("dataset") == "routerdc-7model/MATH_prealgebra")["prompt"]
    chat = shipped.load_judge_preferences(data_dir).table.filter(
        (pl.col("prompt").str.len_chars() < 300) & ~pl.col("prompt").str.contains(r"\d")
    )["prompt"]
    n = n_train + n_test
    math_list = math.unique().sort().sample(n, seed=0).to_list()
    chat_list = chat.unique().sort().sample(n, seed=0).to_list()
    return {
        "math": math_list[:n_train],
        "chat": chat_list[:n_train],
        "math_test": math_list[n_train:],
        "chat_test": chat_list[n_train:],
    }


def pair_battles(strong_wins: list[str], weak_wins: list[str]) -> Battles:
    """Battles of the default pair: the strong model wins the first prompts, the weak the rest."""
    rows = [(p, "model_a") for p in strong_wins] + [(p, "model_b") for p in weak_wins]
    return Battles(
        pl.DataFrame(
            {
                "prompt_id": [f"test/{i}" for i in range(len(rows))],
                "prompt": [p for p, _ in rows],
                "model_a": DEFAULT_STRONG,
                "model_b": DEFAULT_WEAK,
                "winner": [w for _, w in rows],
                "source": "human",
                "dataset": "test",
                "weight": 1.0,
            }
        )
    )


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(a positive scores above a negative), ties half."""
    diff = positive[:, None] - negative[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


@pytest.fixture(scope="module")
def prompts(data_dir: Path) -> dict[str, list[str]]:
    return math_vs_chat(data_dir)


def fit_logged(router: ClassifierRouter, battles: Battles) -> tuple[ClassifierRouter, str]:
    """The fitted router and what its fit wrote on stderr (not a terminal here, as in a log)."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        router.fit(battles)
    return router, stderr.getvalue()


@pytest.fixture(scope="module")
def fitted_and_log(prompts: dict[str, list[str]]) -> tuple[ClassifierRouter, str]:
    """Head and tail of each prompt (24 + 8 tokens), int8."""
    router = ClassifierRouter(
        train_layers=2, max_length=32, tail_length=8, batch_size=16, lr=3e-4, random_state=0
    )
    return fit_logged(router, pair_battles(prompts["math"], prompts["chat"]))


@pytest.fixture(scope="module")
def fitted(fitted_and_log: tuple[ClassifierRouter, str]) -> ClassifierRouter:
    return fitted_and_log[0]


@pytest.fixture(scope="module")
def head_only(prompts: dict[str, list[str]]) -> ClassifierRouter:
    """A quick fp32 fit reading the first 32 tokens only, as every router did before tails."""
    battles = pair_battles(prompts["math"][:16], prompts["chat"][:16])
    params = {"train_layers": 0, "max_length": 32, "tail_length": 0, "batch_size": 16}
    return ClassifierRouter(**params, lr=1e-3, quantize=False, random_state=3).fit(battles)


@pytest.fixture(scope="module")
def held_out(prompts: dict[str, list[str]]) -> list[str]:
    return prompts["math_test"] + prompts["chat_test"]


# -- refusals (no training) ----------------------------------------------------------------


def test_no_usable_battles_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="strong-class model against a weak-class"):
        ClassifierRouter().fit(Battles.empty())


def test_fit_takes_battles_only() -> None:
    class Recipe:  # shaped like a TrainingSet: what fit() took before
        battles = pair_battles(["x"], ["y"])

    with pytest.raises(TypeError, match=r"takes Battles, got Recipe: pass its \.battles"):
        ClassifierRouter().fit(Recipe())  # type: ignore[arg-type]


def test_unfitted_router_refuses() -> None:
    with pytest.raises(NotFittedError, match="fit"):
        ClassifierRouter().strong_win_rate(["What is 2 + 2?"])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"train_layers": 7}, r"'train_layers' must be an int in \[0, 6\] or None, got 7"),
        ({"train_layers": -1}, r"'train_layers' must be an int in \[0, 6\] or None, got -1"),
        ({"max_length": 0}, r"'max_length' must be an int >= 1, got 0"),
        ({"epochs": 1.5}, r"'epochs' must be an int >= 1, got 1.5"),
        ({"lr": 0.0}, r"'lr' must be a number > 0, got 0.0"),
        ({"max_examples": 0}, r"'max_examples' must be an int >= 1 or None, got 0"),
        ({"quantize": "yes"}, r"'quantize' must be a bool, got 'yes'"),
        ({"strong_tiers": ()}, r"'strong_tiers' must be a non-empty list of ints >= 1, got \(\)"),
        ({"weak_tiers": [3, "4"]}, r"'weak_tiers' must be a non-empty list of ints >= 1"),
    ],
)
def test_bad_parameters_are_refused_before_any_model_loads(params, message, monkeypatch) -> None:
    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the parameters were checked")

    monkeypatch.setattr(ClassifierRouter, "_build", no_model)
    battles = pair_battles(["What is 2 + 2?"], ["hi"])
    with pytest.raises(InvalidParameterError, match=r"^ClassifierRouter: parameter " + message):
        ClassifierRouter(**params).fit(battles)
    labels = pl.DataFrame({"prompt": ["What is 2 + 2?"], "label": ["strong"]})
    with pytest.raises(InvalidParameterError, match=message):
        ClassifierRouter(**params).fit_labels(labels)


# -- a tiny real fit -------------------------------------------------------------------------


def test_held_out_math_scores_above_held_out_chat(fitted, prompts) -> None:
    math = fitted.strong_win_rate(prompts["math_test"])
    chat = fitted.strong_win_rate(prompts["chat_test"])
    assert auc(math, chat) > 0.9
    assert np.median(math) > 0.5 > np.median(chat)
    assert fitted.training_["examples"] == 200


def test_scores_are_float32_probabilities_and_batching_changes_nothing(fitted, held_out) -> None:
    scores = fitted.strong_win_rate(held_out)
    assert scores.dtype == np.float32 and scores.shape == (len(held_out),)
    assert scores.min() >= 0.0 and scores.max() <= 1.0
    one_by_one = np.concatenate([fitted.strong_win_rate([p]) for p in held_out])
    np.testing.assert_allclose(scores, one_by_one, atol=1e-5)
    probabilities = fitted.label_probabilities(held_out)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(probabilities[:, 0], scores, atol=1e-6)
    assert fitted.strong_win_rate([]).shape == (0,)
    routed = fitted.route(held_out, 0.5)
    assert routed == np.where(scores >= 0.5, DEFAULT_STRONG, DEFAULT_WEAK).tolist()


def test_save_load_round_trip_gives_identical_scores(fitted, held_out, tmp_path) -> None:
    path = fitted.save(tmp_path / "art")
    assert {p.name for p in path.iterdir()} == {"router.json", "classifier.onnx", "tokenizer.json"}
    loaded = Router.load(path)
    assert isinstance(loaded, ClassifierRouter)
    assert loaded.get_params() == json.loads(json.dumps(fitted.get_params()))
    np.testing.assert_array_equal(
        loaded.strong_win_rate(held_out), fitted.strong_win_rate(held_out)
    )
    loaded.save(path)  # saving over its own files is fine
    (path / "classifier.onnx").unlink()
    with pytest.raises(Exception, match="classifier.onnx is missing"):
        Router.load(path)


def test_routes_in_a_process_without_torch(fitted, held_out, tmp_path) -> None:
    path = fitted.save(tmp_path / "art")
    code = (
        "import json, sys\n"
        "sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
        "from prefroute.routers.base import Router\n"
        f"router = Router.load({str(path)!r})\n"
        f"print(json.dumps(router.strong_win_rate({held_out!r}).tolist()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    np.testing.assert_allclose(json.loads(out.stdout), fitted.strong_win_rate(held_out), atol=1e-6)


def test_same_seed_same_scores_and_fp32_export(prompts, held_out, fitted, head_only) -> None:
    battles = pair_battles(prompts["math"][:16], prompts["chat"][:16])
    first = head_only
    again = ClassifierRouter(**first.get_params()).fit(battles)
    scores = first.strong_win_rate(held_out)
    np.testing.assert_array_equal(scores, again.strong_win_rate(held_out))
    assert first.training_["precision"] == "fp32" and fitted.training_["precision"] == "int8"
    # int8 keeps one feed-forward output projection per MiniLM layer in fp32
    assert first.training_["fp32_matmuls_in_int8"] == 0
    assert fitted.training_["fp32_matmuls_in_int8"] == 6
    # fp32 batches prompts (padded to the longest in the batch): still as one by one
    one_by_one = np.concatenate([first.strong_win_rate([p]) for p in held_out])
    np.testing.assert_allclose(scores, one_by_one, atol=1e-5)


def test_every_phase_of_the_fit_says_what_it_did(fitted_and_log) -> None:
    """Written to a log (no terminal): one line per phase, and the training loss."""
    router, log = fitted_and_log
    lines = log.splitlines()
    expected = [
        r"labelling prompts: model tiers from 200 battles: 200 battles of a strong-class vs a "
        r"weak-class model \(\d+\.\d s\)",
        r"loading torch and the base model: MiniLM, 22,714,371 weights, [\d,]+ trained \(",
        r"tokenising 200 prompts: median \d+ tokens; \d+ longer prompts cut to their first 24 "
        r"\+ last 8 tokens \(",
        r"fine-tuning MiniLM on 200 prompts: step 2/13 \(epoch 1/1\), loss \d\.\d{4}, .* "
        r"elapsed, ~.* left",
        r"fine-tuning MiniLM on 200 prompts: 13 steps, final loss \d\.\d{4} \(",
        r"exporting to ONNX: fp32, \d+\.\d MB \(",
        r"quantising to int8: \d+\.\d MB, 6 feed-forward outputs kept fp32 \(",
    ]
    for pattern in expected:
        assert any(re.match(pattern, line) for line in lines), (pattern, log)
    assert router.training_["steps"] == 13
    assert f"final loss {router.training_['final_loss']:.4f}" in log
    quiet = io.StringIO()
    battles = pair_battles(["What is 2 + 2?"], ["hi"])
    with contextlib.redirect_stderr(quiet):
        ClassifierRouter(train_layers=0, max_length=8, quantize=False, verbose=False).fit(battles)
    assert quiet.getvalue() == ""


def test_an_artifact_from_before_tails_loads_and_scores_as_before(
    head_only, held_out, tmp_path
) -> None:
    """router.json written before ``tail_length`` / ``verbose`` and the framing's head and
    tail fields: the framing reads as a head of ``max_length`` tokens."""
    path = head_only.save(tmp_path / "art")
    config = json.loads((path / "router.json").read_text())
    for name in ("tail_length", "verbose"):
        del config["params"][name]
    framing = config["state"]["framing"]
    config["state"]["framing"] = {
        "prefix_ids": framing["prefix_ids"],
        "suffix_ids": framing["suffix_ids"],
        "max_length": framing["head_length"],
    }
    (path / "router.json").write_text(json.dumps(config))
    loaded = Router.load(path)
    assert loaded.framing_ == head_only.framing_
    assert loaded.get_params() == json.loads(json.dumps(head_only.get_params()))
    np.testing.assert_array_equal(
        loaded.strong_win_rate(held_out), head_only.strong_win_rate(held_out)
    )
