"""Every use of a private Optuna name, in one place, checked by tests/test_optuna_internals.py.

Optuna is pinned (constraints.txt) to the version these were written against. An upgrade
that renames or changes any of them fails that test, naming this module, instead of
silently changing how trials are stored:

- ``JournalOperation``: the journal's record kinds (a private enum), to tell per-epoch
  records from state changes;
- ``JournalFileBackend.append_logs`` and ``read_logs``: overridden to fsync on finished
  states only, and, inside ``DurableOnFinishJournal.batching``, to hold per-epoch records
  in memory until the next read or state change; this relies on ``JournalStorage`` reading
  the backend (``_sync_with_backend``) right after each of its writes, under its lock;
- ``JournalStorage._backend``: to reach that backend from a study (``journal_backend``);
- ``Study._storage``: the storage's atomic WAITING -> RUNNING switch, to claim a grid point;
- ``optuna.Trial(study, trial_id)``: a trial handle for a trial claimed that way (``ask()``
  would create a new trial instead);
- ``storages._heartbeat``: the heartbeat thread that ``Study.optimize`` runs around each
  trial, run here around trials driven by ask/tell;
- ``Trial._trial_id``: to set a trial system attribute through the storage's public
  ``set_trial_system_attr`` (``Trial.set_system_attr`` is deprecated);
- ``optuna.study._tell._tell_with_warning``: what ``Study.tell`` does, without the trial it
  reads back from the storage and deep-copies (history and all) to return, which hpo never
  reads: ``tell``;
- ``Trial._cached_frozen_trial`` and what ``MedianPruner``/``PercentilePruner.prune`` read
  (the study's ``get_trials`` and ``direction``, the trial's own values): ``PruningView``
  lets a population's models be judged on one read of the study per epoch.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import threading
import warnings
from collections.abc import Container, Generator, Iterator
from typing import IO, Any

import optuna
from optuna.storages import BaseStorage, JournalStorage
from optuna.storages._heartbeat import get_heartbeat_thread, is_heartbeat_enabled
from optuna.storages.journal import JournalFileBackend
from optuna.storages.journal._storage import JournalOperation
from optuna.study import StudyDirection
from optuna.study._tell import _tell_with_warning
from optuna.trial import FrozenTrial, TrialState

# Records written many times per trial: an epoch's R², a trial's attributes and params.
_FREQUENT_OPS = frozenset({JournalOperation.SET_TRIAL_INTERMEDIATE_VALUE,
                           JournalOperation.SET_TRIAL_USER_ATTR,
                           JournalOperation.SET_TRIAL_SYSTEM_ATTR,
                           JournalOperation.SET_TRIAL_PARAM})


# Records held in memory inside ``batching()``: an epoch's R² and a trial's attributes.
_BUFFERED_OPS = frozenset({JournalOperation.SET_TRIAL_INTERMEDIATE_VALUE,
                           JournalOperation.SET_TRIAL_USER_ATTR,
                           JournalOperation.SET_TRIAL_SYSTEM_ATTR})


def _forces_disk(log: dict[str, Any]) -> bool:
    """Whether a record is forced to disk: a trial finishing, a queued trial, a study change.

    Not the per-epoch records, nor a trial being asked or claimed (RUNNING): a power loss
    that drops those loses no finished trial (the asked one would be failed and run again),
    and the fsync of the next finished trial forces every earlier record of the file too.
    """
    op = log.get("op_code")
    if op in _FREQUENT_OPS:
        return False
    if op == JournalOperation.CREATE_TRIAL:
        return log.get("state", TrialState.RUNNING) != TrialState.RUNNING
    if op == JournalOperation.SET_TRIAL_STATE_VALUES:
        return log.get("state") != TrialState.RUNNING
    return True


def _nothing() -> Generator[dict[str, Any], None, None]:
    yield from ()


class DurableOnFinishJournal(JournalFileBackend):
    """Optuna's journal file, forced to disk when a trial finishes or a study changes.

    Optuna fsyncs after every record; one per reported epoch was three quarters of the
    storage's cost per lab trial. A record is readable by every process as soon as it is
    written, and a killed process loses nothing either way; only a power loss can drop
    records not yet forced to disk. So frequent records (and a trial's creation) are written
    and flushed, and the next trial to finish forces them to disk with it: finished trials
    stay as durable as with Optuna's own backend.

    Inside ``batching()`` (a worker running its trials, ``hpo.store.batching``), per-epoch
    records and attributes are not written one append each: they wait in memory and go
    out together, in the order they were made, in one append, at the first of: any other
    record (a trial told, a param), any read of the journal by this process (so whatever
    this process reads includes them: a pruner, ``tell``), or ``flush()`` (once an epoch).
    Other processes (the dashboard, other workers) see them from then on. A finished
    trial's state is written at once but forced to disk at the next ``flush()`` or when
    ``batching()`` ends: a population tells its models one after another, and one fsync
    covers them all. What a killed process can lose: held records of trials still RUNNING
    (at most an epoch's), which a resume fails and queues again anyway; every record of a
    finished trial is written before its state.
    """

    def __init__(self, file_path: str) -> None:
        self._path = file_path
        # Every write goes through _write, under this lock: Optuna's own lock, which its
        # append_logs (overridden here) alone takes, is never taken.
        self._file_lock = JournalFileFlock(file_path)
        super().__init__(file_path)
        self._held: list[dict[str, Any]] = []  # written at the next flush
        self._batching = 0  # depth of batching() contexts
        self._own_write_unread = False  # the read right after a held write reads nothing new
        self._unforced = False  # written, not yet forced to disk (inside batching())
        self._guard = threading.RLock()

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        with self._guard:
            if self._batching and all(log.get("op_code") in _BUFFERED_OPS for log in logs):
                self._held.extend(logs)
                self._own_write_unread = True  # JournalStorage reads right after writing
                return
            self._own_write_unread = False
            logs, self._held = self._held + logs, []
            force = any(_forces_disk(log) for log in logs)
            if force and self._batching:
                self._unforced, force = True, False
            self._write(logs, force)

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        with self._guard:
            if self._own_write_unread:  # the read JournalStorage makes after a held write:
                self._own_write_unread = False  # the file holds nothing of it yet
                return _nothing()
            if self._held:
                logs, self._held = self._held, []
                self._write(logs, False)
        return super().read_logs(log_number_from)

    @contextlib.contextmanager
    def batching(self) -> Iterator[None]:
        """Hold per-epoch records and attributes, and defer forcing finished trials to disk,
        until ``flush()`` or the end of the context (which flushes, even on an error)."""
        with self._guard:
            self._batching += 1
        try:
            yield
        finally:
            with self._guard:
                self._batching -= 1
                self.flush()

    def flush(self) -> None:
        """Write the held records; force the file to disk if a trial finished since the
        last time."""
        with self._guard:
            logs, self._held = self._held, []
            force, self._unforced = self._unforced, False
            if logs or force:
                self._write(logs, force)

    def _write(self, logs: list[dict[str, Any]], force: bool) -> None:
        text = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs)
        self._file_lock.acquire()
        try:
            with open(self._path, "ab") as file:
                file.write(text.encode("utf-8"))
                file.flush()
                if force:
                    os.fsync(file.fileno())
        finally:
            self._file_lock.release()


class JournalFileFlock:
    """The journal's write lock: ``fcntl.flock`` on ``<journal>.flock``, which the kernel
    releases when its holder dies.

    Optuna's own journal locks (a symlink, or a file opened with O_EXCL) outlive a killed
    holder: the other workers then waited out a 30 s grace period, logging a warning every
    10 s (seen in CI: a worker killed with SIGKILL in the middle of an append). Local file
    systems only, like the SQLite claim lock (``hpo.store.storage.exclusive_claims``); a
    plain Optuna script appending to the same journal with Optuna's default lock is not
    kept out (hpo's processes all take this one).
    """

    def __init__(self, file_path: str) -> None:
        self._path = f"{file_path}.flock"
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        # A fresh open file each time: a forked worker must not share its parent's, since
        # flock excludes open files, not processes.
        file = open(self._path, "a")  # noqa: SIM115 (closed by release)
        try:
            fcntl.flock(file, fcntl.LOCK_EX)
        except BaseException:
            file.close()
            raise
        self._file = file

    def release(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            fcntl.flock(file, fcntl.LOCK_UN)
            file.close()


def storage_of(optuna_study: optuna.Study) -> BaseStorage:
    """The storage behind a study (Optuna keeps it without a public accessor)."""
    return optuna_study._storage


def journal_backend(storage: BaseStorage) -> DurableOnFinishJournal | None:
    """The journal file behind ``storage`` when it is hpo's own, else None (RDB storages,
    or a journal opened some other way)."""
    if isinstance(storage, JournalStorage):
        backend = storage._backend
        if isinstance(backend, DurableOnFinishJournal):
            return backend
    return None


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


def tell(optuna_study: optuna.Study, trial: optuna.Trial, value: float | None = None,
         state: TrialState | None = None) -> None:
    """``optuna_study.tell(trial, value, state=state)``, returning nothing: Study.tell then
    reads the trial back and deep-copies it for its return value (``benchmarks/bench_tax.py
    --split``, ``tell`` column: 0.04 s against 0.03 s per 100 homework trials)."""
    _tell_with_warning(study=optuna_study, trial=trial, value_or_values=value, state=state)


def set_trial_system_attr(trial: optuna.Trial, key: str, value: Any) -> None:
    """Store an attribute that optuna-dashboard does not show (see ``hpo.store.attrs``)."""
    trial.storage.set_trial_system_attr(trial._trial_id, key, value)


# Pruners whose prune() reads only the study's trials and direction besides the trial's own
# values, and writes nothing: judged on a view of the study read once. Subclasses count:
# hpo's median and percentile (hpo.study.pruners) also read the running trials.
_VIEWABLE_PRUNERS = (optuna.pruners.MedianPruner, optuna.pruners.PercentilePruner,
                     optuna.pruners.NopPruner)


class PruningView:
    """The study as a pruner reads it while one epoch's models are judged: one read.

    ``MedianPruner`` and ``PercentilePruner`` compare a trial's values with the finished
    trials' (``get_trials(states=(COMPLETE,))``; hpo's with the earlier running ones too);
    ``trial.should_prune()`` read the whole journal back for every model (twice: the
    trials, then the direction). Here they read
    it once per epoch; their decisions are the same unless another process finishes a
    trial during the epoch's judging, which decides nothing either way (whether a trial of
    another process is already finished when this one is judged is a matter of timing).
    Anything else a future pruner reads is an AttributeError (tests/test_optuna_internals).
    """

    def __init__(self, optuna_study: optuna.Study) -> None:
        self.pruner = optuna_study.pruner
        self.direction: StudyDirection = optuna_study.direction
        self._trials = optuna_study.get_trials(deepcopy=False)

    @staticmethod
    def applies(optuna_study: optuna.Study) -> bool:
        """Whether the study's pruner is one this view can serve (others, e.g. successive
        halving, read and write running trials' attributes: they go through the storage)."""
        return isinstance(optuna_study.pruner, _VIEWABLE_PRUNERS)  # hpo's median too

    def get_trials(self, deepcopy: bool = True,
                   states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        trials = (list(self._trials) if states is None  # a copy: the caller may change it
                  else [t for t in self._trials if t.state in states])
        return copy.deepcopy(trials) if deepcopy else trials

    def should_prune(self, trial: optuna.Trial) -> bool:
        """``trial.should_prune()``, judged on this view."""
        frozen = copy.copy(trial._cached_frozen_trial)  # what should_prune() hands over
        pruned = bool(self.pruner.prune(self, frozen))  # type: ignore[arg-type]
        if pruned:  # told PRUNED next: the trials judged after it read it so, as they would
            self._trials = [_as_pruned(t) if t.number == frozen.number else t  # the storage
                            for t in self._trials]
        return pruned


def _as_pruned(trial: FrozenTrial) -> FrozenTrial:
    pruned = copy.copy(trial)
    pruned.state = TrialState.PRUNED
    return pruned
