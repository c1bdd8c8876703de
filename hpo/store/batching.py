"""How a worker's records reach the storage: per-epoch records in one write, not one each.

A population of 64 models reported each epoch's R² to its 64 trials one storage write at a
time, and set each trial's ~13 attributes one write each; with the journal file (the
default storage) every write is a locked append, and every one read the file back. Inside
``batched_writes`` the journal holds those records in memory and writes them together, in
order, as soon as anything reads the storage (a pruner, ``tell``) or ``flush()`` is called
(the runners call it once per epoch), and a finished trial is forced to disk at the next
``flush()`` (one fsync for a population's trials told together); see
``hpo.store.optuna_internals.DurableOnFinishJournal``. The records are the same records, in
the same order; only how many appends carry them changes.

RDB storages (SQLite, PostgreSQL) write each record at once, as before: ``flush`` is a
no-op there.

Example:
    >>> with batched_writes(optuna_study) as flush:          # doctest: +SKIP
    ...     for epoch in epochs:
    ...         for trial in trials:
    ...             trial.report(r2[trial.number], epoch)    # held
    ...         flush()                                      # one append for all of them
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import optuna

from hpo.store.optuna_internals import journal_backend, storage_of


def _no_flush() -> None:
    return None


@contextlib.contextmanager
def batched_writes(optuna_study: optuna.Study) -> Iterator[Callable[[], None]]:
    """Hold the study's per-epoch records and attributes until the next read or ``flush``;
    the context's end flushes (on an error too). Yields ``flush``."""
    backend = journal_backend(storage_of(optuna_study))
    if backend is None:
        yield _no_flush
        return
    with backend.batching():
        yield backend.flush
