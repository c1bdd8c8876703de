"""The one error the search spaces raise for a mistake in a space: a ValueError that names
the field it is about, so a caller can say where the field came from without reading the
message text (hpo's hand-picked configs do).

Example:
    >>> from search_spaces import Float
    >>> try:
    ...     Float(1.0, 0.1)
    ... except SpaceError as error:
    ...     print(error.field)
    low
"""

from __future__ import annotations


class SpaceError(ValueError):
    """A search space or a params dict is invalid; ``field`` names the parameter at fault
    (``""`` when the mistake is not about one parameter)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
