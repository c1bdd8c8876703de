from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from hpo.data import (
    CsvData,
    DataSource,
    InMemoryBatches,
    LabData,
    Mtcars,
    RegressionData,
    RegressionDataset,
    Standardizer,
    kfold_splits,
    lab_truth,
    train_test_split,
)
from hpo.errors import ConfigError, DataError


def numbered(n: int, features: int = 1) -> RegressionData:
    """Rows whose first feature is the row number, so splits can be checked row by row."""
    x = np.column_stack([np.arange(n) + 100 * k for k in range(features)])
    return RegressionData(x, np.arange(n) * 2.0, tuple(f"f{k}" for k in range(features)), "t")


# RegressionData


def test_regression_data_coerces_to_float32_columns() -> None:
    data = RegressionData(np.arange(5), np.arange(5), ("x",), "y")
    assert data.x.dtype == np.float32 and data.x.shape == (5, 1)
    assert data.y.dtype == np.float32 and data.y.shape == (5, 1)
    assert len(data) == 5 and data.n_features == 1


@pytest.mark.parametrize(
    ("x", "y", "names", "match"),
    [
        (np.zeros((4, 1)), np.zeros(3), ("x",), r"`y` must be shaped \(n, 1\)"),
        (np.zeros((4, 1)), np.zeros((4, 2)), ("x",), r"`y` must be shaped"),
        (np.zeros((4, 2)), np.zeros(4), ("x",), r"`feature_names` must name each of the 2"),
        (np.zeros((4, 1, 1)), np.zeros(4), ("x",), r"expected a 1-D or 2-D array"),
    ],
)
def test_regression_data_rejects_mismatched_shapes(
    x: np.ndarray, y: np.ndarray, names: tuple[str, ...], match: str
) -> None:
    with pytest.raises(DataError, match=match):
        RegressionData(x, y, names, "y")


def test_subset_and_tensors() -> None:
    data = numbered(6)
    part = data.subset([4, 1])
    assert part.x.ravel().tolist() == [4.0, 1.0] and part.y.ravel().tolist() == [8.0, 2.0]
    x, y = data.tensors()
    assert x.dtype == torch.float32 and tuple(x.shape) == (6, 1) and tuple(y.shape) == (6, 1)
    x[0, 0] = -1.0  # the tensors are copies: the frozen data must not change
    assert data.x[0, 0] == 0.0


# LabData


def test_lab_data_is_deterministic_for_a_seed() -> None:
    first, again, other = LabData(seed=3).load(), LabData(seed=3).load(), LabData(seed=4).load()
    np.testing.assert_array_equal(first.x, again.x)
    np.testing.assert_array_equal(first.y, again.y)
    assert not np.array_equal(first.y, other.y)


def test_lab_data_shape_interval_and_growing_noise() -> None:
    data = LabData(n=4000, seed=0).load()
    assert data.x.shape == (4000, 1) and data.feature_names == ("x",)
    assert data.x.min() >= -2.0 and data.x.max() <= 2.0
    residual = (data.y - lab_truth(data.x)).ravel()
    left, right = residual[data.x.ravel() < -1.0], residual[data.x.ravel() > 1.0]
    assert right.std() > 2.5 * left.std()  # the noise grows along x (0.02 → 0.17)


@pytest.mark.parametrize("kwargs", [{"n": 3}, {"n": 10.5}, {"seed": "a"}, {"n": True}])
def test_lab_data_rejects_bad_arguments(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match=r"must"):
        LabData(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "source", [LabData(n=50, seed=1), Mtcars(features=("wt", "hp")), CsvData("a.csv", ("u",), "v")]
)
def test_sources_are_picklable_data_sources(source: DataSource) -> None:
    assert isinstance(source, DataSource)
    assert pickle.loads(pickle.dumps(source)) == source
    assert source.describe()


# Mtcars and CsvData


def test_mtcars_defaults_to_mpg_on_wt() -> None:
    data = Mtcars().load()
    assert len(data) == 32 and data.feature_names == ("wt",) and data.target_name == "mpg"
    assert data.x[0, 0] == pytest.approx(2.62) and data.y[0, 0] == pytest.approx(21.0)
    assert Mtcars(features=("wt", "hp")).load().x.shape == (32, 2)
    assert Mtcars().describe() == "mtcars: mpg ~ wt"


def test_mtcars_unknown_column_lists_valid_columns() -> None:
    with pytest.raises(DataError, match=r"mtcars.csv: column 'weight' not found; valid .*'wt'"):
        Mtcars(features=("weight",)).load()


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "data.csv"
    path.write_text(text)
    return str(path)


def csv(*rows: str, header: str = "name,wt,mpg") -> str:
    return "\n".join([header, *rows]) + "\n"


GOOD_ROWS = ("a,1,10", "b,2,9", "c,3,7", "d,4,6")


def test_csv_data_loads_numeric_columns(tmp_path: Path) -> None:
    data = CsvData(write(tmp_path, csv(*GOOD_ROWS)), features=("wt",), target="mpg").load()
    assert data.x.ravel().tolist() == [1, 2, 3, 4] and data.y.ravel().tolist() == [10, 9, 7, 6]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (
            csv("a,1,10", "b,2,9", "c,abc,7", "d,4,6"),
            r"column 'wt' row 3 holds 'abc', expected a n",
        ),
        (
            csv("a,1,10", "b,2,9", "c,3,7", "d,4,"),
            r"column 'mpg' row 4 is empty, expected a number",
        ),
        (csv("a,1,10", "b, ,9", "c,3,7", "d,4,6"), r"column 'wt' row 2 is empty"),
        (
            csv("a,NA,10", "b,2,9", "c,3,7", "d,4,6"),
            r"column 'wt' row 1 holds 'NA', expected a num",
        ),
        (
            csv("a,1,10", "b,2,inf", "c,3,7", "d,4,6"),
            r"column 'mpg' row 2 holds 'inf', expected a f",
        ),
        (csv("a,1,10", "b,2,9", "c,3,7"), r"3 data rows, expected at least 4"),
        (csv("a,1,10", header="name,weight,mpg"), r"'wt' not found; valid columns are 'name', 'we"),
        ("", r"the file is empty, expected a header row"),
    ],
)
def test_csv_data_reports_file_column_and_row(tmp_path: Path, text: str, match: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=match) as caught:
        CsvData(path, features=("wt",), target="mpg").load()
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and "\n" not in message


def test_csv_data_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope.csv: no such file .*check the path"):
        CsvData(str(tmp_path / "nope.csv"), ("wt",), "mpg").load()


@pytest.mark.parametrize(
    ("features", "target", "match"),
    [
        ((), "mpg", r"`features` must name at least one column"),
        (("wt", 3), "mpg", r"`features` must name at least one column"),
        (("wt", "mpg"), "mpg", r"`target` must be one column name not among the features"),
    ],
)
def test_csv_data_validates_columns_when_built(
    features: tuple[str, ...], target: str, match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        CsvData("data.csv", features, target)


def test_a_bare_string_is_one_feature() -> None:
    assert Mtcars(features="wt").features == ("wt",)  # type: ignore[arg-type]


# Splits


def test_train_test_split_partitions_the_rows() -> None:
    train, test = train_test_split(numbered(1000), test_size=0.3, seed=0)
    assert (len(train), len(test)) == (700, 300)
    rows = np.concatenate([train.x.ravel(), test.x.ravel()])
    assert sorted(rows.tolist()) == list(range(1000))
    np.testing.assert_array_equal(train.y, train.x * 2)  # rows stay whole


def test_train_test_split_is_seeded() -> None:
    data = numbered(100)
    first, again = train_test_split(data, seed=5), train_test_split(data, seed=5)
    other = train_test_split(data, seed=6)
    np.testing.assert_array_equal(first[1].x, again[1].x)
    assert not np.array_equal(first[1].x, other[1].x)


@pytest.mark.parametrize(
    ("n", "test_size", "match"),
    [
        (10, 0.0, r"`0 < test_size < 1` must hold"),
        (10, 1.0, r"`0 < test_size < 1` must hold"),
        (10, -0.3, r"`0 < test_size < 1` must hold"),
        (10, 0.01, r"leaves 0 of 10 rows for testing"),
        (10, 0.99, r"leaves 10 of 10 rows for testing"),
    ],
)
def test_train_test_split_validates(n: int, test_size: float, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        train_test_split(numbered(n), test_size=test_size)


@pytest.mark.parametrize(("n", "k"), [(32, 3), (10, 10), (7, 2)])
def test_kfold_puts_every_row_in_exactly_one_test_fold(n: int, k: int) -> None:
    folds = kfold_splits(numbered(n), k=k, seed=1)
    assert len(folds) == k
    tested = np.concatenate([test.x.ravel() for _, test in folds])
    assert sorted(tested.tolist()) == list(range(n))
    for train, test in folds:
        assert sorted([*train.x.ravel().tolist(), *test.x.ravel().tolist()]) == list(range(n))


@pytest.mark.parametrize("k", [1, 11, 2.5])
def test_kfold_validates_k(k: int) -> None:
    with pytest.raises(ConfigError, match=r"`2 <= k <= len\(data\)` must hold"):
        kfold_splits(numbered(10), k=k)


def test_standardizer_uses_train_statistics_only() -> None:
    train, test = (
        numbered(40, features=2).subset(range(30)),
        numbered(40, features=2).subset(range(30, 40)),
    )
    scaler = Standardizer().fit(train)
    scaled = scaler.transform(train)
    np.testing.assert_allclose(scaled.x.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(scaled.x.std(axis=0), 1.0, atol=1e-5)
    expected = (test.x - train.x.mean(axis=0)) / train.x.std(axis=0)
    np.testing.assert_allclose(scaler.transform(test).x, expected, rtol=1e-5)
    np.testing.assert_array_equal(scaled.y, train.y)  # the target is left alone


def test_standardizer_keeps_constant_columns_finite() -> None:
    data = RegressionData(np.column_stack([np.ones(5), np.arange(5)]), np.zeros(5), ("c", "v"), "y")
    scaled = Standardizer().fit_transform(data)
    assert np.isfinite(scaled.x).all() and (scaled.x[:, 0] == 0.0).all()


def test_standardizer_errors() -> None:
    with pytest.raises(ConfigError, match=r"not fitted yet; call 'fit'"):
        Standardizer().transform(numbered(4))
    with pytest.raises(DataError, match=r"expected 2 features as in the fitted data, but got 1"):
        Standardizer().fit(numbered(4, features=2)).transform(numbered(4))


# RegressionDataset and InMemoryBatches


def test_regression_dataset_items_as_in_the_lab() -> None:
    dataset = RegressionDataset(numbered(5, features=3))
    x, y = dataset[2]
    assert len(dataset) == 5 and tuple(x.shape) == (3,) and tuple(y.shape) == (1,)
    assert x.tolist() == [2.0, 102.0, 202.0] and y.tolist() == [4.0]
    from_arrays = RegressionDataset(np.zeros((4, 1)), np.zeros((4, 1)))
    assert from_arrays[0][0].dtype == torch.float32
    xb, yb = next(iter(DataLoader(dataset, batch_size=4)))
    assert tuple(xb.shape) == (4, 3) and tuple(yb.shape) == (4, 1)


def test_regression_dataset_rejects_mismatched_rows() -> None:
    with pytest.raises(DataError, match=r"same number \(> 0\) of rows"):
        RegressionDataset(torch.zeros(4, 1), torch.zeros(3, 1))


def batches_of(
    n: int, batch_size: int | None, shuffle: bool = True, seed: int = 0
) -> InMemoryBatches:
    return InMemoryBatches.from_data(numbered(n), batch_size=batch_size, shuffle=shuffle, seed=seed)


@pytest.mark.parametrize(
    ("n", "batch_size", "expected"),
    [(700, 64, 11), (700, None, 1), (5, 1, 5), (64, 64, 1), (3, 10, 1)],
)
def test_in_memory_batches_len(n: int, batch_size: int | None, expected: int) -> None:
    batches = batches_of(n, batch_size)
    assert len(batches) == expected == len(list(batches))


def test_in_memory_batches_cover_every_row_once_per_epoch_in_fresh_orders() -> None:
    batches = batches_of(100, 16)
    epochs = [torch.cat([xb for xb, _ in batches]).ravel().tolist() for _ in range(3)]
    for order in epochs:
        assert sorted(order) == list(range(100))
    assert epochs[0] != epochs[1] != epochs[2]
    for xb, yb in batches:  # x and y rows stay paired
        assert torch.equal(yb, xb * 2)


def test_in_memory_batches_same_seed_same_batches() -> None:
    def orders(seed: int) -> list[list[float]]:
        batches = batches_of(50, 8, seed=seed)
        return [torch.cat([xb for xb, _ in batches]).ravel().tolist() for _ in range(3)]

    assert orders(1) == orders(1) != orders(2)


def test_in_memory_batches_without_shuffle_keep_row_order() -> None:
    order = torch.cat([xb for xb, _ in batches_of(20, 6, shuffle=False)]).ravel().tolist()
    assert order == list(range(20))


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_in_memory_batches_validate_batch_size(batch_size: int) -> None:
    with pytest.raises(ConfigError, match=r"`batch_size >= 1` must hold"):
        InMemoryBatches(torch.zeros(4, 1), torch.zeros(4, 1), batch_size=batch_size)
