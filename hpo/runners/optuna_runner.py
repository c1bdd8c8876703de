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
import multiprocessing.connection
import os
import pickle
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from hpo.errors import ConfigError, HPOError
from hpo.runners.devices import WorkerSlot, plan_workers, resolve_devices
from hpo.runners.faults import (
    RepeatGuard,
    children_ignore_interrupts,
    deferred_stop,
    error_log,
    stop_requested,
)
from hpo.runners.population import run_batch
from hpo.runners.preflight import preflight
from hpo.runners.progress import StudyProgress
from hpo.runners.trials import (
    claim_for_this_worker,
    claim_waiting_trial,
    fail_interrupted_trials,
    run_trial,
)
from hpo.store.attrs import read_record, write_record
from hpo.store.batching import batched_writes
from hpo.store.optuna_internals import fail_stale_trials, heartbeat
from hpo.store.record import COMPARABLE_KEYS, folds_from_record, score_label, study_record
from hpo.store.storage import (
    disown_inherited_connections,
    exclusive_claims,
    open_storage,
    resolve_storage,
)
from hpo.store.summary import counted_trials, finished_count, retried_numbers
from hpo.study.algorithms import LEARNING_SAMPLERS, make_pruner, make_sampler
from hpo.study.config import Study
from search_spaces.values import is_int

_EXIT_USER_ERROR = 2
_STOP_WAIT_SECONDS = 60
MODES = ("auto", "population", "single")
_FIRST_BATCH = 8


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
        trial_timeout: seconds after which one trial is failed (reason ``timeout``).
        runner: ``optuna`` (worker processes) or ``ray`` (see hpo.runners.ray_runner).
        address: with ``ray``: ``auto`` or ``ray://host:port`` joins that cluster; None
            starts a local Ray for the run.
        max_retries: with ``ray``: times a crashing trial is run again (None: 2).
        mode: ``auto`` trains trials that share a batch size (and input features) as one
            batched population (``hpo.runners.population``; depth, width, activation, batch
            norm and epochs may differ) and a trial alone in its group one at a time;
            ``population`` batches every trial (a group of one too); ``single`` trains one
            trial at a time.
        population_size: trials asked at once per worker in ``auto``/``population`` mode.
    """

    storage: str | None = None
    workers: int | None = None
    devices: str = "auto"
    trials_per_device: int = 1
    progress: bool = True
    trial_timeout: float | None = None
    runner: str = "optuna"
    address: str | None = None
    max_retries: int | None = None
    # Batched where it applies: the population path records what the one-at-a-time path
    # records and applies the same fault handling (tests/test_population.py).
    mode: str = "auto"
    population_size: int = 64

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"`mode` must be one of {', '.join(MODES)}, but got "
                              f"{self.mode!r}; pass e.g. mode='auto'.")
        if isinstance(self.population_size, bool) or not isinstance(
                self.population_size, int) or self.population_size < 1:
            raise ConfigError(f"`population_size >= 1` must hold, but got "
                              f"population_size={self.population_size!r}.")


RUNNERS = ("optuna", "ray")


def run(study: Study, options: RunOptions | None = None) -> optuna.Study:
    """Run (or resume) the study until it holds ``study.n_trials`` finished trials."""
    options = options or RunOptions()
    _check_runner_options(study, options)
    if options.runner == "ray":
        from hpo.runners.ray_runner import run_ray

        return run_ray(study, options, lambda: prepare_run(study, options))
    slots = plan_workers(resolve_devices(options.devices), options.trials_per_device,
                         options.workers)
    storage_url, optuna_study, remaining = prepare_run(study, options)
    if remaining == 0:
        return optuna_study
    # A forked worker inherits the study as it is in memory; a spawned one is sent a pickle.
    method = start_method(slots) if len(slots) > 1 else "spawn"
    if len(slots) > 1 and method == "spawn" and not _picklable(study):
        slots = _one_worker_for_unpicklable(study, slots, asked=options.workers is not None)
    # A study scored over several seeds never batches (hpo.runners.population.batchable):
    # auto mode then asks one trial at a time, so the sampler learns from every result.
    mode = "single" if options.mode == "auto" and study.seeds > 1 else options.mode
    plan = _WorkPlan(study, storage_url, parallel=len(slots) > 1,
                     seed_offset=len(optuna_study.get_trials(deepcopy=False)),
                     trial_timeout=options.trial_timeout, mode=mode,
                     population_size=options.population_size, workers=len(slots))
    alone = replace(plan, parallel=False, workers=1)
    if options.workers is None and len(slots) > 1 and _batch_size(alone, 0) >= remaining:
        # The first ask takes the whole run (a small grid): a second worker would only pay
        # its start-up (seconds where it is spawned).
        slots, plan = slots[:1], alone
    target = finished_count(optuna_study) + remaining

    def new_progress() -> StudyProgress:
        return StudyProgress(optuna_study, target, enabled=options.progress)

    if len(slots) > 1:
        _work_in_processes(plan, slots, remaining, new_progress, method)
        return optuna_study
    progress = new_progress()
    try:
        _work(plan, slots[0], 0, _Tickets(remaining), progress.refresh)
    finally:
        progress.close()
    return optuna_study


def prepare_run(study: Study, options: RunOptions) -> tuple[str, optuna.Study, int]:
    """The storage, the study in it (resumed: dead workers' trials failed, grid points
    queued), and how many trials this run must finish. Shared by both runners."""
    storage_url = resolve_storage(options.storage)
    preflight(study)  # before the storage is touched: a refused run leaves it as it was
    optuna_study = create_or_load(study, storage_url)
    fail_interrupted_trials(optuna_study)
    fail_stale_trials(optuna_study)
    return storage_url, optuna_study, _queue_work(study, optuna_study)


def _check_runner_options(study: Study, options: RunOptions) -> None:
    if options.runner not in RUNNERS:
        raise ConfigError(f"`runner` must be one of {', '.join(RUNNERS)}, but got "
                          f"{options.runner!r}.")
    if options.max_retries is not None and (
            not is_int(options.max_retries) or options.max_retries < 0):
        raise ConfigError(f"`--max-retries` must be an integer >= 0, but got "
                          f"{options.max_retries!r}.")
    if options.runner == "ray":
        if options.mode == "population":
            raise ConfigError("`--mode population` applies to the optuna runner only (a Ray "
                              "actor trains one trial); drop it or use --runner optuna.")
        if options.trial_timeout is not None:
            raise ConfigError("`--trial-timeout` is supported by the optuna runner only, but "
                              "got it with --runner ray; drop it or use --runner optuna.")
        return
    ray_only = [flag for flag, value in (("--address", options.address),
                                          ("--max-retries", options.max_retries),
                                          ("--pruner asha", study.pruner == "asha" or None))
                if value is not None]
    if ray_only:
        raise ConfigError(f"{', '.join(ray_only)} only apply with --runner ray; add "
                          "--runner ray, or drop them (the Optuna runner's sha pruner is "
                          "asynchronous successive halving too).")


def _picklable(study: Study) -> bool:
    try:
        pickle.dumps(study)
    except (pickle.PicklingError, AttributeError, TypeError):
        return False
    return True


def _one_worker_for_unpicklable(
    study: Study, slots: list[WorkerSlot], *, asked: bool
) -> list[WorkerSlot]:
    """A space defined inside a function or a notebook cannot travel to spawned workers."""
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


def _queue_work(study: Study, optuna_study: optuna.Study) -> int:
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


@dataclass(frozen=True)
class _WorkPlan:
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


START_METHOD_VARIABLE = "HPO_START_METHOD"


def start_method(slots: list[WorkerSlot]) -> str:
    """How worker processes start: ``fork`` where it is safe, else ``spawn``.

    A spawned worker imports torch, optuna and hpo again; a forked one starts with all this
    process imported. Two workers ready to train after (benchmarks/README.md, 2-core
    machine, load average 3.8-5.8): fork 0.06-0.07 s, forkserver 3.3-14.6 s, spawn 9-16 s.
    Fork copies this process as it is, so it is used only where nothing copied can misbehave:

    - Linux (macOS's system libraries are not fork-safe; Python itself spawns there);
    - every slot a CPU slot with one thread, so the child never enters an OpenMP parallel
      region: libgomp, torch's OpenMP, registers no fork handler, and a parallel region in
      the child would wait on pool threads this process may have started, which do not
      exist there. (A one-thread slot runs every torch op inline.)
    - CUDA not initialized here, and no CUDA slot: torch refuses CUDA in a forked child
      ("Cannot re-initialize CUDA in forked subprocess");
    - no other Python thread in this process: a lock such a thread holds at the fork (an
      output buffer's, the import lock, a driver's) stays held forever in the child, and
      that thread's objects are freed there. hpo's progress bars start no thread (tqdm's
      monitor is off, hpo.train.progress) and the workers start before the bar;
      ``hpo.run`` called beside other threads (from a thread, in a notebook kernel) spawns.

    A forked worker opens its own storage and disowns the pooled database connections it
    inherited (``hpo.store.storage.disown_inherited_connections``), as SQLAlchemy advises
    for ``os.fork``. Forkserver is not used: its workers are children of the server, not of
    this process, so a worker's check that its parent is alive (``os.getppid()``) would
    need another mechanism, and Ctrl-C and the server's lifetime would need handling too.
    ``HPO_START_METHOD=spawn`` in the environment forces spawn (never fork).
    """
    asked = os.environ.get(START_METHOD_VARIABLE, "").strip()
    if asked == "spawn":
        return asked
    if asked:
        raise ConfigError(f"`{START_METHOD_VARIABLE}` must be spawn, but got {asked!r}; unset "
                          "it to let hpo choose (fork where it is safe, else spawn).")
    safe = (sys.platform == "linux"
            and all(slot.device == "cpu" and slot.threads == 1 for slot in slots)
            and not torch.cuda.is_initialized()
            and threading.active_count() == 1)
    return "fork" if safe else "spawn"


def _work_in_processes(
    plan: _WorkPlan, slots: list[WorkerSlot], remaining: int,
    new_progress: Callable[[], StudyProgress], method: str,
) -> None:
    context: Any = multiprocessing.get_context(method)  # fork or spawn
    if method == "fork" and plan.mode == "single":
        # Every trial steps a torch optimizer, which imports torch._dynamo (seconds of CPU):
        # once here, inherited by every worker, rather than once in each.
        import torch._dynamo  # noqa: F401
    # One count drawn by all keeps the total exact; a grid's workers instead drain one
    # shared queue, each allowed the whole count.
    grid = plan.study.sampler == "grid"
    shared = _Tickets(remaining, context, workers=len(slots))
    errors = context.SimpleQueue()  # a worker's one-line error, printed once by this process
    workers = [context.Process(target=_worker_main,
                               args=(plan, slot, i, _Tickets(remaining, context) if grid
                                     else shared, os.getpid(), errors, method == "fork"),
                               name=f"hpo-worker-{i}")
               for i, slot in enumerate(slots[:remaining])]
    progress = None
    try:
        for worker in workers:
            with children_ignore_interrupts():
                worker.start()
        progress = new_progress()  # after the forks: nothing of it is copied
        _wait_for(workers, progress, errors)
    finally:
        workers = [worker for worker in workers if worker.pid is not None]  # started
        for worker in workers:
            if worker.is_alive():
                worker.terminate()  # ends its trial at the next epoch, told as interrupted
        for worker in workers:
            worker.join(_STOP_WAIT_SECONDS)
            if worker.is_alive():
                worker.kill()  # stuck inside one epoch: its trial is failed on resume
                worker.join()
        if progress is not None:
            progress.close()


def _wait_for(workers: list[Any], progress: StudyProgress, errors: Any) -> None:
    """Until every worker has exited; the first that stopped on an error stops the run.

    Exit codes are read on every pass, including after the last worker exited: a worker
    that fails in its first second must not leave an exit code of 0 behind.
    """
    while True:
        running = any(worker.is_alive() for worker in workers)
        progress.refresh()
        failed = [w for w in workers if w.exitcode not in (None, 0)]
        if failed:
            raise _worker_error(failed[0], errors)
        if not running:
            return
        # Wakes when a worker exits, else after 0.2 s for the progress display: a fixed
        # sleep here added 0.1 s on average to every run (a sixth of a 100-trial homework).
        multiprocessing.connection.wait([w.sentinel for w in workers if w.is_alive()], 0.2)


def _worker_error(worker: Any, errors: Any) -> HPOError:
    ending = ("the other workers were stopped; finished trials are kept in the storage and "
              "running the same command again resumes")
    if worker.exitcode == _EXIT_USER_ERROR and not errors.empty():
        return HPOError(f"{errors.get()} ({worker.name} stopped; {ending}.)")
    code = worker.exitcode
    how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
    return HPOError(f"Worker {worker.name} crashed ({how}); {ending}.")


def _worker_main(plan: _WorkPlan, slot: WorkerSlot, index: int, tickets: _Tickets,
                 parent: int, errors: Any = None, forked: bool = False) -> None:
    """Entry point of a worker process: a user's mistake becomes one line and exit code 2,
    sent to the main process, which prints it once."""
    # The parent's pid comes from the parent: one killed before this worker got here
    # would otherwise be mistaken for the process that adopted it.
    try:
        if forked:  # inside the try: a forked worker inherits the CLI's SIGTERM handler,
            # which raises KeyboardInterrupt until deferred_stop replaces it
            disown_inherited_connections()  # the parent's; this worker opens its own
        # A parent killed outright (SIGKILL) cannot stop its workers: each notices it was
        # orphaned and stops after telling the storage how its current trial ended.
        _work(plan, slot, index, tickets, progress=None,
              keep_going=lambda: os.getppid() == parent)
    except HPOError as error:
        # Exiting anyway: the parent's SIGTERM (another worker's error stops the run) would
        # raise KeyboardInterrupt inside this handler, a traceback instead of one line.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if errors is None:
            print(f"hpo: error: {error}", file=sys.stderr)
        else:
            errors.put(str(error))
        sys.exit(_EXIT_USER_ERROR)
    except KeyboardInterrupt:
        sys.exit(130)  # Ctrl-C reaches every process; the main one reports it


def _work(plan: _WorkPlan, slot: WorkerSlot, index: int, tickets: _Tickets, progress: Any,
          keep_going: Any = lambda: True) -> None:
    threads_before = torch.get_num_threads()
    torch.set_num_threads(slot.threads)
    try:
        with deferred_stop():
            _run_trials(plan, slot, index, tickets, progress,
                        lambda: keep_going() and not stop_requested())
        if stop_requested():
            raise KeyboardInterrupt
    finally:
        torch.set_num_threads(threads_before)  # when run in the caller's process


def _run_trials(plan: _WorkPlan, slot: WorkerSlot, index: int, tickets: _Tickets,
                progress: Any, keep_going: Any) -> None:
    study = plan.study
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna_study = optuna.load_study(
        study_name=study.name, storage=open_storage(plan.storage_url),
        sampler=_sampler_for(plan, index), pruner=make_pruner(study.pruner),
    )
    # The folds trials are scored on: the held-out test part is never among them.
    folds = folds_from_record(study_record(study))
    deadline = time.monotonic() + (study.timeout or math.inf)
    guard, log = RepeatGuard(), error_log(plan.storage_url)
    done = 0
    while time.monotonic() <= deadline and keep_going():
        fail_stale_trials(optuna_study)
        if _study_is_full(study, optuna_study):
            break  # other hosts' runs of the same study filled it
        if plan.mode == "single":
            trial = _next_trial(plan, optuna_study) if tickets.take(1) else None
            if trial is None:
                break
            with heartbeat(optuna_study, trial):
                ended = run_trial(study, optuna_study, trial, folds, slot.device,
                                  timeout=plan.trial_timeout, log=log)
            endings, asked = [(ended, str(trial.user_attrs.get("error", "")))], 1
        else:
            trials = _next_trials(plan, optuna_study, tickets.take(_batch_size(plan, done)))
            if not trials:
                break
            refill = _Refill(plan, optuna_study, done, len(trials), tickets, deadline,
                             keep_going, progress)
            endings = run_batch(study, optuna_study, trials, folds, slot.device,
                                force=plan.mode == "population", keep_going=keep_going,
                                timeout=plan.trial_timeout, log=log, refill=refill)
            asked = refill.asked
        for ended, message in endings:
            if ended in ("complete", "pruned"):
                guard.completed()
            else:
                guard.failed(ended, message, log)
        done += asked
        if progress is not None:
            progress()


class _Refill:
    """Asks the trials a rolling population takes in as its trials end
    (`hpo.runners.population.run_batch`): as many as a new batch would hold
    (`_batch_size` of this worker's trials done and ended), within the run's tickets,
    the study's time budget and its ``n_trials``."""

    _PROGRESS_SECONDS = 1.0  # the progress bar re-reads the whole storage: not every epoch

    def __init__(self, plan: _WorkPlan, optuna_study: optuna.Study, done: int, asked: int,
                 tickets: _Tickets, deadline: float, keep_going: Callable[[], bool],
                 progress: Callable[[], None] | None) -> None:
        self.plan, self.optuna_study = plan, optuna_study
        self.done, self.asked, self.tickets, self.deadline = done, asked, tickets, deadline
        self.keep_going, self.progress = keep_going, progress
        self.shown = time.monotonic()

    def __call__(self, running: int, ended: int) -> list[optuna.Trial]:
        count = _batch_size(self.plan, self.done + ended) - running
        if count <= 0 or time.monotonic() > self.deadline or not self.keep_going():
            return []
        if self.progress is not None and time.monotonic() > self.shown + self._PROGRESS_SECONDS:
            self.progress()
            self.shown = time.monotonic()
        if _study_is_full(self.plan.study, self.optuna_study):
            return []
        trials = _next_trials(self.plan, self.optuna_study, self.tickets.take(count))
        self.asked += len(trials)
        return trials


def _study_is_full(study: Study, optuna_study: optuna.Study) -> bool:
    """Whether finished and running trials already make ``n_trials`` (never for a grid,
    whose queue is its bound). Each run's tickets keep its own count exact; this keeps runs
    started at once on several hosts from each doing the whole count."""
    if study.sampler == "grid":
        return False
    # One read for both counts: read apart, a trial that finishes in between counts twice.
    trials = optuna_study.get_trials(deepcopy=False)
    running = sum(t.state == TrialState.RUNNING for t in trials)
    return len(counted_trials(trials)) + running >= study.n_trials


def _sampler_for(plan: _WorkPlan, index: int) -> optuna.samplers.BaseSampler:
    # Each worker, and each resumed run, draws a fresh stream: reusing a seed would replay
    # the same points. QMC shares one sequence through the storage: one seed for all.
    study = plan.study
    shared = study.sampler == "qmc"
    seed = study.seed if shared else study.seed + 1000 * index + plan.seed_offset
    return make_sampler(study.sampler, seed=seed, parallel=plan.parallel)


def _batch_size(plan: _WorkPlan, done: int) -> int:
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
    first = max(_FIRST_BATCH, plan.study.n_trials // 4)
    return min(plan.population_size, max(done, math.ceil(first / plan.workers)))


def _next_trials(plan: _WorkPlan, optuna_study: optuna.Study, count: int) -> list[optuna.Trial]:
    """Up to ``count`` trials (fewer where a grid's queue runs dry)."""
    trials = []
    for _ in range(count):
        trial = _next_trial(plan, optuna_study)
        if trial is None:
            break
        trials.append(trial)
    return trials


class _Tickets:
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


def _next_trial(plan: _WorkPlan, optuna_study: optuna.Study) -> optuna.Trial | None:
    if plan.study.sampler == "grid":
        claimed = claim_waiting_trial(optuna_study, plan.storage_url)
        return None if claimed is None else claim_for_this_worker(claimed)
    # ask() takes a queued trial (a retried one) first; on SQLite two workers could take
    # the same one without the claim lock.
    with exclusive_claims(plan.storage_url), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "heartbeat is meant for Study.optimize": see heartbeat()
        return claim_for_this_worker(optuna_study.ask())
