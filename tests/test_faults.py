"""Faults inside trials: each fails its trial with a reason and the study goes on; the same
error in every trial stops the run once; a worker that stops, however fast, fails the run.

CUDA out-of-memory is tested without a GPU: a fake objective raises
``torch.cuda.OutOfMemoryError`` (the real path frees memory with ``torch.cuda.empty_cache``
only when CUDA is available)."""

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

import optuna
import pytest
import torch
from optuna.trial import TrialState

import hpo.runners.trials as trials_module
from hpo.cli import main
from hpo.errors import ConfigError
from hpo.runners.faults import RepeatGuard, TrialTimeout, time_limit
from hpo.runners.optuna_runner import RunOptions, run
from hpo.store.summary import failure_summary, finished_count
from hpo.study.file import load_from_file
from tests.conftest import write_study

QUIET = {"progress": False, "workers": 1}
# The faults here are injected into the one-at-a-time objective (``evaluate``); the
# population path's own fault tests are in tests/test_population.py.
SINGLE = {**QUIET, "mode": "single"}
ROOT = Path(__file__).resolve().parents[1]


def _faulty_objective(monkeypatch: pytest.MonkeyPatch, faults: dict[int, BaseException]) -> None:
    """The objective raises ``faults[n]`` in trial n, else trains as usual."""
    real = trials_module.evaluate

    def evaluate(params: Any, folds: Any, reporter: Any, *, seed: int, **kw: Any) -> float:
        number = reporter.trial.number
        if number in faults:
            raise faults[number]
        return real(params, folds, reporter, seed=seed, **kw)

    monkeypatch.setattr(trials_module, "evaluate", evaluate)


def test_each_fault_fails_its_trial_with_a_reason_and_the_study_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _faulty_objective(monkeypatch, {
        1: RuntimeError("user code broke"),
        2: torch.cuda.OutOfMemoryError("CUDA out of memory (fake)"),
        4: ZeroDivisionError("division by zero"),
    })
    study = load_from_file(write_study(tmp_path, n_trials=6, epochs=3), "tiny")
    storage = tmp_path / "s.journal"
    done = run(study, RunOptions(storage=str(storage), **SINGLE))
    by_number = {t.number: t for t in done.trials}
    assert [by_number[n].user_attrs.get("ended") for n in (1, 2, 4)] == ["error", "oom", "error"]
    assert by_number[1].user_attrs["error"] == "RuntimeError: user code broke"
    assert sum(t.state == TrialState.COMPLETE for t in done.trials) == 3
    assert failure_summary(done) == "failed trials by reason: 2 error, 1 oom"
    log = Path(f"{storage}.errors.log").read_text()
    assert "Traceback" in log and "user code broke" in log


def test_a_trial_past_its_time_limit_fails_and_the_next_one_runs(tmp_path: Path) -> None:
    # 20,000 epochs: far past 0.5 s (400 trained in less on a fast machine)
    study = load_from_file(write_study(tmp_path, n_trials=2, epochs=20_000), "tiny")
    started = time.monotonic()
    done = run(study, RunOptions(storage=str(tmp_path / "s.journal"), trial_timeout=0.5,
                                 **QUIET))
    assert time.monotonic() - started < 30
    assert [t.user_attrs.get("ended") for t in done.trials] == ["timeout", "timeout"], [
        t.user_attrs.get("error") for t in done.trials]
    assert [t.state for t in done.trials] == [TrialState.FAIL] * 2


def test_a_time_limit_holds_where_no_alarm_reaches(tmp_path: Path) -> None:
    """Run from a thread (signals reach only the main thread): the check after each epoch
    ends the trial as a timeout."""
    study = load_from_file(write_study(tmp_path, n_trials=1, epochs=20_000), "tiny")
    done: list[Any] = []
    worker = threading.Thread(target=lambda: done.append(run(study, RunOptions(
        storage=str(tmp_path / "s.journal"), trial_timeout=0.5, mode="single", **QUIET))))
    worker.start()
    worker.join(timeout=120)
    assert [t.user_attrs.get("ended") for t in done[0].trials] == ["timeout"]


def test_a_time_limit_waits_for_a_storage_call_to_return() -> None:
    """The alarm fires during a (fake) storage call: the call ends whole, and the timeout
    is raised in the trial's own code right after it."""
    storage_code: dict[str, Any] = {"__name__": "optuna.storages.fake", "time": time}
    exec("def write(seconds):\n    end = time.monotonic() + seconds\n"
         "    while time.monotonic() < end:\n        pass\n    return 'written'\n",
         storage_code)
    results = []
    with pytest.raises(TrialTimeout), time_limit(0.02):
        results.append(storage_code["write"](0.3))
        while True:  # the trial's own code: the deferred alarm lands here
            time.sleep(0.001)
    assert results == ["written"]


def test_the_same_error_in_every_trial_stops_the_run_once(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _faulty_objective(monkeypatch, dict.fromkeys(range(50), KeyError("width")))
    write_study(in_tmp, n_trials=20, epochs=3)
    code = main(["run", "tiny.py", "--workers", "1", "--no-progress", "--mode", "single"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "same error" in err[0] and "KeyError" in err[0]
    storage = optuna.load_study(study_name="tiny", storage=trials_module_storage(in_tmp))
    assert finished_count(storage) == 3


def trials_module_storage(folder: Path) -> Any:
    from hpo.store.storage import open_storage

    return open_storage(str(folder / "hpo.journal"))


def test_a_failure_after_a_success_does_not_stop_the_run() -> None:
    guard = RepeatGuard(limit=2)
    guard.failed("error", "x")
    with pytest.raises(ConfigError, match="same error"):
        guard.failed("error", "x")
    guard = RepeatGuard(limit=2)
    guard.completed()
    guard.failed("error", "x")
    guard.failed("error", "x")  # some trials work: not a configuration error


FLAKY = '''
from hpo import LabData, Study
from search_spaces import (suggest_architecture, suggest_optimizer, suggest_scheduler,
                           suggest_training)

def space(trial):
    if trial.study.study_name == "flaky":  # fine on the pre-flight check, fails in workers
        raise RuntimeError("boom in the worker")
    return {**suggest_architecture(trial, hidden_layers=1, width=4, activation="tanh",
                                   batch_norm=False, dropout=0.0),
            **suggest_optimizer(trial, optimizer="adam", weight_decay=0.0),
            **suggest_training(trial, batch_size=64, epochs=2),
            **suggest_scheduler(trial, families=("constant",))}

STUDY = Study(name="flaky", space=space, data=LabData(n=100, seed=0), n_trials=10)
'''


@pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")
def test_a_worker_stopped_while_sending_its_error_still_exits_with_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Two workers fail at once: the parent stops the second (SIGTERM) as the first's error
    # arrives, while the second is sending its own. Seen in CI as a traceback on stderr.
    from hpo.runners import processes

    def failing_work(*_args: Any, **_kwargs: Any) -> None:
        raise ConfigError("the study file is wrong")

    class StoppedWhileSending:
        def put(self, message: str) -> None:
            os.kill(os.getpid(), signal.SIGTERM)  # the parent's terminate() lands here

    def worker() -> None:
        def interrupt(*_args: Any) -> None:
            raise KeyboardInterrupt  # the CLI's SIGTERM handler, which a forked worker inherits
        signal.signal(signal.SIGTERM, interrupt)
        processes.worker_main(None, None, 0, None,  # type: ignore[arg-type]
                              os.getppid(), StoppedWhileSending())

    monkeypatch.setattr(processes, "work", failing_work)
    process = multiprocessing.get_context("fork").Process(target=worker)
    process.start()
    process.join(60)
    assert process.exitcode == 2  # a traceback out of the process would give 1


@pytest.mark.slow
def test_workers_that_fail_fast_fail_the_run_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "flaky.py").write_text(FLAKY)
    done = subprocess.run(
        [sys.executable, "-m", "hpo.cli", "run", "flaky.py", "--workers", "2", "--no-progress"],
        cwd=tmp_path, capture_output=True, text=True, timeout=180,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and "boom in the worker" in lines[0] and "Traceback" not in done.stderr
    assert "Traceback" in (tmp_path / "hpo.journal.errors.log").read_text()
