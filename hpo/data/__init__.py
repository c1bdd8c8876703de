"""Regression data for the training loop: sources, splits, standardization and batches.

Example:
    >>> from hpo.data import InMemoryBatches, LabData, train_test_split
    >>> train, test = train_test_split(LabData(n=1000, seed=0).load(), test_size=0.3, seed=0)
    >>> batches = InMemoryBatches(*train.tensors(), batch_size=64, seed=0)
"""

from __future__ import annotations

from hpo.data._base import DataSource, RegressionData
from hpo.data._batches import InMemoryBatches, RegressionDataset
from hpo.data._lab import LabData, lab_noise_scale, lab_truth
from hpo.data._split import Standardizer, kfold_splits, train_test_split
from hpo.data._tabular import CsvData, Mtcars, read_feature_csv
from hpo.data.folds import Fold, final_fold, prepare_folds, refit_fold

__all__ = [
    "CsvData",
    "DataSource",
    "Fold",
    "InMemoryBatches",
    "LabData",
    "Mtcars",
    "RegressionData",
    "RegressionDataset",
    "Standardizer",
    "final_fold",
    "kfold_splits",
    "lab_noise_scale",
    "lab_truth",
    "prepare_folds",
    "read_feature_csv",
    "refit_fold",
    "train_test_split",
]
