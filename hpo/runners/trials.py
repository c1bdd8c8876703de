"""One trial in the storage: claim it, run it, report each epoch, tell how it ended; and
recover the trials of workers that died.

Every way a trial can end is told to the storage (complete, pruned, failed: diverged, a
mistake in the space, an interrupt), so no trial is left RUNNING by a live process; the
trials of a process that was killed are failed when the study is resumed.
"""

from __future__ import annotations

import math
import os
import socket
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import TrialState

from hpo.data import Fold
from hpo.errors import ConfigError, HPOError
from hpo.runners.faults import (
    TrialTimeout,
    free_device_memory,
    log_traceback,
    message_of,
    reason_of,
    stop_requested,
    time_limit,
)
from hpo.store.attrs import record_trial_attrs
from hpo.store.batching import batched_writes
from hpo.store.optuna_internals import PruningView, storage_of, tell, trial_handle
from hpo.store.storage import exclusive_claims
from hpo.study.config import Study
from hpo.train.objective import evaluate
from hpo.train.reporter import PRUNING_METRIC, MemoryReporter
from hpo.train.rules import trial_seed


class OptunaReporter(MemoryReporter):
    """Reports the test R² of every epoch to the trial, and prunes when the pruner says so.

    With ``timeout`` (seconds from now), an epoch that ends past it raises TrialTimeout: the
    time limit where no alarm can reach (``hpo.runners.faults.time_limit``).
    ``flush`` (``hpo.store.batching``) is called after every epoch.

    ``report`` is ``submit`` then ``judge``: a population submits every model's epoch first
    and then judges each, so their records reach the storage in one write (a pruner decides
    from finished trials and the trial's own values: the order changes no decision).
    """

    def __init__(self, trial: optuna.Trial, timeout: float | None = None,
                 flush: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.trial = trial
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout if timeout else math.inf
        self.flush = flush

    def report(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.submit(epoch, metrics)
        self.judge(epoch)
        if self.flush is not None:
            self.flush()

    def submit(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """Keep the epoch's metrics and report its R² to the trial."""
        super().report(epoch, metrics)
        if stop_requested():  # Ctrl-C or SIGTERM: end here, where the trial's end is told
            raise KeyboardInterrupt
        if time.monotonic() > self.deadline:
            raise TrialTimeout.past(self.timeout or 0.0)
        self.trial.report(float(metrics[PRUNING_METRIC]), epoch)

    def judge(self, epoch: int, view: PruningView | None = None) -> None:
        """Raise TrialPruned if the pruner stops the trial at ``epoch`` (submitted); with
        ``view``, judged on that one read of the study (a population's epoch)."""
        if view.should_prune(self.trial) if view is not None else self.trial.should_prune():
            self.record({"ended": "pruned", "epochs_run": epoch, "history": self.history})
            raise optuna.TrialPruned(f"pruned at epoch {epoch}")

    def record(self, attrs: Mapping[str, Any]) -> None:
        super().record(attrs)
        record_trial_attrs(self.trial, attrs)  # bulky ones out of the dashboard's table


# A worker names itself on a trial right after asking for it (``claim_for_this_worker``);
# a RUNNING trial that still names no worker this long after was asked by a process that
# was killed in between.
_UNCLAIMED_SECONDS = 1.0


def this_worker() -> str:
    """``host:pid`` of this process, as trials record the worker that runs them."""
    return f"{socket.gethostname()}:{os.getpid()}"


def claim_for_this_worker(trial: optuna.Trial) -> optuna.Trial:
    """Name this process on a trial it just asked for, so a resume can tell if it died."""
    trial.set_user_attr("worker", this_worker())
    return trial


def fail_interrupted_trials(optuna_study: optuna.Study) -> list[int]:
    """Mark FAIL the RUNNING trials whose worker process on this host has died, and those
    that name no worker (their process was killed between asking and naming itself).

    A killed run leaves its trial RUNNING forever; on resume it is failed and queued again
    with the same params. Trials of live workers are left alone; those of other hosts are
    the heartbeat's business (RDB storages, see ``hpo.store.storage``).
    """
    storage, failed = storage_of(optuna_study), []
    study_id = storage.get_study_id_from_name(optuna_study.study_name)
    running = optuna_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    unnamed = {trial.number for trial in running if "worker" not in trial.user_attrs}
    if unnamed:  # a live worker may be naming itself this very moment: look again
        time.sleep(_UNCLAIMED_SECONDS)
        running = optuna_study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in running:
        worker = trial.user_attrs.get("worker")
        if worker is None and trial.number not in unnamed:
            continue  # asked since the first look: its worker is naming itself
        if worker is not None and _worker_is_alive(str(worker)):
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        storage.set_trial_user_attr(trial_id, "ended", "interrupted")
        storage.set_trial_state_values(trial_id, TrialState.FAIL)
        failed.append(trial.number)
    retry_with_same_params(optuna_study, failed)
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
              folds: list[Fold], device: str, *, timeout: float | None = None,
              log: Path | None = None) -> str:
    """Evaluate one trial and tell the storage how it ended; never leaves it RUNNING.

    Returns how it ended: ``complete``, ``pruned`` or a failure reason (see
    ``hpo.runners.faults``). A fault in the trial fails only this trial; an interrupt
    (Ctrl-C, SIGTERM) fails it, queues it again with the same params, and is re-raised.
    """
    with batched_writes(optuna_study) as flush:  # an epoch's records: one write
        reporter = OptunaReporter(trial, timeout, flush)
        reporter.record({"source": "search", "runner": "optuna"})  # worker: named when asked
        try:
            with time_limit(timeout):
                params = call_space(study, trial)
                value = evaluate(params, folds, reporter, seed=trial_seed(study.seed, trial.number),
                                 device=device, score=study.score, seeds=study.seeds)
        except optuna.TrialPruned:
            tell(optuna_study, trial, state=TrialState.PRUNED)
            return "pruned"
        except (Exception, KeyboardInterrupt, SystemExit) as error:
            reason = fail_trial(optuna_study, trial, reporter, error, log)
            if reason == "interrupted":
                raise
            return reason
        tell(optuna_study, trial, value)
        return "complete"


def fail_trial(optuna_study: optuna.Study, trial: optuna.Trial, reporter: MemoryReporter,
               error: BaseException, log: Path | None) -> str:
    """Record why the trial failed (``ended``, ``error``), tell FAIL, return the reason."""
    reason = reason_of(error)
    if reason == "oom":
        free_device_memory()
    if reason != "diverged":  # the objective already recorded where it diverged
        reporter.record({"ended": reason, "error": message_of(error)})
    if reason == "error" and log is not None:
        log_traceback(log, optuna_study.study_name, trial.number, error)
    optuna_study.tell(trial, state=TrialState.FAIL)
    if reason == "interrupted":
        retry_with_same_params(optuna_study, [trial.number])
    return reason


def retry_with_same_params(optuna_study: optuna.Study, numbers: Sequence[int]) -> None:
    """Queue failed trials again with their params; each copy's ``retry_history`` names its
    trial, so the failed one no longer counts (``hpo.store.summary.finished_count``).

    One read of the study for all of them: a population of 64 read one by one took seconds,
    and an orphaned worker is meant to stop at once.
    """
    if not numbers:
        return
    by_number = {t.number: t for t in optuna_study.get_trials()}  # copies: the callback
    with warnings.catch_warnings():                               # extends their lists
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback(max_retry=None)  # warns when built
        for number in numbers:
            retry(optuna_study, by_number[number])


def call_space(study: Study, trial: optuna.Trial) -> dict[str, Any]:
    """The params the study's space gives ``trial``; a mistake in the space is a ConfigError."""
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
