"""Regression scores of the lab: mean squared error and R², equal to scikit-learn's.

One computation, `scores`, scores every model of a population at once (a mask keeps padded
rows out); the one-model functions below are it with a model axis of one.

Example:
    >>> y_true, y_pred = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.0, 4.0])
    >>> mse(y_true, y_pred), r2(y_true, y_pred)
    (0.3333333333333333, 0.5)
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from hpo.errors import DataError

ScoreFn = Callable[[torch.Tensor, torch.Tensor], float]
"""A score of predictions: ``fn(y_true, y_pred) -> float``."""


def scores(y: torch.Tensor, out: torch.Tensor,
           mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """MSE and R² per model, ``(models,)`` each, in float64 (float32 sums over many rows
    drift from scikit-learn's); ``y`` and ``out`` are ``(models, rows, ...)``, and ``mask``
    (``(models, rows, 1)``) marks each model's real rows.

    As scikit-learn's ``r2_score``: for a constant target R² is 1.0 when the predictions are
    exact and 0.0 otherwise; with fewer than two values it is NaN.
    """
    true, pred = y.reshape(len(y), -1).double(), out.detach().reshape(len(out), -1).double()
    if mask is None:
        residual = ((true - pred) ** 2).sum(1)
        total = ((true - true.mean(1, keepdim=True)) ** 2).sum(1)
        count = torch.full_like(residual, true.shape[1])
    else:
        real = mask.expand(*out.shape).reshape(len(out), -1)
        count = real.sum(1).double()
        residual = torch.where(real, (true - pred) ** 2, 0.0).sum(1)
        mean = torch.where(real, true, 0.0).sum(1, keepdim=True) / count[:, None]
        total = torch.where(real, (true - mean) ** 2, 0.0).sum(1)
    r2 = torch.where(total == 0, (residual == 0).double(), 1.0 - residual / total)
    return {"mse": residual / count, "r2": torch.where(count < 2, torch.nan, r2)}


def mse_and_r2(y_true: torch.Tensor, y_pred: torch.Tensor) -> tuple[float, float]:
    """``(mse, r2)`` of one model's predictions: `scores` with one copy to the host."""
    true, pred = _flat_pair(y_true, y_pred)
    both = scores(true[None], pred[None])
    mse_, r2_ = torch.stack([both["mse"][0], both["r2"][0]]).tolist()
    return mse_, r2_


def mse(y_true: torch.Tensor, y_pred: torch.Tensor) -> float:
    """Mean squared error over all elements, as ``sklearn.metrics.mean_squared_error``."""
    return mse_and_r2(y_true, y_pred)[0]


def r2(y_true: torch.Tensor, y_pred: torch.Tensor) -> float:
    """Coefficient of determination, as ``sklearn.metrics.r2_score`` (see `scores`)."""
    return mse_and_r2(y_true, y_pred)[1]


DEFAULT_SCORES: dict[str, ScoreFn] = {"mse": mse, "r2": r2}
"""The scores the training loop reports by default, as ``train_<name>`` / ``test_<name>``."""


def _flat_pair(y_true: torch.Tensor, y_pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if y_true.numel() != y_pred.numel() or y_true.numel() == 0:
        raise DataError(
            f"y_true and y_pred must hold the same number (> 0) of values, but got shapes "
            f"{tuple(y_true.shape)} and {tuple(y_pred.shape)}; score predictions of the targets."
        )
    return y_true.detach().reshape(-1), y_pred.detach().reshape(-1)
