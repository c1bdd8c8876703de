"""How worker processes start (hpo.runners.processes.start_method): forked where that is
safe (one-thread CPU slots, no CUDA, no other thread), spawned otherwise; a forked worker
never touches the parent's database connections and starts with Ctrl-C ignored."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from sqlalchemy import text

from hpo.errors import ConfigError
from hpo.runners.devices import WorkerSlot
from hpo.runners.faults import children_ignore_interrupts
from hpo.runners.optuna_runner import START_METHOD_VARIABLE, create_or_load, start_method
from hpo.store.storage import disown_inherited_connections, study_names
from hpo.study.file import load_from_file
from tests.conftest import write_study
from tests.postgres import fresh_database

LINUX = sys.platform == "linux"
CPU = WorkerSlot("cpu", threads=1)


@pytest.fixture(autouse=True)
def no_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(START_METHOD_VARIABLE, raising=False)


def _alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if this process ran no other thread (a thread another test left behind, e.g. a
    library's, would make every start a spawn here)."""
    monkeypatch.setattr(threading, "active_count", lambda: 1)


@pytest.mark.skipif(not LINUX, reason="fork is chosen on Linux only")
def test_one_thread_cpu_workers_are_forked(monkeypatch: pytest.MonkeyPatch) -> None:
    _alone(monkeypatch)
    assert start_method([CPU, CPU]) == "fork"


def test_workers_that_must_not_be_forked_are_spawned(monkeypatch: pytest.MonkeyPatch) -> None:
    _alone(monkeypatch)
    # Several threads: the child could enter an OpenMP region whose pool threads it lacks.
    assert start_method([CPU, WorkerSlot("cpu", threads=2)]) == "spawn"
    # A CUDA slot: torch refuses CUDA in a forked child.
    assert start_method([CPU, WorkerSlot("cuda:0", threads=1)]) == "spawn"
    # CUDA already initialized in this process, even for CPU slots.
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    assert start_method([CPU, CPU]) == "spawn"
    monkeypatch.undo()
    # Another thread runs here (a real one): a lock it holds at the fork would stay held.
    release = threading.Event()
    other = threading.Thread(target=release.wait, daemon=True)
    other.start()
    try:
        assert threading.active_count() >= 2
        assert start_method([CPU, CPU]) == "spawn"
    finally:
        release.set()
        other.join()
    _alone(monkeypatch)
    assert start_method([CPU, CPU]) == ("fork" if LINUX else "spawn")


def test_the_environment_may_force_spawn_but_nothing_else(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(START_METHOD_VARIABLE, "spawn")
    assert start_method([CPU, CPU]) == "spawn"
    for method in ("fork", "forkserver"):  # forkserver: workers would not be our children
        monkeypatch.setenv(START_METHOD_VARIABLE, method)
        with pytest.raises(ConfigError, match=f"must be spawn, but got '{method}'"):
            start_method([CPU, CPU])


def _pooled(storage: Any) -> tuple[set[int], set[int | None]]:
    """Every connection the storage's pool holds: its driver object's id, its server pid."""
    pool = storage.engine.pool
    held = [storage.engine.connect() for _ in range(max(1, pool.checkedin()))]
    try:
        return ({id(c.connection.dbapi_connection) for c in held},
                {_backend(c) for c in held})
    finally:
        for connection in held:
            connection.close()


def _backend(connection: Any) -> int | None:
    if connection.dialect.name != "postgresql":
        return None
    return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _connections_in_child(storage: Any, disown: bool, answers: Any) -> None:
    if disown:
        disown_inherited_connections()  # what a forked worker does first
    answers.put(_pooled(storage))


@pytest.mark.skipif(not LINUX, reason="fork is chosen on Linux only")
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_forked_worker_never_uses_the_parents_database_connections(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    url = (f"sqlite:///{tmp_path / 's.db'}" if kind == "sqlite"
           else fresh_database(request.getfixturevalue("postgres_url")))
    study = load_from_file(write_study(tmp_path), "tiny")
    storage = create_or_load(study, url)._storage._backend  # the run's own, as it forks
    parents, parent_backends = _pooled(storage)  # all back in the pool: a child could take one
    context = multiprocessing.get_context("fork")
    answers = context.SimpleQueue()
    for disown in (False, True):
        child = context.Process(target=_connections_in_child, args=(storage, disown, answers))
        child.start()
        child.join(60)
        assert child.exitcode == 0
        ids, backends = answers.get()
        # Without disowning, the child would talk over the parent's connections ...
        assert bool(ids & parents) is not disown, f"disown={disown}"
        if kind == "postgresql":
            assert bool(backends & parent_backends) is not disown, f"disown={disown}"
    # ... which still work here after both children exited.
    assert _pooled(storage) == (parents, parent_backends)
    assert len(study_names(storage)) == 1


def _report_sigint(answers: Any) -> None:
    answers.put(signal.getsignal(signal.SIGINT) == signal.SIG_IGN)


@pytest.mark.skipif(not LINUX, reason="fork is chosen on Linux only")
def test_a_forked_worker_starts_with_ctrl_c_ignored() -> None:
    """Until it installs deferred_stop, as a spawned one (test_kill_battery)."""
    context = multiprocessing.get_context("fork")
    answers = context.SimpleQueue()
    child = context.Process(target=_report_sigint, args=(answers,))
    with children_ignore_interrupts():
        child.start()
    child.join(60)
    assert answers.get() is True
    assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN  # this process's is back
    assert os.getpid() != child.pid


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="fork is chosen on Linux only")
def test_hpo_run_forks_its_workers_and_spawns_them_when_asked(tmp_path: Path) -> None:
    from tests.test_kill_battery import ROOT, _cmdline, worker_pids

    path = write_study(tmp_path, n_trials=4, epochs=10)
    for method in ("fork", "spawn"):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        if method == "spawn":
            env[START_METHOD_VARIABLE] = "spawn"
        process = subprocess.Popen(
            [sys.executable, "-m", "hpo.cli", "run", str(path), "--storage",
             str(tmp_path / f"{method}.journal"), "--workers", "2"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        seen: set[bytes] = set()
        while process.poll() is None:
            seen |= {_cmdline(pid) for pid in worker_pids(process.pid)} - {b""}
            time.sleep(0.01)
        assert process.returncode == 0, process.stderr.read() if process.stderr else ""
        # (A spawned worker shows this command line too, between its fork and its exec.)
        assert seen and any(b"spawn_main" in line for line in seen) is (method == "spawn"), (
            method, seen)


def test_several_workers_ask_the_first_batches_one_worker_would_ask(tmp_path: Path) -> None:
    """Each of 2 workers starts from half of the first 8 trials: the study as a whole asks
    batches of 8, 8, 16, 32 as one worker does, so the pruner judges each batch against as
    many finished trials (otherwise 16 trials run before any can be pruned)."""
    from hpo.runners.asking import WorkPlan, batch_size

    study = load_from_file(write_study(tmp_path, sampler="tpe", pruner="median"), "tiny")

    def asks(workers: int, quota: int) -> list[int]:
        plan = WorkPlan(study, "s.journal", parallel=workers > 1, seed_offset=0,
                         workers=workers)
        done, sizes = 0, []
        while done < quota:
            sizes.append(min(batch_size(plan, done), quota - done))
            done += sizes[-1]
        return sizes

    assert asks(1, 100) == [8, 8, 16, 32, 36]
    assert asks(2, 50) == [4, 4, 8, 16, 18]
    assert asks(3, 34) == [3, 3, 6, 12, 10]
    assert asks(16, 7) == [1, 1, 2, 3]


OPENMP_THEN_FORK = '''
import multiprocessing, sys, torch
torch.set_num_threads(2)
a = torch.randn(1500, 1500)
(a @ a).tanh_().sum()  # this process starts its OpenMP pool's threads
(torch.randn(4_000_000).exp() + 1).sum()

def worker(threads, answers):
    torch.set_num_threads(threads)
    (a @ a).tanh_().sum()
    answers.put((torch.randn(4_000_000).exp() + 1).sum().item() > 0)

if __name__ == "__main__":
    context = multiprocessing.get_context("fork")
    answers = context.SimpleQueue()
    child = context.Process(target=worker, args=(int(sys.argv[1]), answers))
    child.start()
    child.join(120)
    if child.is_alive():
        child.kill()
        print("hung")
    else:
        print("ran", answers.get())
'''


@pytest.mark.slow
@pytest.mark.skipif(not LINUX, reason="fork is chosen on Linux only")
def test_a_one_thread_worker_forked_after_openmp_was_used_runs(tmp_path: Path) -> None:
    """Why forked slots have one thread: with this torch (libgomp), a forked child that runs
    torch ops on 2 threads after its parent used 2 hangs for good (seen while writing this
    test, so not run here); on 1 thread it never enters the pool and runs."""
    script = tmp_path / "openmp_then_fork.py"
    script.write_text(OPENMP_THEN_FORK)
    done = subprocess.run([sys.executable, str(script), "1"], capture_output=True, text=True,
                          timeout=300)
    assert done.stdout.split() == ["ran", "True"], done.stdout + done.stderr
