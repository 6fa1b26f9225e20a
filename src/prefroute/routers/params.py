"""Declared hyper-parameter constraints, checked the way scikit-learn checks them.

Each router class declares one table, ``_parameter_constraints``: parameter name
-> the values it accepts (any one of the listed constraints)::

    _parameter_constraints = {
        "dim": [Interval(int, 1, None)],
        "lr": [Interval(float, 0, None, closed="neither")],
        "tie_handling": [Options("half", "drop")],
        "random_state": [Interval(int, None, None), None],
    }

``Router._validate_params`` checks every declared parameter at the top of
``fit`` (and routers whose parameters are read when scoring check them there
too), so a bad value fails before any data is read or model loaded, always
with one message shape::

    MFRouter: parameter 'dim' must be an int >= 1, got 0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, Literal, Protocol

from prefroute.errors import InvalidParameterError

__all__ = ["Constraint", "Interval", "Options", "check_params"]


class Constraint(Protocol):
    """One kind of accepted value; ``str()`` says what it accepts, for the error."""

    def accepts(self, value: Any) -> bool: ...


@dataclass(frozen=True)
class Interval:
    """An int (``int``) or any real number (``float``) within bounds; None is unbounded.

    ``closed`` says which bounds are included. Bools are not numbers here, NaN
    is in no interval.
    """

    kind: type[int] | type[float]
    low: float | None
    high: float | None
    closed: Literal["both", "left", "right", "neither"] = "both"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if not isinstance(value, Integral if self.kind is int else Real):
            return False
        value = float(value)
        if math.isnan(value):
            return False
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and (value < self.low if left else value <= self.low):
            return False
        return not (self.high is not None and (value > self.high if right else value >= self.high))

    def __str__(self) -> str:
        name = "an int" if self.kind is int else "a number"
        left = ">=" if self.closed in ("both", "left") else ">"
        right = "<=" if self.closed in ("both", "right") else "<"
        if self.low is not None and self.high is not None:
            brackets = ("[" if left == ">=" else "(", "]" if right == "<=" else ")")
            return f"{name} in {brackets[0]}{self.low:g}, {self.high:g}{brackets[1]}"
        if self.low is not None:
            return f"{name} {left} {self.low:g}"
        if self.high is not None:
            return f"{name} {right} {self.high:g}"
        return name


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values (compared with ``==``, bools kept apart from ints)."""

    values: tuple[Any, ...]

    def __init__(self, *values: Any) -> None:
        object.__setattr__(self, "values", values)

    def accepts(self, value: Any) -> bool:
        return any(type(value) is type(v) and value == v for v in self.values)

    def __str__(self) -> str:
        return f"one of {list(self.values)}"


@dataclass(frozen=True)
class _InstanceOf:
    kind: type

    def accepts(self, value: Any) -> bool:
        return isinstance(value, self.kind) and not (self.kind is int and isinstance(value, bool))

    def __str__(self) -> str:
        name = self.kind.__name__
        return f"an {name}" if name[0] in "aeiou" else f"a {name}"


@dataclass(frozen=True)
class _NoneValue:
    def accepts(self, value: Any) -> bool:
        return value is None

    def __str__(self) -> str:
        return "None"


def _constraint(spec: Constraint | type | None) -> Constraint:
    """A table entry as a constraint: a type means an instance of it, None means None."""
    if spec is None:
        return _NoneValue()
    if isinstance(spec, type):
        return _InstanceOf(spec)
    return spec


def check_params(
    owner: str,
    params: Mapping[str, Any],
    table: Mapping[str, Sequence[Constraint | type | None]],
) -> None:
    """Raise ``InvalidParameterError`` (a ``ValueError``) for the first declared parameter
    no constraint accepts.

    ``owner`` names the class in the message; parameters the table does not
    declare are not checked.
    """
    for name, specs in table.items():
        value = params[name]
        constraints = [_constraint(s) for s in specs]
        if not any(c.accepts(value) for c in constraints):
            allowed = " or ".join(str(c) for c in constraints)
            raise InvalidParameterError(
                f"{owner}: parameter {name!r} must be {allowed}, got {value!r}"
            )
