"""Regression scores of the lab: mean squared error and R², equal to scikit-learn's.

Example:
    >>> y_true, y_pred = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 4.0])
    >>> mse(y_true, y_pred), r2(y_true, y_pred)
    (0.3333333333333333, 0.5)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from hpo.errors import DataError

ScoreFn = Callable[[torch.Tensor, torch.Tensor], float]
"""A score of predictions: ``fn(y_true, y_pred) -> float``."""


def mse(y_true: torch.Tensor, y_pred: torch.Tensor) -> float:
    """Mean squared error over all elements, as ``sklearn.metrics.mean_squared_error``."""
    true, pred = _flat_pair(y_true, y_pred)
    return float(torch.mean((true - pred) ** 2))


def r2(y_true: torch.Tensor, y_pred: torch.Tensor) -> float:
    """Coefficient of determination, as ``sklearn.metrics.r2_score``.

    Like scikit-learn: for a constant ``y_true`` it is 1.0 when the predictions are exact and
    0.0 otherwise; with fewer than two values it is NaN.
    """
    true, pred = _flat_pair(y_true, y_pred)
    if true.numel() < 2:
        return math.nan
    residual = float(torch.sum((true - pred) ** 2))
    total = float(torch.sum((true - true.mean()) ** 2))
    if total == 0.0:
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / total


def mse_and_r2(y_true: torch.Tensor, y_pred: torch.Tensor) -> tuple[float, float]:
    """``(mse(y_true, y_pred), r2(y_true, y_pred))`` with one copy to the host, not three.

    The training loop scores both parts every epoch; on a GPU each copy is a sync, and on a
    CPU each costs about as much as a small model's step.
    """
    true, pred = _flat_pair(y_true, y_pred)
    squares = (true - pred) ** 2
    mean, residual, total = torch.stack(
        [torch.mean(squares), torch.sum(squares), torch.sum((true - true.mean()) ** 2)]).tolist()
    if true.numel() < 2:
        return mean, math.nan
    if total == 0.0:
        return mean, 1.0 if residual == 0.0 else 0.0
    return mean, 1.0 - residual / total


DEFAULT_SCORES: dict[str, ScoreFn] = {"mse": mse, "r2": r2}
"""The scores the training loop reports by default, as ``train_<name>`` / ``test_<name>``."""


def _flat_pair(y_true: torch.Tensor, y_pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if y_true.numel() != y_pred.numel() or y_true.numel() == 0:
        raise DataError(
            f"y_true and y_pred must hold the same number (> 0) of values, but got shapes "
            f"{tuple(y_true.shape)} and {tuple(y_pred.shape)}; score predictions of the targets."
        )
    # float64: float32 sums over many rows drift from scikit-learn's result.
    return y_true.detach().reshape(-1).double(), y_pred.detach().reshape(-1).double()
