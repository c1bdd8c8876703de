"""How a worker asks Optuna for trials: how many at once, within the run's tickets, from
which sampler, and the trials a rolling population takes in as its trials end.

Example:
    >>> plan = WorkPlan(study, "hpo.journal", parallel=False, seed_offset=0)  # doctest: +SKIP
    >>> batch_size(plan, done=0)                                             # doctest: +SKIP
    8
"""

from __future__ import annotations

import math
import multiprocessing
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from hpo.runners.trials import claim_for_this_worker, claim_waiting_trial
from hpo.store.storage import exclusive_claims
from hpo.store.summary import counted_trials
from hpo.study.algorithms import LEARNING_SAMPLERS, make_sampler
from hpo.study.config import Study

FIRST_BATCH = 8  # the smallest first batch of a learning sampler


@dataclass(frozen=True)
class WorkPlan:
    """What every worker of one run shares (picklable: it travels to worker processes)."""

    study: Study
    storage_url: str
    parallel: bool
    # Trials already in the storage when the run began: resumed runs draw fresh points.
    seed_offset: int
    trial_timeout: float | None = None
    mode: str = "auto"
    population_size: int = 64
    workers: int = 1  # processes sharing the run


def sampler_for(plan: WorkPlan, index: int) -> optuna.samplers.BaseSampler:
    """The sampler of worker ``index``."""
    # Each worker, and each resumed run, draws a fresh stream: reusing a seed would replay
    # the same points. QMC shares one sequence through the storage: one seed for all.
    study = plan.study
    shared = study.sampler == "qmc"
    seed = study.seed if shared else study.seed + 1000 * index + plan.seed_offset
    return make_sampler(study.sampler, seed=seed, parallel=plan.parallel)


def batch_size(plan: WorkPlan, done: int) -> int:
    """Trials to hold at once: from a quarter of the study (at least 8) up to the
    population size, growing with the trials this worker has done.

    The sampler learns from ended trials only: those asked before any ended are guesses
    (TPE's first 10 are random anyway). Starting from a quarter of the study caps the
    guessing there, and the places fill as trials end: more places at once train a
    model-epoch for less, fewer asked blind keep a small study's search a search.
    ``done`` counts this worker's trials; each of several workers starts from its share,
    so the study as a whole starts from the same count as one worker does.

    A sampler that learns nothing (grid, random, QMC) asks all at once: the median and
    percentile pruners judge a trial against the earlier ones still training too
    (``hpo.study.pruners``), successive halving judges running trials anyway. Hyperband
    does not: it sizes its brackets by the first trial that finishes, and prunes nothing
    before one has.
    """
    if plan.mode == "single":
        return 1
    if plan.study.sampler not in LEARNING_SAMPLERS and plan.study.pruner != "hyperband":
        return plan.population_size
    first = max(FIRST_BATCH, plan.study.n_trials // 4)
    return min(plan.population_size, max(done, math.ceil(first / plan.workers)))


class Tickets:
    """How many more trials a run may ask, drawn by its workers as they ask them.

    One count shared by the worker processes (a lock-guarded shared integer): a worker whose
    trials end early asks more instead of idling while another works through a fixed share
    (with fixed halves, one of two workers was seen idle for the last sixth of a 100-trial
    homework run; with workers of unequal speed it would be more). Tickets drawn for trials
    a grid's empty queue did not give are simply not used: the grid's queue, not the
    count, bounds its run.
    """

    def __init__(self, count: int, context: Any = multiprocessing, workers: int = 1) -> None:
        self._left, self._workers = context.Value("q", count), workers

    def take(self, wanted: int) -> int:
        """Up to ``wanted`` tickets, and at most a worker's share of those left (0 when none
        are): the first worker to ask must not take a whole population's worth and leave
        the others little or nothing."""
        with self._left.get_lock():
            share = math.ceil(self._left.value / self._workers)
            granted = max(0, min(wanted, share))
            self._left.value -= granted
        return int(granted)


def study_is_full(study: Study, optuna_study: optuna.Study) -> bool:
    """Whether finished and running trials already make ``n_trials`` (never for a grid,
    whose queue is its bound). Each run's tickets keep its own count exact; this keeps runs
    started at once on several hosts from each doing the whole count."""
    if study.sampler == "grid":
        return False
    # One read for both counts: read apart, a trial that finishes in between counts twice.
    trials = optuna_study.get_trials(deepcopy=False)
    running = sum(t.state == TrialState.RUNNING for t in trials)
    return len(counted_trials(trials)) + running >= study.n_trials


def next_trials(plan: WorkPlan, optuna_study: optuna.Study, count: int) -> list[optuna.Trial]:
    """Up to ``count`` trials (fewer where a grid's queue runs dry)."""
    trials = []
    for _ in range(count):
        trial = next_trial(plan, optuna_study)
        if trial is None:
            break
        trials.append(trial)
    return trials


def next_trial(plan: WorkPlan, optuna_study: optuna.Study) -> optuna.Trial | None:
    """A new trial claimed for this worker; None when a grid's queue is empty."""
    if plan.study.sampler == "grid":
        claimed = claim_waiting_trial(optuna_study, plan.storage_url)
        return None if claimed is None else claim_for_this_worker(claimed)
    # ask() takes a queued trial (a retried one) first; on SQLite two workers could take
    # the same one without the claim lock.
    with exclusive_claims(plan.storage_url), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "heartbeat is meant for Study.optimize": see heartbeat()
        return claim_for_this_worker(optuna_study.ask())


class Refill:
    """Asks the trials a rolling population takes in as its trials end
    (`hpo.runners.population.run_batch`): as many as a new batch would hold
    (`batch_size` of this worker's trials done and ended), within the run's tickets,
    the study's time budget and its ``n_trials``."""

    _PROGRESS_SECONDS = 1.0  # the progress bar re-reads the whole storage: not every epoch

    def __init__(self, plan: WorkPlan, optuna_study: optuna.Study, done: int, asked: int,
                 tickets: Tickets, deadline: float, keep_going: Callable[[], bool],
                 progress: Callable[[], None] | None) -> None:
        self.plan, self.optuna_study = plan, optuna_study
        self.done, self.asked, self.tickets, self.deadline = done, asked, tickets, deadline
        self.keep_going, self.progress = keep_going, progress
        self.shown = time.monotonic()

    def __call__(self, running: int, ended: int) -> list[optuna.Trial]:
        count = batch_size(self.plan, self.done + ended) - running
        if count <= 0 or time.monotonic() > self.deadline or not self.keep_going():
            return []
        if self.progress is not None and time.monotonic() > self.shown + self._PROGRESS_SECONDS:
            self.progress()
            self.shown = time.monotonic()
        if study_is_full(self.plan.study, self.optuna_study):
            return []
        trials = next_trials(self.plan, self.optuna_study, self.tickets.take(count))
        self.asked += len(trials)
        return trials
