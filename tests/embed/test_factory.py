"""get_embedder: spec parsing, default caching, and what loading imports."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from prefroute.embed import (
    DEFAULT_SPEC,
    CachedEmbedder,
    MiniLMEmbedder,
    StaticEmbedder,
    get_embedder,
)
from prefroute.errors import EmbedderError


@pytest.mark.parametrize("spec", ["bogus", "minilm:onnx-int4", "api:", "static:", "", "Static"])
def test_bad_spec_lists_the_valid_ones(spec):
    with pytest.raises(EmbedderError) as info:
        get_embedder(spec)
    message = str(info.value)
    assert f"unknown embedder spec {spec!r}" in message
    for valid in ("static:<model2vec dir or hub name>", "minilm:onnx-int8", "api:<model>"):
        assert valid in message


def test_default_spec_is_static_and_uncached(static_embedder):
    assert DEFAULT_SPEC == "static"
    emb = get_embedder()
    assert isinstance(emb, StaticEmbedder) and emb.spec == "static"
    assert isinstance(get_embedder("static", cache=True), CachedEmbedder)


def test_minilm_is_cached_by_default(minilm_int8, embed_cache_root, tmp_path):
    emb = get_embedder("minilm", cache_dir=embed_cache_root)
    assert isinstance(emb, CachedEmbedder) and emb.spec == "minilm:onnx-int8"
    assert emb.path.parent == embed_cache_root / "vectors"
    raw = get_embedder("minilm:onnx-fp32", cache_dir=embed_cache_root, cache=False)
    assert isinstance(raw, MiniLMEmbedder) and raw.spec == "minilm:onnx-fp32"


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def test_import_is_light():
    done = run_python(
        """
        import sys
        import prefroute.embed
        heavy = {"torch", "transformers", "model2vec", "onnxruntime", "httpx"} & set(sys.modules)
        assert not heavy, heavy
        """
    )
    assert done.returncode == 0, done.stderr


def test_built_models_load_and_encode_without_torch(static_embedder, minilm_int8, embed_cache_root):
    done = run_python(
        f"""
        import sys
        from prefroute.embed import get_embedder
        s = get_embedder("static", cache_dir={str(embed_cache_root)!r})
        m = get_embedder("minilm", cache_dir={str(embed_cache_root)!r}, cache=False)
        assert s.encode(["route me"]).shape == (1, 256)
        assert m.encode(["route me"]).shape == (1, 384)
        for name in ("torch", "transformers", "sentence_transformers"):
            assert name not in sys.modules, name
        """
    )
    assert done.returncode == 0, done.stderr


def test_without_torch_building_says_how_to_fix(static_embedder, tmp_path):
    saved = static_embedder.save(tmp_path / "artifact" / "embedder")
    done = run_python(
        f"""
        import sys
        sys.modules["torch"] = None  # as if torch were not installed
        from prefroute.embed import get_embedder
        from prefroute.errors import EmbedderError
        for spec in ("static", "minilm"):
            try:
                get_embedder(spec, cache_dir={str(tmp_path / "empty")!r})
            except EmbedderError as exc:
                print(spec, "|", exc)
            else:
                raise SystemExit(spec + " built without torch?")
        emb = get_embedder("static:" + {str(saved)!r})
        print("saved", "|", emb.spec, emb.encode(["still routes"]).shape)
        """
    )
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(" | ", 1) for line in done.stdout.strip().splitlines())
    assert "pip install 'prefroute[train]'" in lines["static"]
    assert "static:<dir>" in lines["static"]
    assert "pip install 'prefroute[train]'" in lines["minilm"]
    assert lines["saved"] == "static (1, 256)"
