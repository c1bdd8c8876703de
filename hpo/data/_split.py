"""Seeded train/test and k-fold splits, and feature standardization fitted on the train part."""

from __future__ import annotations

import numpy as np

from hpo.data._base import RegressionData
from hpo.errors import ConfigError, DataError
from search_spaces.values import is_int, is_number


def train_test_split(
    data: RegressionData, test_size: float = 0.3, seed: int = 0
) -> tuple[RegressionData, RegressionData]:
    """Shuffle the rows with ``seed`` and split off ``round(test_size * n)`` of them for testing.

    Example:
        >>> from hpo.data import LabData
        >>> train, test = train_test_split(LabData().load(), test_size=0.3, seed=0)
        >>> len(train), len(test)
        (700, 300)
    """
    if not is_number(test_size) or not 0.0 < test_size < 1.0:
        raise ConfigError(
            f"`0 < test_size < 1` must hold, but got {test_size=!r}; pass e.g. test_size=0.3."
        )
    n_test = round(len(data) * test_size)
    if not 0 < n_test < len(data):
        raise ConfigError(
            f"test_size={test_size} leaves {n_test} of {len(data)} rows for testing, expected "
            "both parts non-empty; change test_size or use more rows."
        )
    order = np.random.default_rng(seed).permutation(len(data))
    return data.subset(order[n_test:]), data.subset(order[:n_test])


def kfold_splits(
    data: RegressionData, k: int = 3, seed: int = 0
) -> list[tuple[RegressionData, RegressionData]]:
    """``k`` (train, test) pairs; every row is in exactly one test fold (rows shuffled by seed).

    Example:
        >>> from hpo.data import Mtcars
        >>> folds = kfold_splits(Mtcars().load(), k=3, seed=0)
        >>> [len(test) for _, test in folds]
        [11, 11, 10]
    """
    if not is_int(k) or not 2 <= k <= len(data):
        raise ConfigError(
            f"`2 <= k <= len(data)` must hold, but got {k=!r} with {len(data)} rows; pass e.g. k=3."
        )
    order = np.random.default_rng(seed).permutation(len(data))
    folds = np.array_split(order, k)
    return [
        (data.subset(np.concatenate(folds[:i] + folds[i + 1 :])), data.subset(fold))
        for i, fold in enumerate(folds)
    ]


class Standardizer:
    """Rescale each feature to mean 0 and standard deviation 1, as fitted on the training part.

    The target is left alone; a constant feature is only centred, not divided by zero.

    Example:
        >>> from hpo.data import Mtcars
        >>> train, test = train_test_split(Mtcars().load(), test_size=0.3, seed=0)
        >>> scaler = Standardizer().fit(train)
        >>> train, test = scaler.transform(train), scaler.transform(test)
        >>> train.x.mean(axis=0).round(6).tolist() == [0.0] * train.n_features
        True
    """

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    def fit(self, data: RegressionData) -> Standardizer:
        """Learn each feature's mean and standard deviation from ``data``; returns self."""
        mean = data.x.mean(axis=0, dtype=np.float64)
        std = data.x.std(axis=0, dtype=np.float64)
        self.mean_ = mean.astype(np.float32)
        self.scale_ = np.where(std > 0.0, std, 1.0).astype(np.float32)
        return self

    def transform(self, data: RegressionData) -> RegressionData:
        """``data`` with standardized features, using the fitted statistics."""
        if self.mean_ is None or self.scale_ is None:
            raise ConfigError(
                "This Standardizer is not fitted yet; call 'fit' with the training data first."
            )
        if data.n_features != len(self.mean_):
            raise DataError(
                f"expected {len(self.mean_)} features as in the fitted data, but got "
                f"{data.n_features}; transform data with the same columns."
            )
        x = (data.x - self.mean_) / self.scale_
        return RegressionData(x, data.y, data.feature_names, data.target_name)

    def fit_transform(self, data: RegressionData) -> RegressionData:
        """``fit(data)`` then ``transform(data)``."""
        return self.fit(data).transform(data)

    def __repr__(self) -> str:
        state = "unfitted" if self.mean_ is None else f"{len(self.mean_)} features"
        return f"Standardizer({state})"
