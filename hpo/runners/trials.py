"""One trial in the storage: claim it, run it, report each epoch, tell how it ended; and
recover the trials of workers that died.

Every way a trial can end is told to the storage (complete, pruned, failed: diverged, a
mistake in the space, an interrupt), so no trial is left RUNNING by a live process; the
trials of a process that was killed are failed when the study is resumed.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import TrialState

from hpo.data import Fold
from hpo.errors import ConfigError, HPOError
from hpo.store.attrs import split_attrs
from hpo.store.optuna_internals import set_trial_system_attr, storage_of, trial_handle
from hpo.store.storage import exclusive_claims
from hpo.study.config import Study
from hpo.train.objective import TrialDiverged, evaluate
from hpo.train.reporter import PRUNING_METRIC, MemoryReporter


class OptunaReporter(MemoryReporter):
    """Reports the test R² of every epoch to the trial, and prunes when the pruner says so."""

    def __init__(self, trial: optuna.Trial) -> None:
        super().__init__()
        self.trial = trial

    def report(self, epoch: int, metrics: Mapping[str, float]) -> None:
        super().report(epoch, metrics)
        self.trial.report(float(metrics[PRUNING_METRIC]), epoch)
        if self.trial.should_prune():
            self.record({"ended": "pruned", "epochs_run": epoch, "history": self.history})
            raise optuna.TrialPruned(f"pruned at epoch {epoch}")

    def record(self, attrs: Mapping[str, Any]) -> None:
        super().record(attrs)
        user, hidden = split_attrs(attrs)
        for key, value in user.items():
            self.trial.set_user_attr(key, value)
        for key, value in hidden.items():  # bulky: kept out of the dashboard's trial table
            set_trial_system_attr(self.trial, key, value)


def fail_interrupted_trials(optuna_study: optuna.Study) -> list[int]:
    """Mark FAIL the RUNNING trials whose worker process on this host has died.

    A killed run leaves its trial RUNNING forever; on resume it is failed (and a grid point
    it held is queued again). Trials of live workers, or of other hosts, are left alone.
    """
    storage, failed = storage_of(optuna_study), []
    study_id = storage.get_study_id_from_name(optuna_study.study_name)
    for trial in optuna_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if _worker_is_alive(str(trial.user_attrs.get("worker", ""))):
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, "ended", "interrupted")
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
        failed.append(trial.number)
    return failed


def _worker_is_alive(worker: str) -> bool:
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim_waiting_trial(optuna_study: optuna.Study, storage_url: str) -> optuna.Trial | None:
    """Take one queued trial, or None when the queue is empty.

    The storage switches a trial from WAITING to RUNNING atomically and tells whether it
    did (made so for SQLite by ``exclusive_claims``), so two workers never take the same
    grid point, and none creates a trial outside the grid when the queue runs dry (as
    ``ask()`` would).
    """
    storage = storage_of(optuna_study)
    study_id = storage.get_study_id_from_name(optuna_study.study_name)
    with exclusive_claims(storage_url):
        for frozen in optuna_study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, frozen.number)
            if storage.set_trial_state_values(trial_id, TrialState.RUNNING):
                return trial_handle(optuna_study, trial_id)
    return None


def run_trial(study: Study, optuna_study: optuna.Study, trial: optuna.Trial,
              folds: list[Fold], device: str) -> None:
    """Evaluate one trial and tell the storage how it ended; never leaves it RUNNING."""
    reporter = OptunaReporter(trial)
    reporter.record({"worker": f"{socket.gethostname()}:{os.getpid()}", "source": "search"})
    try:
        params = _call_space(study, trial)
        value = evaluate(params, folds, reporter, seed=study.seed + trial.number,
                         device=device, score=study.score)
    except optuna.TrialPruned:
        optuna_study.tell(trial, state=TrialState.PRUNED)
    except TrialDiverged:
        optuna_study.tell(trial, state=TrialState.FAIL)
    except BaseException:
        optuna_study.tell(trial, state=TrialState.FAIL)
        raise
    else:
        optuna_study.tell(trial, value)


def _call_space(study: Study, trial: optuna.Trial) -> dict[str, Any]:
    try:
        params = study.space(trial)
    except HPOError:
        raise
    except (ValueError, TypeError, KeyError) as error:
        raise ConfigError(f"The search space of study {study.name!r} raised "
                          f"{type(error).__name__}: {error}") from None
    if not isinstance(params, dict):
        raise ConfigError(f"The search space of study {study.name!r} must return a dict of "
                          f"params, but returned {type(params).__name__}.")
    if study.grid is not None and study.sampler == "grid":
        _check_grid_covers(study, trial)
    return params


def _check_grid_covers(study: Study, trial: optuna.Trial) -> None:
    grid = set(study.grid or {})
    searched = set(trial.params)
    if searched != grid:
        raise ConfigError(
            f"Study {study.name!r}: the grid must list exactly the parameters the space "
            f"searches ({', '.join(sorted(searched)) or 'none'}), but it lists "
            f"{', '.join(sorted(grid))}; fix the others in the space or add them to the grid."
        )
