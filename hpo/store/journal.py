"""The journal file, the default storage: opened safely, and repaired after a kill.

Optuna loads when a journal is opened, not with this module: every command's parser imports
it for ``DEFAULT_JOURNAL`` (as ``hpo.store.storage.DEFAULT_STORAGE``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from hpo.errors import StorageError

if TYPE_CHECKING:
    from optuna.storages import JournalStorage

DEFAULT_JOURNAL = "hpo.journal"


def open_journal(path: Path) -> JournalStorage:
    """Optuna's journal file at ``path``, repaired if a killed writer left half a record."""
    if path.is_dir():
        raise StorageError(
            f"Expected a journal file path but {str(path)!r} is a directory; "
            f"name a file inside it, e.g. {str(path / DEFAULT_JOURNAL)!r}."
        )
    if not path.parent.exists():
        raise StorageError(
            f"Cannot create the journal file {str(path)!r}: the folder {str(path.parent)!r} "
            "does not exist; create it or choose another path."
        )
    if path.exists() and _has_sqlite_header(path):
        raise StorageError(
            f"{str(path)!r} is a SQLite database, not a journal file; "
            f"pass --storage sqlite:///{path} instead."
        )
    from optuna.storages import JournalStorage

    from hpo.store.optuna_internals import DurableOnFinishJournal

    _repair_torn_tail(path)
    try:
        return JournalStorage(DurableOnFinishJournal(str(path)))
    except (OSError, ValueError) as error:
        raise StorageError(f"Cannot open the journal file {str(path)!r}: {error}.") from None


def _has_sqlite_header(path: Path) -> bool:
    with path.open("rb") as file:
        return file.read(16) == b"SQLite format 3\x00"


def _repair_torn_tail(path: Path) -> None:
    """Drop a half-written last record left by a process killed in the middle of a write.

    Optuna's journal reader skips a torn last line, but the next append would glue a
    record onto it and make the whole file unreadable. Every finished trial is in the
    complete lines before it, so cutting back to the last newline loses nothing finished.
    """
    from hpo.store.optuna_internals import JournalFileFlock

    if not path.exists() or path.stat().st_size == 0:
        return
    # Under the journal's own lock: another process may be appending right now.
    lock = JournalFileFlock(str(path))
    lock.acquire()
    try:
        with path.open("rb+") as file:
            file.seek(-1, os.SEEK_END)
            if file.read(1) != b"\n":
                file.seek(0)
                data = file.read()
                file.truncate(data.rfind(b"\n") + 1)
    finally:
        lock.release()
