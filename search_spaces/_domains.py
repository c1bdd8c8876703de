"""The values each parameter may take, declared as data and checked in one place.

A spec is checked against its parameter's domain when a space is suggested (both ends of a
range, every choice, or the fixed value), and a params dict is checked again when something
is built from it, because hand-picked configs reach the builders without a trial.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from search_spaces._spec import Spec, refuse_collection
from search_spaces.errors import SpaceError
from search_spaces.values import is_int, is_number


class Domain(NamedTuple):
    """A test for one value, and the words that describe what passes it."""

    accepts: Callable[[Any], bool]
    expected: str


def ints(minimum: int) -> Domain:
    """Ints greater than or equal to ``minimum``."""
    return Domain(lambda v: is_int(v) and v >= minimum, f"an int >= {minimum}")


def reals(
    low: float, high: float = math.inf, *, low_open: bool = False, high_open: bool = False
) -> Domain:
    """Numbers between ``low`` and ``high``; an ``_open`` end excludes that bound."""

    def accepts(v: Any) -> bool:
        if not is_number(v) or math.isnan(v):
            return False
        above = v > low if low_open else v >= low
        below = v < high if high_open or math.isinf(high) else v <= high
        return above and below

    left, right = "(" if low_open else "[", ")" if high_open or math.isinf(high) else "]"
    return Domain(accepts, f"a number in {left}{low}, {high}{right}")


def one_of(values: tuple[Any, ...]) -> Domain:
    """Exactly one of ``values``, type included, so 1 does not pass for True."""
    return Domain(lambda v: any(type(v) is type(c) and v == c for c in values), f"one of {values}")


def check(name: str, spec: Spec, domain: Domain) -> None:
    """Raise ValueError unless every value ``spec`` can produce lies in ``domain``."""
    refuse_collection(name, spec)
    if all(domain.accepts(v) for v in _extremes(spec)):
        return
    raise SpaceError(
        name,
        f"`{name}` must be {domain.expected}, but got {spec!r}; "
        "pass a value or a range inside that."
    )


def check_all(specs: Mapping[str, Spec], domains: Mapping[str, Domain]) -> None:
    """:func:`check` every entry of ``specs`` whose name has a domain."""
    for name, spec in specs.items():
        if name in domains:
            check(name, spec, domains[name])


def check_keys(given: Mapping[str, Any], valid: Mapping[str, Any], what: str) -> None:
    """Refuse keys of ``given`` that are not keys of ``valid``, listing the valid ones."""
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise SpaceError(
            "",
            f"{what} takes the keys {sorted(valid)}, but got unknown {unknown}; "
            "fix the spelling or drop them."
        )


def _extremes(spec: Spec) -> tuple[Any, ...]:
    # Every domain here is an interval or a set, so a range passes when both its ends do.
    if isinstance(spec, FloatDistribution | IntDistribution):
        return (spec.low, spec.high)
    if isinstance(spec, CategoricalDistribution):
        return tuple(spec.choices)
    return (spec,)
