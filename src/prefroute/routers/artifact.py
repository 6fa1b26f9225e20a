"""A router artifact on disk: the files of its directory and ``router.json`` as one typed config.

An artifact is a directory::

    router.json          ArtifactConfig: format version, kind, hyper-parameters, learned
                         state, models, embedder, training data, calibration, version
    weights.safetensors  the learned arrays (numpy in, numpy out: no torch to load)
    embedder/            the static embedder, when the router uses one, so a copied
                         artifact routes on a machine that never downloaded anything

Everything that reads or writes ``router.json`` goes through this module
(``read_config``, ``update_config``, ``write``), so the file has one shape, checked
field by field on the way in: a damaged or hand-edited file fails with the field
that is wrong, not with a ``KeyError`` somewhere in serving.

Format versions:

- 1 (prefroute 0.1): an untyped dict; ``training_data`` held ``battles``,
  ``decontaminated``, ``mmlu_gold_slice`` and ``fit_seconds``, no turn policy. Still
  read: converted on the way in (``read_config``), never written.
- 2: this module's dataclasses; adds ``models``, ``training_data.turns`` (the turn
  policy the training conversations were read with, which serving follows),
  ``prompts`` and ``source_weights``. Later added, optional (an artifact without
  them reads as before): the own-data record (``training_data.user_files``,
  ``shipped``, ``user_weight``, ``eval_files``, ``notes``, ``resolved_params``,
  ``validation``) and ``operating_points``, calibrated choices among N models
  (``OperatingPoint``).

Standard library only (plus safetensors for the weights), so reading a config
costs a server or ``prefroute serve``'s settings check nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from prefroute.conversation import TURN_POLICIES, Turns
from prefroute.data.account import FileAccount
from prefroute.errors import ArtifactError, InvalidParameterError

if TYPE_CHECKING:
    import numpy as np

FORMAT_VERSION = 2
SHARES = 101
"""A calibration holds one threshold per whole percent of strong calls, 0 to 100."""

T = TypeVar("T")


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


@dataclass(frozen=True)
class Models:
    """The pair the router scores for: P(strong beats weak)."""

    strong: str
    weak: str


@dataclass(frozen=True)
class EmbedderInfo:
    """What identifies the embedder a router was trained with.

    ``fingerprint`` (a hash of the vectors and vocabulary, where the embedder has
    one) and ``dim`` are checked on load; ``path`` is the copy inside the artifact.
    """

    spec: str
    dim: int
    fingerprint: str | None = None
    path: str | None = None


@dataclass(frozen=True)
class ValidationReport:
    """How the router did on the validation split ``train`` held out, beside baselines.

    ``prompts`` validation prompts were scored; ``pair_prompts`` of them have a
    strong-vs-weak outcome (the user's rows: the pair's battles there), which
    APGR (win 1, tie 0.5, loss 0 as quality) and log-loss are computed on.
    ``random_apgr`` is the 5-95% band of a random router's APGR on those prompts;
    ``length_*`` a logistic regression on the prompt's log length fitted on the
    fit's pair battles; ``constant_log_loss`` always predicting the fit's win
    rate. ``score_spread`` is the 5-95% range of the router's scores on the
    validation prompts. ``warning`` says when the router learned nothing.
    """

    prompts: int
    pair_prompts: int
    apgr: float | None = None
    random_apgr: tuple[float, float] | None = None
    length_apgr: float | None = None
    log_loss: float | None = None
    constant_log_loss: float | None = None
    length_log_loss: float | None = None
    score_spread: float | None = None
    warning: str | None = None


@dataclass(frozen=True)
class TrainingData:
    """Where the router's training data came from; every field may be unknown (None).

    ``gold_slice_ids`` are the MMLU questions trained on, which evaluation leaves
    out; ``turns`` the policy conversations were turned into text with, which
    serving follows unless its config says otherwise; ``source_weights`` the weight
    each label source (human / judge / golden) was given; ``decontaminated`` the
    rows removed per data set as copies of evaluation prompts. ``user_files`` says
    what became of every row of the user's files (``FileAccount``); ``shipped``
    whether the shipped data was trained on; ``user_weight`` the share of the
    fit's weight the user's rows carried; ``eval_files`` the files whose prompts
    were removed; ``notes`` the lines ``train`` printed about the data (pair and
    why, gold slice, weights, validation split); ``resolved_params`` the values
    "auto" hyper-parameters took; ``validation`` the validation report.
    """

    fingerprint: str | None = None
    rows: int | None = None
    prompts: int | None = None
    turns: Turns | None = None
    gold_slice_ids: tuple[str, ...] = ()
    source_weights: Mapping[str, float] = field(default_factory=dict)
    decontaminated: Mapping[str, int] = field(default_factory=dict)
    fit_seconds: float | None = None
    shipped: bool | None = None
    user_files: tuple[FileAccount, ...] = ()
    user_weight: float | None = None
    eval_files: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    resolved_params: Mapping[str, Any] = field(default_factory=dict)
    validation: ValidationReport | None = None


TARGET_MEASURES = {"quality": "q", "gap": "pgr"}
"""What a quality target keeps -> its name's prefix: ``q95`` keeps 95% of the strong
model's mean quality, ``pgr80`` recovers 80% of the gap between the two models."""


@dataclass(frozen=True)
class QualityTarget:
    """A threshold chosen on the user's labelled prompts to keep a quality target.

    ``measure`` ``"quality"`` keeps ``target`` of the strong model's mean quality;
    ``"gap"`` recovers ``target`` of the gap between the two (PGR). ``threshold``
    is the cheapest that does so on ``eval_file``'s ``n_prompts`` prompts, where
    it sent ``strong_share`` of them to the strong model and reached ``reached``
    (a quality share or a PGR). Served as ``router-<kind>@<name>%``.
    """

    measure: str
    target: float
    threshold: float
    strong_share: float
    reached: float
    eval_file: str
    n_prompts: int

    def __post_init__(self) -> None:
        if self.measure not in TARGET_MEASURES:
            raise InvalidParameterError(
                f"a quality target's measure is one of {sorted(TARGET_MEASURES)}, "
                f"got {self.measure!r}"
            )
        if not 0.0 < self.target <= 1.0:
            raise InvalidParameterError(f"a quality target is in (0, 1], got {self.target}")

    @property
    def name(self) -> str:
        """``q95`` / ``pgr80``: what follows ``@`` in the served model name."""
        return f"{TARGET_MEASURES[self.measure]}{round(self.target * 100, 6):g}"


@dataclass(frozen=True)
class Calibration:
    """Thresholds for every whole-percent strong share, measured on ``prompts``, and
    the quality targets measured on the user's labelled prompts.

    ``thresholds[p]`` sends p% of the calibration prompts to the strong model;
    ``prompts`` says which prompts they were (``n_prompts`` of them). ``targets``
    are ``prefroute calibrate --quality/--gap-recovered``'s operating points.
    """

    thresholds: tuple[float, ...]
    prompts: str | None = None
    n_prompts: int | None = None
    targets: tuple[QualityTarget, ...] = ()

    def __post_init__(self) -> None:
        if len(self.thresholds) != SHARES:
            raise InvalidParameterError(
                f"a calibration holds {SHARES} thresholds (0..100%), got {len(self.thresholds)}"
            )

    def threshold_for_share(self, share: float) -> float:
        """The threshold sending ``share`` (0-1) of calls to the strong model (whole percents)."""
        if not 0.0 <= share <= 1.0:
            raise InvalidParameterError(f"strong share must be in [0, 1], got {share}")
        return self.thresholds[round(share * 100)]

    def target(self, name: str) -> QualityTarget | None:
        """The stored quality target called ``name`` (``q95``, ``pgr80``), if any."""
        return next((t for t in self.targets if t.name == name), None)


@dataclass(frozen=True)
class OperatingPoint:
    """A calibrated choice among N models: the candidates, their prices, λ and offsets.

    ``prefroute route`` and a server rebuild the policy from it
    (``prefroute.policy.Policy.from_operating_point``) with the prices as they were
    at calibration ($ per 1M input / output tokens, per model), so a copied
    artifact routes as it was measured. A call has ``output_tokens`` output tokens
    and ``input_tokens`` input tokens, or (None) as many as ``prefroute.tokens``
    estimates from the prompt's text. ``target`` says what it was calibrated to; ``prompts`` /
    ``n_prompts`` on what; ``cost_per_1m_tokens``, ``cost_per_1k_requests`` and
    ``shares`` what it gave there.
    """

    name: str
    models: tuple[str, ...]
    lam: float
    input_prices: tuple[float, ...]
    output_prices: tuple[float, ...]
    output_tokens: float
    input_tokens: float | None = None
    offsets: tuple[float, ...] = ()
    target: str | None = None
    prompts: str | None = None
    n_prompts: int | None = None
    cost_per_1m_tokens: float | None = None
    cost_per_1k_requests: float | None = None
    shares: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.models)
        sizes = {len(self.input_prices), len(self.output_prices)} | (
            {len(self.offsets)} if self.offsets else set()
        )
        if not n or sizes != {n}:
            raise InvalidParameterError(
                f"operating point {self.name!r}: {n} models need one input and output price "
                f"(and offset, if any) each, got {len(self.input_prices)}, "
                f"{len(self.output_prices)} and {len(self.offsets)}"
            )


@dataclass(frozen=True)
class ArtifactConfig:
    """``router.json``: everything about an artifact except its arrays.

    ``params`` are the constructor's arguments (``Router.get_params``), ``state``
    the learned values that are not arrays (``Router._state``).
    """

    kind: str
    params: Mapping[str, Any]
    state: Mapping[str, Any]
    models: Models
    prefroute_version: str
    embedder: EmbedderInfo | None = None
    training_data: TrainingData | None = None
    calibration: Calibration | None = None
    operating_points: tuple[OperatingPoint, ...] = ()
    format_version: int = FORMAT_VERSION

    def to_json(self) -> str:
        """The file's text: sorted keys, unknown fields left out rather than null."""
        data = {
            "format_version": self.format_version,
            "kind": self.kind,
            "params": dict(self.params),
            "state": dict(self.state),
            "models": dataclasses.asdict(self.models),
            "prefroute_version": self.prefroute_version,
        }
        if self.embedder is not None:
            data["embedder"] = _without_none(dataclasses.asdict(self.embedder))
        if self.training_data is not None:
            data["training_data"] = _without_none(dataclasses.asdict(self.training_data))
        if self.calibration is not None:
            c = self.calibration
            data["calibration"] = _without_none(
                {
                    "prompts": c.prompts,
                    "n_prompts": c.n_prompts,
                    "thresholds": {str(p): t for p, t in enumerate(c.thresholds)},
                    "targets": {t.name: dataclasses.asdict(t) for t in c.targets},
                }
            )
        if self.operating_points:
            data["operating_points"] = {
                point.name: _without_none(
                    {k: v for k, v in dataclasses.asdict(point).items() if k != "name"}
                )
                for point in self.operating_points
            }
        return json.dumps(data, indent=2, sort_keys=True) + "\n"


# --------------------------------------------------------------------- read / write


def read_config(path: str | os.PathLike[str]) -> ArtifactConfig:
    """The typed ``router.json`` of the artifact at ``path``; format 1 is converted.

    Refuses a directory without one, a file that is not JSON, a format this
    version cannot read (saying how to get one it can) and any field of the
    wrong type (naming it).
    """
    layout = Layout(Path(path))
    if not layout.config.is_file():
        raise ArtifactError(f"{layout.root} is not a router artifact: no router.json in it")
    try:
        raw = json.loads(layout.config.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{layout.config}: not valid JSON ({exc})") from None
    fields = _Fields(raw, layout.config, "")
    version = raw.get("format_version") if isinstance(raw, dict) else None
    if version == 1:
        return _from_format_1(fields)
    if version != FORMAT_VERSION:
        raise ArtifactError(
            f"{layout.config}: artifact format version {version!r}, but this prefroute "
            f"({package_version()}) reads versions 1 and {FORMAT_VERSION}. Retrain the "
            "router with this version (`prefroute train KIND --out DIR`), or install the "
            f"prefroute version that wrote it ({raw.get('prefroute_version', 'unknown')}): "
            f"pip install 'prefroute=={raw.get('prefroute_version', '<version>')}'"
        )
    return _from_format_2(fields)


def write_config(path: str | os.PathLike[str], config: ArtifactConfig) -> Path:
    """Write ``router.json`` (atomically: a reader never sees half a file); its path."""
    target = Layout(Path(path)).config
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(config.to_json(), "utf-8")
    tmp.replace(target)
    return target


def update_config(path: str | os.PathLike[str], **changes: Any) -> ArtifactConfig:
    """Replace fields of an artifact's config (e.g. ``calibration=``); the new config.

    The artifact is read first (so an old format is rewritten as the current one)
    and the result written back whole.
    """
    config = dataclasses.replace(read_config(path), **changes)
    write_config(path, config)
    return config


def write_arrays(layout: Layout, arrays: Mapping[str, np.ndarray]) -> None:
    """The learned arrays as safetensors (contiguous copies where needed); none, no file."""
    if not arrays:
        return
    import numpy as np
    from safetensors.numpy import save_file

    save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(layout.weights))


def read_arrays(layout: Layout) -> dict[str, np.ndarray]:
    """The learned arrays, or {} for an artifact that has none."""
    if not layout.weights.is_file():
        return {}
    from safetensors.numpy import load_file

    try:
        return load_file(str(layout.weights))
    except Exception as exc:  # safetensors raises its own SafetensorError, or OSError
        raise ArtifactError(f"{layout.weights}: unreadable weights ({exc})") from exc


# ----------------------------------------------------------------------- parsing


class _Fields:
    """Typed access to one JSON object of ``router.json``; errors name file and field."""

    def __init__(self, data: Any, source: Path, prefix: str) -> None:
        self.source, self.prefix = source, prefix
        if not isinstance(data, dict):
            raise self.error("", "an object", data)
        self.data: dict[str, Any] = data

    def error(self, key: str, expected: str, got: Any) -> ArtifactError:
        name = f"{self.prefix}{key}" or "the top level"
        shown = repr(got) if len(repr(got)) <= 60 else f"{type(got).__name__} {repr(got)[:57]}..."
        return ArtifactError(
            f"{self.source}: field {name!r}: expected {expected}, got {shown}; the artifact "
            "is damaged (retrain it, or restore router.json from a copy)"
        )

    def get(self, key: str, check: Callable[[Any], T], expected: str, default: Any = ...) -> T:
        if key not in self.data:
            if default is ...:
                raise ArtifactError(f"{self.source}: field {self.prefix}{key!r} is missing")
            return default
        value = self.data[key]
        try:
            return check(value)
        except (TypeError, ValueError):
            raise self.error(key, expected, value) from None

    def child(self, key: str) -> _Fields | None:
        if self.data.get(key) is None:
            return None
        return _Fields(self.data[key], self.source, f"{self.prefix}{key}.")

    def refuse_unknown(self, known: set[str]) -> None:
        unknown = sorted(set(self.data) - known)
        if unknown:
            raise ArtifactError(
                f"{self.source}: unknown field(s) {', '.join(self.prefix + k for k in unknown)}; "
                f"expected some of {sorted(known)} (written by a newer prefroute?)"
            )


def _of(kind: type[T]) -> Callable[[Any], T]:
    """A check for JSON values of one type: a bool is no number, an int is a float."""

    def check(value: Any) -> T:
        if isinstance(value, bool) and kind is not bool:
            raise TypeError(value)
        if kind is float and isinstance(value, int):
            return float(value)  # type: ignore[return-value]
        if not isinstance(value, kind):
            raise TypeError(value)
        return value

    return check


def _optional(check: Callable[[Any], T]) -> Callable[[Any], T | None]:
    return lambda value: None if value is None else check(value)


def _mapping(values: Callable[[Any], T]) -> Callable[[Any], dict[str, T]]:
    def check(value: Any) -> dict[str, T]:
        if not isinstance(value, dict):
            raise TypeError(value)
        return {str(k): values(v) for k, v in value.items()}

    return check


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(value)
    return tuple(value)


def _turns(value: Any) -> Turns:
    if value not in TURN_POLICIES:
        raise ValueError(value)
    return value  # type: ignore[no-any-return]  # checked just above


def _thresholds(value: Any) -> tuple[float, ...]:
    """``{"0": t0, ..., "100": t100}`` as a tuple indexed by percent."""
    table = _mapping(_of(float))(value)
    if set(table) != {str(p) for p in range(SHARES)}:
        raise ValueError(value)
    return tuple(table[str(p)] for p in range(SHARES))


_STR, _INT, _FLOAT, _DICT = _of(str), _of(int), _of(float), _of(dict)


def _record(kind: type[T], value: Any, checks: Mapping[str, Callable[[Any], Any]]) -> T:
    """A dataclass from a JSON object: known keys only, each value checked."""
    if not isinstance(value, dict) or set(value) - set(checks):
        raise TypeError(value)
    return kind(**{k: checks[k](v) for k, v in value.items()})


def _accounts(value: Any) -> tuple[FileAccount, ...]:
    if not isinstance(value, list):
        raise TypeError(value)
    counts = _mapping(_INT)
    checks = {"file": _STR, "format": _STR, "dataset": _STR, "rows": _INT, "battles": _INT}
    checks |= {"row_losses": counts, "removed": counts, "averaged": _INT}
    checks |= {"validation": _INT, "fit": _INT}
    return tuple(_record(FileAccount, v, checks) for v in value)


def _band(value: Any) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise TypeError(value)
    return (_FLOAT(value[0]), _FLOAT(value[1]))


def _validation(value: Any) -> ValidationReport:
    number = _optional(_FLOAT)
    checks: dict[str, Callable[[Any], Any]] = {"prompts": _INT, "pair_prompts": _INT}
    checks |= {"random_apgr": _optional(_band), "warning": _optional(_STR)}
    for name in ("apgr", "length_apgr", "log_loss", "constant_log_loss", "length_log_loss"):
        checks[name] = number
    checks["score_spread"] = number
    return _record(ValidationReport, value, checks)


def _embedder(fields: _Fields | None) -> EmbedderInfo | None:
    if fields is None:
        return None
    fields.refuse_unknown({"spec", "dim", "fingerprint", "path"})
    return EmbedderInfo(
        spec=fields.get("spec", _STR, "a spec string"),
        dim=fields.get("dim", _INT, "an int"),
        fingerprint=fields.get("fingerprint", _optional(_STR), "a hex string", None),
        path=fields.get("path", _optional(_STR), "a directory name", None),
    )


def _calibration(fields: _Fields | None) -> Calibration | None:
    if fields is None:
        return None
    fields.refuse_unknown({"prompts", "n_prompts", "thresholds", "targets"})
    targets = fields.child("targets")
    return Calibration(
        thresholds=fields.get("thresholds", _thresholds, 'a table "0".."100" -> threshold'),
        prompts=fields.get("prompts", _optional(_STR), "a description", None),
        n_prompts=fields.get("n_prompts", _optional(_INT), "an int", None),
        targets=tuple(_target(targets, name) for name in targets.data) if targets else (),
    )


def _target(targets: _Fields, name: str) -> QualityTarget:
    fields = targets.child(name)
    if fields is None:
        raise targets.error(name, "a quality target", None)
    fields.refuse_unknown({f.name for f in dataclasses.fields(QualityTarget)})
    try:
        target = QualityTarget(
            measure=fields.get("measure", _STR, f"one of {sorted(TARGET_MEASURES)}"),
            target=fields.get("target", _of(float), "a number in (0, 1]"),
            threshold=fields.get("threshold", _of(float), "a score threshold"),
            strong_share=fields.get("strong_share", _of(float), "a share"),
            reached=fields.get("reached", _of(float), "a number"),
            eval_file=fields.get("eval_file", _STR, "a file name"),
            n_prompts=fields.get("n_prompts", _INT, "an int"),
        )
    except InvalidParameterError as exc:
        raise targets.error(name, str(exc), fields.data) from None
    if target.name != name:
        raise targets.error(name, f"the target named {target.name!r}", fields.data)
    return target


def _floats(value: Any) -> tuple[float, ...]:
    if not isinstance(value, list):
        raise TypeError(value)
    return tuple(_of(float)(v) for v in value)


def _operating_points(fields: _Fields | None) -> tuple[OperatingPoint, ...]:
    """``{"<name>": {models, lam, prices, ...}}`` as operating points, in name order."""
    if fields is None:
        return ()
    known = {f.name for f in dataclasses.fields(OperatingPoint)} - {"name"}
    points = []
    for name in sorted(fields.data):
        point = fields.child(name)
        if point is None:
            raise fields.error(name, "an operating point object", None)
        point.refuse_unknown(known)
        points.append(
            OperatingPoint(
                name=name,
                models=point.get("models", _strings, "a list of model names"),
                lam=point.get("lam", _FLOAT, "a number"),
                input_prices=point.get("input_prices", _floats, "a list of $ per 1M tokens"),
                output_prices=point.get("output_prices", _floats, "a list of $ per 1M tokens"),
                output_tokens=point.get("output_tokens", _FLOAT, "a number of tokens"),
                input_tokens=point.get(
                    "input_tokens", _optional(_FLOAT), "a number of tokens", None
                ),
                offsets=point.get("offsets", _floats, "a list of numbers", ()),
                target=point.get("target", _optional(_STR), "a description", None),
                prompts=point.get("prompts", _optional(_STR), "a description", None),
                n_prompts=point.get("n_prompts", _optional(_INT), "an int", None),
                cost_per_1m_tokens=point.get(
                    "cost_per_1m_tokens", _optional(_FLOAT), "$ per 1M tokens", None
                ),
                cost_per_1k_requests=point.get(
                    "cost_per_1k_requests", _optional(_FLOAT), "$ per 1k requests", None
                ),
                shares=point.get("shares", _mapping(_FLOAT), "model -> share", {}),
            )
        )
    return tuple(points)


def _from_format_2(fields: _Fields) -> ArtifactConfig:
    fields.refuse_unknown({f.name for f in dataclasses.fields(ArtifactConfig)})
    models = fields.child("models")
    if models is None:
        raise ArtifactError(f"{fields.source}: field 'models' is missing")
    models.refuse_unknown({"strong", "weak"})
    training = fields.child("training_data")
    training_data = None
    if training is not None:
        training.refuse_unknown({f.name for f in dataclasses.fields(TrainingData)})
        training_data = TrainingData(
            fingerprint=training.get("fingerprint", _optional(_STR), "a hex string", None),
            rows=training.get("rows", _optional(_INT), "an int", None),
            prompts=training.get("prompts", _optional(_INT), "an int", None),
            turns=training.get("turns", _optional(_turns), f"one of {TURN_POLICIES}", None),
            gold_slice_ids=training.get("gold_slice_ids", _strings, "a list of ids", ()),
            source_weights=training.get(
                "source_weights", _mapping(_of(float)), "source -> weight", {}
            ),
            decontaminated=training.get(
                "decontaminated", _mapping(_of(int)), "data set -> rows", {}
            ),
            fit_seconds=training.get("fit_seconds", _optional(_of(float)), "seconds", None),
            shipped=training.get("shipped", _optional(_of(bool)), "true or false", None),
            user_files=training.get("user_files", _accounts, "a list of file accounts", ()),
            user_weight=training.get("user_weight", _optional(_of(float)), "a share", None),
            eval_files=training.get("eval_files", _strings, "a list of file names", ()),
            notes=training.get("notes", _strings, "a list of lines", ()),
            resolved_params=training.get(
                "resolved_params", _DICT, "an object of hyper-parameters", {}
            ),
            validation=training.get(
                "validation", _optional(_validation), "a validation report", None
            ),
        )
    return ArtifactConfig(
        kind=fields.get("kind", _STR, "a router kind"),
        params=fields.get("params", _DICT, "an object of hyper-parameters"),
        state=fields.get("state", _DICT, "an object", {}),
        models=Models(
            strong=models.get("strong", _STR, "a model name"),
            weak=models.get("weak", _STR, "a model name"),
        ),
        prefroute_version=fields.get("prefroute_version", _STR, "a version", "unknown"),
        embedder=_embedder(fields.child("embedder")),
        training_data=training_data,
        calibration=_calibration(fields.child("calibration")),
        operating_points=_operating_points(fields.child("operating_points")),
    )


def _from_format_1(fields: _Fields) -> ArtifactConfig:
    """A format-1 router.json (prefroute 0.1) as the current config.

    Format 1 wrote no ``models`` (the pair was in ``params``, or the defaults) and
    no turn policy: ``turns`` stays unknown, and serving then uses ``first``, the
    policy every format-1 artifact ``prefroute train`` wrote was trained with.
    """
    from prefroute.data.model_names import DEFAULT_STRONG, DEFAULT_WEAK

    params = fields.get("params", _DICT, "an object of hyper-parameters", {})
    training = fields.child("training_data")
    training_data = None
    if training is not None:
        training_data = TrainingData(
            fingerprint=training.get("fingerprint", _optional(_STR), "a hex string", None),
            rows=training.get("battles", _optional(_INT), "an int", None),
            gold_slice_ids=training.get("mmlu_gold_slice", _strings, "a list of ids", ()),
            decontaminated=training.get(
                "decontaminated", _mapping(_of(int)), "data set -> rows", {}
            ),
            fit_seconds=training.get("fit_seconds", _optional(_of(float)), "seconds", None),
        )
    return ArtifactConfig(
        kind=fields.get("kind", _STR, "a router kind"),
        params=params,
        state=fields.get("state", _DICT, "an object", {}),
        models=Models(
            strong=str(params.get("strong_model", DEFAULT_STRONG)),
            weak=str(params.get("weak_model", DEFAULT_WEAK)),
        ),
        prefroute_version=fields.get("prefroute_version", _STR, "a version", "unknown"),
        embedder=_embedder(fields.child("embedder")),
        training_data=training_data,
        calibration=_calibration(fields.child("calibration")),
    )


def _without_none(data: dict[str, Any]) -> dict[str, Any]:
    """Unknown (None) and empty fields left out: reading gives them back as defaults."""
    return {k: v for k, v in data.items() if v is not None and v != {} and v != ()}


def package_version() -> str:
    """The running prefroute's version, as artifacts record it."""
    from prefroute import __version__

    return __version__
