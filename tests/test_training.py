from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LinearRegression
from torch import nn
from torch.utils.data import DataLoader

from hpo.data import InMemoryBatches, LabData, Mtcars, RegressionDataset, train_test_split
from hpo.errors import ConfigError, DataError
from hpo.train.checkpoints import load_model, save_model
from hpo.train.loop import TrainResult, train
from hpo.train.metrics import mse
from hpo.train.models import ModelSpec, build_model

LAB_NET = ModelSpec(hidden=(20, 20), activation="tanh")
COLUMNS = ["epoch", "lr", "seconds", "train_loss", "test_loss"]
COLUMNS += ["train_mse", "test_mse", "train_r2", "test_r2"]


def lab_trial(
    spec: ModelSpec = LAB_NET, lr: float = 0.01, cosine: bool = True, seed: int = 0
) -> TrainResult:
    """The lab's cosine trial: Adam, CosineAnnealingLR(T_max=50), 50 epochs, batch 64, 0.7/0.3."""
    train_data, test_data = train_test_split(LabData(n=1000, seed=0).load(), 0.3, seed=0)
    model = build_model(spec, seed=seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=50) if cosine else None
    return train(
        model,
        InMemoryBatches.from_data(train_data, batch_size=64, seed=seed),
        test_batches=InMemoryBatches.from_data(test_data, batch_size=None, shuffle=False),
        epochs=50,
        optimizer=optimizer,
        scheduler=scheduler,
    )


def final_r2(result: TrainResult) -> float:
    return float(result.history["test_r2"].iloc[-1])


def mtcars_batches(batch_size: int | None = None) -> InMemoryBatches:
    return InMemoryBatches.from_data(Mtcars().load(), batch_size=batch_size)


# Oracles


def test_linear_regression_lands_on_least_squares() -> None:
    data = Mtcars().load()
    model = build_model(ModelSpec(), seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02)  # the course's rate
    result = train(model, mtcars_batches(), epochs=3000, optimizer=optimizer)
    assert result.stopped is None and result.epochs_run == 3000
    ols = LinearRegression().fit(data.x, data.y.ravel())
    assert ols.coef_[0] == pytest.approx(-5.3445, abs=1e-3)  # the course's figures
    assert ols.intercept_ == pytest.approx(37.2851, abs=1e-3)
    assert isinstance(model, nn.Linear)
    assert model.weight.item() == pytest.approx(ols.coef_[0], abs=0.05)
    assert model.bias.item() == pytest.approx(ols.intercept_, abs=0.1)
    assert result.history["train_r2"].iloc[-1] == pytest.approx(0.7528, abs=1e-3)


def test_lab_network_fits_the_lab_data_and_a_line_does_not() -> None:
    lab_net, line = final_r2(lab_trial()), final_r2(lab_trial(ModelSpec()))
    assert lab_net >= 0.9
    assert line < 0.5


@pytest.mark.parametrize(("lr", "cosine"), [(1e-4, False), (1.0, True)])
def test_a_poor_learning_rate_scores_clearly_lower(lr: float, cosine: bool) -> None:
    assert final_r2(lab_trial(lr=lr, cosine=cosine)) < final_r2(lab_trial()) - 0.15


def test_same_seed_same_results() -> None:
    first, again, other = lab_trial(seed=1), lab_trial(seed=1), lab_trial(seed=2)
    scored = [column for column in COLUMNS if column != "seconds"]
    pd.testing.assert_frame_equal(first.history[scored], again.history[scored])
    assert not first.history[scored].equals(other.history[scored])


def test_data_loader_and_in_memory_batches_train_alike() -> None:
    data = Mtcars().load()

    def run(batches: object) -> pd.DataFrame:
        model = build_model(ModelSpec(), seed=0)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.02)
        result = train(model, batches, epochs=5, optimizer=optimizer, test_batches=batches)  # type: ignore[arg-type]
        return result.history.drop(columns="seconds")

    loader = DataLoader(RegressionDataset(data), batch_size=8, shuffle=False)
    in_memory = InMemoryBatches.from_data(data, batch_size=8, shuffle=False)
    pd.testing.assert_frame_equal(run(loader), run(in_memory), rtol=1e-5)


# The loop


def test_history_has_a_row_per_epoch() -> None:
    result = train(
        build_model(ModelSpec()), mtcars_batches(8), epochs=4, test_batches=mtcars_batches()
    )
    history = result.history
    assert list(history.columns) == COLUMNS
    assert history["epoch"].tolist() == [1, 2, 3, 4]
    assert history["seconds"].is_monotonic_increasing and (history["seconds"] > 0).all()
    np.testing.assert_allclose(history["train_loss"], history["train_mse"], rtol=1e-5)
    np.testing.assert_allclose(history["test_loss"], history["test_mse"], rtol=1e-5)
    assert (result.stopped, result.message, result.diverged) == (None, "completed 4 epochs", False)


def test_testing_runs_in_eval_mode() -> None:
    # With dropout, only eval-mode predictions are reproducible after training.
    data = Mtcars().load()
    model = build_model(ModelSpec(hidden=(16,), dropout=0.5), seed=0)
    result = train(model, mtcars_batches(8), epochs=3, test_batches=mtcars_batches())
    model.eval()
    with torch.no_grad():
        expected = mse(data.tensors()[1], model(data.tensors()[0]))
    assert result.history["test_mse"].iloc[-1] == pytest.approx(expected, rel=1e-6)


def test_train_only_has_no_test_columns() -> None:
    result = train(build_model(ModelSpec()), mtcars_batches(), epochs=2)
    assert list(result.history.columns) == [
        "epoch", "lr", "seconds", "train_loss", "train_mse", "train_r2",
    ]  # fmt: skip


def test_custom_scores_and_loss() -> None:
    def mae(y_true: torch.Tensor, y_pred: torch.Tensor) -> float:
        return float((y_true - y_pred).abs().mean())

    result = train(
        build_model(ModelSpec()), mtcars_batches(), epochs=2, loss_fn=nn.L1Loss(),
        test_batches=mtcars_batches(), scores={"mae": mae},
    )  # fmt: skip
    assert list(result.history.columns)[-2:] == ["train_mae", "test_mae"]
    np.testing.assert_allclose(result.history["test_loss"], result.history["test_mae"], rtol=1e-5)


def test_default_optimizer_is_sgd_with_lr_001() -> None:
    result = train(build_model(ModelSpec()), mtcars_batches(), epochs=2)
    assert result.history["lr"].tolist() == [0.01, 0.01]


@pytest.mark.parametrize("epochs", [0, -3, 2.5, True])
def test_epochs_are_validated(epochs: int) -> None:
    with pytest.raises(ConfigError, match=r"`epochs >= 1` must hold"):
        train(build_model(ModelSpec()), mtcars_batches(), epochs=epochs)


def test_empty_batches_are_refused() -> None:
    with pytest.raises(DataError, match=r"the train batches are empty"):
        train(build_model(ModelSpec()), [], epochs=1)


# Schedulers


def lr_column(scheduler_for: object, epochs: int = 5, lr: float = 0.1) -> list[float]:
    model = build_model(ModelSpec())
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    scheduler = scheduler_for(optimizer)  # type: ignore[operator]
    result = train(model, mtcars_batches(), epochs=epochs, optimizer=optimizer, scheduler=scheduler)
    return result.history["lr"].tolist()


def test_scheduler_steps_once_per_epoch_after_training() -> None:
    lrs = lr_column(
        lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5), lr=1e-4
    )
    np.testing.assert_allclose(lrs, [1e-4 * 0.5**k for k in range(5)])


def test_exponential_decay_as_in_the_lab() -> None:
    epochs, start, end = 6, 1e-3, 1e-5
    gamma = (end / start) ** (1 / epochs)
    lrs = lr_column(lambda opt: torch.optim.lr_scheduler.ExponentialLR(opt, gamma), epochs, start)
    np.testing.assert_allclose(lrs, [start * gamma**k for k in range(epochs)])


class RecordingPlateau(torch.optim.lr_scheduler.ReduceLROnPlateau):
    def __init__(self, optimizer: torch.optim.Optimizer, **kwargs: object) -> None:
        super().__init__(optimizer, **kwargs)  # type: ignore[arg-type]
        self.seen: list[float] = []

    def step(self, metrics: float, epoch: int | None = None) -> None:  # type: ignore[override]
        self.seen.append(metrics)
        super().step(metrics)


@pytest.mark.parametrize("with_test", [True, False])
def test_plateau_gets_the_test_loss_or_else_the_train_loss(with_test: bool) -> None:
    model = build_model(ModelSpec())
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
    scheduler = RecordingPlateau(optimizer)
    test = mtcars_batches() if with_test else None
    result = train(
        model,
        mtcars_batches(),
        epochs=3,
        optimizer=optimizer,
        scheduler=scheduler,
        test_batches=test,
    )
    expected = result.history["test_loss" if with_test else "train_loss"]
    np.testing.assert_allclose(scheduler.seen, expected)


def test_plateau_lowers_the_lr_when_the_loss_stalls() -> None:
    model = build_model(ModelSpec())
    idle = nn.Parameter(torch.zeros(1))  # the optimizer moves nothing of the model: loss stalls
    optimizer = torch.optim.SGD([idle], lr=1.0)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, patience=0, factor=0.5)
    result = train(model, mtcars_batches(), epochs=4, optimizer=optimizer, scheduler=scheduler)
    assert result.history["lr"].tolist() == [1.0, 1.0, 0.5, 0.25]


# Stopping


@pytest.mark.parametrize(("lr", "batch_size"), [(1e6, 8), (0.1, None)])  # 0.1: the course's
def test_divergence_stops_without_a_nan_row(lr: float, batch_size: int | None) -> None:
    model = build_model(ModelSpec(), seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    result = train(
        model, mtcars_batches(batch_size), epochs=300, optimizer=optimizer,
        test_batches=mtcars_batches(),
    )  # fmt: skip
    assert result.stopped == "diverged" and result.diverged
    assert result.epochs_run < 300
    assert np.isfinite(result.history.to_numpy()).all()
    assert result.history["train_loss"].dtype == np.float64  # typed even when empty
    epoch = result.epochs_run + 1
    assert re.fullmatch(
        rf"diverged at epoch {epoch}: (training|test) loss is (nan|inf)", result.message
    )


def test_callback_sees_every_row_and_can_stop() -> None:
    seen: list[tuple[int, dict[str, float]]] = []

    def stop_at_three(epoch: int, row: dict[str, float]) -> bool:
        seen.append((epoch, row))
        return epoch == 3

    result = train(build_model(ModelSpec()), mtcars_batches(), epochs=10, callback=stop_at_three)
    assert (result.stopped, result.message) == ("callback", "stopped by callback at epoch 3")
    assert [epoch for epoch, _ in seen] == [1, 2, 3] and result.epochs_run == 3
    assert seen[-1][1] == result.history.iloc[-1].to_dict()


def test_callback_exceptions_propagate() -> None:
    class Pruned(Exception):
        pass

    def prune(epoch: int, row: dict[str, float]) -> None:
        raise Pruned(epoch)

    with pytest.raises(Pruned):
        train(build_model(ModelSpec()), mtcars_batches(), epochs=3, callback=prune)


def test_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    train(
        build_model(ModelSpec()),
        mtcars_batches(),
        epochs=2,
        test_batches=mtcars_batches(),
        progress=True,
    )
    assert "epochs" in capsys.readouterr().err


# Saving


@pytest.mark.parametrize(
    "spec", [ModelSpec(), ModelSpec(hidden=(20, 20), batch_norm=True, dropout=0.2)]
)
def test_save_load_predicts_the_same(tmp_path: Path, spec: ModelSpec) -> None:
    model = build_model(spec, seed=0)
    train(model, mtcars_batches(8), epochs=3, optimizer=torch.optim.Adam(model.parameters()))
    model.eval()
    x = Mtcars().load().tensors()[0]
    path = tmp_path / "sub" / "model.pt"
    save_model(path, model, spec, extra={"test_r2": 0.9, "params": {"lr": 0.01, "hidden": [20]}})
    loaded, loaded_spec, extra = load_model(path)
    assert loaded_spec == spec and not loaded.training
    assert extra == {"test_r2": 0.9, "params": {"lr": 0.01, "hidden": [20]}}
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_save_refuses_extra_that_weights_only_cannot_load(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"`extra\['arr'\]` must hold plain types .* got ndarray"):
        save_model(tmp_path / "m.pt", build_model(ModelSpec()), ModelSpec(), {"arr": np.zeros(2)})


def test_load_reports_missing_or_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope.pt: no such file"):
        load_model(tmp_path / "nope.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(DataError, match=r"garbage.pt: cannot be read .*save_model") as caught:
        load_model(garbage)
    assert "\n" not in str(caught.value)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(DataError, match=r"foreign.pt: not an hpo model file"):
        load_model(foreign)


def test_load_reports_weights_that_do_not_fit_the_spec(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    save_model(path, build_model(ModelSpec(hidden=(4,))), ModelSpec(hidden=(5,)))
    with pytest.raises(DataError, match=r"model.pt: spec and weights do not fit \(.*size mismatch"):
        load_model(path)
