"""The parts a study trains and scores on: the folds trials are scored on during the search,
and the held-out test part that only the final scoring reads.

Three ways to cut the rows (``test_size`` is a share of all rows, ``validation_size`` a
share of the rest):

- ``validation_size > 0`` (one split): train / validation / test. Trials train on the train
  part and are scored (and pruned) on validation; the test part waits for the end.
- ``cv_folds = k``: k folds inside the non-test rows; ``test_size = 0`` cross-validates every
  row and holds nothing out (the course's ``GridSearchCV`` on mtcars).
- ``validation_size = 0``: the lab's own 0.7/0.3 split; trials are scored on the test part,
  so the best trial's score is chosen on the data it reports (optimistic).

In every case ``Fold.test`` is the part a trial is scored on; ``final_fold`` is the
(all non-test rows, test) pair the chosen configurations are scored on once, at the end.

Example:
    >>> from hpo.data import LabData
    >>> folds = prepare_folds(LabData(n=200), test_size=0.3, validation_size=0.2, seed=0)
    >>> len(folds), len(folds[0].train), len(folds[0].test)
    (1, 112, 28)
    >>> final = final_fold(LabData(n=200), test_size=0.3, seed=0)
    >>> len(final.train), len(final.test)
    (140, 60)
"""

from __future__ import annotations

from dataclasses import dataclass

from hpo.data._base import DataSource, RegressionData
from hpo.data._split import Standardizer, kfold_splits, train_test_split


@dataclass(frozen=True)
class Fold:
    """One (train, scored-on) pair: the single split, one fold of k, or the final test pair."""

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
    validation_size: float = 0.2,
) -> list[Fold]:
    """The folds trials are trained and scored on; the held-out test rows are never in them."""
    data = source.load()
    if cv_folds:
        pairs = kfold_splits(_searched_rows(data, test_size, seed), cv_folds, seed)
    elif validation_size:
        pairs = [train_test_split(_searched_rows(data, test_size, seed), validation_size, seed)]
    else:  # the lab's setting: trials are scored on the test part itself
        pairs = [train_test_split(data, test_size, seed)]
    return [_fold(train_part, scored_part, standardize) for train_part, scored_part in pairs]


def final_fold(
    source: DataSource, *, test_size: float = 0.3, standardize: bool = False, seed: int = 0
) -> Fold | None:
    """(every non-test row, the test part): where the chosen configs are scored at the end.

    None when the study holds no test part out (``test_size = 0``).
    """
    if not test_size:
        return None
    train_part, test_part = train_test_split(source.load(), test_size, seed)
    return _fold(train_part, test_part, standardize)


def refit_fold(
    source: DataSource, *, test_size: float = 0.3, standardize: bool = False, seed: int = 0
) -> Fold:
    """(every row the search read, the test part): what a refit trains on and is scored on.

    With no test part held out (``test_size = 0``) the refit is scored on its own rows.
    """
    final = final_fold(source, test_size=test_size, standardize=standardize, seed=seed)
    if final is not None:
        return final
    rows = source.load()
    return _fold(rows, rows, standardize)


def _searched_rows(data: RegressionData, test_size: float, seed: int) -> RegressionData:
    """The rows the search may read: all of them but the held-out test part."""
    if not test_size:
        return data
    return train_test_split(data, test_size, seed)[0]


def _fold(train_part: RegressionData, test_part: RegressionData, standardize: bool) -> Fold:
    if not standardize:
        return Fold(train_part, test_part)
    scaler = Standardizer().fit(train_part)  # fitted on training rows only: no leak from test
    return Fold(scaler.transform(train_part), scaler.transform(test_part), scaler)
