"""hpo's median and percentile pruners: Optuna's, judging against the earlier running
trials too (hpo.study.pruners)."""

from __future__ import annotations

from pathlib import Path

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


@pytest.mark.parametrize("ours, optunas", [
    (pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
     optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1)),
    (pruners.PercentilePruner(25.0, n_startup_trials=2, n_warmup_steps=1),
     optuna.pruners.PercentilePruner(25.0, n_startup_trials=2, n_warmup_steps=1))])
def test_one_at_a_time_it_decides_as_optunas_own(
        ours: optuna.pruners.BasePruner, optunas: optuna.pruners.BasePruner) -> None:
    # Every earlier trial has ended when a trial is judged: nothing more to count.
    studies = [_study(ours), _study(optunas)]
    decisions: list[list[bool]] = [[], []]
    for number in range(12):
        for study, decided in zip(studies, decisions, strict=True):
            trial = study.ask()
            for step in range(1, 6):
                trial.report(((number * 7) % 12) / 12 * step / 5, step)
                if trial.should_prune():
                    decided.append(True)
                    study.tell(trial, state=TrialState.PRUNED)
                    break
            else:
                decided.append(False)
                study.tell(trial, (number * 7) % 12 / 12)
    assert decisions[0] == decisions[1]
    assert any(decisions[0]) and not all(decisions[0])  # both outcomes were tested


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
