"""The kill battery: a real two-worker `hpo run` killed at random moments, resumed, and
checked: the finished trials equal what was asked, none lost, none duplicated, none left
RUNNING or WAITING, every grid point once; Ctrl-C prints the leaderboard and exits 130.

The moments are drawn from a seeded generator: a failure names its round and can be re-run.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from hpo.runners.optuna_runner import START_METHOD_VARIABLE
from hpo.store.storage import open_storage
from hpo.store.summary import counted_trials
from tests.conftest import write_study

ROOT = Path(__file__).resolve().parents[1]
KILLS = ("SIGINT", "SIGTERM", "SIGKILL-main", "SIGKILL-worker")


def _trials(storage: str, name: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return optuna.load_study(study_name=name, storage=open_storage(storage)).trials
    except KeyError:
        return []


def worker_pids(pid: int) -> list[int]:
    """The worker processes of an `hpo run`, spawned or forked (not multiprocessing's
    resource tracker or fork server)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    helpers = (b"resource_tracker", b"forkserver")
    return [int(child) for child in children
            if _cmdline(int(child)) and not any(name in _cmdline(int(child)) for name in helpers)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "Z"


def _command(path: Path, storage: str) -> list[str]:
    return [sys.executable, "-m", "hpo.cli", "run", str(path), "--storage", storage,
            "--no-progress", "--workers", "2"]


def _kill_round(path: Path, storage: str, kill: str, delay: float) -> subprocess.Popen[str]:
    """Start a run, wait ``delay`` seconds after its first trial, then ``kill`` it."""
    process = subprocess.Popen(_command(path, storage), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _trials(storage, "tiny")[-1:]:
        time.sleep(0.2)
    time.sleep(delay)
    workers = worker_pids(process.pid)
    if kill == "SIGINT":
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    elif kill == "SIGTERM":
        process.send_signal(signal.SIGTERM)
    elif kill == "SIGKILL-main":
        process.send_signal(signal.SIGKILL)
    elif workers:
        os.kill(workers[0], signal.SIGKILL)
    process.wait(timeout=120)
    for worker in workers:  # orphans finish the trial in hand, then stop
        for _ in range(600):
            if not _alive(worker):
                break
            time.sleep(0.1)
    return process


def _check_exact(storage: str, asked: int, grid: int | None) -> None:
    trials = _trials(storage, "tiny")
    assert not [t.number for t in trials if t.state in (TrialState.RUNNING,
                                                        TrialState.WAITING)]
    counted = counted_trials(trials)
    assert len(counted) == asked
    if grid is not None:
        points = [tuple(sorted(t.params.items())) for t in counted]
        assert len(set(points)) == len(points) == grid


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["random", "grid"])
def test_kill_battery(tmp_path: Path, sampler: str) -> None:
    grid = ', grid={"lr": [0.001, 0.002, 0.004, 0.008, 0.016, 0.03, 0.06, 0.1]}'
    asked = 8 if sampler == "grid" else 10
    path = write_study(tmp_path, n_trials=asked, epochs=40, sampler=sampler,
                       extra=grid if sampler == "grid" else "")
    storage = str(tmp_path / "s.journal")
    draw = random.Random(sum(map(ord, sampler)))
    for number, kill in enumerate(KILLS):
        delay = draw.uniform(0.5, 3.0)
        process = _kill_round(path, storage, kill, delay)
        out, err = process.communicate()
        round_name = f"round {number}: {kill} after {delay:.1f} s"
        assert "Traceback" not in err, (round_name, err)
        if kill == "SIGINT" and process.returncode == 130:
            assert "== tiny:" in out and "interrupted" in err, round_name
        running = [t for t in _trials(storage, "tiny") if t.state == TrialState.RUNNING
                   and kill != "SIGKILL-main" and kill != "SIGKILL-worker"]
        assert not running, round_name  # a clean stop marks its running trials
    done = subprocess.run(_command(path, storage), capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    _check_exact(storage, asked, asked if sampler == "grid" else None)


def _loading_torch(pid: int) -> bool:
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.slow
def test_a_worker_ignores_ctrl_c_while_it_starts(tmp_path: Path) -> None:
    """Ctrl-C reaches every process of the terminal's group, and a worker still importing
    torch would die of it with a traceback. Sent to a starting worker alone, it is ignored
    (the main process, which gets it too in a terminal, stops the run): the run ends well.

    Spawned workers: a forked one starts in milliseconds, too fast to catch here, with the
    same ignored SIGINT (tests/test_worker_start.py)."""
    path = write_study(tmp_path, n_trials=4, epochs=5)
    storage = str(tmp_path / "s.journal")
    process = subprocess.Popen(_command(path, storage), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(ROOT),
                                    START_METHOD_VARIABLE: "spawn"})
    deadline, starting = time.monotonic() + 120, []
    while time.monotonic() < deadline and not starting:
        starting = [pid for pid in worker_pids(process.pid) if _loading_torch(pid)]
        time.sleep(0.005)
    os.kill(starting[0], signal.SIGINT)
    _, err = process.communicate(timeout=300)
    assert "Traceback" not in err, err
    assert process.returncode == 0, err
    assert len(counted_trials(_trials(storage, "tiny"))) == 4
