"""Tabular data: the course's mtcars (shipped with hpo) and any numeric CSV file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from hpo.data._base import RegressionData
from hpo.errors import ConfigError, DataError

MIN_ROWS = 4  # fewer rows cannot be split into train and test and still fit a line


@dataclass(frozen=True)
class Mtcars:
    """The 32-row mtcars data of the course; by default ``mpg`` regressed on ``wt``.

    Ordinary least squares on the default columns gives slope -5.3445, intercept 37.2851.

    Example:
        >>> data = Mtcars().load()
        >>> len(data), data.feature_names, data.target_name
        (32, ('wt',), 'mpg')
        >>> Mtcars(features=("wt", "hp")).load().x.shape
        (32, 2)
    """

    features: tuple[str, ...] = ("wt",)
    target: str = "mpg"

    def __post_init__(self) -> None:
        object.__setattr__(self, "features", _checked_columns(self.features, self.target))

    def load(self) -> RegressionData:
        """Read the shipped CSV."""
        with _mtcars_file().open("r", encoding="utf-8") as stream:
            return read_regression_csv(stream, "mtcars.csv", self.features, self.target)

    def describe(self) -> str:
        """E.g. ``"mtcars: mpg ~ wt"``."""
        return f"mtcars: {self.target} ~ {' + '.join(self.features)}"


@dataclass(frozen=True)
class CsvData:
    """Any CSV file with a header row and numeric feature and target columns.

    Other columns may hold anything; they are not read. Every problem with the file
    (missing, a missing column, a non-numeric or empty cell, too few rows) is a one-line
    `DataError` naming the file, the column and the row.

    Example:
        >>> source = CsvData("cars.csv", features=("wt", "hp"), target="mpg")
        >>> data = source.load()  # doctest: +SKIP
    """

    path: str
    features: tuple[str, ...]
    target: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", os.fspath(self.path))
        object.__setattr__(self, "features", _checked_columns(self.features, self.target))

    def load(self) -> RegressionData:
        """Read and validate the file."""
        if not Path(self.path).is_file():
            raise DataError(
                f"{self.path}: no such file (looked for {Path(self.path).resolve()}); "
                "expected a CSV file, check the path."
            )
        return read_regression_csv(self.path, self.path, self.features, self.target)

    def describe(self) -> str:
        """E.g. ``"cars.csv: mpg ~ wt + hp"``."""
        return f"{Path(self.path).name}: {self.target} ~ {' + '.join(self.features)}"


def read_regression_csv(
    source: str | IO[str], name: str, features: tuple[str, ...], target: str
) -> RegressionData:
    """Read ``features`` and ``target`` from a CSV; ``name`` is the file's name in errors."""
    frame = _read_frame(source, name)
    _check_present(frame, name, (*features, target))
    if len(frame) < MIN_ROWS:
        raise DataError(
            f"{name}: {len(frame)} data rows, expected at least {MIN_ROWS}; "
            "add rows or use another file."
        )
    x = np.column_stack([_numeric_column(frame[column], name) for column in features])
    y = _numeric_column(frame[target], name)
    return RegressionData(x, y, features, target)


def read_feature_csv(path: str, features: tuple[str, ...]) -> tuple[pd.DataFrame, np.ndarray]:
    """The CSV's rows as read, and its ``features`` as a float matrix (n, features).

    For new inputs to a trained model: no target column, and one row is enough. Every
    problem is a one-line DataError naming the file, the column and the row.
    """
    if not Path(path).is_file():
        raise DataError(f"{path}: no such file; expected a CSV with the columns "
                        f"{', '.join(features)}.")
    frame = _read_frame(path, path)
    _check_present(frame, path, features)
    if frame.empty:
        raise DataError(f"{path}: no data rows under the header, expected at least one.")
    return frame, np.column_stack([_numeric_column(frame[column], path) for column in features])


def _checked_columns(features: object, target: object) -> tuple[str, ...]:
    # A bare string would otherwise be split into one-letter column names.
    names = (features,) if isinstance(features, str) else tuple(features)  # type: ignore[arg-type]
    if not names or not all(isinstance(name, str) for name in names):
        raise ConfigError(
            f"`features` must name at least one column, but got {features!r}; "
            "pass e.g. features=('wt',)."
        )
    if not isinstance(target, str) or target in names:
        raise ConfigError(
            f"`target` must be one column name not among the features, but got {target=!r} "
            f"with features={names}; pick another target column."
        )
    return names


def _read_frame(source: str | IO[str], name: str) -> pd.DataFrame:
    try:
        # Everything as text, no NA guessing: so a bad cell can be quoted as the file writes it.
        return pd.read_csv(source, dtype=str, keep_default_na=False, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise DataError(f"{name}: the file is empty, expected a header row; fill it.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        reason = str(exc).strip().splitlines()[0]
        raise DataError(f"{name}: not a readable CSV ({reason}); fix the file.") from None
    except OSError as exc:
        raise DataError(f"{name}: cannot be read ({exc.strerror}); check the path.") from None


def _check_present(frame: pd.DataFrame, name: str, columns: tuple[str, ...]) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        valid = ", ".join(repr(str(column)) for column in frame.columns)
        wanted = ", ".join(repr(column) for column in missing)
        raise DataError(
            f"{name}: column {wanted} not found; valid columns are {valid}; fix the column name."
        )


def _numeric_column(cells: pd.Series, name: str) -> np.ndarray:
    values = pd.to_numeric(cells.str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        index = int(bad[0])
        where = f"{name}: column '{cells.name}' row {index + 1}"  # row 1: first under the header
        raise DataError(_bad_cell_message(where, cells.iloc[index], values[index]))
    return values


def _bad_cell_message(where: str, cell: str, value: float) -> str:
    if not cell.strip():
        return f"{where} is empty, expected a number; fill the cell or drop the row."
    expected = "a finite number" if np.isinf(value) else "a number"
    return f"{where} holds {cell!r}, expected {expected}; fix the cell or drop the row."


def _mtcars_file() -> Traversable:
    try:
        return resources.files("hpo") / "datasets" / "mtcars.csv"
    except (NotADirectoryError, TypeError):
        # While `hpo` is a namespace package under an editable install, importlib.resources
        # cannot list it; the file then lies next to this package on disk.
        return Path(__file__).resolve().parent.parent / "datasets" / "mtcars.csv"
