"""Every error prefroute raises, in one tree.

    PrefrouteError
    ├── DataError (ValueError)          bad records or files; lists each problem as
    │                                   FILE:LINE: field 'x': expected ..., got ...
    ├── DataDirNotFoundError (FileNotFoundError)
    ├── EmbedderError (RuntimeError)    an embedder cannot be built, loaded or called
    ├── UnknownModelError (ValueError)  a model name the router has nothing learned for
    ├── ArtifactError (ValueError)      a router artifact is missing, of another format
    │                                   version, or made with another embedder
    ├── EvalError (ValueError)          an evaluation that cannot be computed as asked
    └── NotFittedError (ValueError, AttributeError)

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
    """

    SHOWN = 10

    def __init__(self, problems: Sequence[Problem] | str) -> None:
        if isinstance(problems, str):
            self.problems: tuple[Problem, ...] = ()
            super().__init__(problems)
            return
        self.problems = tuple(problems)
        lines = [str(p) for p in self.problems[: self.SHOWN]]
        more = len(self.problems) - self.SHOWN
        if more > 0:
            lines.append(f"... and {more} more bad records (use --skip-bad to drop them)")
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


class ArtifactError(PrefrouteError, ValueError):
    """A router artifact cannot be loaded as it is; the message says what to do."""


class NotFittedError(PrefrouteError, ValueError, AttributeError):
    """A method that needs a fitted estimator was called before ``fit``."""


class EvalError(PrefrouteError, ValueError):
    """An evaluation that cannot be computed as asked: an unknown benchmark, no
    prompts left to score, or two models of equal mean quality (PGR undefined)."""
