"""Argument types and options that several commands share."""

from __future__ import annotations

import argparse
import textwrap

from hpo.store.storage import DEFAULT_STORAGE

# Terminal output fits this many columns (a projector, a split screen, an 80+ column terminal).
WIDTH = 100


def wrapped(text: str) -> str:
    """A description for RawDescriptionHelpFormatter (which keeps line breaks): wrapped."""
    return textwrap.fill(" ".join(text.split()), width=WIDTH - 20)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1, refused with the value given."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0, refused with the value given."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def add_storage_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage", default=None,
        help=f"storage URL or file path (default: {DEFAULT_STORAGE} in the working folder; "
             "a .db path means SQLite; postgresql://... for many hosts)")
