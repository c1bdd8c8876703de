"""Every stored trial of every built-in study trains again to its stored score.

A trial records its params, seed, thread count and the padded layout of the population it
trained in; `hpo.results.retrain.replay` trains it again with them, alone, in the same
engine. On the same machine and torch that repeats its arithmetic to the bit, whatever
population, rolling or not, the search trained it in.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from optuna.trial import TrialState

from hpo import RunOptions, run
from hpo.data import LabData, prepare_folds
from hpo.results.retrain import replay
from hpo.results.tables import load_study
from hpo.store.record import stored_record
from hpo.study.file import load_studies
from hpo.train.batched import train_population
from hpo.train.objective import Job, evaluate_many

STUDIES = sorted((Path(__file__).parents[1] / "studies").glob("*.py"))
TRIALS = 10  # enough for populations that roll, prune and mix architectures


def _small(study: object) -> object:
    """The study with few trials (a grid keeps its points) and few epochs where it searches
    them, so every built-in study runs in seconds."""
    return dataclasses.replace(study, n_trials=TRIALS)  # type: ignore[type-var]


@pytest.mark.slow
@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_every_stored_trial_replays_to_its_score(path: Path, tmp_path: Path) -> None:
    storage = str(tmp_path / "s.journal")
    for study in load_studies(path)[:2]:  # lr_schedules holds three alike: two suffice
        study = _small(study)
        run(study, RunOptions(storage=storage, workers=1, progress=False))  # type: ignore[arg-type]
        stored = load_study(study.name, storage)  # type: ignore[attr-defined]
        record = stored_record(stored)
        complete = stored.get_trials(states=(TrialState.COMPLETE,))
        assert complete, study
        for trial in complete:
            job = replay(trial, record, trials=stored.trials)
            assert job.value is not None and abs(job.value - trial.value) <= 1e-6, (
                study, trial.number, job.value, trial.value)
            if not record.get("cv_folds"):  # the per-epoch curve too, first seed's
                curve = [row["test_r2"] for row in job.members[0][0].rows]
                assert all(abs(curve[epoch - 1] - value) <= 1e-6
                           for epoch, value in trial.intermediate_values.items())


def test_a_model_with_dropout_trains_the_same_in_any_company() -> None:
    # Each model draws its dropout masks from its own generator, so a model trained alone
    # (in the layout it trained in) repeats what it did in a population, to the bit.
    fold = prepare_folds(LabData(n=200), test_size=0.3, cv_folds=None, seed=0)[0]
    base = {"hidden_layers": 2, "width": 8, "activation": "relu", "batch_norm": False,
            "dropout": 0.2, "optimizer": "adam", "weight_decay": 0.0, "lr": 0.01,
            "scheduler": "constant", "batch_size": 32, "epochs": 4}
    others = [{**base, "dropout": 0.0, "width": 12, "hidden_layers": 1},
              {**base, "batch_norm": True, "dropout": 0.5}]
    members = train_population([base, *others], fold, [3, 4, 5])
    layout = members[0].layout
    assert layout is not None
    job = Job(base, 3, layout=layout.to_dict())
    evaluate_many([job], [fold])
    assert [r["test_r2"] for r in job.members[0][0].rows] == [
        r["test_r2"] for r in members[0].rows]
    # Without dropout the same model and seed trains otherwise: the masks were drawn.
    plain = train_population([{**base, "dropout": 0.0}], fold, [3], layout=layout)[0]
    assert plain.rows[-1]["test_r2"] != members[0].rows[-1]["test_r2"]
