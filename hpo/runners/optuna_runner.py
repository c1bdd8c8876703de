"""Run a Study with Optuna: one storage, one or more worker processes, pruning per epoch.

``n_trials`` is the number of finished trials (complete, pruned or failed) the study should
hold: a first run does that many; running the same study again resumes it and does only
what is missing, so a run cut short by a crash or Ctrl-C is completed by the same command.
Raise ``n_trials`` to extend a finished study. A grid study runs every grid point exactly
once, however many workers share it and however often it is resumed.

The parts, one job each: ``options`` (``RunOptions``, its defaults and checks),
``study_setup`` (the study created or resumed in its storage), ``processes`` (worker
processes: start, wait, errors), ``asking`` (how many trials a worker asks, and from which
sampler) and ``worker_loop`` (one worker's loop). This module puts them together.

Example:
    >>> optuna_study = run(study, RunOptions(storage="hpo.journal", workers=2))  # doctest: +SKIP
    >>> optuna_study.best_value                                             # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import replace

import optuna

from hpo.runners.asking import Tickets, WorkPlan, batch_size
from hpo.runners.devices import WorkerSlot, plan_workers, resolve_devices
from hpo.runners.options import MODES, RUNNERS, RunOptions, check_options
from hpo.runners.processes import (
    START_METHOD_VARIABLE,
    one_worker_for_unpicklable,
    picklable,
    start_method,
    work_in_processes,
)
from hpo.runners.progress import StudyProgress
from hpo.runners.study_setup import create_or_load, prepare_run
from hpo.runners.worker_loop import work
from hpo.store.summary import finished_count
from hpo.study.config import Study

# What callers import from here, wherever it lives now.
__all__ = ["MODES", "RUNNERS", "START_METHOD_VARIABLE", "RunOptions", "create_or_load",
           "prepare_run", "run", "start_method"]


def run(study: Study, options: RunOptions | None = None) -> optuna.Study:
    """Run (or resume) the study until it holds ``study.n_trials`` finished trials."""
    options = options or RunOptions()
    check_options(study, options)
    if options.runner == "ray":
        from hpo.runners.ray_runner import run_ray

        return run_ray(study, options, lambda: prepare_run(study, options.storage))
    slots = plan_workers(resolve_devices(options.devices), options.trials_per_device,
                         options.workers, options.threads_per_process)
    storage_url, optuna_study, remaining = prepare_run(study, options.storage)
    if remaining == 0:
        return optuna_study
    # A forked worker inherits the study as it is in memory; a spawned one is sent a pickle.
    method = start_method(slots) if len(slots) > 1 else "spawn"
    if len(slots) > 1 and method == "spawn" and not picklable(study):
        slots = one_worker_for_unpicklable(study, slots, asked=options.workers is not None)
    plan = _work_plan(study, options, storage_url, optuna_study, workers=len(slots))
    alone = replace(plan, parallel=False, workers=1)
    if options.workers is None and len(slots) > 1 and batch_size(alone, 0) >= remaining:
        # The first ask takes the whole run (a small grid): a second worker would only pay
        # its start-up (seconds where it is spawned).
        slots, plan = slots[:1], alone
    target = finished_count(optuna_study) + remaining

    def new_progress() -> StudyProgress:
        return StudyProgress(optuna_study, target, enabled=options.progress)

    if len(slots) > 1:
        work_in_processes(plan, slots, remaining, new_progress, method)
    else:
        _work_here(plan, slots[0], remaining, new_progress())
    return optuna_study


def _work_plan(study: Study, options: RunOptions, storage_url: str,
               optuna_study: optuna.Study, workers: int) -> WorkPlan:
    # A study scored over several seeds never batches (hpo.runners.population.batchable):
    # auto mode then asks one trial at a time, so the sampler learns from every result.
    mode = "single" if options.mode == "auto" and study.seeds > 1 else options.mode
    return WorkPlan(study, storage_url, parallel=workers > 1,
                    seed_offset=len(optuna_study.get_trials(deepcopy=False)),
                    trial_timeout=options.trial_timeout, mode=mode,
                    population_size=options.population_size, workers=workers)


def _work_here(plan: WorkPlan, slot: WorkerSlot, remaining: int,
               progress: StudyProgress) -> None:
    """One worker in this process (its thread count given back when it returns)."""
    try:
        work(plan, slot, 0, Tickets(remaining), progress.refresh)
    finally:
        progress.close()
