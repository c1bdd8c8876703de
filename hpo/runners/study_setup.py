"""A study's place in the storage before any trial runs: created or loaded, checked to be on
the same data as before, resumed (dead workers' trials failed), a grid's points queued.

Shared by both runners, so they resume alike.

Example:
    >>> storage_url, optuna_study, remaining = prepare_run(study, "hpo.journal")  # doctest: +SKIP
"""

from __future__ import annotations

import warnings
from typing import Any

import optuna
from optuna.trial import TrialState

from hpo.errors import ConfigError
from hpo.runners.preflight import preflight
from hpo.runners.trials import fail_interrupted_trials
from hpo.store.attrs import read_record, write_record
from hpo.store.batching import batched_writes
from hpo.store.optuna_internals import fail_stale_trials
from hpo.store.record import COMPARABLE_KEYS, score_label, study_record
from hpo.store.storage import open_storage, resolve_storage
from hpo.store.summary import finished_count, retried_numbers
from hpo.study.config import Study


def prepare_run(study: Study, storage: str | None) -> tuple[str, optuna.Study, int]:
    """The storage URL, the study in it (resumed: dead workers' trials failed, grid points
    queued), and how many trials this run must finish."""
    storage_url = resolve_storage(storage)
    preflight(study)  # before the storage is touched: a refused run leaves it as it was
    optuna_study = create_or_load(study, storage_url)
    fail_interrupted_trials(optuna_study)
    fail_stale_trials(optuna_study)
    return storage_url, optuna_study, queue_work(study, optuna_study)


def create_or_load(study: Study, storage_url: str) -> optuna.Study:
    """The study in the storage, created on first use (direction: maximize R²)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna_study = optuna.create_study(
        storage=open_storage(storage_url), study_name=study.name, direction="maximize",
        load_if_exists=True,
    )
    record = study_record(study)
    if read_record(optuna_study) != record:
        _check_same_data(study, optuna_study)
        write_record(optuna_study, record)
        with warnings.catch_warnings():  # experimental in Optuna; the dashboard shows it
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna_study.set_metric_names([score_label(record)])
    return optuna_study


def _check_same_data(study: Study, optuna_study: optuna.Study) -> None:
    """Refuse to resume a study on other data: its trials would not be comparable."""
    old = read_record(optuna_study)
    if old is None:
        return
    new = study_record(study)
    changed = [key for key in COMPARABLE_KEYS if old.get(key) != new[key]]
    if changed and optuna_study.get_trials(deepcopy=False):
        raise ConfigError(
            f"Study {study.name!r} already holds trials trained with other "
            f"{', '.join(changed)} ({', '.join(f'{k}={old.get(k)!r}' for k in changed)}); "
            "give the study a new --study-name, or restore the old settings."
        )


def queue_work(study: Study, optuna_study: optuna.Study) -> int:
    """How many trials this run must finish; for a grid, queue the points not yet run."""
    if study.sampler != "grid":
        return max(0, study.n_trials - finished_count(optuna_study))
    trials = optuna_study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)  # their copies, queued again, hold the point
    # A point queued but not yet taken keeps its params in "fixed_params" (Optuna's enqueue).
    taken = [_grid_key({**t.system_attrs.get("fixed_params", {}), **t.params})
             for t in trials if t.number not in retried]
    with batched_writes(optuna_study):  # one fsync for the queue, not one per point
        for point in study.grid_points:
            if _grid_key(point) not in taken:
                optuna_study.enqueue_trial(point, user_attrs={"grid_point": True})
    return len(optuna_study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def _grid_key(params: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((name, repr(value)) for name, value in params.items()))
