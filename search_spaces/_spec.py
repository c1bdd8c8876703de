"""Parameter specs: a range to search, or a value to hold fixed.

A spec is either an Optuna distribution (``FloatDistribution``, ``IntDistribution``,
``CategoricalDistribution``), which :func:`suggest` asks the trial for, or any other value,
which is fixed: returned as is and never suggested, so it stays out of ``trial.params``.
:func:`Float`, :func:`Int` and :func:`Choice` build the distributions and check their
arguments at once, so a bad range fails where it is written rather than mid-study.
:func:`check_specs` checks a spec against its parameter's domain (``search_spaces._domains``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

from optuna.distributions import (
    BaseDistribution,
    CategoricalChoiceType,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import BaseTrial

from search_spaces._domains import Domain, check_extremes, refuse_collection
from search_spaces.errors import SpaceError
from search_spaces.values import is_int, is_number

Distribution: TypeAlias = FloatDistribution | IntDistribution | CategoricalDistribution
# Anything that is not a Distribution is a fixed value; `Any` says so honestly.
Spec: TypeAlias = Any

_CHOICE_TYPES = (type(None), bool, int, float, str)


# Float, Int and Choice are capitalized like types because in a space they read as one.
def Float(
    low: float, high: float, *, log: bool = False, step: float | None = None
) -> FloatDistribution:
    """A float range to search, ``low`` and ``high`` included.

    >>> Float(1e-4, 0.3, log=True)
    FloatDistribution(high=0.3, log=True, low=0.0001, step=None)
    """
    _check_number("low", low)
    _check_number("high", high)
    _check_bounds(low, high, log)
    if step is not None:
        _check_number("step", step)
        if log:
            raise SpaceError(
                "step",
                f"`step` and `log=True` cannot be combined, but got ({step=}, {log=}); drop one."
            )
        if step <= 0:
            raise SpaceError(
                "step", f"`step > 0` must hold, but got {step=}; pass a positive step."
            )
    return FloatDistribution(low, high, log=log, step=step)


def Int(low: int, high: int, *, log: bool = False, step: int = 1) -> IntDistribution:
    """An integer range to search, ``low`` and ``high`` both included (as in Optuna).

    >>> Int(1, 4)
    IntDistribution(high=4, log=False, low=1, step=1)
    """
    for name, value in (("low", low), ("high", high), ("step", step)):
        if not is_int(value):
            raise SpaceError(
                name, f"`{name}` must be an int, but got {value!r}; use Float for reals."
            )
    _check_bounds(low, high, log)
    if step < 1:
        raise SpaceError("step", f"`step >= 1` must hold, but got {step=}; pass a positive step.")
    if log and step != 1:
        raise SpaceError(
            "step",
            f"`step` and `log=True` cannot be combined, but got ({step=}, {log=}); drop one."
        )
    return IntDistribution(low, high, log=log, step=step)


def Choice(values: Sequence[CategoricalChoiceType]) -> CategoricalDistribution:
    """A choice among ``values`` (None, bool, int, float or str, no duplicates).

    >>> Choice(["tanh", "relu"])
    CategoricalDistribution(choices=('tanh', 'relu'))
    """
    if isinstance(values, str | bytes) or not isinstance(values, Sequence):
        raise SpaceError(
            "values",
            f"`values` must be a list of choices, but got {values!r}; write Choice([...])."
        )
    if len(values) == 0:
        raise SpaceError(
            "values", "`values` must hold at least one choice, but got []; add a value."
        )
    for value in values:
        if not isinstance(value, _CHOICE_TYPES):
            raise SpaceError(
                "",
                f"Each choice must be None, bool, int, float or str, but got {value!r}; "
                "choose by a name and map it to the object afterwards."
            )
    # Keyed by type too, because True == 1 and 1 == 1.0 are different choices here.
    if len({(type(v), v) for v in values}) != len(values):
        raise SpaceError(
            "values", f"Choices must be distinct, but got {list(values)!r}; drop the repeats."
        )
    return CategoricalDistribution(values)


def is_searched(spec: Spec) -> bool:
    """Whether ``spec`` is a range to search rather than a fixed value."""
    return isinstance(spec, BaseDistribution)


def suggest(trial: BaseTrial, name: str, spec: Spec) -> Any:
    """Ask ``trial`` for ``name`` within ``spec``, or return ``spec`` itself if it is fixed.

    >>> import optuna
    >>> trial = optuna.trial.FixedTrial({"width": 20})
    >>> suggest(trial, "width", Int(4, 256, log=True)), suggest(trial, "dropout", 0.0)
    (20, 0.0)
    >>> trial.params
    {'width': 20}
    """
    if isinstance(spec, FloatDistribution):
        return trial.suggest_float(name, spec.low, spec.high, step=spec.step, log=spec.log)
    if isinstance(spec, IntDistribution):
        return trial.suggest_int(name, spec.low, spec.high, step=spec.step, log=spec.log)
    if isinstance(spec, CategoricalDistribution):
        return trial.suggest_categorical(name, spec.choices)
    if isinstance(spec, BaseDistribution):
        raise SpaceError(
            name,
            f"`{name}` must be a Float, Int or Choice spec or a fixed value, but got {spec!r}; "
            "rewrite it with Float, Int or Choice."
        )
    refuse_collection(name, spec)
    return spec


def check_spec(name: str, spec: Spec, domain: Domain) -> None:
    """Raise SpaceError unless every value ``spec`` can produce lies in ``domain``."""
    check_extremes(name, spec, _extremes(spec), domain)


def check_specs(specs: Mapping[str, Spec], domains: Mapping[str, Domain]) -> None:
    """:func:`check_spec` every entry of ``specs`` whose name has a domain."""
    for name, spec in specs.items():
        if name in domains:
            check_spec(name, spec, domains[name])


def _extremes(spec: Spec) -> tuple[Any, ...]:
    # Every domain here is an interval or a set, so a range passes when both its ends do.
    if isinstance(spec, FloatDistribution | IntDistribution):
        return (spec.low, spec.high)
    if isinstance(spec, CategoricalDistribution):
        return tuple(spec.choices)
    return (spec,)


def _check_number(name: str, value: object) -> None:
    if not is_number(value) or not math.isfinite(value):
        raise SpaceError(
            name, f"`{name}` must be a finite number, but got {value!r}; pass a number."
        )


def _check_bounds(low: float, high: float, log: bool) -> None:
    if low > high:
        raise SpaceError(
            "low", f"`low <= high` must hold, but got ({low=}, {high=}); swap the bounds."
        )
    if log and low <= 0:
        raise SpaceError(
            "low",
            f"`low > 0` must hold for `log=True`, but got {low=}; "
            "raise `low` or use `log=False` (a fixed 0 is also allowed)."
        )
