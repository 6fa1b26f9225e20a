"""The router contract.

A router estimates, per prompt, the probability that the strong model's
answer beats the weak model's; ``route`` compares that with a threshold.
Shaped like a scikit-learn estimator: the constructor stores plain
hyper-parameters, each class declares what they may be
(``_parameter_constraints``, checked at the top of ``fit``), ``fit`` learns
attributes ending in ``_``. ``save`` / ``load`` write and read the artifact
directory described in ``prefroute.routers.artifact``.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from prefroute.data.model_names import DEFAULT_STRONG, DEFAULT_WEAK
from prefroute.errors import (
    ArtifactError,
    BinaryOnlyError,
    InvalidParameterError,
    NotFittedError,
    UnknownModelError,
)
from prefroute.routers.artifact import (
    ArtifactConfig,
    Calibration,
    EmbedderInfo,
    Layout,
    Models,
    OperatingPoint,
    TrainingData,
    package_version,
    read_arrays,
    read_config,
    write_arrays,
    write_config,
)
from prefroute.routers.params import Constraint, Interval, check_params

if TYPE_CHECKING:
    from prefroute.data.schema import Battles
    from prefroute.embed import Embedder


ParameterTable = Mapping[str, Sequence[Constraint | type | None]]

_PAIR_BLOCK = 1 << 22
"""Pairwise win chances computed at once by ``win_rate_quality`` (32 MB of float64):
30 candidates take 4,660 prompts a block, 268 (every Arena model) 58."""


class Router(ABC):
    """P(strong beats weak | prompt), batched; subclasses set ``kind`` and implement
    ``fit``, ``strong_win_rate`` and the array round trip."""

    kind: ClassVar[str]
    added_params: ClassVar[dict[str, Any]] = {}
    """Hyper-parameters added after artifacts of this kind were first saved, with
    the value that reproduces those older artifacts; ``load`` fills them in."""
    _parameter_constraints: ClassVar[ParameterTable] = {
        "strong_model": [str],
        "weak_model": [str],
        "random_state": [Interval(int, None, None), None],
    }
    """What each constructor parameter accepts; each class declares its own, on top of
    its bases' (see ``prefroute.routers.params``)."""
    calibration_: Calibration
    """Set by ``prefroute.calibrate`` (or ``load``): absent until calibrated."""
    training_data_: TrainingData
    """Where the training data came from, set by ``prefroute train`` (or ``load``);
    saved with the router so a copied artifact still says what it was trained on."""
    operating_points_: tuple[OperatingPoint, ...]
    """Calibrated choices among N models (``prefroute.calibrate``), by name; absent until
    calibrated. They name their candidates, so they survive ``retarget``."""

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
    @classmethod
    def _param_defaults(cls) -> dict[str, Any]:
        """Constructor parameters and their defaults, read from the signatures (MRO order)."""
        return dict(_signature_defaults(cls))

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, read back from the signature (as scikit-learn does)."""
        return {name: getattr(self, name) for name in self._param_defaults()}

    def __repr__(self) -> str:
        """``MFRouter(dim=64)``: the parameters that differ from their defaults, as scikit-learn."""
        defaults = self._param_defaults()
        changed = [
            f"{name}={value!r}"
            for name, value in self.get_params().items()
            if not _same(value, defaults[name])
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    @classmethod
    def _constraints(cls) -> dict[str, Sequence[Constraint | type | None]]:
        """Every declared constraint, the class's own over its bases'."""
        table: dict[str, Sequence[Constraint | type | None]] = {}
        for klass in reversed(cls.__mro__):
            table.update(vars(klass).get("_parameter_constraints", {}))
        return table

    def _validate_params(self) -> None:
        """Refuse a hyper-parameter outside its declared constraints, naming it.

        ``InvalidParameterError`` (a ``ValueError``): ``MFRouter: parameter 'dim' must be
        an int >= 1, got 0``.
        """
        check_params(type(self).__name__, self.get_params(), self._constraints())

    def _begin_fit(self) -> None:
        """The start of every ``fit``: check the parameters, then forget the calibration
        and training-data record of an earlier fit or load, which describe other scores."""
        self._validate_params()
        for name in ("calibration_", "training_data_", "operating_points_"):
            self.__dict__.pop(name, None)

    @abstractmethod
    def fit(self, battles: Battles) -> Router:
        """Learn from battles; returns self."""

    @abstractmethod
    def strong_win_rate(self, prompts: Sequence[str]) -> np.ndarray:
        """One float32 in [0, 1] per prompt: the chance the strong model's answer wins."""

    per_model_quality: ClassVar[bool] = False
    """Whether ``model_quality`` works: the kind learns something per model (``models_``)."""

    shipped_mix_note: ClassVar[str | None] = None
    """What was measured when this kind fits a user's files mixed with the shipped data,
    if it is worth a word: ``prefroute train`` prints it then, so nobody finds out later."""

    def model_quality(
        self, prompts: Sequence[str], models: Sequence[str] | None = None
    ) -> np.ndarray:
        """(n_prompts, n_models) float64: each candidate model's expected quality per prompt.

        One batched call; columns follow ``models`` (default: every model the
        router learned, ``models_``). Qualities are in [0, 1], higher is better,
        and their differences are win-rate differences: for ``models=[strong,
        weak]``, ``strong_win_rate = 1/2 + (q_strong - q_weak) / 2`` (pairwise kinds
        score each model by its mean chance of beating the other candidates,
        ``win_rate_quality``; pointwise kinds predict the score itself, and two
        independent scores make exactly that win rate, ties counted half). So a
        policy (``prefroute.policy``) trades them against cost on one scale,
        and two-model routing is its N = 2 case.

        Kinds that route between their two models only (classifier, causal LLM,
        random) raise ``BinaryOnlyError``.
        """
        raise BinaryOnlyError(self.kind, self.strong_model, self.weak_model)

    def candidate_index(self, models: Sequence[str] | None) -> tuple[list[str], np.ndarray]:
        """The candidates' names and their rows in ``models_``; refuses unknown or repeated
        names (a name is matched as given, then by its canonical spelling)."""
        from prefroute.data.model_names import canonical_name

        if not self.per_model_quality:
            raise BinaryOnlyError(self.kind, self.strong_model, self.weak_model)
        self.check_is_fitted()
        learned: list[str] = list(self.models_)  # type: ignore[attr-defined]
        if models is None:
            return learned, np.arange(len(learned))
        if isinstance(models, str):
            raise InvalidParameterError(
                f"models must be a list of model names, got the string {models!r}"
            )
        index = {m: i for i, m in enumerate(learned)}
        names = []
        for name in models:
            known = name if name in index else canonical_name(name)
            if known not in index:
                raise unknown_model(name, learned)
            names.append(known)
        if not names:
            raise InvalidParameterError("no candidate models: give at least one")
        if len(set(names)) != len(names):
            raise InvalidParameterError(f"candidate models repeat: {names}")
        return names, np.array([index[n] for n in names], dtype=np.int64)

    def route(self, prompts: Sequence[str], threshold: float) -> list[str]:
        """The model to call for each prompt: strong where the score reaches ``threshold``."""
        scores = self.strong_win_rate(prompts)
        return np.where(scores >= threshold, self.strong_model, self.weak_model).tolist()

    def retarget(self, strong_model: str, weak_model: str) -> Router:
        """A copy routing between another pair of models seen in training; no refit.

        The copy shares the learned arrays and saves as an artifact for the new
        pair, without the calibration (its thresholds were measured on the old
        pair's scores). Only routers that learn per-model parameters (``models_``:
        MF, SW ranking) can: for any other kind (random, classifier, causal LLM)
        the scores would be the old pair's under a new name, so asking for another
        pair raises ``UnknownModelError`` rather than hand back a renamed copy.
        """
        self.check_is_fitted()
        if hasattr(self, "models_"):
            check_pair(strong_model, weak_model, self.models_)
        elif (strong_model, weak_model) != (self.strong_model, self.weak_model):
            raise UnknownModelError(
                f"a {self.kind} router cannot retarget to {strong_model} vs {weak_model}: it "
                "learned no per-model parameters, so its scores would be its own pair's under "
                "new names; train one for this pair, or use mf or sw_ranking, which retarget"
            )
        other = copy.copy(self)
        other.strong_model, other.weak_model = strong_model, weak_model
        other.__dict__.pop("calibration_", None)
        return other

    def threshold_for_share(self, share: float) -> float:
        """The calibrated threshold sending ``share`` (0-1) of calls to the strong model.

        Read from the artifact's calibration table (whole percents); see
        ``prefroute calibrate``.
        """
        calibration = getattr(self, "calibration_", None)
        if calibration is None:
            raise ArtifactError(
                f"this {self.kind} router has no calibration, so a share means nothing yet "
                "(refitting or retargeting drops the old one: its thresholds were measured "
                "on other scores); run `prefroute calibrate DIR` on the artifact first"
            )
        return calibration.threshold_for_share(share)

    def operating_point(self, name: str) -> OperatingPoint:
        """The calibrated N-model operating point called ``name`` (``prefroute calibrate
        DIR --models ...``)."""
        points = {p.name: p for p in getattr(self, "operating_points_", ())}
        if name not in points:
            known = ", ".join(sorted(points)) or "none yet"
            raise ArtifactError(
                f"no operating point {name!r} in this router (it has: {known}); calibrate one "
                "with `prefroute calibrate DIR --models a,b,c --budget B --name NAME`"
            )
        return points[name]

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

    def save(self, path: str | Path) -> Path:
        """Write the artifact directory, its calibration and training-data record included."""
        self.check_is_fitted()
        layout = Layout(Path(path))
        layout.root.mkdir(parents=True, exist_ok=True)
        embedder = self._save_embedder(layout)
        write_arrays(layout, self._arrays())
        config = ArtifactConfig(
            kind=self.kind,
            params=self.get_params(),
            state=self._state(),
            models=Models(strong=self.strong_model, weak=self.weak_model),
            prefroute_version=package_version(),
            embedder=embedder,
            training_data=getattr(self, "training_data_", None),
            calibration=getattr(self, "calibration_", None),
            operating_points=getattr(self, "operating_points_", ()),
        )
        write_config(layout.root, config)
        return layout.root

    def _save_embedder(self, layout: Layout) -> EmbedderInfo | None:
        """Hook: write the embedder into the artifact, return what identifies it."""
        return None

    def _load_embedder(self, info: EmbedderInfo | None, layout: Layout) -> None:
        """Hook: rebuild the embedder the artifact was trained with, or refuse."""
        return None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Router:
        """Load any router artifact; needs neither torch nor the training data."""
        config = read_config(path)
        router = cls._construct(config, Path(path))
        layout = Layout(Path(path))
        arrays = read_arrays(layout)
        router._load_embedder(config.embedder, layout)
        router._restore(arrays, dict(config.state), layout.root)
        if config.training_data is not None:
            router.training_data_ = config.training_data
        if config.calibration is not None:
            router.calibration_ = config.calibration
        if config.operating_points:
            router.operating_points_ = config.operating_points
        return router

    @classmethod
    def _construct(cls, config: ArtifactConfig, path: Path) -> Router:
        """The unfitted router a config describes, refusing one of another class."""
        from prefroute.routers.registry import router_class

        router_cls = router_class(config.kind)
        if cls is not Router and not issubclass(router_cls, cls):
            raise ArtifactError(f"{path} holds a {config.kind!r} router, not a {cls.kind!r}")
        params = {**router_cls.added_params, **config.params}
        unknown = sorted(set(params) - set(router_cls._param_defaults()))
        if unknown:
            raise ArtifactError(
                f"{path}: router.json sets {unknown}, which {router_cls.__name__} does not "
                "take (written by a newer prefroute?); retrain with this version"
            )
        router = router_cls(**params)
        pair = Models(strong=router.strong_model, weak=router.weak_model)
        if pair != config.models:
            raise ArtifactError(
                f"{path}: router.json's models {config.models} disagree with its params "
                f"{pair}; the artifact is damaged"
            )
        return router


class EmbeddingRouter(Router):
    """A router that scores prompts from their embeddings.

    The embedder is part of the model: the artifact carries it when it can
    (the static model, a few MB) and records spec, dimension and fingerprint,
    so loading refuses an embedder that would give different vectors.
    """

    _parameter_constraints: ClassVar[ParameterTable] = {"embedder": [str]}

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

    def _save_embedder(self, layout: Layout) -> EmbedderInfo:
        save = getattr(self.embedder_, "save", None)
        if save is not None:
            save(layout.embedder)
        return EmbedderInfo(
            spec=self.embedder_.spec,
            dim=self.embedder_.dim,
            fingerprint=getattr(self.embedder_, "fingerprint", None),
            path=layout.embedder.name if save is not None else None,
        )

    def _load_embedder(self, info: EmbedderInfo | None, layout: Layout) -> None:
        from prefroute.embed import get_embedder

        if info is None:
            raise ArtifactError(f"{layout.config}: no 'embedder' entry; the artifact is damaged")
        embedder = get_embedder(f"static:{layout.root / info.path}" if info.path else info.spec)
        found = {"dim": embedder.dim, "fingerprint": getattr(embedder, "fingerprint", None)}
        for key, value in found.items():
            recorded = getattr(info, key)
            if recorded is not None and recorded != value:
                raise ArtifactError(
                    f"{layout.root}: trained with embedder {info.spec!r} ({key} "
                    f"{recorded}), but {embedder.spec!r} here has {key} {value}; route with "
                    "the embedder the router was trained with, or retrain"
                )
        self.embedder_ = embedder


def check_pair(strong: str, weak: str, models: Sequence[str]) -> None:
    """Refuse a pair a router has learned nothing for, naming the closest known models."""
    known = set(models)
    for role, name in (("strong", strong), ("weak", weak)):
        if name not in known:
            raise unknown_model(name, models, role)
    if strong == weak:
        raise InvalidParameterError(
            f"strong and weak model are both {strong!r}; pick two different models"
        )


def win_rate_quality(strength: np.ndarray) -> np.ndarray:
    """Each candidate's mean chance of beating each other candidate, from Bradley-Terry
    strengths ``(n_prompts, n_models)`` (logit scale): ``mean_{k != m} σ(s_m - s_k)``.

    The quality of pairwise kinds (MF, SW ranking): a comparable [0, 1] number per
    model, and for two candidates ``1/2 + (q_s - q_w) / 2 = σ(s_s - s_w)``, exactly
    their ``strong_win_rate``. A single candidate has nothing to beat: 1/2.
    """
    s = np.asarray(strength, dtype=np.float64)
    n_models = s.shape[1]
    if n_models == 1:
        return np.full(s.shape, 0.5)
    out = np.empty(s.shape)
    step = max(1, _PAIR_BLOCK // (n_models * n_models))  # bounds the (step, N, N) block
    for start in range(0, len(s), step):
        block = s[start : start + step]
        wins = 0.5 + 0.5 * np.tanh(0.5 * (block[:, :, None] - block[:, None, :]))  # σ
        out[start : start + step] = (wins.sum(axis=2) - 0.5) / (n_models - 1)
    return out


def unknown_model(name: str, models: Sequence[str], role: str = "") -> UnknownModelError:
    """The error for a model a router has learned nothing for, naming the closest it knows."""
    # Dated releases first ('gpt-4o' -> 'gpt-4o-2024-08-06'): string similarity
    # alone ranks 'gpt-4' and 'gpt-4o-mini' above them.
    dated = sorted((m for m in models if re.match(rf"{re.escape(name)}-\d", m)), reverse=True)
    similar = difflib.get_close_matches(name, models, n=3, cutoff=0.5)
    close = list(dict.fromkeys([*dated, *similar]))[:4]
    hint = f"; closest: {', '.join(close)}" if close else ""
    return UnknownModelError(
        f"unknown {role + ' ' if role else ''}model {name!r}: the router has learned "
        f"{len(models)} models{hint}. Pick from them (router.models_), or refit on data "
        f"that includes {name!r}"
    )


@cache
def _signature_defaults(cls: type) -> tuple[tuple[str, Any], ...]:
    """Keyword-only ``__init__`` parameters over the MRO, once per class (SW ranking
    checks its parameters on every call)."""
    defaults: dict[str, Any] = {}
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            for p in inspect.signature(vars(klass)["__init__"]).parameters.values():
                if p.kind == p.KEYWORD_ONLY:
                    defaults.setdefault(p.name, p.default)
    return tuple(defaults.items())


def _same(value: Any, default: Any) -> bool:
    """Whether a parameter still has its default (``is`` first: NaN and odd ``__eq__``)."""
    if value is default:
        return True
    try:
        return bool(value == default) and type(value) is type(default)
    except Exception:  # an __eq__ that raises or returns an array: not the default
        return False
