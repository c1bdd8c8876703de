"""The population (batched) path against the one-at-a-time path, and its runner."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from hpo import ConfigError, LabData, Mtcars, Study
from hpo.data import Fold, prepare_folds
from hpo.runners.optuna_runner import RunOptions, run
from hpo.study.file import load_from_file
from hpo.train.batched import train_population
from hpo.train.objective import train_params
from search_spaces import FAMILIES, OPTIMIZERS, suggest_optimizer, suggest_scheduler
from tests.conftest import write_study

EPOCHS = 8
NET = {"hidden_layers": 2, "width": 6, "activation": "tanh", "batch_norm": False,
       "dropout": 0.0, "batch_size": 32, "epochs": EPOCHS}


@pytest.fixture(scope="module")
def fold() -> Fold:
    return prepare_folds(LabData(n=120, seed=0), test_size=0.3, seed=0)[0]


def _config(family: str, optimizer: str, seed: int, **net: Any) -> dict[str, Any]:
    """Knob values drawn at random from the real spaces (momentum, nesterov included)."""
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed)).ask()
    return {**NET, **net, **suggest_optimizer(trial, optimizer=optimizer),
            **suggest_scheduler(trial, families=family)}


def _assert_same_curves(params: list[dict[str, Any]], fold: Fold, r2_tolerance: float) -> None:
    seeds = [7 + i for i in range(len(params))]
    members = train_population(params, fold, seeds)
    for config, seed, member in zip(params, seeds, members, strict=True):
        _, _, alone = train_params(config, fold, seed=seed)
        history = alone.history
        assert len(member.rows) == len(history) == EPOCHS
        assert [row["lr"] for row in member.rows] == pytest.approx(list(history["lr"]),
                                                                   rel=1e-12)
        batched = [row["test_r2"] for row in member.rows]
        expected = list(history["test_r2"])
        assert batched == pytest.approx(expected, rel=1e-4, abs=r2_tolerance), config


optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_every_family_and_optimizer_matches_the_one_at_a_time_path(fold: Fold) -> None:
    # One population mixing all nine schedules and four optimizers: lr per epoch equal,
    # R² per epoch equal up to float32 rounding (relative 1e-4: some draws score R² -38).
    params = [_config(family, optimizer, seed=i)
              for i, (family, optimizer) in enumerate(
                  (f, o) for f in FAMILIES for o in OPTIMIZERS)]
    _assert_same_curves(params, fold, r2_tolerance=1e-5)


@pytest.mark.parametrize("family", ["cosine", "plateau"])
def test_batch_norm_matches_with_sgd(fold: Fold, family: str) -> None:
    # With batch norm the bias before it has a zero true gradient; Adam-like optimizers
    # scale its rounding noise up to a full step, so only SGD is compared (measured: 1e-5).
    params = [_config(family, "sgd", seed=i, batch_norm=True) for i in range(3)]
    _assert_same_curves(params, fold, r2_tolerance=1e-3)


def test_a_pruned_model_stops_alone(fold: Fold) -> None:
    params = [_config("cosine", "adam", seed=i) for i in range(3)]
    members = train_population(params, fold, [0, 1, 2],
                               callback=lambda epoch, rows: {1} if epoch == 3 else set())
    assert [len(m.rows) for m in members] == [EPOCHS, 3, EPOCHS]
    assert [m.stopped for m in members] == [None, "callback", None]
    _, _, alone = train_params(params[2], fold, seed=2)
    assert members[2].rows[-1]["test_r2"] == pytest.approx(alone.history["test_r2"].iloc[-1],
                                                           abs=1e-5)


def test_a_diverging_model_fails_alone() -> None:
    # The course's lesson: SGD at lr 0.1 on mpg ~ wt diverges, 0.02 converges.
    fold = prepare_folds(Mtcars(features=("wt",), target="mpg"), test_size=0.3, seed=0)[0]
    base = {"hidden_layers": 0, "optimizer": "sgd", "scheduler": "constant",
            "batch_size": "full", "epochs": 300}
    params = [{**base, "lr": 0.1}, {**base, "lr": 0.02}]
    members = train_population(params, fold, [0, 1])
    assert members[0].stopped == "diverged" and "diverged at epoch" in members[0].message
    assert members[1].stopped is None and len(members[1].rows) == 300
    _, _, alone = train_params(params[1], fold, seed=1)
    assert members[1].rows[-1]["test_r2"] == pytest.approx(alone.history["test_r2"].iloc[-1],
                                                           abs=1e-5)


def _grid_study(name: str) -> Study:
    from studies.cars_grid import space

    return Study(name=name, space=space, data=Mtcars(features=("wt",), target="mpg"),
                 cv_folds=3, sampler="grid", pruner="none",
                 grid={"lr": [0.02, 0.05, 0.1], "epochs": [10, 200]}, seed=0)


def test_a_cross_validated_grid_stores_what_one_at_a_time_stores(tmp_path: Path) -> None:
    stored = {}
    for mode in ("population", "single"):
        study = run(_grid_study(mode), RunOptions(storage=str(tmp_path / "s.journal"),
                                                  workers=1, progress=False, mode=mode))
        stored[mode] = {(t.params["lr"], t.params["epochs"]): t for t in study.trials}
    for point, alone in stored["single"].items():
        batched = stored["population"][point]
        assert batched.state == alone.state, point
        assert set(alone.user_attrs) <= set(batched.user_attrs)
        assert batched.user_attrs["ended"] == alone.user_attrs["ended"]
        if alone.state == TrialState.COMPLETE:
            assert batched.value == pytest.approx(alone.value, rel=1e-5, abs=1e-5)
    assert stored["population"][(0.1, 200)].user_attrs["ended"] == "diverged"


def test_the_runner_prunes_and_records_each_trial(tmp_path: Path) -> None:
    study = load_from_file(write_study(tmp_path, pruner="median", sampler="random",
                                       n_trials=24, epochs=10, lr_low=1e-5, lr_high=0.3),
                           "tiny")
    trials = run(study, RunOptions(storage=str(tmp_path / "s.journal"), workers=1,
                                   progress=False, population_size=8)).trials  # batches of 8, 8, 8
    assert len(trials) == 24
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, "a wide lr range gives the median pruner something to cut"
    for trial in pruned:
        assert trial.user_attrs["ended"] == "pruned"
        assert trial.user_attrs["epochs_run"] == max(trial.intermediate_values) < 10
    for trial in trials:
        assert trial.user_attrs["population"] == 8
        if trial.state == TrialState.COMPLETE:
            assert trial.user_attrs["test_r2"] == trial.value
            assert len(trial.intermediate_values) == 10
            assert math.isfinite(trial.user_attrs["seconds"])


@pytest.mark.parametrize(("field", "value", "match"), [
    ("mode", "fast", "`mode` must be one of"),
    ("population_size", 0, "population_size >= 1"),
])
def test_run_options_refuse_bad_values(field: str, value: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        RunOptions(**{field: value})
