"""One contract, every storage: the journal file, SQLite and a real PostgreSQL server.

Create and resume, several workers on one study, a grid run exactly once, pruning and
intermediate values, attributes, stale trials (heartbeat on RDB storages, a dead local
worker on the journal) and a killed worker: each must hold alike on every storage.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

import hpo.store.storage as storage_module
from hpo.runners.optuna_runner import RunOptions, create_or_load, run
from hpo.store.attrs import trial_history_rows, trial_params
from hpo.store.optuna_internals import storage_of
from hpo.store.storage import open_storage
from hpo.store.summary import counted_trials, finished_count
from hpo.study.file import load_from_file
from tests.conftest import write_study
from tests.postgres import fresh_database
from tests.test_kill_battery import worker_pids

ROOT = Path(__file__).resolve().parents[1]
STORAGES = ["journal", "sqlite", "postgresql"]
QUIET = {"progress": False, "workers": 1}


@pytest.fixture(params=STORAGES)
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "journal":
        return str(tmp_path / "s.journal")
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 's.db'}"
    return fresh_database(request.getfixturevalue("postgres_url"))


def _study(tmp_path: Path, **kw: object) -> object:
    return load_from_file(write_study(tmp_path, **kw), "tiny")  # type: ignore[arg-type]


def _trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="tiny", storage=open_storage(storage)).trials


def test_create_and_resume(tmp_path: Path, storage: str) -> None:
    study = _study(tmp_path, n_trials=2, epochs=3)
    first = {t.number: t.value for t in run(study, RunOptions(storage=storage, **QUIET)).trials}
    resumed = run(study.replace(n_trials=4), RunOptions(storage=storage, **QUIET))
    assert finished_count(resumed) == 4
    assert {t.number: t.value for t in resumed.trials if t.number in first} == first


@pytest.mark.slow
def test_several_workers_share_one_study(tmp_path: Path, storage: str) -> None:
    # A fresh `hpo run` process, as a user starts one: a thread another test left running in
    # this one would make the workers spawn (hpo.runners.processes.start_method), and the
    # first could take every trial before the second has imported torch.
    path = write_study(tmp_path, n_trials=6, epochs=3)
    subprocess.run([sys.executable, "-m", "hpo.cli", "run", str(path), "--storage", storage,
                    "--workers", "2", "--no-progress"], cwd=tmp_path, check=True,
                   capture_output=True, timeout=300,
                   env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    done = _trials(storage)
    assert [t.state for t in done] == [TrialState.COMPLETE] * 6
    assert len({t.user_attrs["worker"] for t in done}) == 2


@pytest.mark.slow
def test_a_grid_runs_every_point_exactly_once(tmp_path: Path, storage: str) -> None:
    grid = ', grid={"lr": [0.001, 0.003, 0.01, 0.03, 0.1]}'
    study = _study(tmp_path, sampler="grid", epochs=3, extra=grid)
    run(study, RunOptions(storage=storage, progress=False, workers=2))
    run(study, RunOptions(storage=storage, **QUIET))  # a resume adds nothing
    points = sorted(t.params["lr"] for t in _trials(storage))
    assert points == [0.001, 0.003, 0.01, 0.03, 0.1]


def test_pruning_and_intermediate_values(tmp_path: Path, storage: str) -> None:
    study = _study(tmp_path, n_trials=8, epochs=6, pruner="median", lr_low=1e-4, lr_high=0.5)
    trials = run(study, RunOptions(storage=storage, **QUIET)).trials
    assert all(len(t.intermediate_values) == t.user_attrs["epochs_run"] for t in trials)
    assert {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}


def test_attributes(tmp_path: Path, storage: str) -> None:
    trial = run(_study(tmp_path, n_trials=1, epochs=2),
                RunOptions(storage=storage, **QUIET)).trials[0]
    for key in ("worker", "family", "ended", "n_params", "seed"):
        assert key in trial.user_attrs
    assert trial.user_attrs["ended"] == "completed"
    # The bulky ones are system attrs, out of optuna-dashboard's trial table.
    assert "params" not in trial.user_attrs and "history" not in trial.user_attrs
    assert trial_params(trial)["lr"] == trial.params["lr"]
    assert len(trial_history_rows(trial)) == 2


def test_a_stale_trial_is_failed_and_run_again_once(
    tmp_path: Path, storage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A RUNNING trial whose worker is gone: on RDB storages its heartbeat stopped (the
    worker was on another host), on the journal its process on this host is dead."""
    monkeypatch.setattr(storage_module, "GRACE_SECONDS", 1)
    study = _study(tmp_path, n_trials=3, epochs=2)
    optuna_study = create_or_load(study, storage)
    lost = optuna_study.ask()
    lr = lost.suggest_float("lr", 1e-3, 0.1, log=True)
    rdb = not storage.endswith(".journal")
    lost.set_user_attr("worker", "other-host:123" if rdb else "x:1")
    if rdb:
        storage_of(optuna_study).record_heartbeat(lost._trial_id)  # type: ignore[attr-defined]
    else:
        lost.set_user_attr("worker", f"{os.uname().nodename}:{_dead_pid()}")
    time.sleep(2.5)
    trials = run(study, RunOptions(storage=storage, **QUIET)).trials
    assert trials[0].state == TrialState.FAIL
    copies = [t for t in trials if 0 in t.system_attrs.get("retry_history", ())]
    assert len(copies) == 1 and copies[0].params["lr"] == lr
    assert copies[0].state == TrialState.COMPLETE
    assert len(counted_trials(trials)) == 3 and not [
        t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


def test_a_trial_asked_by_a_process_killed_before_naming_itself_runs_again(
    tmp_path: Path, storage: str
) -> None:
    """Killed between ask() and recording its worker, a process leaves a RUNNING trial
    that names no worker: a resume fails it and runs it again once."""
    study = _study(tmp_path, n_trials=2, epochs=2)
    unnamed = create_or_load(study, storage).ask()
    unnamed.suggest_float("lr", 1e-3, 0.1, log=True)
    trials = run(study, RunOptions(storage=storage, **QUIET)).trials
    assert trials[0].state == TrialState.FAIL and trials[0].user_attrs["ended"] == "interrupted"
    assert [t.number for t in trials if 0 in t.system_attrs.get("retry_history", ())] != []
    assert len(counted_trials(trials)) == 2 and not [
        t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.mark.slow
def test_a_killed_worker_loses_nothing(tmp_path: Path, storage: str) -> None:
    # Long enough to be caught running: 60 epochs ran out between two polls on a fast machine.
    path = write_study(tmp_path, n_trials=6, epochs=200)
    command = [sys.executable, "-m", "hpo.cli", "run", str(path), "--storage", storage,
               "--no-progress", "--workers", "2"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _running(storage):
        time.sleep(0.2)
    os.kill(worker_pids(process.pid)[0], signal.SIGKILL)
    _, err = process.communicate(timeout=180)
    assert process.returncode == 2 and "crashed (signal SIGKILL)" in err
    assert len(err.strip().splitlines()) == 1
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    trials = _trials(storage)
    assert len(counted_trials(trials)) == 6
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]


def _running(storage: str) -> bool:
    try:
        return any(t.state == TrialState.RUNNING for t in _trials(storage))
    except (KeyError, Exception):
        return False


@pytest.mark.slow
def test_no_password_in_any_output_log_or_report(tmp_path: Path, postgres_url: str) -> None:
    """A PostgreSQL study run, listed and reported through the real CLI: the password
    appears nowhere in what is printed or written."""
    url = fresh_database(postgres_url)
    password = "hpo-secret-pw"
    assert password in url
    path = write_study(tmp_path, n_trials=2, epochs=2)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    printed = ""
    for argv in (["run", str(path), "--workers", "1", "--no-progress"], ["list"],
                 ["report", "tiny", "--out", "report"], ["report", "nothere"]):
        done = subprocess.run([sys.executable, "-m", "hpo.cli", *argv, "--storage", url],
                              cwd=tmp_path, capture_output=True, text=True, env=env,
                              timeout=300)
        printed += done.stdout + done.stderr
    assert "hpo:***@" in printed and password not in printed
    for file in tmp_path.rglob("*"):
        if file.is_file():
            assert password.encode() not in file.read_bytes(), file
