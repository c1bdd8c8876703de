"""Where studies live: one storage string in, one Optuna storage out.

The default is a journal file in the working directory (``hpo.journal``). Its bookkeeping
is 7% of a lab trial's wall time against 48% on SQLite (0.07 ms against about 1.4 ms
per ``trial.report``; benchmarks/bench_storage.py), it needs no server, it is safe for
several worker processes on one host (an ``fcntl`` lock, ``hpo.journal.flock``, which a
killed worker cannot leave behind), and ``optuna-dashboard hpo.journal``
opens it directly. Any Optuna RDB URL works too:
``sqlite:///hpo.db`` for one host, ``postgresql://user:pw@host/db`` for many.

Optuna and SQLAlchemy load when a storage is opened or a URL printed, not with this module:
every command's ``--help`` reads ``DEFAULT_STORAGE`` from here, and answers without them.

Example:
    >>> storage = open_storage("hpo.journal")      # doctest: +SKIP
    >>> dashboard_command("hpo.journal")
    'optuna-dashboard hpo.journal'
"""

from __future__ import annotations

import fcntl
import warnings
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from hpo.errors import StorageError
from hpo.store.journal import DEFAULT_JOURNAL, open_journal

if TYPE_CHECKING:
    from optuna.storages import BaseStorage, RDBStorage

DEFAULT_STORAGE = DEFAULT_JOURNAL
# RDB storages (many hosts): each running trial beats every HEARTBEAT_SECONDS; one silent for
# GRACE_SECONDS belongs to a dead worker, is failed and is queued again with the same params.
HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 60
_RDB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "oracle", "mssql")
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def resolve_storage(storage: str | None) -> str:
    """The storage string to use: the default journal file when none is given.

    A path ending in .db/.sqlite/.sqlite3 means SQLite; any other plain path a journal file.
    """
    if storage is None or storage.strip() == "":
        return DEFAULT_STORAGE
    storage = storage.strip()
    if not _is_url(storage) and storage.endswith(_SQLITE_SUFFIXES):
        return f"sqlite:///{storage}"
    return storage


def open_storage(storage: str | None = None) -> BaseStorage:
    """Open (creating when needed) the storage named by a URL or a file path.

    Raises:
        StorageError: the URL is malformed or the storage cannot be reached.
    """
    url = resolve_storage(storage)
    if _is_url(url):
        return _open_rdb(url)
    return open_journal(Path(url))


def existing_storage(storage: str | None) -> str:
    """The resolved storage, refused when it names a file that does not exist yet.

    Opening a missing journal or SQLite file would create an empty one, which only hides a
    wrong path or working folder behind an empty list of studies.
    """
    url = resolve_storage(storage)
    path = storage_file(url)
    if path is None or path.exists():
        return url
    if storage is None or url == DEFAULT_STORAGE:
        raise StorageError(
            f"No studies yet: there is no {DEFAULT_STORAGE} in {Path.cwd()}; run "
            "`hpo run STUDY_FILE` here first, or pass --storage with the file or URL it wrote to."
        )
    raise StorageError(
        f"No storage at {str(path)!r}: the file does not exist; pass the path or URL that "
        "`hpo run --storage` wrote to, or run a study there first."
    )


def storage_file(url: str) -> Path | None:
    """The file behind a journal path or a ``sqlite:///`` URL; None for a server's URL."""
    if "://" not in url:
        return Path(url)
    prefix = "sqlite:///"
    if url.startswith(prefix) and url[len(prefix):] not in ("", ":memory:"):
        return Path(url[len(prefix):])
    return None


@contextmanager
def exclusive_claims(storage: str) -> Iterator[None]:
    """Make "take a WAITING trial" atomic across processes where the storage does not.

    PostgreSQL and MySQL lock the row and the journal lets its log order decide, but
    Python's sqlite3 reads outside the write's transaction, so two workers can both take
    one trial. SQLite lives on one host, so a file lock beside it serializes the claims.
    """
    path = storage_file(storage) if storage.startswith("sqlite") else None
    if path is None:
        yield
        return
    with open(f"{path}.claim-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def open_existing_storage(storage: str | None = None) -> BaseStorage:
    """Open a storage that must already exist (for reading: list, report, export...)."""
    return open_storage(existing_storage(storage))


def dashboard_command(storage: str | None = None) -> str:
    """The shell line that opens this storage in optuna-dashboard (password shown as ***)."""
    return f"optuna-dashboard {shown(resolve_storage(storage))}"


def shown(url: str) -> str:
    """The storage as it may be printed, logged or reported: never with its password."""
    return _redact(url)


def _is_url(storage: str) -> bool:
    return "://" in storage


def _open_rdb(url: str) -> RDBStorage:
    scheme = url.split("://", 1)[0].split("+", 1)[0].lower()
    if scheme not in _RDB_SCHEMES:
        raise StorageError(
            f"Expected a storage URL with one of the schemes {', '.join(_RDB_SCHEMES)} or a "
            f"file path, but got {_redact(url)!r}; use e.g. sqlite:///hpo.db or hpo.journal."
        )
    from optuna.exceptions import ExperimentalWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ExperimentalWarning)
            return _rdb_with_heartbeat(_with_driver(url), scheme)
    except Exception as error:  # sqlalchemy raises many types; all mean "cannot reach it"
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0].rstrip(".")
        raise StorageError(
            f"Cannot open the storage {_redact(url)}: {reason}. Check the URL, that the "
            "server is running and reachable, and the credentials."
        ) from None


def _with_driver(url: str) -> str:
    """``postgresql://`` with the driver hpo installs: SQLAlchemy 2.1 would pick psycopg 3."""
    for scheme in ("postgresql://", "postgres://"):
        if url.startswith(scheme):
            return "postgresql+psycopg2://" + url[len(scheme):]
    return url


def _rdb_with_heartbeat(url: str, scheme: str) -> RDBStorage:
    """Each running trial beats; a trial of a dead worker, on any host, is failed after the
    grace period by the next worker that looks, and queued again with the same params."""
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    storage = RDBStorage(url, engine_kwargs=_engine_kwargs(scheme),
                         heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
                         heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback())
    _OPENED.add(storage)
    return storage


_OPENED: weakref.WeakSet[RDBStorage] = weakref.WeakSet()  # in this process (or its parent)
_DISOWNED: list[object] = []


def disown_inherited_connections() -> None:
    """In a forked child: never use nor close the database connections of the parent.

    Every database storage opened in the parent gets a fresh, empty connection pool here
    (SQLAlchemy's advice for ``os.fork``: ``engine.dispose(close=False)``), so nothing in
    this process talks over the parent's sockets or SQLite handles; the old pools are kept
    referenced, so that freeing them cannot close a connection the parent still uses.
    """
    for storage in list(_OPENED):
        _DISOWNED.append(storage.engine.pool)
        storage.engine.dispose(close=False)


def _engine_kwargs(scheme: str) -> dict[str, object]:
    if scheme in ("postgresql", "postgres", "mysql"):
        # Fail in seconds rather than hang when the host is unreachable.
        return {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    return {}


def _redact(url: str) -> str:
    """The URL without its password, fit for an error message."""
    if not _is_url(url):  # a file path: no password to hide, and no SQLAlchemy to load
        return url
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):  # not even parsable (e.g. a port that is no number)
        scheme, sep, _ = url.partition("://")
        return f"{scheme}{sep}***" if sep else url


def study_names(storage: BaseStorage) -> list[str]:
    """Names of every study in the storage, in creation order."""
    import optuna

    return [summary.study_name for summary in optuna.get_all_study_summaries(storage)]
