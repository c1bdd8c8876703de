"""Markdown tables, the one way every report and comparison writes them.

Example:
    >>> print(table(["param", "value"], [["lr", 0.1], ["note", "a|b"]]))
    | param | value |
    | --- | --- |
    | lr | 0.1 |
    | note | a\\|b |
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; a ``|`` inside a cell is escaped so it cannot split the cell."""

    def line(cells: Sequence[Any]) -> str:
        return "| " + " | ".join(str(cell).replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(headers), line(["---"] * len(headers)), *map(line, rows)])
