"""The train/test pairs a study trains and scores on: one split, or k cross-validation folds.

Example:
    >>> from hpo.data import LabData
    >>> folds = prepare_folds(LabData(n=200), test_size=0.3, seed=0)
    >>> len(folds), len(folds[0].train), len(folds[0].test)
    (1, 140, 60)
"""

from __future__ import annotations

from dataclasses import dataclass

from hpo.data._base import DataSource, RegressionData
from hpo.data._split import Standardizer, kfold_splits, train_test_split


@dataclass(frozen=True)
class Fold:
    """One train/test pair of an evaluation: the single split, or one fold of k."""

    train: RegressionData
    test: RegressionData
    # Fitted on ``train`` when the study standardizes: an exported model needs it for new x.
    scaler: Standardizer | None = None


def prepare_folds(
    source: DataSource,
    *,
    test_size: float = 0.3,
    cv_folds: int | None = None,
    standardize: bool = False,
    seed: int = 0,
) -> list[Fold]:
    """Load the data once and split it: one train/test split, or k cross-validation folds."""
    data = source.load()
    pairs = kfold_splits(data, cv_folds, seed) if cv_folds else [
        train_test_split(data, test_size, seed)
    ]
    if standardize:
        return [_standardized(train_part, test_part) for train_part, test_part in pairs]
    return [Fold(train_part, test_part) for train_part, test_part in pairs]


def _standardized(train_part: RegressionData, test_part: RegressionData) -> Fold:
    scaler = Standardizer().fit(train_part)  # fitted on training rows only: no leak from test
    return Fold(scaler.transform(train_part), scaler.transform(test_part), scaler)
