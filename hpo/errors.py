"""The exceptions hpo raises for a user's mistake.

Every message says what was expected, what was given and how to fix it, on one line, so
the CLI can print it as is and exit non-zero without a traceback. Each class also inherits
the matching builtin, so ``except ValueError`` keeps working for callers who expect it.
"""

from __future__ import annotations


class HPOError(Exception):
    """Root of every error that hpo raises for a user's mistake."""


class ConfigError(HPOError, ValueError):
    """A study, a search space, a flag or a hand-picked config is invalid."""


class DataError(HPOError, ValueError):
    """A data set cannot be loaded or is unfit for training (missing column, NaN, too few rows)."""


class StudyFileError(HPOError, ValueError):
    """A study file is missing, does not parse, or defines no study."""


class StorageError(HPOError, RuntimeError):
    """A storage URL is malformed or the storage cannot be reached."""


class DeviceError(HPOError, ValueError):
    """A device was asked for that this machine does not have."""
