"""The values each parameter may take, declared as data and checked in one place.

A params dict is checked value by value when something is built from it (hand-picked
configs reach the builders without a trial); a spec is checked against the same domains
when a space is suggested (both ends of a range, every choice, or the fixed value:
``search_spaces._spec.check_specs``). This module needs no Optuna: the builders use it in
the training core, which never loads Optuna.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

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


def check_value(name: str, value: Any, domain: Domain) -> None:
    """Raise SpaceError unless ``value`` lies in ``domain``."""
    check_extremes(name, value, (value,), domain)


def check_values(values: Mapping[str, Any], domains: Mapping[str, Domain]) -> None:
    """:func:`check_value` every entry of ``values`` whose name has a domain."""
    for name, value in values.items():
        if name in domains:
            check_value(name, value, domains[name])


def check_extremes(name: str, given: Any, extremes: tuple[Any, ...], domain: Domain) -> None:
    """Raise SpaceError unless each of ``extremes``, the values ``given`` (a value or a
    spec) can produce at its ends, lies in ``domain``."""
    refuse_collection(name, given)
    if all(domain.accepts(v) for v in extremes):
        return
    raise SpaceError(
        name,
        f"`{name}` must be {domain.expected}, but got {given!r}; "
        "pass a value or a range inside that."
    )


def check_keys(given: Mapping[str, Any], valid: Mapping[str, Any], what: str) -> None:
    """Refuse keys of ``given`` that are not keys of ``valid``, listing the valid ones."""
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise SpaceError(
            "",
            f"{what} takes the keys {sorted(valid)}, but got unknown {unknown}; "
            "fix the spelling or drop them."
        )


def refuse_collection(name: str, given: Any) -> None:
    """Refuse a list (or set, tuple, dict) given where one value or a spec belongs."""
    # A list here almost always means "search these", which only Choice says.
    if isinstance(given, list | tuple | set | frozenset | dict):
        raise SpaceError(
            name,
            f"`{name}` must be a single fixed value or a spec, but got {given!r}; "
            f"to search over these values write Choice({list(given)!r})."
        )
