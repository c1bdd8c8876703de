"""Worker processes: how they start (fork or spawn), start, are waited for, and how one's
error or crash stops the run with one line.

Example:
    >>> start_method([WorkerSlot("cpu", threads=1)] * 2)  # doctest: +SKIP
    'fork'
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any

import torch

from hpo.errors import ConfigError, HPOError
from hpo.runners.asking import Tickets, WorkPlan
from hpo.runners.devices import WorkerSlot
from hpo.runners.faults import children_ignore_interrupts
from hpo.runners.progress import StudyProgress
from hpo.runners.worker_loop import work
from hpo.store.storage import disown_inherited_connections
from hpo.study.config import Study

START_METHOD_VARIABLE = "HPO_START_METHOD"
EXIT_USER_ERROR = 2
_STOP_WAIT_SECONDS = 60


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


def picklable(study: Study) -> bool:
    """Whether the study (its space function above all) can be sent to a spawned worker."""
    try:
        pickle.dumps(study)
    except (pickle.PicklingError, AttributeError, TypeError):
        return False
    return True


def one_worker_for_unpicklable(
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
    return slots[:1]


def work_in_processes(
    plan: WorkPlan, slots: list[WorkerSlot], remaining: int,
    new_progress: Callable[[], StudyProgress], method: str,
) -> None:
    """One worker process per slot (at most ``remaining``), until every one has exited."""
    context: Any = multiprocessing.get_context(method)  # fork or spawn
    if method == "fork" and plan.mode == "single":
        # Every trial steps a torch optimizer, which imports torch._dynamo (seconds of CPU):
        # once here, inherited by every worker, rather than once in each.
        import torch._dynamo  # noqa: F401
    # One count drawn by all keeps the total exact; a grid's workers instead drain one
    # shared queue, each allowed the whole count.
    grid = plan.study.sampler == "grid"
    shared = Tickets(remaining, context, workers=len(slots))
    errors = context.SimpleQueue()  # a worker's one-line error, printed once by this process
    workers = [context.Process(target=worker_main,
                               args=(plan, slot, i, Tickets(remaining, context) if grid
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
        _stop(workers)
        if progress is not None:
            progress.close()


def _stop(workers: list[Any]) -> None:
    """The workers still running stopped: politely, then after a minute outright."""
    started = [worker for worker in workers if worker.pid is not None]
    for worker in started:
        if worker.is_alive():
            worker.terminate()  # ends its trial at the next epoch, told as interrupted
    for worker in started:
        worker.join(_STOP_WAIT_SECONDS)
        if worker.is_alive():
            worker.kill()  # stuck inside one epoch: its trial is failed on resume
            worker.join()


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
    if worker.exitcode == EXIT_USER_ERROR and not errors.empty():
        return HPOError(f"{errors.get()} ({worker.name} stopped; {ending}.)")
    code = worker.exitcode
    how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
    return HPOError(f"Worker {worker.name} crashed ({how}); {ending}.")


def worker_main(plan: WorkPlan, slot: WorkerSlot, index: int, tickets: Tickets,
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
        work(plan, slot, index, tickets, progress=None,
             keep_going=lambda: os.getppid() == parent)
    except HPOError as error:
        # Exiting anyway: the parent's SIGTERM (another worker's error stops the run) would
        # raise KeyboardInterrupt inside this handler, a traceback instead of one line.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if errors is None:
            print(f"hpo: error: {error}", file=sys.stderr)
        else:
            errors.put(str(error))
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        sys.exit(130)  # Ctrl-C reaches every process; the main one reports it
