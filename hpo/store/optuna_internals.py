"""Every use of a private Optuna name, in one place, checked by tests/test_optuna_internals.py.

Optuna is pinned (constraints.txt) to the version these were written against. An upgrade
that renames or changes any of them fails that test, naming this module, instead of
silently changing how trials are stored:

- ``JournalOperation``: the journal's record kinds (a private enum), to tell per-epoch
  records from state changes;
- ``JournalFileBackend.append_logs``: overridden to fsync on state changes only;
- ``Study._storage``: the storage's atomic WAITING -> RUNNING switch, to claim a grid point;
- ``optuna.Trial(study, trial_id)``: a trial handle for a trial claimed that way (``ask()``
  would create a new trial instead);
- ``storages._heartbeat``: the heartbeat thread that ``Study.optimize`` runs around each
  trial, run here around trials driven by ask/tell;
- ``Trial._trial_id``: to set a trial system attribute through the storage's public
  ``set_trial_system_attr`` (``Trial.set_system_attr`` is deprecated).
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from collections.abc import Iterator
from typing import Any

import optuna
from optuna.storages import BaseStorage
from optuna.storages._heartbeat import get_heartbeat_thread, is_heartbeat_enabled
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock
from optuna.storages.journal._storage import JournalOperation

# Records written many times per trial: an epoch's R², a trial's attributes and params.
_FREQUENT_OPS = frozenset({JournalOperation.SET_TRIAL_INTERMEDIATE_VALUE,
                           JournalOperation.SET_TRIAL_USER_ATTR,
                           JournalOperation.SET_TRIAL_SYSTEM_ATTR,
                           JournalOperation.SET_TRIAL_PARAM})


class DurableOnFinishJournal(JournalFileBackend):
    """Optuna's journal file, forced to disk when a trial or study changes state.

    Optuna fsyncs after every record; one per reported epoch was three quarters of the
    storage's cost per lab trial. A record is readable by every process as soon as it is
    written, and a killed process loses nothing either way; only a power loss can drop
    records not yet forced to disk. So frequent records are written and flushed, and the
    next state change (a trial finishing, above all) forces them to disk with it: finished
    trials stay as durable as with Optuna's own backend.
    """

    def __init__(self, file_path: str) -> None:
        self._path = file_path
        self._file_lock = JournalFileSymlinkLock(file_path)
        super().__init__(file_path, lock_obj=self._file_lock)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)
        durable = any(log.get("op_code") not in _FREQUENT_OPS for log in logs)
        self._file_lock.acquire()
        try:
            with open(self._path, "ab") as file:
                file.write(text.encode("utf-8"))
                file.flush()
                if durable:
                    os.fsync(file.fileno())
        finally:
            self._file_lock.release()


def storage_of(optuna_study: optuna.Study) -> BaseStorage:
    """The storage behind a study (Optuna keeps it without a public accessor)."""
    return optuna_study._storage


def trial_handle(optuna_study: optuna.Study, trial_id: int) -> optuna.Trial:
    """A live trial object for a trial that already exists in the storage."""
    return optuna.Trial(optuna_study, trial_id)


@contextlib.contextmanager
def heartbeat(optuna_study: optuna.Study, trial: optuna.Trial) -> Iterator[None]:
    """Beat for ``trial`` while it runs, on storages with a heartbeat (RDB, see storage.py).

    A worker that dies, on any host, stops beating; after the grace period the next worker
    to look fails its trial and queues it again (``fail_stale_trials``).
    """
    storage = storage_of(optuna_study)
    if not is_heartbeat_enabled(storage):
        yield
        return
    with get_heartbeat_thread(trial._trial_id, storage):
        yield


def fail_stale_trials(optuna_study: optuna.Study) -> None:
    """Fail the RUNNING trials whose heartbeat stopped, and queue each again (its retry
    callback). A no-op on storages without a heartbeat."""
    if not is_heartbeat_enabled(storage_of(optuna_study)):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "experimental" and "use Study.optimize" notes
        optuna.storages.fail_stale_trials(optuna_study)


def set_trial_system_attr(trial: optuna.Trial, key: str, value: Any) -> None:
    """Store an attribute that optuna-dashboard does not show (see ``hpo.store.attrs``)."""
    trial.storage.set_trial_system_attr(trial._trial_id, key, value)
