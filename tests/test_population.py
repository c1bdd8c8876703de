"""The population (batched) path against the one-at-a-time path, and its runner."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import torch
from optuna.trial import TrialState

from hpo import ConfigError, LabData, Mtcars, Study
from hpo.data import Fold, prepare_folds
from hpo.runners.optuna_runner import RunOptions, run
from hpo.study.file import load_from_file
from hpo.train.batched import train_population
from hpo.train.loop import train_params
from search_spaces import FAMILIES, OPTIMIZERS, suggest_optimizer, suggest_scheduler
from tests.conftest import write_study

EPOCHS = 8
NET = {"hidden_layers": 2, "width": 6, "activation": "tanh", "batch_norm": False,
       "dropout": 0.0, "batch_size": 32, "epochs": EPOCHS}


@pytest.fixture(scope="module")
def fold() -> Fold:
    return prepare_folds(LabData(n=120, seed=0), test_size=0.3, seed=0)[0]


class _Float64Part:
    """A fold part whose tensors are float64 (RegressionData's are float32 by design)."""

    def __init__(self, part: Any) -> None:
        self.x, self.y = part.x.astype(np.float64), part.y.astype(np.float64)

    def __len__(self) -> int:
        return len(self.x)

    def tensors(self, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tensor(self.x, device=device), torch.tensor(self.y, device=device)


@pytest.fixture
def fold64(fold: Fold) -> Iterator[Fold]:
    """The fold and every model in float64, for the parity tests.

    In float32 the two paths round differently (``baddbmm`` sums in another order than one
    model's ``addmm``; Adam's step size is a tensor, not a Python float), and runs at a high
    rmsprop lr, whose R² swings between -20 and 0 epoch to epoch, blow the last-bit
    difference up to 1e-2 within 8 epochs. In float64 the rounding is 1e-16, so any
    difference beyond about 1e-12 is a real difference of the algorithm.
    """
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # build_model's weights in both paths
    try:
        yield dataclasses.replace(fold, train=_Float64Part(fold.train),
                                  test=_Float64Part(fold.test))
    finally:
        torch.set_default_dtype(default)


def _config(family: str, optimizer: str, seed: int, **net: Any) -> dict[str, Any]:
    """Knob values drawn at random from the real spaces (momentum, nesterov included)."""
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed)).ask()
    return {**NET, **net, **suggest_optimizer(trial, optimizer=optimizer),
            **suggest_scheduler(trial, families=family)}


def _assert_same_curves(params: list[dict[str, Any]], fold: Fold) -> None:
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
        assert batched == pytest.approx(expected, rel=1e-9, abs=1e-9), config


optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_every_family_and_optimizer_matches_the_one_at_a_time_path(fold64: Fold) -> None:
    # One population mixing all nine schedules and four optimizers: lr per epoch equal,
    # R² per epoch equal to float64 rounding (measured: 1e-13 at most).
    params = [_config(family, optimizer, seed=i)
              for i, (family, optimizer) in enumerate(
                  (f, o) for f in FAMILIES for o in OPTIMIZERS)]
    _assert_same_curves(params, fold64)


@pytest.mark.parametrize("family", ["cosine", "plateau"])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_batch_norm_matches(fold64: Fold, family: str, optimizer: str) -> None:
    # The Linear before batch norm has no bias (its true gradient would be zero, and Adam
    # scaled its rounding noise up to whole steps: 2e-7 in R² even in float64), so Adam
    # matches too.
    params = [_config(family, optimizer, seed=i, batch_norm=True) for i in range(3)]
    _assert_same_curves(params, fold64)


def test_models_that_join_a_running_population_match_training_alone(fold64: Fold) -> None:
    # A rolling population: two models start, more join after epochs 2 and 5 (one with an
    # optimizer kind and an activation the population had not had, one shallower and
    # narrower, with batch norm), each from its own epoch 1: per-model step counts (Adam's
    # bias correction), fresh optimizer state and schedules, its own data order.
    first = [_config("cosine", "adam", seed=0, batch_norm=True),
             _config("plateau", "sgd", seed=1, activation="relu")]
    joining = {2: [_config("step", "rmsprop", seed=2, activation="gelu"),
                   _config("exponential", "adamw", seed=3, hidden_layers=1, width=4,
                           batch_norm=True)],
               5: [_config("onecycle", "sgd", seed=4, epochs=3)]}
    seeds = iter(range(20, 30))
    started = [next(seeds), next(seeds)]
    admitted: list[tuple[dict[str, Any], int]] = []

    def admit(population: Any) -> None:
        for config in joining.pop(population.epochs_done, []):
            assert population.fits(config)
            seed = next(seeds)
            population.admit([config], [seed])
            admitted.append((config, seed))

    members = train_population(first, fold64, started, after_epoch=admit)
    assert len(members) == 5 and not joining
    every = list(zip(first, started, strict=True)) + admitted
    for (config, seed), member in zip(every, members, strict=True):
        _, _, alone = train_params(config, fold64, seed=seed)
        history = alone.history
        assert [row["epoch"] for row in member.rows] == list(history["epoch"])
        assert [row["lr"] for row in member.rows] == pytest.approx(list(history["lr"]),
                                                                   rel=1e-12)
        assert [row["test_r2"] for row in member.rows] == pytest.approx(
            list(history["test_r2"]), rel=1e-9, abs=1e-9), config


def test_a_model_that_does_not_fit_cannot_join(fold: Fold) -> None:
    def refuse(population: Any) -> None:
        assert population.fits({**NET, "optimizer": "sgd", "lr": 0.1, "scheduler": "constant"})
        assert not population.fits({**NET, "width": 7})  # wider than the layout
        assert not population.fits({**NET, "batch_norm": True})  # no batch norm weights
        assert not population.fits({**NET, "batch_size": 16})  # another group
        with pytest.raises(ValueError, match="fit"):
            population.admit([{**NET, "width": 7}], [0])

    train_population([_config("cosine", "adam", seed=0, epochs=1)], fold, [0],
                     after_epoch=refuse)


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
                                   progress=False, population_size=8)).trials
    assert len(trials) == 24
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, "a wide lr range gives the median pruner something to cut"
    for trial in pruned:
        assert trial.user_attrs["ended"] == "pruned"
        assert trial.user_attrs["epochs_run"] == max(trial.intermediate_values) < 10
    # The first 8 train together; then each population rolls: a trial that ends gives its
    # place to a new one, which joins the models still training (so none waits for the
    # slowest of a batch), up to the batch size of the trials done (8 here).
    assert [t.user_attrs["population"] for t in trials[:8]] == [8] * 8
    assert all(1 <= t.user_attrs["population"] <= 8 for t in trials)
    # Rolled in: b started while a trained, after a trial c that started with a had ended
    # (batch after batch, a trial starts only once every trial before it has ended).
    rolled_in = [b.number for a in trials for b in trials for c in trials
                 if a.datetime_start <= c.datetime_start
                 and c.datetime_complete < b.datetime_start < a.datetime_complete]
    assert rolled_in, "a pruned trial's place went to a new trial while others trained"
    for trial in trials:
        if trial.state == TrialState.COMPLETE:
            assert trial.user_attrs["test_r2"] == trial.value
            assert len(trial.intermediate_values) == 10
            assert math.isfinite(trial.user_attrs["seconds"])


def _two_group_space(trial: Any) -> dict[str, Any]:
    """Two batch sizes (two groups) and two widths: a new trial often does not fit the
    population that is training, and must wait for it to drain."""
    from search_spaces import Choice, suggest_architecture, suggest_training

    return {**suggest_architecture(trial, hidden_layers=1, width=Choice([4, 8]),
                                   activation="tanh", batch_norm=False, dropout=0.0),
            **suggest_optimizer(trial, optimizer="adam", weight_decay=0.0),
            **suggest_training(trial, batch_size=Choice([32, 64]), epochs=Choice([3, 6])),
            **suggest_scheduler(trial, families="cosine")}


def test_a_rolling_population_trains_every_trial_as_alone(tmp_path: Path) -> None:
    # Trials join populations mid-training, or wait when they do not fit; each trial's
    # stored curve is still the one it gets trained alone, and none is left behind.
    from hpo.store.attrs import trial_params
    from hpo.store.record import folds_from_record, study_record

    study = Study(name="mixed", space=_two_group_space, data=LabData(n=200, seed=0),
                  sampler="random", pruner="median", n_trials=24, seed=0)
    done = run(study, RunOptions(storage=str(tmp_path / "s.journal"), workers=1,
                                 progress=False, population_size=8))
    assert len(done.trials) == 24
    assert {t.state for t in done.trials} <= {TrialState.COMPLETE, TrialState.PRUNED}
    assert any("population" in t.user_attrs for t in done.trials)
    (fold,) = folds_from_record(study_record(study))
    for trial in done.trials:
        params = trial_params(trial)
        _, _, alone = train_params(params, fold, seed=study.seed + trial.number)
        expected = list(alone.history["test_r2"])
        stored = [trial.intermediate_values[epoch] for epoch in sorted(trial.intermediate_values)]
        # float32: the two paths round differently (1e-5 here; see fold64); a wrong data
        # order, optimizer state or schedule for a model that joined late is off by 1e-2+.
        assert stored == pytest.approx(expected[:len(stored)], abs=1e-3), trial.number
        if trial.state == TrialState.COMPLETE:
            assert len(stored) == params["epochs"]


def test_a_trial_that_joined_late_times_out_on_its_own_clock(tmp_path: Path) -> None:
    # 2-epoch trials finish and give their places to new ones; 20,000-epoch trials run past
    # --trial-timeout, each measured from when it joined, not from the population's start.
    # (400 epochs, as this test had, train in under the second on a fast machine.)
    def space(trial: Any) -> dict[str, Any]:
        from search_spaces import Choice, suggest_training

        return {**NET, "optimizer": "adam", "lr": 0.01, "scheduler": "constant",
                **suggest_training(trial, batch_size=32, epochs=Choice([2, 20_000]))}

    study = Study(name="late", space=space, data=LabData(n=120, seed=0), sampler="random",
                  pruner="none", n_trials=12, seed=0)
    done = run(study, RunOptions(storage=str(tmp_path / "s.journal"), workers=1,
                                 progress=False, population_size=4, trial_timeout=1.0))
    long = [t for t in done.trials if t.params["epochs"] == 20_000]
    short = [t for t in done.trials if t.params["epochs"] == 2]
    assert long and short and len(done.trials) == 12
    assert {t.user_attrs.get("ended") for t in long} == {"timeout"}
    assert {t.state for t in short} == {TrialState.COMPLETE}
    for trial in long:  # each ran about its own second
        assert (trial.datetime_complete - trial.datetime_start).total_seconds() >= 1.0
    first_start = min(t.datetime_start for t in done.trials)
    assert any((t.datetime_start - first_start).total_seconds() > 0.05 for t in long), \
        "some long trial joined a population that was already training"


def test_population_mode_is_refused_with_the_ray_runner(tmp_path: Path) -> None:
    study = load_from_file(write_study(tmp_path), "tiny")
    with pytest.raises(ConfigError, match="--mode population"):
        run(study, RunOptions(storage=str(tmp_path / "s.journal"), runner="ray",
                              mode="population", progress=False))


@pytest.mark.parametrize(("field", "value", "match"), [
    ("mode", "fast", "`mode` must be one of"),
    ("population_size", 0, "population_size >= 1"),
])
def test_run_options_refuse_bad_values(field: str, value: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        RunOptions(**{field: value})


# --- faults: as tests/test_faults.py for the one-at-a-time path ----------------------------

QUIET = {"progress": False, "workers": 1}


def _failing_populations(monkeypatch: pytest.MonkeyPatch, errors: list[BaseException]) -> None:
    """The population trainer raises ``errors`` in turn, one per call, then trains."""
    import hpo.runners.population as population_module

    real = population_module.train_population

    def train(*args: Any, **kwargs: Any) -> Any:
        if errors:
            raise errors.pop(0)
        return real(*args, **kwargs)

    monkeypatch.setattr(population_module, "train_population", train)


@pytest.mark.parametrize(("error", "reason"), [
    (RuntimeError("user code broke"), "error"),
    (torch.cuda.OutOfMemoryError("CUDA out of memory (fake)"), "oom"),
])
def test_a_fault_fails_its_population_with_a_reason_and_the_study_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException,
        reason: str) -> None:
    _failing_populations(monkeypatch, [error])
    study = load_from_file(write_study(tmp_path, n_trials=12, epochs=3), "tiny")
    storage = tmp_path / "s.journal"
    done = run(study, RunOptions(storage=str(storage), population_size=8, **QUIET))
    first, second = done.trials[:8], done.trials[8:]  # batches of 8, then 4
    assert [t.state for t in first] == [TrialState.FAIL] * 8
    assert {t.user_attrs["ended"] for t in first} == {reason}
    assert first[0].user_attrs["error"].endswith(str(error))
    assert first[0].user_attrs["runner"] == "optuna"
    assert [t.state for t in second] == [TrialState.COMPLETE] * 4
    if reason == "error":
        assert "Traceback" in Path(f"{storage}.errors.log").read_text()


def test_the_same_error_in_every_population_stops_the_run_once(
        in_tmp: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from hpo.cli import main

    _failing_populations(monkeypatch, [KeyError("width") for _ in range(10)])
    write_study(in_tmp, n_trials=40, epochs=3)
    code = main(["run", "tiny.py", "--workers", "1", "--no-progress",
                 "--population-size", "8"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "same error" in err[0] and "KeyError" in err[0]
    from hpo.store.storage import open_storage

    stored = optuna.load_study(study_name="tiny", storage=open_storage(str(in_tmp / "hpo.journal")))
    # A population's fault counts once: three populations of 8 failed, then the run stopped.
    assert [t.state for t in stored.trials] == [TrialState.FAIL] * 24


def test_an_interrupt_fails_the_population_and_queues_its_trials_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _failing_populations(monkeypatch, [KeyboardInterrupt()])
    study = load_from_file(write_study(tmp_path, n_trials=8, epochs=3), "tiny")
    storage = str(tmp_path / "s.journal")
    with pytest.raises(KeyboardInterrupt):
        run(study, RunOptions(storage=storage, population_size=8, **QUIET))
    from hpo.store.storage import open_storage

    trials = optuna.load_study(study_name="tiny", storage=open_storage(storage)).trials
    failed = [t for t in trials if t.state == TrialState.FAIL]
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    assert len(failed) == 8 and {t.user_attrs["ended"] for t in failed} == {"interrupted"}
    assert sorted(t.params["lr"] for t in waiting) == sorted(t.params["lr"] for t in failed)
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    # Run again: the queued copies train, and the study counts 8 finished trials.
    resumed = run(study, RunOptions(storage=storage, population_size=8, **QUIET))
    assert len([t for t in resumed.trials if t.state == TrialState.COMPLETE]) == 8


def test_a_mistake_in_the_space_fails_its_trial_alone(tmp_path: Path) -> None:
    path = write_study(tmp_path, n_trials=8, epochs=3)
    text = path.read_text().replace(
        "def space(trial):\n",
        "def space(trial):\n    if trial.number == 2:\n        raise KeyError('lr')\n")
    path.write_text(text)
    study = load_from_file(path, "tiny")
    done = run(study, RunOptions(storage=str(tmp_path / "s.journal"), population_size=8,
                                 **QUIET))
    states = {t.number: t.state for t in done.trials}
    assert states[2] == TrialState.FAIL and done.trials[2].user_attrs["ended"] == "error"
    assert "KeyError" in done.trials[2].user_attrs["error"]
    assert [n for n, s in states.items() if s == TrialState.COMPLETE] == [0, 1, 3, 4, 5, 6, 7]
    assert all(t.user_attrs["population"] == 7 for t in done.trials if t.number != 2)


def test_scoring_only_the_last_epoch_trains_the_same_models() -> None:
    # k-fold trials scored on their final epoch skip the other epochs' scores; the
    # models, the divergence and the final row must not change.
    fold = prepare_folds(Mtcars(features=("wt",), target="mpg"), test_size=0.3, seed=0)[0]
    base = {"hidden_layers": 0, "optimizer": "sgd", "batch_size": "full", "epochs": 300}
    params = [{**base, "lr": 0.1, "scheduler": "constant"},
              {**base, "lr": 0.02, "scheduler": "constant"},
              {**base, "lr": 0.05, "scheduler": "plateau", "plateau_factor": 0.5,
               "plateau_patience": 3}]
    every = train_population(params, fold, [0, 1, 2])
    last = train_population(params, fold, [0, 1, 2], every_epoch=False)
    assert last[0].stopped == every[0].stopped == "diverged"
    assert last[0].message == every[0].message
    for one, other in zip(every[1:], last[1:], strict=True):
        assert len(other.rows) == 1
        assert {k: v for k, v in other.rows[0].items() if k != "seconds"} == {
            k: v for k, v in one.rows[-1].items() if k != "seconds"}


@contextlib.contextmanager
def _float64_mtcars_folds() -> Iterator[list[Fold]]:
    """Mtcars's 3 folds in float64 (the default dtype meanwhile); their training parts
    differ by a row, so folds trained side by side are padded."""
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        folds = [dataclasses.replace(f, train=_Float64Part(f.train), test=_Float64Part(f.test))
                 for f in prepare_folds(Mtcars(features=("wt", "hp"), target="mpg"),
                                        cv_folds=3, standardize=True, seed=0)]
        assert len({len(f.train) for f in folds}) > 1  # the padding is exercised
        yield folds
    finally:
        torch.set_default_dtype(default)


def test_folds_trained_side_by_side_match_fold_after_fold() -> None:
    # k-fold CV as one more batch axis: the folds differ by a row, so each is padded and
    # masked; in float64 every fold's curve must equal that fold trained alone.
    with _float64_mtcars_folds() as folds:
        params = [{**_config(family, optimizer, seed=i), "batch_size": "full", "epochs": 30}
                  for i, (family, optimizer) in enumerate(
                      [("plateau", "adam"), ("cosine", "sgd"), ("step", "rmsprop")])]
        together = train_population([p for p in params for _ in folds],
                                    [f for _ in params for f in folds],
                                    [s + k for s in (3, 4, 5) for k in range(3)])
        for i, config in enumerate(params):
            for k, fold in enumerate(folds):
                (alone,) = train_population([config], fold, [3 + i + k])
                batched = together[i * len(folds) + k]
                for key in ("lr", "train_loss", "test_loss", "train_r2", "test_r2", "test_mse"):
                    assert [r[key] for r in batched.rows] == pytest.approx(
                        [r[key] for r in alone.rows], rel=1e-9, abs=1e-9), (config, k, key)


# --- populations that mix architectures and epochs ------------------------------------------

MIXED = [  # (hidden_layers, width, activation, batch_norm, epochs, optimizer, family)
    (2, 6, "tanh", False, 8, "adam", "cosine"),
    (2, 3, "sigmoid", False, 5, "sgd", "constant"),  # act(0) = 0.5: padding must not leak
    (1, 4, "relu", True, 8, "adam", "plateau"),
    (0, 1, "tanh", False, 6, "rmsprop", "step"),
    (2, 5, "gelu", True, 3, "adamw", "cosine"),
    (1, 2, "silu", False, 8, "sgd", "exponential"),
    (2, 6, "leaky_relu", True, 7, "rmsprop", "constant"),
    (1, 6, "elu", False, 4, "adam", "constant"),
]


@pytest.fixture
def sigmoid(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sigmoid as one more activation (both paths read the same dict): the one whose
    act(0) != 0, so a padded unit that is not masked outputs 0.5 and leaks."""
    from search_spaces import ACTIVATIONS

    monkeypatch.setitem(ACTIVATIONS, "sigmoid", torch.nn.Sigmoid)  # type: ignore[arg-type]


def _mixed(batch_size: int | str = 32) -> list[dict[str, Any]]:
    return [{**_config(family, optimizer, seed=i), "hidden_layers": layers, "width": width,
             "activation": activation, "batch_norm": batch_norm, "epochs": epochs,
             "batch_size": batch_size}
            for i, (layers, width, activation, batch_norm, epochs, optimizer, family)
            in enumerate(MIXED)]


def _differences(params: list[dict[str, Any]], fold: Fold) -> list[float]:
    """Per model: the largest gap between its batched and its alone R² curve, after
    checking the lr curves and epoch counts agree."""
    seeds = [7 + i for i in range(len(params))]
    members = train_population(params, fold, seeds)
    gaps = []
    for config, seed, member in zip(params, seeds, members, strict=True):
        model, _, alone = train_params(config, fold, seed=seed)
        history = alone.history
        assert len(member.rows) == len(history) == config["epochs"]
        assert member.stopped is None
        assert member.n_params == sum(p.numel() for p in model.parameters())
        assert [row["lr"] for row in member.rows] == pytest.approx(list(history["lr"]),
                                                                   rel=1e-12)
        gaps.append(max(abs(row["test_r2"] - r2) for row, r2
                        in zip(member.rows, history["test_r2"], strict=True)))
    return gaps


@pytest.mark.parametrize("with_sigmoid", [True, False])
def test_a_population_mixing_every_knob_matches_each_model_alone(
        fold64: Fold, request: pytest.FixtureRequest, with_sigmoid: bool) -> None:
    # Depths 0-2, widths 1-6, every activation, batch norm on and off, four optimizers,
    # five schedules, epochs 3-8: each model's lr and R² per epoch as alone (float64).
    # Without sigmoid every activation maps 0 to 0 and the population skips its unit masks.
    params = _mixed()
    if with_sigmoid:
        request.getfixturevalue("sigmoid")
    else:
        params[1]["activation"] = "tanh"
    assert max(_differences(params, fold64)) < 1e-9


@pytest.mark.usefixtures("sigmoid")
def test_the_parity_test_sees_padding_that_leaks(fold64: Fold,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the unit masks, the narrow sigmoid model's padded units output 0.5 into the
    # next layer, whose padded weights then learn: its curve must move off its own.
    import hpo.train.batched as batched

    real = batched.stack

    def unmasked(*args: Any) -> Any:
        stacked = real(*args)
        stacked.masks.units = [torch.ones_like(u) for u in stacked.masks.units]
        return stacked

    monkeypatch.setattr(batched, "stack", unmasked)
    gaps = _differences(_mixed(), fold64)
    assert gaps[1] > 1e-4, gaps  # the sigmoid model, 3 of 6 units wide


@pytest.mark.usefixtures("sigmoid")
def test_mini_batch_folds_with_batch_norm_side_by_side_match_fold_after_fold() -> None:
    # Folds of 21 and 22 rows in batches of 8: 3 batches each, the short fold's last
    # batch padded by a row, which batch norm's statistics and the loss must not see.
    with _float64_mtcars_folds() as folds:
        params = _mixed(batch_size=8)[:4]
        together = train_population([p for p in params for _ in folds],
                                    [f for _ in params for f in folds],
                                    [s + k for s in range(len(params)) for k in range(3)])
        for i, config in enumerate(params):
            for k, fold in enumerate(folds):
                _, _, alone = train_params(config, fold, seed=i + k)
                batched = together[i * len(folds) + k]
                for key in ("lr", "train_loss", "test_loss", "train_r2", "test_r2"):
                    assert [r[key] for r in batched.rows] == pytest.approx(
                        list(alone.history[key]), rel=1e-9, abs=1e-9), (config, k, key)


def test_folds_of_different_batch_counts_do_not_train_side_by_side(fold: Fold) -> None:
    from hpo.train.batched import folds_train_together

    big = dataclasses.replace(fold, train=fold.train)
    small = dataclasses.replace(fold, train=_Float64Part(fold.train))
    small.train.x, small.train.y = small.train.x[:40], small.train.y[:40]
    assert folds_train_together({"batch_size": 32}, [big, small]) is False  # 3 against 2
    assert folds_train_together({"batch_size": "full"}, [big, small]) is True


@pytest.mark.usefixtures("sigmoid")
def test_a_mixed_population_prunes_and_fails_models_alone(fold64: Fold) -> None:
    params = _mixed()
    params[3] = {**params[3], "optimizer": "sgd", "lr": 1e30, "scheduler": "constant",
                 "momentum": 0.0, "weight_decay": 0.0, "nesterov": False}  # diverges
    members = train_population(params, fold64, list(range(len(params))),
                               callback=lambda epoch, rows: {0} if epoch == 2 else set())
    assert members[0].stopped == "callback" and len(members[0].rows) == 2
    assert members[3].stopped == "diverged" and "diverged at epoch" in members[3].message
    for index in (1, 2, 4, 5, 6, 7):  # the others ran their own epochs, as alone
        member = members[index]
        assert member.stopped is None and len(member.rows) == params[index]["epochs"]
        _, _, alone = train_params(params[index], fold64, seed=index)
        assert [row["test_r2"] for row in member.rows] == pytest.approx(
            list(alone.history["test_r2"]), rel=1e-9, abs=1e-9)


@pytest.mark.usefixtures("sigmoid")
def test_scoring_only_the_last_epoch_keeps_each_models_own_last_epoch(fold: Fold) -> None:
    params = _mixed()
    every = train_population(params, fold, list(range(len(params))))
    last = train_population(params, fold, list(range(len(params))), every_epoch=False)
    for one, other in zip(every, last, strict=True):
        assert len(other.rows) == 1
        assert {k: v for k, v in other.rows[0].items() if k != "seconds"} == {
            k: v for k, v in one.rows[-1].items() if k != "seconds"}


def _mixed_space(trial: optuna.Trial) -> dict[str, Any]:
    from search_spaces import Choice, Int, suggest_architecture, suggest_training

    return {
        **suggest_architecture(trial, hidden_layers=Int(0, 2), width=Int(2, 8), dropout=0.0),
        **suggest_optimizer(trial, optimizer=Choice(["adam", "sgd"])),
        **suggest_training(trial, batch_size=8, epochs=Int(3, 6)),
        **suggest_scheduler(trial, families=("constant", "cosine")),
    }


def test_cross_validated_trials_with_a_pruner_record_what_one_at_a_time_records(
        tmp_path: Path) -> None:
    # Every fold of every trial trains side by side (mini-batches of 8, the folds 21 and 22
    # rows: 3 batches each), mixed architectures and epochs in one population, and the
    # trials still report fold 1, 2, 3 in order: each reported running mean is the one-at-a-
    # time path's, and a pruned trial stops where its reports stop.
    from hpo.store.attrs import trial_params
    from hpo.store.record import folds_from_record, stored_record
    from hpo.train.objective import TrialDiverged, train_and_score

    study = Study(name="cv", space=_mixed_space, data=Mtcars(features=("wt", "hp")),
                  standardize=True, cv_folds=3, sampler="random", pruner="percentile",
                  n_trials=16, seed=1)
    done = run(study, RunOptions(storage=str(tmp_path / "s.journal"), workers=1,
                                 progress=False, population_size=8))  # batches of 8, 8
    folds = folds_from_record(stored_record(done))  # the folds the runner trained on
    assert {t.user_attrs["population"] for t in done.trials} == {8}
    ended = {str(t.user_attrs["ended"]) for t in done.trials}
    assert "pruned" in ended, ended  # the second batch is judged by the first
    for trial in done.trials:
        params = trial_params(trial)
        if trial.user_attrs["ended"] == "diverged":
            with pytest.raises(TrialDiverged):
                train_and_score(params, folds, seed=trial.user_attrs["seed"])
            continue
        value, alone = train_and_score(params, folds, seed=trial.user_attrs["seed"])
        expected = {step: row["test_r2"] for step, row in enumerate(alone.history, start=1)}
        reported = trial.intermediate_values
        assert list(reported) == list(expected)[:len(reported)]
        assert list(reported.values()) == pytest.approx(
            # float32: batch norm with Adam amplifies the batched rounding (float64 parity
            # is tested above); a wrong fold or order is off by whole units.
            [expected[step] for step in reported], rel=1e-3, abs=1e-4)
        if trial.state == TrialState.COMPLETE:
            assert trial.value == pytest.approx(value, rel=1e-3, abs=1e-4)
            assert trial.user_attrs["n_params"] == alone.attrs["n_params"]
        else:
            assert trial.state == TrialState.PRUNED and "history" not in trial.user_attrs
