"""One worker's loop, in a worker process or in the caller's: ask trials, train them (one at
a time or as a population), tell how they ended, until the run's tickets, the study's time
budget or its ``n_trials`` are spent, or the run is stopped.

Example:
    >>> work(plan, WorkerSlot("cpu", threads=1), 0, Tickets(10), progress=None)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import optuna

from hpo.runners.asking import (
    Refill,
    Tickets,
    WorkPlan,
    batch_size,
    next_trial,
    next_trials,
    sampler_for,
    study_is_full,
)
from hpo.runners.devices import WorkerSlot
from hpo.runners.faults import RepeatGuard, deferred_stop, error_log, stop_requested
from hpo.runners.population import run_batch
from hpo.runners.trials import run_trial
from hpo.store.optuna_internals import fail_stale_trials, heartbeat
from hpo.store.record import folds_from_record, study_record
from hpo.store.storage import open_storage
from hpo.study.algorithms import make_pruner
from hpo.train.threads import torch_threads

# How each trial asked in one pass ended: (ended, its error message).
Endings = list[tuple[str, str]]


def work(plan: WorkPlan, slot: WorkerSlot, index: int, tickets: Tickets,
         progress: Callable[[], None] | None,
         keep_going: Callable[[], bool] = lambda: True) -> None:
    """Run trials on ``slot`` at its thread count (given back after, for a caller's
    process) until there is nothing left to do; a stop request ends it as Ctrl-C."""
    with torch_threads(slot.threads):
        with deferred_stop():
            _run_trials(plan, slot, index, tickets, progress,
                        lambda: keep_going() and not stop_requested())
        if stop_requested():
            raise KeyboardInterrupt


def _run_trials(plan: WorkPlan, slot: WorkerSlot, index: int, tickets: Tickets,
                progress: Callable[[], None] | None, keep_going: Callable[[], bool]) -> None:
    study = plan.study
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna_study = optuna.load_study(
        study_name=study.name, storage=open_storage(plan.storage_url),
        sampler=sampler_for(plan, index), pruner=make_pruner(study.pruner),
    )
    deadline = time.monotonic() + (study.timeout or math.inf)
    loop = _Loop(plan, optuna_study, slot, tickets, deadline, keep_going, progress)
    guard = RepeatGuard()
    done = 0
    while time.monotonic() <= deadline and keep_going():
        fail_stale_trials(optuna_study)
        if study_is_full(study, optuna_study):
            break  # other hosts' runs of the same study filled it
        endings, asked = loop.one_trial() if plan.mode == "single" else loop.population(done)
        if not asked:
            break
        for ended, message in endings:
            if ended in ("complete", "pruned"):
                guard.completed()
            else:
                guard.failed(ended, message, loop.log)
        done += asked
        if progress is not None:
            progress()


class _Loop:
    """What one pass of the worker loop trains with, and its two ways to train."""

    def __init__(self, plan: WorkPlan, optuna_study: optuna.Study, slot: WorkerSlot,
                 tickets: Tickets, deadline: float, keep_going: Callable[[], bool],
                 progress: Callable[[], None] | None) -> None:
        self.plan, self.optuna_study, self.device = plan, optuna_study, slot.device
        self.tickets, self.deadline, self.keep_going = tickets, deadline, keep_going
        self.progress = progress
        # The folds trials are scored on: the held-out test part is never among them.
        self.folds = folds_from_record(study_record(plan.study))
        self.log = error_log(plan.storage_url)

    def one_trial(self) -> tuple[Endings, int]:
        """One trial trained alone; (its ending, 1), or ([], 0) when none is left."""
        trial = next_trial(self.plan, self.optuna_study) if self.tickets.take(1) else None
        if trial is None:
            return [], 0
        with heartbeat(self.optuna_study, trial):
            ended = run_trial(self.plan.study, self.optuna_study, trial, self.folds,
                              self.device, timeout=self.plan.trial_timeout, log=self.log)
        return [(ended, str(trial.user_attrs.get("error", "")))], 1

    def population(self, done: int) -> tuple[Endings, int]:
        """A batch of trials trained as populations, refilled as its trials end; (their
        endings, trials asked), or ([], 0) when none is left."""
        plan = self.plan
        trials = next_trials(plan, self.optuna_study, self.tickets.take(batch_size(plan, done)))
        if not trials:
            return [], 0
        refill = Refill(plan, self.optuna_study, done, len(trials), self.tickets,
                        self.deadline, self.keep_going, self.progress)
        endings = run_batch(plan.study, self.optuna_study, trials, self.folds, self.device,
                            force=plan.mode == "population", keep_going=self.keep_going,
                            timeout=plan.trial_timeout, log=self.log, refill=refill)
        return endings, refill.asked
