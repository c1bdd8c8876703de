"""How a trial fails, for every runner: classify the fault, record it on the trial, stop a
study whose every trial fails the same way.

A fault inside one trial fails that trial and lets the study go on. Its reason is stored as
the trial's ``ended`` attribute (``error``, ``diverged``, ``oom``, ``timeout``,
``interrupted``) and its message as ``error``; the traceback of an exception in user code
goes to a log file beside the storage (``<storage>.errors.log``), not to the terminal.

Example:
    >>> reason_of(TrialTimeout("past 5 s"))
    'timeout'
    >>> guard = RepeatGuard(limit=2)
    >>> guard.failed("error", "KeyError: 'lr'"); guard.failed("error", "KeyError: 'lr'")
    Traceback (most recent call last):
    ...
    hpo.errors.ConfigError: The first 2 trials all failed with the same error ...
"""

from __future__ import annotations

import contextlib
import gc
import signal
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import torch

from hpo.errors import ConfigError
from hpo.store.storage import storage_file
from hpo.train.objective import TrialDiverged

# Why a failed trial failed; "interrupted" trials (killed, Ctrl-C, lost heartbeat) are run
# again with the same params and do not count, the others count as finished.
REASONS = ("error", "diverged", "oom", "timeout", "interrupted")
REPEATS_BEFORE_STOP = 3  # identical failures in a row, with no success, that mean "config"
ERROR_LOG_SUFFIX = ".errors.log"
_SERVER_LOG = "hpo.errors.log"  # for a server's storage: in the working folder


class TrialTimeout(RuntimeError):
    """A trial ran past ``--trial-timeout``."""

    @classmethod
    def past(cls, seconds: float) -> TrialTimeout:
        """The error of a trial that ran past a ``seconds`` limit."""
        return cls(f"the trial ran past --trial-timeout {seconds:g} s")


def reason_of(error: BaseException) -> str:
    """The ``ended`` reason recorded for a trial that raised ``error``."""
    if isinstance(error, TrialTimeout):
        return "timeout"
    if isinstance(error, TrialDiverged):
        return "diverged"
    if isinstance(error, torch.cuda.OutOfMemoryError):
        return "oom"
    if isinstance(error, KeyboardInterrupt | SystemExit):
        return "interrupted"
    return "error"


def message_of(error: BaseException) -> str:
    """One line: the exception's type and the first line of its message."""
    text = (str(error).strip().splitlines() or [""])[0]
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def free_device_memory() -> None:
    """After CUDA out-of-memory: drop the trial's tensors so the next trial has room."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def error_log(storage_url: str) -> Path:
    """The file that collects tracebacks of failed trials: beside a storage file, else here."""
    path = storage_file(storage_url)
    return Path(f"{path}{ERROR_LOG_SUFFIX}") if path is not None else Path(_SERVER_LOG)


def log_traceback(log: Path, study: str, number: int, error: BaseException) -> None:
    """Append the traceback of trial ``number`` to ``log`` (one writer line per append)."""
    text = "".join(traceback.format_exception(error))
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    with contextlib.suppress(OSError), log.open("a") as file:
        file.write(f"--- {stamp} study {study!r} trial {number}\n{text}\n")


class RepeatGuard:
    """Stops a worker whose trials all fail with one and the same message: a config error."""

    def __init__(self, limit: int = REPEATS_BEFORE_STOP) -> None:
        self.limit = limit
        self.messages: list[str] = []
        self.succeeded = False

    def failed(self, reason: str, message: str, log: Path | None = None) -> None:
        """Count one failure; raise ConfigError once ``limit`` identical ones ran in a row."""
        if reason in ("interrupted", "diverged") or self.succeeded:
            return
        self.messages.append(f"{reason}: {message}")
        last = self.messages[-self.limit:]
        if len(last) == self.limit and len(set(last)) == 1:
            where = f"; tracebacks in {log}" if log is not None else ""
            raise ConfigError(
                f"The first {self.limit} trials all failed with the same error ({message}), "
                f"so the study was stopped: fix the study file or the data{where}."
            )

    def completed(self) -> None:
        self.succeeded = True


# Code an alarm must not interrupt: an exception raised inside a storage call can leave a
# lock file behind or turn into another error (measured: the journal's lock release turned
# it into FileNotFoundError, so the trial was recorded as "error", not "timeout").
_STORAGE_PACKAGES = frozenset({"optuna", "sqlalchemy", "sqlite3", "psycopg", "psycopg2"})
_STORAGE_MODULE_PREFIX = "hpo.store"
_ALARM_RETRY_SECONDS = 0.01


def in_storage_call(frame: FrameType | None) -> bool:
    """Whether ``frame`` or one of its callers runs storage code (Optuna, SQLAlchemy, a
    database driver, ``hpo.store``)."""
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if module.split(".")[0] in _STORAGE_PACKAGES or module.startswith(_STORAGE_MODULE_PREFIX):
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise TrialTimeout in this thread once ``seconds`` have passed (SIGALRM).

    The alarm waits for a storage call under way to return (see ``in_storage_call``), so
    the trial's records stay whole and its end is told as "timeout".

    Only the main thread of a process receives signals; elsewhere (``hpo.run`` called from a
    thread) only the reporter's check after each epoch enforces the limit
    (``hpo.runners.trials.OptunaReporter``).
    """
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(_signum: int, frame: FrameType | None) -> None:
        if in_storage_call(frame):
            signal.setitimer(signal.ITIMER_REAL, _ALARM_RETRY_SECONDS)
            return
        raise TrialTimeout.past(seconds)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def children_ignore_interrupts() -> Iterator[None]:
    """Start a child process here that ignores Ctrl-C until it installs ``deferred_stop``.

    Ctrl-C reaches every process of the terminal's group; a worker still starting up
    (importing torch takes seconds) would die of it with a KeyboardInterrupt traceback. An
    ignored SIGINT is the one disposition a child keeps across exec, so it is set only for
    the moment of the start (a few milliseconds, in which a Ctrl-C is lost and must be
    pressed again); this process stops the workers itself when Ctrl-C reaches it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


_stop = threading.Event()


def stop_requested() -> bool:
    """Whether Ctrl-C or SIGTERM arrived while ``deferred_stop`` was in force."""
    return _stop.is_set()


@contextlib.contextmanager
def deferred_stop() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into a request that trials honour at their next epoch.

    An interrupt raised at any instruction could land inside a storage call (between
    creating a trial and recording its worker), leaving a trial no one can recover; asked
    for instead, it stops the trial at a point where its end is told to the storage.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _stop.clear()
    previous = {sig: signal.signal(sig, lambda *_: _stop.set())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
