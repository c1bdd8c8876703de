"""`RegressionData`, the arrays every data source produces, and the `DataSource` protocol."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from hpo.errors import DataError


# eq=False: comparing two arrays element-wise has no single truth value; compare fields by hand.
@dataclass(frozen=True, eq=False)
class RegressionData:
    """Features and target of a regression problem, as float32 arrays.

    ``x`` is shaped ``(n, features)`` and ``y`` ``(n, 1)``; 1-D arrays are taken as one column.

    Example:
        >>> data = RegressionData(np.arange(3.0), np.arange(3.0) * 2, ("x",), "y")
        >>> len(data), data.x.shape, data.y.shape
        (3, (3, 1), (3, 1))
    """

    x: np.ndarray
    y: np.ndarray
    feature_names: tuple[str, ...]
    target_name: str

    def __post_init__(self) -> None:
        x = _as_column_matrix(self.x)
        y = _as_column_matrix(self.y)
        names = tuple(self.feature_names)
        if y.shape != (len(x), 1):
            raise DataError(
                f"`y` must be shaped (n, 1) with n = len(x) = {len(x)}, but got shape {y.shape}; "
                "pass one target value per row of x."
            )
        if len(names) != x.shape[1]:
            raise DataError(
                f"`feature_names` must name each of the {x.shape[1]} columns of x, "
                f"but got {names}; pass one name per column."
            )
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
        object.__setattr__(self, "feature_names", names)

    def __len__(self) -> int:
        return len(self.x)

    @property
    def n_features(self) -> int:
        """The number of feature columns, the ``in_features`` of a model for this data."""
        return int(self.x.shape[1])

    def subset(self, indices: Sequence[int] | np.ndarray) -> RegressionData:
        """The rows at ``indices``, in that order.

        Example:
            >>> data = RegressionData(np.arange(3.0), np.arange(3.0) * 2, ("x",), "y")
            >>> data.subset([2, 0]).y.ravel().tolist()
            [4.0, 0.0]
        """
        rows = np.asarray(indices, dtype=np.int64)
        return RegressionData(self.x[rows], self.y[rows], self.feature_names, self.target_name)

    def tensors(self, device: str | torch.device = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` as float32 tensors on ``device``, copies that the caller may modify.

        Example:
            >>> data = RegressionData(np.arange(3.0), np.arange(3.0) * 2, ("x",), "y")
            >>> x, y = data.tensors()
            >>> tuple(x.shape), x.dtype
            ((3, 1), torch.float32)
        """
        return torch.tensor(self.x, device=device), torch.tensor(self.y, device=device)


@runtime_checkable
class DataSource(Protocol):
    """What the three built-in sources, `LabData`, `Mtcars` and `CsvData`, have in common.

    Sources are small frozen dataclasses, so a study can pickle them to worker processes and
    each worker loads the data itself. A study accepts only these three: the storage records
    a source by its type and fields so that reports and exports rebuild the same rows, which
    an arbitrary object would not allow. Other data goes through a CSV file and `CsvData`.
    """

    def load(self) -> RegressionData:
        """Read or generate the data."""
        ...

    def describe(self) -> str:
        """A short human-readable description, e.g. for a report header."""
        ...


def _as_column_matrix(values: np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float32)
    if array.ndim == 1:
        return array.reshape(-1, 1)
    if array.ndim != 2:
        raise DataError(
            f"expected a 1-D or 2-D array (rows, columns), but got shape {array.shape}; "
            "reshape it to (n, features)."
        )
    return array
