"""The router contract and its artifact on disk.

A router estimates, per prompt, the probability that the strong model's
answer beats the weak model's; ``route`` compares that with a threshold.
Shaped like a scikit-learn estimator: the constructor stores plain
hyper-parameters, ``fit`` learns attributes ending in ``_``.

An artifact is a directory::

    router.json          format version, kind, params, models, embedder, data, calibration
    weights.safetensors  the learned arrays (numpy in, numpy out: no torch to load)
    embedder/            the static embedder, when the router uses one, so a copied
                         artifact routes on a machine that never downloaded anything
"""

from __future__ import annotations

import copy
import difflib
import inspect
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from prefroute.data.model_names import DEFAULT_STRONG, DEFAULT_WEAK
from prefroute.data.schema import Battles
from prefroute.embed import Embedder
from prefroute.errors import (
    ArtifactError,
    InvalidParameterError,
    NotFittedError,
    UnknownModelError,
)

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Layout:
    """File names inside an artifact directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "router.json"

    @property
    def weights(self) -> Path:
        return self.root / "weights.safetensors"

    @property
    def embedder(self) -> Path:
        return self.root / "embedder"


class Router(ABC):
    """P(strong beats weak | prompt), batched; subclasses set ``kind`` and implement
    ``fit``, ``strong_win_rate`` and the array round trip."""

    kind: ClassVar[str]
    added_params: ClassVar[dict[str, Any]] = {}
    """Hyper-parameters added after artifacts of this kind were first saved, with
    the value that reproduces those older artifacts; ``load`` fills them in."""
    calibration_: dict[str, Any]
    """Set by ``prefroute.calibrate`` (or ``load``): absent until calibrated."""

    def __init__(
        self,
        *,
        strong_model: str = DEFAULT_STRONG,
        weak_model: str = DEFAULT_WEAK,
        random_state: int | None = 0,
    ) -> None:
        self.strong_model = strong_model
        self.weak_model = weak_model
        self.random_state = random_state

    # ------------------------------------------------------------ estimator API
    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, read back from the signature (as scikit-learn does)."""
        names = [
            p.name
            for cls in type(self).__mro__
            if "__init__" in vars(cls)
            for p in inspect.signature(vars(cls)["__init__"]).parameters.values()
            if p.kind == p.KEYWORD_ONLY
        ]
        return {name: getattr(self, name) for name in dict.fromkeys(names)}

    @abstractmethod
    def fit(self, battles: Battles) -> Router:
        """Learn from battles; returns self."""

    @abstractmethod
    def strong_win_rate(self, prompts: Sequence[str]) -> np.ndarray:
        """One float32 in [0, 1] per prompt: the chance the strong model's answer wins."""

    def route(self, prompts: Sequence[str], threshold: float) -> list[str]:
        """The model to call for each prompt: strong where the score reaches ``threshold``."""
        scores = self.strong_win_rate(prompts)
        return np.where(scores >= threshold, self.strong_model, self.weak_model).tolist()

    def retarget(self, strong_model: str, weak_model: str) -> Router:
        """A copy routing between another pair of models seen in training; no refit.

        The copy shares the learned arrays and saves as an artifact for the new
        pair. Routers that learn per-model parameters (``models_``) check the pair.
        """
        self.check_is_fitted()
        if hasattr(self, "models_"):
            check_pair(strong_model, weak_model, self.models_)
        other = copy.copy(self)
        other.strong_model, other.weak_model = strong_model, weak_model
        return other

    def threshold_for_share(self, share: float) -> float:
        """The calibrated threshold sending ``share`` (0-1) of calls to the strong model.

        Read from the artifact's calibration table (whole percents); see
        ``prefroute calibrate``.
        """
        table = getattr(self, "calibration_", None)
        if not table:
            raise ArtifactError(
                "this router has no calibration; run `prefroute calibrate DIR` first"
            )
        if not 0.0 <= share <= 1.0:
            raise InvalidParameterError(f"strong share must be in [0, 1], got {share}")
        return float(table["thresholds"][str(round(share * 100))])

    def check_is_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(battles) first"
            )

    @property
    def is_fitted(self) -> bool:
        return any(k.endswith("_") and not k.startswith("_") for k in vars(self))

    # ------------------------------------------------------------- persistence
    def _arrays(self) -> dict[str, np.ndarray]:
        """Learned arrays to store in safetensors; routers with none return {}."""
        return {}

    def _state(self) -> dict[str, Any]:
        """Learned JSON-able values (not arrays) to store in router.json."""
        return {}

    @abstractmethod
    def _restore(self, arrays: dict[str, np.ndarray], state: dict[str, Any], root: Path) -> None:
        """Set the fitted attributes from what ``_arrays`` and ``_state`` saved."""

    def save(self, path: str | Path, *, extra: dict[str, Any] | None = None) -> Path:
        """Write the artifact directory; ``extra`` adds top-level fields (e.g. calibration)."""
        from safetensors.numpy import save_file

        self.check_is_fitted()
        layout = Layout(Path(path))
        layout.root.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "params": self.get_params(),
            "state": self._state(),
            "prefroute_version": _package_version(),
            **(extra or {}),
        }
        embedder = self._save_embedder(layout)
        if embedder is not None:
            config["embedder"] = embedder
        arrays = {k: np.ascontiguousarray(v) for k, v in self._arrays().items()}
        if arrays:
            save_file(arrays, str(layout.weights))
        layout.config.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        return layout.root

    def _save_embedder(self, layout: Layout) -> dict[str, Any] | None:
        """Hook: write the embedder into the artifact, return what identifies it."""
        return None

    def _load_embedder(self, info: dict[str, Any] | None, layout: Layout) -> None:
        """Hook: rebuild the embedder the artifact was trained with, or refuse."""
        return None

    @staticmethod
    def read_config(path: str | Path) -> dict[str, Any]:
        """router.json of an artifact, after checking it is one this version can load."""
        layout = Layout(Path(path))
        if not layout.config.is_file():
            raise ArtifactError(f"{layout.root} is not a router artifact: no router.json in it")
        try:
            config = json.loads(layout.config.read_text("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ArtifactError(f"{layout.config}: not valid JSON ({exc})") from None
        version = config.get("format_version")
        if version != FORMAT_VERSION:
            raise ArtifactError(
                f"{layout.config}: artifact format version {version!r}, but this prefroute "
                f"({_package_version()}) reads version {FORMAT_VERSION}; retrain the router or "
                "install the prefroute version that wrote it "
                f"({config.get('prefroute_version', 'unknown')})"
            )
        return config

    @classmethod
    def load(cls, path: str | Path) -> Router:
        """Load any router artifact; needs neither torch nor the training data."""
        from prefroute.routers.registry import router_class

        config = cls.read_config(path)
        router_cls = router_class(config.get("kind", "?"))
        if cls is not Router and not issubclass(router_cls, cls):
            raise ArtifactError(f"{path} holds a {config['kind']!r} router, not a {cls.kind!r}")
        router = router_cls(**{**router_cls.added_params, **config.get("params", {})})
        layout = Layout(Path(path))
        arrays: dict[str, np.ndarray] = {}
        if layout.weights.is_file():
            from safetensors.numpy import load_file

            arrays = load_file(str(layout.weights))
        router._load_embedder(config.get("embedder"), layout)
        router._restore(arrays, config.get("state", {}), layout.root)
        if config.get("calibration"):
            router.calibration_ = config["calibration"]
        return router

    @staticmethod
    def update_config(path: str | Path, **fields: Any) -> None:
        """Set top-level fields of an artifact's router.json (e.g. its calibration)."""
        config = Router.read_config(path)
        config.update(fields)
        Layout(Path(path)).config.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


class EmbeddingRouter(Router):
    """A router that scores prompts from their embeddings.

    The embedder is part of the model: the artifact carries it when it can
    (the static model, a few MB) and records spec, dimension and fingerprint,
    so loading refuses an embedder that would give different vectors.
    """

    def __init__(
        self,
        *,
        embedder: str = "static",
        strong_model: str = DEFAULT_STRONG,
        weak_model: str = DEFAULT_WEAK,
        random_state: int | None = 0,
    ) -> None:
        super().__init__(
            strong_model=strong_model, weak_model=weak_model, random_state=random_state
        )
        self.embedder = embedder

    def _fit_embedder(self) -> Embedder:
        """Build the embedder named by ``self.embedder`` (called at the start of ``fit``)."""
        from prefroute.embed import get_embedder

        self.embedder_ = get_embedder(self.embedder)
        return self.embedder_

    def embed(self, prompts: Sequence[str]) -> np.ndarray:
        """The prompts' vectors under the router's own embedder."""
        self.check_is_fitted()
        return self.embedder_.encode(prompts)

    def _save_embedder(self, layout: Layout) -> dict[str, Any]:
        info = {"spec": self.embedder_.spec, "dim": self.embedder_.dim}
        fingerprint = getattr(self.embedder_, "fingerprint", None)
        if fingerprint is not None:
            info["fingerprint"] = fingerprint
        save = getattr(self.embedder_, "save", None)
        if save is not None:
            save(layout.embedder)
            info["path"] = layout.embedder.name
        return info

    def _load_embedder(self, info: dict[str, Any] | None, layout: Layout) -> None:
        from prefroute.embed import get_embedder

        if info is None:
            raise ArtifactError(f"{layout.config}: no 'embedder' entry; the artifact is damaged")
        where = layout.root / info["path"] if "path" in info else None
        embedder = get_embedder(f"static:{where}" if where else info["spec"])
        found = {"dim": embedder.dim, "fingerprint": getattr(embedder, "fingerprint", None)}
        for key, value in found.items():
            if key in info and info[key] != value:
                raise ArtifactError(
                    f"{layout.root}: trained with embedder {info['spec']!r} ({key} "
                    f"{info[key]}), but {embedder.spec!r} here has {key} {value}; route with "
                    "the embedder the router was trained with, or retrain"
                )
        self.embedder_ = embedder


def check_pair(strong: str, weak: str, models: Sequence[str]) -> None:
    """Refuse a pair a router has learned nothing for, naming the closest known models."""
    known = set(models)
    for role, name in (("strong", strong), ("weak", weak)):
        if name not in known:
            close = difflib.get_close_matches(name, models, n=3, cutoff=0.5)
            hint = f"; closest: {', '.join(close)}" if close else ""
            raise UnknownModelError(
                f"unknown {role} model {name!r}: the router has learned {len(models)} "
                f"models{hint}. Pick one of them (router.models_), or refit on battles "
                f"that include {name!r}"
            )
    if strong == weak:
        raise InvalidParameterError(
            f"strong and weak model are both {strong!r}; pick two different models"
        )


def _package_version() -> str:
    from prefroute import __version__

    return __version__
