"""Value checks shared by every layer: Python's ``bool`` is an ``int`` (``True + True == 2``),
so a flag slipped into a count or a bound would pass a plain ``isinstance(v, int)``.

search_spaces imports nothing from hpo, so these live here and hpo takes them from here.

Example:
    >>> is_int(3), is_int(True), is_number(0.5), is_number(False)
    (True, False, True, False)
"""

from __future__ import annotations

from typing import TypeGuard


def is_int(value: object) -> TypeGuard[int]:
    """Whether ``value`` is an int and not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> TypeGuard[int | float]:
    """Whether ``value`` is an int or a float and not a bool (NaN and inf included)."""
    return isinstance(value, int | float) and not isinstance(value, bool)
