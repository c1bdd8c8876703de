"""Run a Study with Optuna: one storage, one or more worker processes, pruning per epoch.

``n_trials`` is the number of finished trials (complete, pruned or failed) the study should
hold: a first run does that many; running the same study again resumes it and does only
what is missing, so a run cut short by a crash or Ctrl-C is completed by the same command.
Raise ``n_trials`` to extend a finished study. A grid study runs every grid point exactly
once, however many workers share it and however often it is resumed.

Example:
    >>> optuna_study = run(study, RunOptions(storage="hpo.journal", workers=2))  # doctest: +SKIP
    >>> optuna_study.best_value                                             # doctest: +SKIP
"""

from __future__ import annotations

import math
import multiprocessing
import os
import pickle
import signal
import sys
import time
import warnings
from dataclasses import dataclass
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from hpo.data import prepare_folds
from hpo.errors import ConfigError, HPOError
from hpo.runners.devices import WorkerSlot, plan_workers, resolve_devices
from hpo.runners.progress import StudyProgress
from hpo.runners.samplers import make_pruner, make_sampler
from hpo.runners.trials import claim_waiting_trial, fail_interrupted_trials, run_trial
from hpo.store.record import read_record, study_record, write_record
from hpo.store.storage import open_storage, resolve_storage
from hpo.store.summary import finished_count
from hpo.study.config import Study

_EXIT_USER_ERROR = 2


@dataclass(frozen=True)
class RunOptions:
    """Where and how a study runs (what it searches is the Study's business).

    Args:
        storage: a storage URL or file path; None means ``hpo.journal`` in the working folder.
        workers: worker processes; None means ``trials_per_device`` per GPU, or one
            single-threaded worker per CPU core on a machine without GPUs.
        devices: ``auto`` (every GPU, else the CPU), ``cpu``, or ``cuda:0,cuda:1,…``.
        trials_per_device: trials that share one device at a time.
        progress: draw a progress bar.
    """

    storage: str | None = None
    workers: int | None = None
    devices: str = "auto"
    trials_per_device: int = 1
    progress: bool = True


def run(study: Study, options: RunOptions | None = None) -> optuna.Study:
    """Run (or resume) the study until it holds ``study.n_trials`` finished trials."""
    options = options or RunOptions()
    slots = plan_workers(resolve_devices(options.devices), options.trials_per_device,
                         options.workers)
    storage_url = resolve_storage(options.storage)
    optuna_study = create_or_load(study, storage_url)
    fail_interrupted_trials(optuna_study)
    remaining = _queue_work(study, optuna_study)
    if remaining == 0:
        return optuna_study
    if len(slots) > 1 and not _picklable(study):
        slots = _one_worker_for_unpicklable(study, slots, asked=options.workers is not None)
    plan = _WorkPlan(study, storage_url, parallel=len(slots) > 1,
                     seed_offset=len(optuna_study.get_trials(deepcopy=False)))
    target = finished_count(optuna_study) + remaining
    progress = StudyProgress(optuna_study, target, enabled=options.progress)
    try:
        if len(slots) == 1:
            _work(plan, slots[0], 0, remaining, progress.refresh)
        else:
            _work_in_processes(plan, slots, remaining, progress)
    finally:
        progress.close()
    return optuna_study


def _picklable(study: Study) -> bool:
    try:
        pickle.dumps(study)
    except (pickle.PicklingError, AttributeError, TypeError):
        return False
    return True


def _one_worker_for_unpicklable(
    study: Study, slots: list[WorkerSlot], *, asked: bool
) -> list[WorkerSlot]:
    """A space defined inside a function or a notebook cannot travel to worker processes."""
    if asked:
        raise ConfigError(
            f"Study {study.name!r}: its space function cannot be sent to {len(slots)} worker "
            "processes (it is defined inside a function, a lambda, or a notebook); define it "
            "at module level in a study file or module, or run with one worker."
        )
    warnings.warn(f"Study {study.name!r}: the space function cannot be sent to worker "
                  "processes; running one worker in this process.", stacklevel=3)
    return [WorkerSlot(slots[0].device, threads=1)]


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
    return optuna_study


def _check_same_data(study: Study, optuna_study: optuna.Study) -> None:
    """Refuse to resume a study on other data: its trials would not be comparable."""
    old = read_record(optuna_study)
    if old is None:
        return
    new = study_record(study)
    keys = ("data", "test_size", "cv_folds", "standardize", "seed", "score")
    changed = [key for key in keys if old.get(key) != new[key]]
    if changed and optuna_study.get_trials(deepcopy=False):
        raise ConfigError(
            f"Study {study.name!r} already holds trials trained with other "
            f"{', '.join(changed)} ({', '.join(f'{k}={old[k]!r}' for k in changed)}); "
            "give the study a new --study-name, or restore the old settings."
        )


def _queue_work(study: Study, optuna_study: optuna.Study) -> int:
    """How many trials this run must finish; for a grid, queue the points not yet run."""
    if study.sampler != "grid":
        return max(0, study.n_trials - finished_count(optuna_study))
    taken = [_grid_key(t.params) for t in optuna_study.get_trials(deepcopy=False)
             if t.state != TrialState.FAIL or t.user_attrs.get("ended") == "diverged"]
    for point in study.grid_points:
        if _grid_key(point) not in taken:
            optuna_study.enqueue_trial(point, user_attrs={"grid_point": True})
    return len(optuna_study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))


def _grid_key(params: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((name, repr(value)) for name, value in params.items()))


@dataclass(frozen=True)
class _WorkPlan:
    """What every worker of one run shares (picklable: it travels to worker processes)."""

    study: Study
    storage_url: str
    parallel: bool
    # Trials already in the storage when the run began: resumed runs draw fresh points.
    seed_offset: int


def _work_in_processes(
    plan: _WorkPlan, slots: list[WorkerSlot], remaining: int, progress: StudyProgress
) -> None:
    context = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools
    # Fixed shares keep the count exact; a grid's workers instead drain one shared queue.
    quotas = [remaining // len(slots) + (i < remaining % len(slots)) for i in range(len(slots))]
    if plan.study.sampler == "grid":
        quotas = [remaining] * len(slots)
    workers = [context.Process(target=_worker_main, args=(plan, slot, i, quota),
                               name=f"hpo-worker-{i}")
               for i, (slot, quota) in enumerate(zip(slots, quotas, strict=True)) if quota]
    for worker in workers:
        worker.start()
    try:
        _wait_for(workers, progress)
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()  # a worker fails its running trial on SIGTERM
            worker.join()


def _wait_for(workers: list[Any], progress: StudyProgress) -> None:
    while any(worker.is_alive() for worker in workers):
        progress.refresh()
        failed = [w for w in workers if w.exitcode not in (None, 0)]
        if failed:
            code = failed[0].exitcode
            kind = "a configuration error (message above)" if code == _EXIT_USER_ERROR else (
                f"exit code {code}")
            raise HPOError(f"Worker {failed[0].name} stopped with {kind}; the other workers "
                           "were stopped and finished trials are kept in the storage.")
        time.sleep(0.5)
    progress.refresh()


def _worker_main(plan: _WorkPlan, slot: WorkerSlot, index: int, quota: int) -> None:
    """Entry point of a worker process: a user's mistake becomes one line and exit code 2."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parent = os.getppid()
    try:
        # A parent killed outright (SIGKILL) cannot stop its workers: each notices it was
        # orphaned and stops after telling the storage how its current trial ended.
        _work(plan, slot, index, quota, progress=None,
              keep_going=lambda: os.getppid() == parent)
    except HPOError as error:
        print(f"hpo: error: {error}", file=sys.stderr)
        sys.exit(_EXIT_USER_ERROR)


def _work(plan: _WorkPlan, slot: WorkerSlot, index: int, quota: int, progress: Any,
          keep_going: Any = lambda: True) -> None:
    threads_before = torch.get_num_threads()
    torch.set_num_threads(slot.threads)
    try:
        _run_trials(plan, slot, index, quota, progress, keep_going)
    finally:
        torch.set_num_threads(threads_before)  # when run in the caller's process


def _run_trials(plan: _WorkPlan, slot: WorkerSlot, index: int, quota: int, progress: Any,
                keep_going: Any) -> None:
    study = plan.study
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna_study = optuna.load_study(
        study_name=study.name, storage=open_storage(plan.storage_url),
        sampler=_sampler_for(plan, index), pruner=make_pruner(study.pruner),
    )
    folds = prepare_folds(study.data, test_size=study.test_size, cv_folds=study.cv_folds,
                          standardize=study.standardize, seed=study.seed)
    deadline = time.monotonic() + (study.timeout or math.inf)
    for _ in range(quota):
        if time.monotonic() > deadline or not keep_going():
            break
        trial = _next_trial(plan, optuna_study)
        if trial is None:
            break
        run_trial(study, optuna_study, trial, folds, slot.device)
        if progress is not None:
            progress()


def _sampler_for(plan: _WorkPlan, index: int) -> optuna.samplers.BaseSampler:
    # Each worker, and each resumed run, draws a fresh stream: reusing a seed would replay
    # the same points. QMC shares one sequence through the storage: one seed for all.
    study = plan.study
    shared = study.sampler == "qmc"
    seed = study.seed if shared else study.seed + 1000 * index + plan.seed_offset
    return make_sampler(study.sampler, seed=seed, parallel=plan.parallel)


def _next_trial(plan: _WorkPlan, optuna_study: optuna.Study) -> optuna.Trial | None:
    if plan.study.sampler == "grid":
        return claim_waiting_trial(optuna_study, plan.storage_url)
    return optuna_study.ask()
