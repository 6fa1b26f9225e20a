"""The MF router on synthetic battles over real prompts: it learns which kind of
prompt a model wins on, round-trips through an artifact, routes without torch,
re-targets to any pair it has seen, and is deterministic per seed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from battle_rows import battles_from_rows

from prefroute.data.schema import Battles
from prefroute.data.shipped import load_judge_preferences, load_scores
from prefroute.errors import PrefrouteError, UnknownModelError
from prefroute.routers.artifact import read_config, update_config
from prefroute.routers.base import Router
from prefroute.routers.mf import MFRouter, length_features, resolve_schedule

pytest.importorskip("torch")

STRONG, WEAK = "math-expert", "generalist"
OTHERS = ("small-a", "small-b")
N_TRAIN, N_HELD = 150, 100
# Small data: weight decay keeps 300 prompts from being memorised (held-out AUC 0.85
# without, 0.98 with; logistic regression on the same embeddings gets 0.98).
FAST = {
    "dim": 16,
    "epochs": 30,
    "lr": 1e-2,
    "batch_size": 256,
    "weight_decay": 1e-2,
    "verbose": False,
}


@pytest.fixture(scope="module")
def prompts(data_dir: Path) -> dict[str, list[str]]:
    """Real GSM8K-train word problems and real AlpacaEval instructions, shuffled."""
    scores = load_scores(data_dir).table.frame
    math = scores.filter(pl.col("dataset") == "routerdc-7model/gsm8k-train")["prompt"]
    other = load_judge_preferences(data_dir).table["prompt"]
    rng = np.random.default_rng(0)
    out = {}
    for kind, series in (("math", math), ("other", other)):
        unique = series.unique().sort().to_list()
        out[kind] = [unique[i] for i in rng.permutation(len(unique))[: N_TRAIN + N_HELD]]
    return out


def _battles(prompts: dict[str, list[str]], *, flip: float = 0.2) -> Battles:
    """STRONG beats WEAK on math and loses elsewhere; small-a vs small-b the other
    way round. Three votes per prompt and pair, each flipped with chance ``flip``,
    plus a tie, so the signal is there but noisy."""
    rng = np.random.default_rng(1)
    rows = []
    for kind in ("math", "other"):
        for prompt in prompts[kind][:N_TRAIN]:
            for a, b, a_wins in ((STRONG, WEAK, kind == "math"), (*OTHERS, kind == "other")):
                for _ in range(3):
                    won = a_wins != (rng.random() < flip)
                    rows.append((prompt, a, b, "model_a" if won else "model_b"))
                rows.append((prompt, b, a, "tie"))
    return battles_from_rows(rows, dataset="synthetic")


@pytest.fixture(scope="module")
def battles(prompts: dict[str, list[str]]) -> Battles:
    return _battles(prompts)


@pytest.fixture(scope="module")
def router(battles: Battles) -> MFRouter:
    return MFRouter(strong_model=STRONG, weak_model=WEAK, **FAST).fit(battles)


@pytest.fixture(scope="module")
def held_out(prompts: dict[str, list[str]]) -> tuple[list[str], np.ndarray]:
    texts = prompts["math"][N_TRAIN:] + prompts["other"][N_TRAIN:]
    return texts, np.array([1] * N_HELD + [0] * N_HELD)


def _auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """P(a random positive scores above a random negative), ties counted half."""
    pos, neg = scores[labels == 1][:, None], scores[labels == 0][None, :]
    return float((pos > neg).mean() + 0.5 * (pos == neg).mean())


def test_learns_which_prompts_the_strong_model_wins(router: MFRouter, held_out) -> None:
    texts, is_math = held_out
    auc = _auc(router.strong_win_rate(texts), is_math)
    assert auc > 0.9, f"held-out AUC {auc:.3f}: the router did not learn math -> strong"
    assert router.models_ == sorted([STRONG, WEAK, *OTHERS])
    assert router.n_prompts_ == 2 * N_TRAIN
    assert router.loss_history_[-1] < router.loss_history_[0]


def test_scores_are_float32_probabilities_and_batch_equals_one_by_one(
    router: MFRouter, held_out
) -> None:
    texts = held_out[0]
    scores = router.strong_win_rate(texts)
    assert scores.dtype == np.float32 and scores.shape == (len(texts),)
    assert scores.min() >= 0.0 and scores.max() <= 1.0
    one_by_one = np.concatenate([router.strong_win_rate([t]) for t in texts])
    np.testing.assert_array_equal(scores, one_by_one)
    assert router.strong_win_rate([]).shape == (0,)
    routed = router.route(texts, 0.5)
    assert routed == np.where(scores >= 0.5, STRONG, WEAK).tolist()


def test_matches_the_paper_formula(router: MFRouter, held_out) -> None:
    """The served shortcut gᵀv_q + c equals σ(w2ᵀ((v_s - v_w) ⊙ (W1ᵀv_q + b)))."""
    x = np.hstack([router.embed(held_out[0]), length_features(held_out[0])]).astype(np.float64)
    index = {m: i for i, m in enumerate(router.models_)}
    v = router.model_vecs_.astype(np.float64)
    proj = x @ router.w1_ + router.b_
    delta = (proj * (v[index[STRONG]] - v[index[WEAK]])) @ router.w2_
    np.testing.assert_allclose(
        router.strong_win_rate(held_out[0]), 1 / (1 + np.exp(-delta)), atol=1e-5
    )


def test_save_load_round_trip(router: MFRouter, held_out, tmp_path: Path) -> None:
    path = router.save(tmp_path / "mf")
    loaded = Router.load(path)
    assert isinstance(loaded, MFRouter)
    assert loaded.get_params() == router.get_params()
    assert loaded.models_ == router.models_
    np.testing.assert_array_equal(
        loaded.strong_win_rate(held_out[0]), router.strong_win_rate(held_out[0])
    )


def test_loading_and_routing_import_no_torch(router: MFRouter, held_out, tmp_path: Path) -> None:
    """Nothing is blocked here: the process could import torch, and must not have."""
    path = router.save(tmp_path / "mf")
    texts = held_out[0][:20]
    code = (
        "import json, sys\n"
        "from prefroute.routers.base import Router\n"
        f"r = Router.load({str(path)!r})\n"
        "texts = json.loads(sys.stdin.read())\n"
        "print(json.dumps(r.strong_win_rate(texts).tolist()))\n"
        "print(sorted(m for m in ('torch', 'polars', 'model2vec') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], input=json.dumps(texts), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    scores, heavy = out.stdout.strip().splitlines()
    assert heavy == "[]"
    np.testing.assert_array_equal(
        np.array(json.loads(scores), dtype=np.float32), router.strong_win_rate(texts)
    )


def test_retargets_to_any_seen_pair_and_names_unknown_models(router: MFRouter, held_out) -> None:
    texts, is_math = held_out
    original = router.strong_win_rate(texts)
    other = router.retarget(*OTHERS).strong_win_rate(texts)
    assert _auc(other, is_math) < 0.1  # small-a wins elsewhere, not on math
    swapped = router.retarget(WEAK, STRONG)  # swapped pair: the complement
    np.testing.assert_allclose(swapped.strong_win_rate(texts), 1 - original, atol=1e-6)

    with pytest.raises(UnknownModelError, match=r"'math-exprt'.*4 models.*math-expert"):
        router.retarget("math-exprt", WEAK)
    swapped.strong_model = "gpt-4o"  # a plain attribute: checked when scoring
    with pytest.raises(UnknownModelError, match="unknown strong model 'gpt-4o'"):
        swapped.strong_win_rate(texts)
    assert issubclass(UnknownModelError, PrefrouteError)
    np.testing.assert_array_equal(router.strong_win_rate(texts), original)  # unchanged


def test_same_seed_same_arrays_other_seed_other_arrays(battles: Battles) -> None:
    first = MFRouter(strong_model=STRONG, weak_model=WEAK, **FAST, random_state=3).fit(battles)
    again = MFRouter(strong_model=STRONG, weak_model=WEAK, **FAST, random_state=3).fit(battles)
    other = MFRouter(strong_model=STRONG, weak_model=WEAK, **FAST, random_state=4).fit(battles)
    for name, array in first._arrays().items():
        np.testing.assert_array_equal(array, again._arrays()[name], err_msg=name)
        assert not np.array_equal(array, other._arrays()[name]), name
    assert first.loss_history_ == again.loss_history_


def test_fit_refuses_bad_params_and_pairs_it_cannot_learn(battles: Battles) -> None:
    with pytest.raises(
        ValueError,
        match=r"^MFRouter: parameter 'tie_handling' must be one of \['half', 'drop'\], got 'nope'",
    ):
        MFRouter(tie_handling="nope").fit(battles)
    with pytest.raises(
        ValueError,
        match=r"MFRouter: parameter 'epochs' must be an int >= 1 or one of \['auto'\], got 0",
    ):
        MFRouter(epochs=0).fit(battles)
    with pytest.raises(ValueError, match=r"parameter 'batch_size' must be .*, got 'big'"):
        MFRouter(batch_size="big").fit(battles)
    with pytest.raises(
        ValueError, match=r"parameter 'lr' must be a number > 0 or one of \['auto'\], got 0"
    ):
        MFRouter(lr=0).fit(battles)
    with pytest.raises(ValueError, match="parameter 'length_features' must be a bool, got 1"):
        MFRouter(length_features=1).fit(battles)  # type: ignore[arg-type]
    # The default pair never played here: refused before any training.
    with pytest.raises(UnknownModelError, match="unknown strong model 'gpt-4-1106-preview'"):
        MFRouter(verbose=False).fit(battles)
    with pytest.raises(ValueError, match="no battles"):
        MFRouter(strong_model=STRONG, weak_model=WEAK, **FAST).fit(Battles.empty())


def test_drop_ties_trains_on_wins_only(battles: Battles, held_out) -> None:
    router = MFRouter(strong_model=STRONG, weak_model=WEAK, tie_handling="drop", **FAST)
    router.fit(battles)
    assert router.n_battles_ == (battles.frame["winner"] != "tie").sum()
    assert _auc(router.strong_win_rate(held_out[0]), held_out[1]) > 0.9


def test_length_features_are_log_lengths() -> None:
    feats = length_features(["", "two words"])
    np.testing.assert_allclose(feats[0], [0.0, 0.0])
    np.testing.assert_allclose(feats[1], [np.log1p(9) / 8, np.log1p(2) / 6], rtol=1e-6)


def test_load_refuses_weights_that_do_not_fit_the_inputs(router: MFRouter, tmp_path: Path) -> None:
    path = router.save(tmp_path / "mf")
    update_config(path, params={**router.get_params(), "length_features": False})
    with pytest.raises(PrefrouteError, match="W1 takes"):
        Router.load(path)


def test_artifacts_saved_before_length_features_still_load(
    battles: Battles, held_out, tmp_path: Path
) -> None:
    old = MFRouter(strong_model=STRONG, weak_model=WEAK, length_features=False, **FAST)
    old.fit(battles)
    path = old.save(tmp_path / "old")
    params = dict(read_config(path).params)
    del params["length_features"]  # as written before the parameter existed
    update_config(path, params=params)
    loaded = Router.load(path)
    assert loaded.length_features is False
    np.testing.assert_array_equal(
        loaded.strong_win_rate(held_out[0]), old.strong_win_rate(held_out[0])
    )


def _as_format_1(path: Path) -> None:
    """Rewrite an artifact's router.json the way prefroute main (format 1, 517947b) wrote
    it: ``Router.save(extra={"training_data": ..., "calibration": ...})`` from ``train``."""
    new = json.loads((path / "router.json").read_text())
    old = {
        "format_version": 1,
        "kind": new["kind"],
        "params": new["params"],
        "state": new["state"],
        "prefroute_version": "0.1.0",
        "embedder": new["embedder"],
        "training_data": {
            "fingerprint": "2fed41fa2579b51db521bedd0d9691ffe9b7ba6ec8b33b61f89d4780a04295ee",
            "battles": 1234,
            "decontaminated": {"alpaca-eval": 633},
            "mmlu_gold_slice": ["mmlu/abstract_algebra/12"],
            "fit_seconds": 8.47,
        },
        "calibration": {
            "prompts": "shipped real Chatbot Arena prompts",
            "n_prompts": 1970,
            "thresholds": {str(p): 1 - p / 100 for p in range(101)},
        },
    }
    (path / "router.json").write_text(json.dumps(old, indent=2, sort_keys=True) + "\n")


def test_format_1_artifacts_load_and_score_the_same(router: MFRouter, held_out, tmp_path) -> None:
    path = router.save(tmp_path / "mf")
    _as_format_1(path)
    loaded = Router.load(path)
    np.testing.assert_array_equal(
        loaded.strong_win_rate(held_out[0]), router.strong_win_rate(held_out[0])
    )
    assert loaded.training_data_.gold_slice_ids == ("mmlu/abstract_algebra/12",)
    assert loaded.training_data_.turns is None and loaded.threshold_for_share(0.2) == 0.8


def test_load_refuses_an_embedder_that_differs(router: MFRouter, tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    path = router.save(tmp_path / "mf")
    good = (path / "router.json").read_text()
    config = json.loads(good)
    config["embedder"]["dim"] = 128
    (path / "router.json").write_text(json.dumps(config))
    with pytest.raises(PrefrouteError, match=r"trained with embedder 'static' \(dim 128\)"):
        Router.load(path)
    (path / "router.json").write_text(good)
    # Other vectors under the same spec (a replaced or damaged embedder/): the fingerprint.
    weights = path / "embedder" / "model.safetensors"
    tensors = load_file(str(weights))
    tensors["embeddings"][100] *= 2
    save_file(tensors, str(weights))
    with pytest.raises(PrefrouteError, match=r"\(fingerprint [0-9a-f]{64}\).*has fingerprint"):
        Router.load(path)


def test_auto_settings_follow_the_data_size() -> None:
    """The shipped recipe (2.8M battles, 26k prompts) keeps the paper's settings; a user's
    300 rows get small batches, many epochs, a larger step and weight decay."""
    recipe = resolve_schedule(2_836_598, 26_217)
    assert recipe == {"batch_size": 8192, "epochs": 10, "lr": 3e-4, "weight_decay": 0.0}
    small = resolve_schedule(300, 300)
    assert small == {"batch_size": 64, "epochs": 100, "lr": 3e-3, "weight_decay": 1e-2}
    middle = resolve_schedule(300_000, 3_000)
    assert middle["batch_size"] == 3000 and 10 <= middle["epochs"] < 100
    assert resolve_schedule(300, 300, epochs=7, lr=0.1)["epochs"] == 7  # given values stay


def test_small_data_trains_with_the_defaults(battles: Battles, held_out) -> None:
    """With the paper's settings 300 prompts make a handful of steps and every score stays
    near 0.5; the "auto" defaults learn, and record the values they resolved to."""
    few = Battles(battles.frame.filter(pl.col("model_a").is_in([STRONG, WEAK])))
    paper = {"batch_size": 8192, "epochs": 10, "lr": 3e-4, "weight_decay": 0.0}
    stuck = MFRouter(strong_model=STRONG, weak_model=WEAK, verbose=False, **paper).fit(few)
    spread = np.ptp(stuck.strong_win_rate(held_out[0]))
    assert spread < 0.02, spread
    router = MFRouter(strong_model=STRONG, weak_model=WEAK, verbose=False).fit(few)
    assert router.schedule_ == resolve_schedule(len(few), 2 * N_TRAIN)
    assert router.get_params()["epochs"] == "auto"
    assert _auc(router.strong_win_rate(held_out[0]), held_out[1]) > 0.9


def test_validation_stops_early_and_keeps_the_best_epoch(
    battles: Battles, prompts: dict[str, list[str]], tmp_path: Path
) -> None:
    """Validation battles on other prompts: the fit stops ``patience`` epochs after the
    best validation loss and returns that epoch's weights, and the artifact keeps it."""
    math = set(prompts["math"][: N_TRAIN // 3]) | set(prompts["other"][: N_TRAIN // 3])
    held = battles.filter(pl.col("prompt").is_in(sorted(math)))
    fit = battles.filter(~pl.col("prompt").is_in(sorted(math)))
    params = {**FAST, "epochs": 200, "weight_decay": 0.0, "patience": 3}
    router = MFRouter(strong_model=STRONG, weak_model=WEAK, **params).fit(fit, validation=held)
    losses = router.validation_loss_history_
    assert len(losses) == len(router.loss_history_) < 200  # stopped early
    assert router.best_epoch_ == int(np.argmin(losses)) + 1 == len(losses) - 3
    # the weights are the best epoch's: its validation loss, recomputed from the arrays
    again = MFRouter(
        strong_model=STRONG, weak_model=WEAK, **{**params, "epochs": router.best_epoch_}
    ).fit(fit, validation=held)
    np.testing.assert_array_equal(again.w1_, router.w1_)
    loaded = Router.load(router.save(tmp_path / "mf"))
    assert loaded.best_epoch_ == router.best_epoch_
    assert loaded.schedule_ == router.schedule_
