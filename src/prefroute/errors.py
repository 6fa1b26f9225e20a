"""Every error prefroute raises, in one tree.

    PrefrouteError
    ├── DataError (ValueError)          bad records or files; lists each problem as
    │                                   FILE:LINE: field 'x': expected ..., got ...
    ├── DataDirNotFoundError (FileNotFoundError)
    ├── EmbedderError (RuntimeError)    an embedder cannot be built, loaded or called
    ├── UnknownModelError (ValueError)  a model name the router has nothing learned for
    ├── BinaryOnlyError (TypeError)     per-model quality asked of a router kind that only
    │                                   routes between its two models
    ├── UnknownPriceError (LookupError) a model with no price in the price table
    ├── ArtifactError (ValueError)      a router artifact is missing, of another format
    │                                   version, or made with another embedder
    ├── EvalError (ValueError)          an evaluation that cannot be computed as asked
    ├── InvalidParameterError (ValueError, TypeError)
    │                                   a parameter, or a combination of them, that
    │                                   cannot work: names it, the allowed values, got
    ├── NotFittedError (ValueError, AttributeError)
    ├── ConfigError (ValueError)        a serve or label setting that cannot work: file or
    │                                   flag, field
    ├── StoreError (RuntimeError)       prefroute label's call store is in use or not a store
    ├── CostLimitError (RuntimeError)   a call would take a label run past --max-cost
    └── ServeError                      one HTTP request failed; carries OpenAI's error body
        ├── InvalidRequestError (ValueError)       400: bad body or model name, names the field
        ├── RequestTimeoutError (TimeoutError)     408: the client sent its body too slowly
        ├── RequestTooLargeError (ValueError)      413: body over the size limit
        ├── AuthenticationError (PermissionError)  401: missing or unknown API key
        ├── OverloadedError (RuntimeError)         503: every slot and queue place taken,
        │                                               or the server is shutting down
        └── UpstreamError (ConnectionError)        502: upstreams failed after retries, fallback
            ├── UpstreamTimeoutError (TimeoutError)  504: ... and the last attempt timed out
            ├── UpstreamRefusedError      an upstream answered 4xx (key, model, parameter):
            │                             retrying cannot help, so a label run stops
            └── UpstreamRateLimitError               429: every model is rate-limited

Callers catch ``PrefrouteError``; the leaf says what failed. Each leaf also
subclasses a builtin so ``except ValueError`` keeps working.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class PrefrouteError(Exception):
    """Base of every error prefroute raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One bad record: where it is, which field, what was expected, what was found."""

    file: str
    line: int | None
    field: str | None
    expected: str
    got: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        field = f" field {self.field!r}:" if self.field else ""
        return f"{where}:{field} expected {self.expected}, got {self.got}"


class DataError(PrefrouteError, ValueError):
    """Input data that cannot be read as given.

    Holds every problem found (not only the first) so a user fixes a file in one
    pass; the message shows the first few and how many more there are.
    ``skippable`` says the reader could drop the bad records instead
    (``skip_bad=True``: the ``--skip-bad`` of every command that reads battles or
    scores); only then does the message offer it, so a hint never names an option
    the failing command does not have (prompt, answer and price files have none).
    """

    SHOWN = 10

    def __init__(self, problems: Sequence[Problem] | str, *, skippable: bool = False) -> None:
        if isinstance(problems, str):
            self.problems: tuple[Problem, ...] = ()
            super().__init__(problems)
            return
        self.problems = tuple(problems)
        lines = [str(p) for p in self.problems[: self.SHOWN]]
        more = len(self.problems) - self.SHOWN
        if more > 0:
            hint = " (use --skip-bad to drop them)" if skippable else ""
            lines.append(f"... and {more} more bad records{hint}")
        super().__init__("\n".join(lines))

    @classmethod
    def file(cls, path: str | Path, expected: str, got: str) -> DataError:
        """A problem with a whole file (empty, wrong compression, missing column)."""
        return cls([Problem(str(path), None, None, expected, got)])


class DataDirNotFoundError(PrefrouteError, FileNotFoundError):
    """No data directory: says every place that was looked in and how to set one."""

    def __init__(self, looked_in: Sequence[str]) -> None:
        places = "; ".join(looked_in)
        super().__init__(
            "no data directory found (looked in: "
            f"{places}). Pass --data-dir DIR, set PREFROUTE_DATA_DIR, or put the shipped "
            "data sets (with their MANIFEST.md) in ../shared/data next to the checkout."
        )


class EmbedderError(PrefrouteError, RuntimeError):
    """An embedder cannot be built, loaded or called."""


class UnknownModelError(PrefrouteError, ValueError):
    """A model name a router has no learned parameters for; the message lists close names."""


class BinaryOnlyError(PrefrouteError, TypeError):
    """Per-model quality (choosing among N models) asked of a kind that only scores
    "strong beats weak" for its own pair: the classifier, the causal LLM, random."""

    def __init__(self, kind: str, strong: str, weak: str) -> None:
        super().__init__(
            f"a {kind} router routes between two models ({strong} and {weak}): it scores "
            "'strong beats weak', not each model's quality, so it cannot choose among N "
            "models. Train an mf, sw_ranking or quality router for that (prefroute train "
            "quality --scores FILE), or route this one with a threshold or @<share>%"
        )


class UnknownPriceError(PrefrouteError, LookupError):
    """Models with no price: names all of them at once (a user fixing a price file
    one model per run would run it eleven times for eleven models), where prices
    were looked for, and how to add one."""

    def __init__(self, models: str | Sequence[str], looked_in: Sequence[str]) -> None:
        self.models = (models,) if isinstance(models, str) else tuple(models)
        self.model = self.models[0]
        named = ", ".join(repr(m) for m in self.models)
        plural = "s" if len(self.models) > 1 else ""
        super().__init__(
            f"no price for model{plural} {named} (looked in {', '.join(looked_in)}); give "
            f'each in a TOML price file, ["{self.model}"] input = <$ per 1M input tokens> '
            "output = <$ per 1M output tokens>, passed as --prices FILE (or named by "
            "$PREFROUTE_PRICES)"
        )


class ArtifactError(PrefrouteError, ValueError):
    """A router artifact cannot be loaded as it is; the message says what to do."""


class NotFittedError(PrefrouteError, ValueError, AttributeError):
    """A method that needs a fitted estimator was called before ``fit``."""


class EvalError(PrefrouteError, ValueError):
    """An evaluation that cannot be computed as asked: an unknown benchmark, no
    prompts left to score, or two models of equal mean quality (PGR undefined)."""


class InvalidParameterError(PrefrouteError, ValueError, TypeError):
    """A parameter value, or a combination of parameters, that cannot work.

    A share outside [0, 1], a budget below the weak model's price, an embedder
    for a router kind that takes none, the same model as strong and weak. As
    scikit-learn's ``InvalidParameterError`` it is also a ``TypeError``, so callers
    that catch either builtin for a wrong argument keep working.
    """


class ConfigError(PrefrouteError, ValueError):
    """A serve setting that cannot work; the message names the file or flag and the field."""


class StoreError(PrefrouteError, RuntimeError):
    """``prefroute label``'s call store cannot be used: another run holds it, or the file is
    not a store of this version; the message names the file and what to do."""


class CostLimitError(PrefrouteError, RuntimeError):
    """A call would take a ``prefroute label`` run's new spending past ``--max-cost``.

    Raised before the call is sent, so the run stops with its spending under the limit.
    """

    def __init__(self, limit: float) -> None:
        self.limit = limit
        super().__init__(f"the next call could take this run past --max-cost ${limit:g}")


class ServeError(PrefrouteError):
    """A request the server answers with an error; the fields make OpenAI's error body.

    OpenAI SDKs read ``error.message``, ``type``, ``param`` and ``code``: keeping
    that shape lets existing client code handle prefroute's errors unchanged.
    """

    status = 500
    type = "server_error"
    closes = False
    """Whether the answer ends the connection (``Connection: close``): an unread body or a
    client too slow to be worth keeping."""

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.retry_after = retry_after
        """Seconds after which a retry may succeed, sent as ``Retry-After``."""
        if status is not None:  # e.g. 404 or 405 for a request the routes do not take
            self.status = status

    def body(self) -> dict[str, dict[str, str | None]]:
        """``{"error": {"message", "type", "param", "code"}}``, as OpenAI sends it."""
        error = {"message": self.message, "type": self.type, "param": self.param}
        return {"error": {**error, "code": self.code}}


class InvalidRequestError(ServeError, ValueError):
    """The request body or the model name is wrong; ``param`` names the field."""

    status = 400
    type = "invalid_request_error"


class RequestTimeoutError(ServeError, TimeoutError):
    """The client stopped sending its request body for longer than the server waits."""

    status = 408
    type = "invalid_request_error"
    closes = True


class RequestTooLargeError(ServeError, ValueError):
    """The body is over the server's size limit; the rest of it is not read."""

    status = 413
    type = "invalid_request_error"
    closes = True


class AuthenticationError(ServeError, PermissionError):
    """No API key, or one the server does not know; the key itself is never repeated."""

    status = 401
    type = "invalid_request_error"


class OverloadedError(ServeError, RuntimeError):
    """Every concurrency slot and queue place is taken, or the server is stopping; the
    client should retry shortly (``Retry-After``)."""

    status = 503
    type = "server_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, code=code, retry_after=1)


class UpstreamError(ServeError, ConnectionError):
    """The upstream models failed (connect error or 5xx) after retries and fallback."""

    status = 502
    type = "upstream_error"


class UpstreamTimeoutError(UpstreamError, TimeoutError):
    """As ``UpstreamError``, and the last attempt timed out."""

    status = 504


class UpstreamRefusedError(UpstreamError):
    """The upstream answered with a 4xx other than 429: a wrong key, model name or
    parameter. Every further call would be refused the same way, so ``prefroute label``
    stops instead of retrying."""


class UpstreamRateLimitError(UpstreamError):
    """Every model that could answer is rate-limited (429) for now; ``Retry-After`` says when
    the first of them may take requests again. The limit is the server's upstream quota, not
    the client's, but backing off is what helps."""

    status = 429
    type = "rate_limit_error"
