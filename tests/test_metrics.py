from __future__ import annotations

import math

import pytest
import torch
from sklearn.metrics import mean_squared_error, r2_score

from hpo.errors import DataError
from hpo.train.metrics import DEFAULT_SCORES, mse, mse_and_r2, r2


def random_case(seed: int, n: int, noise: float, column: bool) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    shape = (n, 1) if column else (n,)
    y_true = torch.randn(shape, generator=generator) * 3 + 1
    y_pred = y_true + noise * torch.randn(shape, generator=generator)
    return y_true, y_pred


CASES = [
    (0, 2, 0.5, True),
    (1, 32, 0.1, True),
    (2, 300, 1.0, False),
    (3, 1000, 5.0, True),  # worse than the mean: R² < 0
    (4, 50, 0.0, False),  # exact predictions
]


@pytest.mark.parametrize(("seed", "n", "noise", "column"), CASES)
def test_mse_equals_sklearn(seed: int, n: int, noise: float, column: bool) -> None:
    y_true, y_pred = random_case(seed, n, noise, column)
    expected = mean_squared_error(y_true.numpy(), y_pred.numpy())
    assert mse(y_true, y_pred) == pytest.approx(expected, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize(("seed", "n", "noise", "column"), CASES)
def test_r2_equals_sklearn(seed: int, n: int, noise: float, column: bool) -> None:
    y_true, y_pred = random_case(seed, n, noise, column)
    expected = r2_score(y_true.numpy(), y_pred.numpy())
    assert r2(y_true, y_pred) == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_scores_flatten_column_against_flat() -> None:
    y_true, y_pred = random_case(7, 20, 0.3, column=True)
    assert r2(y_true, y_pred.ravel()) == pytest.approx(r2_score(y_true.ravel(), y_pred.ravel()))
    assert mse(y_true.ravel(), y_pred) == pytest.approx(mse(y_true, y_pred))


@pytest.mark.parametrize("y_pred", [[2.0, 2.0, 2.0], [2.0, 2.5, 1.0]])
def test_r2_of_constant_truth_follows_sklearn(y_pred: list[float]) -> None:
    y_true = [2.0, 2.0, 2.0]
    expected = r2_score(y_true, y_pred)
    assert r2(torch.tensor(y_true), torch.tensor(y_pred)) == expected


def test_r2_of_one_value_is_nan() -> None:
    assert math.isnan(r2(torch.tensor([1.0]), torch.tensor([2.0])))


def test_scores_ignore_autograd() -> None:
    y_pred = torch.tensor([1.0, 2.0, 4.0], requires_grad=True)
    assert isinstance(mse(torch.tensor([1.0, 2.0, 3.0]), y_pred), float)


@pytest.mark.parametrize("score", [mse, r2])
@pytest.mark.parametrize(("n_true", "n_pred"), [(3, 4), (0, 0)])
def test_scores_reject_mismatched_sizes(score: object, n_true: int, n_pred: int) -> None:
    with pytest.raises(DataError, match=r"must hold the same number \(> 0\) of values"):
        score(torch.zeros(n_true), torch.zeros(n_pred))  # type: ignore[operator]


def test_default_scores() -> None:
    assert {"mse": mse, "r2": r2} == DEFAULT_SCORES


@pytest.mark.parametrize(("y_true", "y_pred"), [
    ([1.0, 2.0, 3.0, 4.5], [1.1, 1.9, 3.3, 4.0]),
    ([2.0, 2.0, 2.0], [2.0, 2.0, 2.0]),  # constant, exact: R² 1
    ([2.0, 2.0, 2.0], [2.0, 2.5, 2.0]),  # constant, not exact: R² 0
    ([3.0], [1.0]),                      # one value: R² NaN
])
def test_mse_and_r2_at_once_equal_each_score(y_true: list[float], y_pred: list[float]) -> None:
    true, pred = torch.tensor(y_true).view(-1, 1), torch.tensor(y_pred).view(-1, 1)
    mse_value, r2_value = mse_and_r2(true, pred)
    assert mse_value == mse(true, pred)
    assert r2_value == r2(true, pred) or (math.isnan(r2_value) and math.isnan(r2(true, pred)))
