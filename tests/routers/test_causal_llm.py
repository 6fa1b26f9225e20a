"""The causal-LLM router: SmolLM2 read at its answer token, a tiny real fit, torch-free routing.

Same real-data pattern as the classifier tests (MATH problems won by the strong
model, short chat instructions by the weak one). To stay fast on 2 CPU cores
the LM keeps only its first 2 decoder layers (``num_layers=2``); the default
16 and the full 30 layers take the same code path.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_classifier import auc, math_vs_chat, pair_battles

from prefroute.data.labels import LABELS
from prefroute.errors import InvalidParameterError, NotFittedError
from prefroute.onnx_models import LLAMA_FFN_OUTPUT
from prefroute.routers.base import DEFAULT_STRONG, DEFAULT_WEAK, Router
from prefroute.routers.causal_llm import SMOLLM2_LAYERS, CausalLLMRouter, base_model_dir
from prefroute.routers.onnx_head import SEPARATOR

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gguf", reason="transformers needs gguf to read SmolLM2's GGUF file")


@pytest.fixture(scope="module")
def prompts(data_dir: Path) -> dict[str, list[str]]:
    return math_vs_chat(data_dir, n_train=100, n_test=25)


@pytest.fixture(scope="module")
def fitted(prompts: dict[str, list[str]]) -> CausalLLMRouter:
    router = CausalLLMRouter(
        num_layers=2,
        train_layers=2,
        max_length=32,
        tail_length=8,
        batch_size=8,
        lr=3e-4,
        quantize=False,
        random_state=0,
    )
    return router.fit(pair_battles(prompts["math"], prompts["chat"]))


@pytest.fixture(scope="module")
def held_out(prompts: dict[str, list[str]]) -> list[str]:
    return prompts["math_test"] + prompts["chat_test"]


def test_unfitted_router_refuses() -> None:
    with pytest.raises(NotFittedError, match="fit"):
        CausalLLMRouter().strong_win_rate(["Hello!"])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"num_layers": 31}, r"'num_layers' must be None or an int in \[1, 30\]"),
        ({"num_layers": 0}, r"'num_layers' must be an int >= 1 or None, got 0"),
        (
            {"num_layers": 4, "train_layers": 5},
            r"'train_layers' must be None or an int in \[0, 4\]",
        ),
        ({"num_layers": None, "train_layers": 31}, r"'train_layers' .* \[0, 30\]"),
        ({"base_model": 3}, r"'base_model' must be a str, got 3"),
    ],
)
def test_layer_counts_are_checked_before_any_model_loads(params, message, monkeypatch) -> None:
    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded before the parameters were checked")

    monkeypatch.setattr(CausalLLMRouter, "_build", no_model)
    battles = pair_battles(["What is 2 + 2?"], ["hi"])
    with pytest.raises(InvalidParameterError, match=r"^CausalLLMRouter: parameter " + message):
        CausalLLMRouter(**params).fit(battles)


def test_a_local_base_models_depth_comes_from_its_config(tmp_path, monkeypatch) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"num_hidden_layers": 3}))
    (tmp_path / "tokenizer.json").write_text("{}")
    monkeypatch.setattr(CausalLLMRouter, "_build", lambda *a: pytest.fail("model loaded"))
    battles = pair_battles(["What is 2 + 2?"], ["hi"])
    router = CausalLLMRouter(base_model=str(tmp_path), num_layers=4)
    with pytest.raises(InvalidParameterError, match=r"in \[1, 3\] .* has 3 decoder layers"):
        router.fit(battles)
    with pytest.raises(InvalidParameterError, match="expected 'smollm2' or a local"):
        CausalLLMRouter(base_model=str(tmp_path / "missing")).fit(battles)
    # the constant that spares dequantising SmolLM2 just to count its layers is its depth
    config = json.loads((base_model_dir() / "config.json").read_text())
    assert config["num_hidden_layers"] == SMOLLM2_LAYERS


def test_prompt_is_framed_in_the_chat_template_and_labels_are_single_tokens(fitted) -> None:
    tokenizer = fitted.head_._tokenizer
    framing = fitted.framing_
    text = tokenizer.decode([*framing.prefix_ids, *framing.suffix_ids], skip_special_tokens=False)
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n")
    assert list(fitted.training_["label_tokens"]) == list(LABELS)
    long = "first " + "word " * 500 + "last"
    (ids,) = framing.encode(tokenizer, [long])
    separator = tokenizer.encode(SEPARATOR, add_special_tokens=False).ids
    assert len(ids) == len(framing.prefix_ids) + 24 + len(separator) + 8 + len(framing.suffix_ids)
    query = tokenizer.decode(ids[len(framing.prefix_ids) : -len(framing.suffix_ids)])
    assert query.startswith("first word") and query.endswith("word word" + " last")
    assert SEPARATOR.strip() in query


def test_held_out_math_scores_above_held_out_chat(fitted, prompts) -> None:
    math = fitted.strong_win_rate(prompts["math_test"])
    chat = fitted.strong_win_rate(prompts["chat_test"])
    assert auc(math, chat) > 0.85
    assert math.mean() > chat.mean()


def test_scores_batching_and_save_load(fitted, held_out, tmp_path) -> None:
    scores = fitted.strong_win_rate(held_out)
    assert scores.dtype == np.float32 and scores.min() >= 0.0 and scores.max() <= 1.0
    # right padding + reading each row's last real token: batches score as singles
    one_by_one = np.concatenate([fitted.strong_win_rate([p]) for p in held_out])
    np.testing.assert_allclose(scores, one_by_one, atol=1e-5)
    routed = fitted.route(held_out, 0.5)
    assert routed == np.where(scores >= 0.5, DEFAULT_STRONG, DEFAULT_WEAK).tolist()

    path = fitted.save(tmp_path / "art")
    assert {p.name for p in path.iterdir()} == {"router.json", "causal_llm.onnx", "tokenizer.json"}
    loaded = Router.load(path)
    assert isinstance(loaded, CausalLLMRouter)
    np.testing.assert_array_equal(loaded.strong_win_rate(held_out), scores)

    code = (
        "import json, sys\n"
        "sys.modules['torch'] = None; sys.modules['transformers'] = None\n"
        "from prefroute.routers.base import Router\n"
        f"router = Router.load({str(path)!r})\n"
        f"print(json.dumps(router.strong_win_rate({held_out!r}).tolist()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    np.testing.assert_allclose(json.loads(out.stdout), scores, atol=1e-6)


def test_int8_would_keep_each_layers_feed_forward_output_in_fp32(fitted) -> None:
    """The fp32 graph's node names are what ``LLAMA_FFN_OUTPUT`` must find, once per layer."""
    import onnx

    graph = onnx.load(str(fitted.head_.model_path), load_external_data=False).graph
    kept = [n.name for n in graph.node if n.op_type == "MatMul" and LLAMA_FFN_OUTPUT.search(n.name)]
    assert len(kept) == fitted.training_["layers"] == 2
