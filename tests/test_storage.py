"""Storages: the default journal file, SQLite, and what happens after a crash."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from hpo.errors import StorageError
from hpo.store.storage import (
    DEFAULT_STORAGE,
    dashboard_command,
    open_storage,
    resolve_storage,
    study_names,
)


@pytest.mark.parametrize(
    ("given", "resolved"),
    [
        (None, DEFAULT_STORAGE),
        ("", DEFAULT_STORAGE),
        ("runs.journal", "runs.journal"),
        ("runs.db", "sqlite:///runs.db"),
        ("runs.sqlite3", "sqlite:///runs.sqlite3"),
        ("sqlite:///x.db", "sqlite:///x.db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
    ],
)
def test_resolve_storage(given: str | None, resolved: str) -> None:
    assert resolve_storage(given) == resolved
    assert dashboard_command(given) == f"optuna-dashboard {resolved}"


@pytest.mark.parametrize("name", ["s.journal", "s.db"])
def test_every_storage_keeps_studies_and_trials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.chdir(tmp_path)
    study = optuna.create_study(storage=open_storage(name), study_name="a", direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    again = open_storage(name)  # a new process would open it the same way
    assert study_names(again) == ["a"]
    assert len(optuna.load_study(study_name="a", storage=again).trials) == 3


def test_a_torn_last_record_is_cut_and_nothing_finished_is_lost(tmp_path: Path) -> None:
    path = tmp_path / "s.journal"
    study = optuna.create_study(storage=open_storage(str(path)), study_name="a")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    with path.open("ab") as file:  # a process killed in the middle of a write
        file.write(b'{"op_code": 5, "worker_id": "x", "trial_id": 0, "user_a')
    study = optuna.load_study(study_name="a", storage=open_storage(str(path)))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)  # appends after the cut
    reread = optuna.load_study(study_name="a", storage=open_storage(str(path)))
    assert [t.state.name for t in reread.trials] == ["COMPLETE"] * 3


def test_a_sqlite_file_given_as_journal_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    optuna.create_study(storage=open_storage(str(path)), study_name="a")
    journal_name = tmp_path / "s.sqlitedata"
    path.rename(journal_name)
    with pytest.raises(StorageError, match="is a SQLite database, not a journal file"):
        open_storage(str(journal_name))


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="is a directory"):
        open_storage(str(tmp_path))


def test_epoch_reports_are_flushed_and_finished_trials_forced_to_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "s.journal")
    study = optuna.create_study(storage=open_storage(path), study_name="a")
    trial = study.ask()
    synced: list[int] = []
    monkeypatch.setattr("hpo.store.optuna_internals.os.fsync", synced.append)
    for epoch in range(1, 11):
        trial.report(0.5, epoch)
    trial.set_user_attr("family", "cosine")
    assert synced == []  # frequent records: written and flushed, not forced
    other = optuna.load_study(study_name="a", storage=open_storage(path))
    assert len(other.trials[0].intermediate_values) == 10  # yet visible to any reader
    study.tell(trial, 0.5)
    assert len(synced) == 1  # the trial finishing forces everything before it to disk


def test_a_writer_killed_while_holding_the_journal_lock_blocks_nobody(tmp_path: Path) -> None:
    # A worker killed (SIGKILL) in the middle of an append held the journal's lock: the
    # next writer goes on at once. Optuna's symlink lock would have stayed behind, and
    # made every other worker wait its 30 s grace period.
    import os
    import signal
    import subprocess
    import sys
    import threading

    from hpo.store.journal import open_journal
    from hpo.store.optuna_internals import journal_backend

    path = tmp_path / "s.journal"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from hpo.store.journal import open_journal;"
         "from hpo.store.optuna_internals import journal_backend;"
         "journal_backend(open_journal(Path(sys.argv[1])))._file_lock.acquire();"
         "print('held', flush=True); time.sleep(600)", str(path)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    storage = open_journal(path)
    assert journal_backend(storage) is not None
    created = threading.Thread(target=optuna.create_study, kwargs={"storage": storage},
                               daemon=True)
    created.start()
    created.join(timeout=10)
    assert not created.is_alive(), "the killed writer's lock still blocks the journal"
