"""Validation and test parts, seeds per trial, the refit export, and the verdict's interval.

The search must choose on validation and leave the test part alone until the end; these
tests look at exactly what the objective was given, refit the course's linear model on
mtcars against least squares, and check the paired interval against scipy's own.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.linear_model import LinearRegression

import hpo.runners.population
import hpo.runners.trials
import hpo.runners.worker_loop
import hpo.train.objective
from hpo import LabData, Mtcars, RunOptions, Study, run
from hpo.cli import main
from hpo.data import final_fold, prepare_folds
from hpo.errors import ConfigError
from hpo.results.export import export, predict
from hpo.results.holdout import heldout_scores, score_best_on_test
from hpo.results.verdict import paired_interval, verdict_sentence
from hpo.store.attrs import TEST_ATTR, trial_params
from hpo.store.record import score_label, stored_record
from hpo.store.summary import best_trial
from hpo.train.batched import train_population
from hpo.train.objective import evaluate, train_and_score, training_seeds
from hpo.train.reporter import MemoryReporter
from search_spaces import (
    Choice,
    suggest_architecture,
    suggest_optimizer,
    suggest_scheduler,
    suggest_training,
)

QUIET = {"progress": False, "workers": 1}


def lab_space(trial: Any) -> dict[str, Any]:
    return {
        **suggest_architecture(trial, hidden_layers=1, width=8, activation="tanh",
                               batch_norm=False, dropout=0.0),
        **suggest_optimizer(trial, optimizer="adam", weight_decay=0.0),
        **suggest_training(trial, batch_size=32, epochs=4),
        **suggest_scheduler(trial, families="cosine"),
    }


def cars_space(trial: Any) -> dict[str, Any]:
    """The course's linear model, full-batch SGD: long enough to reach least squares."""
    return {
        **suggest_architecture(trial, hidden_layers=0, width=1, activation="tanh",
                               batch_norm=False, dropout=0.0),
        **suggest_optimizer(trial, optimizer="sgd", weight_decay=0.0, momentum=0.0,
                            nesterov=False),
        **suggest_training(trial, batch_size="full", epochs=2000),
        **suggest_scheduler(trial, families="constant",
                            overrides={"constant": {"lr": Choice([0.001, 0.05])}}),
    }


def rows(data: Any) -> set[tuple[float, float]]:
    return {(float(x), float(y)) for x, y in zip(data.x[:, 0], data.y[:, 0], strict=True)}


# --- the parts ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["single", "population"])
@pytest.mark.parametrize("cv_folds", [None, 3])
def test_search_never_gives_the_objective_the_test_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cv_folds: int | None, mode: str
) -> None:
    given: list[Any] = []  # per trial, the folds it trained and was scored on

    def population_spy(params: Any, fold: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(fold, list):  # every fold at once: one model per (trial, fold)
            count = len(folds_of_run)
            given.extend(fold[i:i + count] for i in range(0, len(fold), count))
        else:  # one fold at a time, in order
            if fold is folds_of_run[0]:
                given.extend([] for _ in params)
            for folds in given[-len(params):]:
                folds.append(fold)
        return train_population(params, fold, *args, **kwargs)

    study = Study(name="parts", space=lab_space, data=LabData(n=200), sampler="random",
                  pruner="none", n_trials=3, cv_folds=cv_folds)
    folds_of_run: list[Any] = []
    real_folds = hpo.runners.worker_loop.folds_from_record

    def remember_folds(*args: Any) -> Any:
        folds_of_run[:] = real_folds(*args)
        return folds_of_run

    monkeypatch.setattr(hpo.runners.population, "train_population", population_spy)
    # Every other training (one at a time, cross-validated groups) goes through the engine.
    monkeypatch.setattr(hpo.train.objective, "train_population", population_spy)
    monkeypatch.setattr(hpo.runners.worker_loop, "folds_from_record", remember_folds)
    storage = str(tmp_path / "s.journal")
    optuna_study = run(study, RunOptions(storage=storage, mode=mode, **QUIET))
    if mode == "population":
        assert {t.user_attrs["population"] for t in optuna_study.trials} == {3}
    final = final_fold(LabData(n=200), test_size=0.3, seed=0)
    assert final is not None and len(given) == 3
    test, non_test = rows(final.test), rows(final.train)
    for folds in given:
        seen = set().union(*(rows(f.train) | rows(f.test) for f in folds))
        assert not seen & test  # not one test row reached the objective
        assert seen == non_test  # and every other row did
    assert TEST_ATTR not in optuna_study.user_attrs  # nothing scored on test yet
    # The end: the best trial scored once on test, refit on every non-test row.
    held_out = score_best_on_test(optuna_study)
    assert held_out is not None and optuna_study.user_attrs[TEST_ATTR] == held_out
    best = best_trial(optuna_study)
    by_hand = train_and_score(trial_params(best), [final], seed=best.user_attrs["seed"])[0]
    assert held_out["test_r2"] == pytest.approx(by_hand, abs=1e-9)


def test_default_parts_are_train_validation_test() -> None:
    study = Study(name="s", space=lab_space)
    (fold,) = prepare_folds(LabData(), test_size=study.test_size,
                            validation_size=study.validation_size, seed=0)
    assert (len(fold.train), len(fold.test)) == (560, 140)
    assert score_label({"validation_size": 0.2}) == "validation R²"
    assert score_label({"validation_size": 0.0}) == "test R²"  # the lab's own setting
    assert score_label({"cv_folds": 3}) == "3-fold CV R²"


def test_lab_setting_scores_trials_on_the_test_part() -> None:
    (fold,) = prepare_folds(LabData(), test_size=0.3, validation_size=0.0, seed=0)
    final = final_fold(LabData(), test_size=0.3, seed=0)
    assert final is not None and rows(fold.test) == rows(final.test)
    assert len(fold.train) == 700


def test_resuming_with_another_validation_size_is_refused(tmp_path: Path) -> None:
    storage = str(tmp_path / "s.journal")
    study = Study(name="s", space=lab_space, data=LabData(n=100), n_trials=1, pruner="none")
    run(study, RunOptions(storage=storage, **QUIET))
    with pytest.raises(ConfigError, match="other validation_size"):
        run(study.replace(validation_size=0.0, n_trials=2), RunOptions(storage=storage, **QUIET))


# --- seeds --------------------------------------------------------------------------------


def test_a_trial_scored_over_seeds_is_their_mean(tmp_path: Path) -> None:
    study = Study(name="seeds", space=lab_space, data=LabData(n=150), sampler="random",
                  pruner="none", n_trials=1, seeds=3, seed=4)
    optuna_study = run(study, RunOptions(storage=str(tmp_path / "s.journal"), **QUIET))
    torch.set_num_threads(1)
    trial = optuna_study.trials[0]
    folds = prepare_folds(LabData(n=150), validation_size=0.2, seed=4)
    by_hand = [evaluate(trial_params(trial), folds, MemoryReporter(), seed=s)
               for s in training_seeds(4, 3)]
    assert trial.user_attrs["seed_scores"] == pytest.approx(by_hand, abs=1e-9)
    assert trial.value == pytest.approx(statistics.fmean(by_hand), abs=1e-12)
    assert trial.user_attrs["r2_sd"] == pytest.approx(statistics.stdev(by_hand), abs=1e-12)
    assert trial.user_attrs["epochs_trained"] == 3 * 4
    assert len(trial.intermediate_values) == 4  # the first seed's curve, for the pruner


# --- refit --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cars(tmp_path_factory: pytest.TempPathFactory) -> str:
    storage = str(tmp_path_factory.mktemp("cars") / "s.journal")
    study = Study(name="cars", space=cars_space, data=Mtcars(features=("wt",), target="mpg"),
                  cv_folds=3, test_size=0, sampler="grid", pruner="none",
                  grid={"lr": [0.001, 0.05]})
    run(study, RunOptions(storage=storage, **QUIET))
    torch.set_num_threads(1)
    return storage


def test_refit_lands_on_least_squares(cars: str, tmp_path: Path) -> None:
    extra = export("cars", tmp_path / "cars.pt", storage=cars)
    data = Mtcars(features=("wt",), target="mpg").load()
    ols = LinearRegression().fit(data.x.astype(float), data.y.astype(float).ravel())
    assert (round(float(ols.coef_[0]), 4), round(float(ols.intercept_), 4)) == (-5.3445, 37.2851)
    intercept, one = predict(tmp_path / "cars.pt", [0.0, 1.0])
    assert one - intercept == pytest.approx(ols.coef_[0], abs=2e-3)
    assert intercept == pytest.approx(ols.intercept_, abs=2e-3)
    assert extra["model"] == "refit" and extra["refit_rows"] == 32
    assert extra["params"]["lr"] == 0.05 and extra["stored_r2"] is None  # nothing held out


def test_refit_command_says_so_and_as_trained_refuses(
    cars: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "cars", "--out", str(tmp_path / "c.pt"), "--storage", cars]) == 0
    assert "refit on all 32 rows the search read, as GridSearchCV(refit=True)" in (
        capsys.readouterr().out)
    code = main(["export", "cars", "--out", str(tmp_path / "d.pt"), "--storage", cars,
                 "--as-trained"])
    assert code != 0 and "drop --as-trained" in capsys.readouterr().err
    assert not (tmp_path / "d.pt").exists()


def test_run_names_a_cv_score_as_such(cars: str, capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    study_file = tmp_path / "cars_study.py"
    study_file.write_text(
        "from tests.test_verdict import cars_space\nfrom hpo import Mtcars, Study\n"
        "STUDY = Study(name='cars', space=cars_space, data=Mtcars(features=('wt',), "
        "target='mpg'), cv_folds=3, test_size=0, sampler='grid', pruner='none', "
        "grid={'lr': [0.001, 0.05]})\n", encoding="utf-8")
    assert main(["run", str(study_file), "--storage", cars, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "best score (3-fold CV R²):" in out and "test R²)" not in out


def test_heldout_scores_refuse_a_study_without_test_part(cars: str) -> None:
    from hpo.results.tables import load_study

    record = stored_record(load_study("cars", cars))
    with pytest.raises(ConfigError, match="held no test part out"):
        heldout_scores({}, record, [0])


# --- the interval -------------------------------------------------------------------------


def test_paired_interval_equals_scipys() -> None:
    search = [0.981, 0.978, 0.984, 0.979, 0.983]
    manual = [0.977, 0.976, 0.979, 0.978, 0.980]
    diff, low, high = paired_interval(search, manual)
    expected = stats.ttest_rel(search, manual).confidence_interval(0.95)
    assert diff == pytest.approx(np.mean(np.subtract(search, manual)), abs=1e-15)
    assert (low, high) == pytest.approx((expected.low, expected.high), abs=1e-12)


@pytest.mark.parametrize(
    ("diff", "low", "high", "sentence"),
    [
        (0.004, 0.001, 0.007, "the search's best beats the best hand-picked config by 0.0040 "
                              "R², 95% CI 0.0010 to 0.0070"),
        (-0.004, -0.007, -0.001, "the best hand-picked config beats the search's best by "
                                 "0.0040 R², 95% CI 0.0010 to 0.0070"),
        (0.001, -0.002, 0.004, "no difference the seeds can resolve"),
        (0.001, float("nan"), float("nan"), "one seed gives no interval"),
    ],
)
def test_verdict_sentence(diff: float, low: float, high: float, sentence: str) -> None:
    assert verdict_sentence(diff, low, high).startswith(sentence)
