"""hpo's median and percentile pruners: Optuna's, judging against the earlier running
trials too (hpo.study.pruners)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from hpo import LabData, RunOptions, Study, run
from hpo.study import pruners
from hpo.study.algorithms import make_pruner


def _study(pruner: optuna.pruners.BasePruner) -> optuna.Study:
    return optuna.create_study(direction="maximize", pruner=pruner)


def _reported(study: optuna.Study, values: list[float]) -> optuna.Trial:
    trial = study.ask()
    for step, value in enumerate(values, start=1):
        trial.report(value, step)
    return trial


_CONFIGS = [  # (percentile or None for the median, keyword arguments)
    (None, {"n_startup_trials": 2, "n_warmup_steps": 1}),
    (25.0, {"n_startup_trials": 2, "n_warmup_steps": 1}),
    (None, {"n_startup_trials": 0, "n_warmup_steps": 0, "interval_steps": 2}),
    (75.0, {"n_startup_trials": 3, "n_warmup_steps": 2, "n_min_trials": 4}),
    (10.0, {"n_startup_trials": 1, "n_warmup_steps": 0, "interval_steps": 3,
            "n_min_trials": 2}),
]


def _pair(percentile: float | None, kwargs: dict[str, int]
          ) -> tuple[optuna.pruners.BasePruner, optuna.pruners.BasePruner]:
    if percentile is None:
        return pruners.MedianPruner(**kwargs), optuna.pruners.MedianPruner(**kwargs)
    return (pruners.PercentilePruner(percentile, **kwargs),
            optuna.pruners.PercentilePruner(percentile, **kwargs))


@pytest.mark.filterwarnings("ignore:All-NaN slice")  # Optuna's, on the all-NaN trial
@pytest.mark.parametrize("direction", ["maximize", "minimize"])
@pytest.mark.parametrize("percentile, kwargs", _CONFIGS)
def test_one_at_a_time_it_decides_as_optunas_own(
        percentile: float | None, kwargs: dict[str, int], direction: str) -> None:
    # Every earlier trial has ended when a trial is judged: nothing more to count. The
    # values repeat (ties), some are NaN, and one trial reports only NaN.
    ours, optunas = _pair(percentile, kwargs)
    studies = [optuna.create_study(direction=direction, pruner=p) for p in (ours, optunas)]
    decisions: list[list[tuple[int, bool]]] = [[], []]
    for number in range(30):
        for study, decided in zip(studies, decisions, strict=True):
            trial = study.ask()
            for step in range(1, 8):
                value = ((number * 7) % 12) / 12 * step / 7
                if number % 9 == 4 or (number % 5 == 3 and step == 2):
                    value = math.nan
                trial.report(value, step)
                decided.append((step, trial.should_prune()))
                if decided[-1][1]:
                    study.tell(trial, state=TrialState.PRUNED)
                    break
            else:
                study.tell(trial, (number * 7) % 12 / 12)
    assert decisions[0] == decisions[1]
    assert {d for _, d in decisions[0]} == {True, False}  # both outcomes were tested


def test_its_percentile_is_numpys() -> None:
    # Equal as floats: +0.0 and -0.0 may trade places (pruners.percentile's docstring).
    rng = np.random.default_rng(0)
    for _ in range(3000):
        values = [float(v) for v in rng.choice([0.0, -0.0, 0.5, 1.0, -2.5, math.inf, -math.inf],
                                                  size=int(rng.integers(1, 6)))]
        values += [float(v) for v in rng.normal(size=int(rng.integers(0, 40)))]
        q = float(rng.choice([0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 100.0, rng.uniform(0, 100)]))
        with np.errstate(invalid="ignore"):
            expected = float(np.nanpercentile(np.array(values, dtype=float), q))
        got = pruners.percentile(values, q)
        assert got == expected or (math.isnan(got) and math.isnan(expected)), (values, q)
    assert math.isnan(pruners.percentile([], 50.0))


def test_earlier_running_trials_count_and_later_ones_do_not() -> None:
    study = _study(make_pruner("median"))  # 5 start-up trials, judged from epoch 3
    for _ in range(5):  # asked first, still training: good so far
        _reported(study, [0.8, 0.85, 0.9])
    judged = _reported(study, [0.1, 0.2, 0.3])
    optunas_own = optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3)
    assert not optunas_own.prune(study, study.trials[judged.number])  # nothing finished
    assert judged.should_prune()

    study = _study(make_pruner("median"))
    for _ in range(5):  # asked first, training badly
        _reported(study, [0.0, 0.0, 0.1])
    judged = _reported(study, [0.1, 0.2, 0.3])
    for _ in range(10):  # asked later, better: they would raise the median above it
        _reported(study, [0.8, 0.85, 0.9])
    assert not judged.should_prune()


def test_pruned_and_failed_earlier_trials_do_not_count() -> None:
    # As in Optuna's: counted, the five bad ones would put the median at 0.5.
    study = _study(make_pruner("median"))
    bad = [_reported(study, [0.0, 0.0, 0.1]) for _ in range(5)]
    for trial in bad[:4]:
        study.tell(trial, state=TrialState.PRUNED)
    study.tell(bad[4], state=TrialState.FAIL)
    for _ in range(5):
        _reported(study, [0.8, 0.85, 0.9])  # running, good
    assert _reported(study, [0.3, 0.4, 0.5]).should_prune()


def test_a_population_prunes_trials_that_train_together(tmp_path: Path) -> None:
    # 16 trials of equal epochs train as one population: none ends before the others, so
    # a pruner comparing with finished trials only could prune none of them.
    def space(trial: optuna.Trial) -> dict[str, object]:
        from search_spaces import suggest_training

        return {"hidden_layers": 1, "width": 8, "activation": "tanh", "batch_norm": False,
                "dropout": 0.0, "optimizer": "adam", "weight_decay": 0.0,
                "lr": trial.suggest_float("lr", 1e-5, 0.3, log=True),
                "scheduler": "constant", **suggest_training(trial, batch_size=32, epochs=8)}

    study = Study(name="together", space=space, data=LabData(n=200, seed=0),
                  sampler="random", pruner="median", n_trials=16, seed=0)
    done = run(study, RunOptions(storage=str(tmp_path / "s.journal"), workers=1,
                                 progress=False, population_size=16))
    assert {t.user_attrs["population"] for t in done.trials} == {16}
    pruned = [t for t in done.trials if t.state == TrialState.PRUNED]
    assert pruned and all(t.number >= 5 for t in pruned)  # the 5 start-up trials are not
    assert any(len(t.intermediate_values) < 8 for t in pruned)  # stopped early
