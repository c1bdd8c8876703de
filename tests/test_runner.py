"""The Optuna runner against real storages and real worker processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from optuna.trial import TrialState

from hpo import ConfigError, DeviceError, Study
from hpo.results.tables import trial_history
from hpo.runners.devices import plan_workers, resolve_devices
from hpo.runners.optuna_runner import START_METHOD_VARIABLE, RunOptions, run
from hpo.store.attrs import trial_params
from hpo.store.record import stored_record
from hpo.store.storage import open_storage
from hpo.study.algorithms import PRUNERS, SAMPLERS
from hpo.study.file import load_from_file
from tests.conftest import write_study

QUIET = {"progress": False, "workers": 1}


def _trials(storage: str, name: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=open_storage(storage)).trials


@pytest.mark.parametrize("sampler", [s for s in SAMPLERS if s != "grid"])
def test_every_sampler_runs_a_few_trials(tmp_path: Path, sampler: str) -> None:
    study = load_from_file(write_study(tmp_path, sampler=sampler, n_trials=4), "tiny")
    storage = str(tmp_path / "s.journal")
    optuna_study = run(study, RunOptions(storage=storage, **QUIET))
    trials = optuna_study.trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert all(-1.0 < t.value <= 1.0 for t in trials)  # type: ignore[operator]
    assert all(t.user_attrs["ended"] == "completed" for t in trials)
    assert all(len(t.intermediate_values) == 6 for t in trials)  # one report per epoch


@pytest.mark.parametrize("pruner", PRUNERS)
def test_every_pruner_runs_and_pruned_trials_stop_early(tmp_path: Path, pruner: str) -> None:
    # A wide lr range makes some trials clearly worse, so pruners have something to cut.
    study = load_from_file(write_study(tmp_path, pruner=pruner, n_trials=14, epochs=12,
                                   lr_low=1e-5, lr_high=0.3), "tiny")
    optuna_study = run(study, RunOptions(storage=str(tmp_path / "s.journal"), **QUIET))
    trials = optuna_study.trials
    assert len(trials) == 14
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    if pruner == "none":
        assert not pruned
    else:  # a pruned trial really stopped: fewer epochs recorded than a full run
        assert any(t.user_attrs["epochs_run"] < 12 for t in pruned)
    for trial in pruned:
        assert trial.user_attrs["ended"] == "pruned"
        assert len(trial.intermediate_values) == trial.user_attrs["epochs_run"]
        assert len(trial_history(trial)) == trial.user_attrs["epochs_run"]


def test_median_pruning_saves_epochs(tmp_path: Path) -> None:
    study = load_from_file(write_study(tmp_path, pruner="median", n_trials=20, epochs=12,
                                   lr_low=1e-5, lr_high=0.3), "tiny")
    trials = run(study, RunOptions(storage=str(tmp_path / "s.journal"), **QUIET)).trials
    epochs = sum(t.user_attrs["epochs_run"] for t in trials)
    assert any(t.state == TrialState.PRUNED for t in trials)
    assert epochs < 20 * 12


def test_trials_record_their_attributes(tmp_path: Path) -> None:
    study = load_from_file(write_study(tmp_path, n_trials=2), "tiny")
    trial = run(study, RunOptions(storage=str(tmp_path / "s.journal"), **QUIET)).trials[1]
    attrs = trial.user_attrs
    assert attrs["family"] == "cosine" and attrs["device"] == "cpu"
    assert attrs["seed"] == study.seed + trial.number
    assert attrs["n_params"] == (1 * 8 + 8) + (8 * 1 + 1)
    assert attrs["seconds"] > 0 and attrs["epochs_run"] == 6
    assert attrs["test_r2"] == pytest.approx(trial.value)
    params = trial_params(trial)
    assert params["lr"] == trial.params["lr"] and params["width"] == 8
    assert list(trial_history(trial)["epoch"]) == list(range(1, 7))
    # The bulky ones stay out of optuna-dashboard's trial table (hpo.store.attrs).
    assert "history" not in attrs and "params" not in attrs


def test_same_seed_gives_the_same_study(tmp_path: Path) -> None:
    path = write_study(tmp_path, sampler="tpe", n_trials=5)
    values = [
        [t.value for t in run(load_from_file(path, "tiny"),
                              RunOptions(storage=str(tmp_path / f"{i}.journal"), **QUIET)).trials]
        for i in range(2)
    ]
    assert values[0] == values[1]


def test_resume_runs_only_the_missing_trials(tmp_path: Path) -> None:
    storage = str(tmp_path / "s.journal")
    path = write_study(tmp_path, n_trials=3)
    first = [t.params for t in run(load_from_file(path, "tiny"), RunOptions(storage=storage,
                                                                     **QUIET)).trials]
    again = run(load_from_file(path, "tiny"), RunOptions(storage=storage, **QUIET))
    assert len(again.trials) == 3  # already complete: nothing ran
    extended = run(load_from_file(path, "tiny").replace(n_trials=5),
                   RunOptions(storage=storage, **QUIET))
    params = [t.params for t in extended.trials]
    assert params[:3] == first and len(params) == 5
    assert params[3] not in first and params[4] not in first  # a fresh stream, not a replay


def test_resuming_on_other_data_is_refused(tmp_path: Path) -> None:
    storage = str(tmp_path / "s.journal")
    study = load_from_file(write_study(tmp_path, n_trials=1), "tiny")
    run(study, RunOptions(storage=storage, **QUIET))
    with pytest.raises(Exception, match="other test_size"):
        run(study.replace(test_size=0.5, n_trials=2), RunOptions(storage=storage, **QUIET))


def test_a_diverging_trial_fails_and_the_study_goes_on(tmp_path: Path) -> None:
    grid = ", grid={'lr': [1e-2, 1e30, 3e-2]}"  # Adam at 1e30 overflows float32
    study = load_from_file(write_study(tmp_path, sampler="grid", extra=grid), "tiny")
    trials = run(study, RunOptions(storage=str(tmp_path / "s.journal"), **QUIET)).trials
    by_lr = {t.params["lr"]: t for t in trials}
    assert by_lr[1e30].state == TrialState.FAIL
    assert by_lr[1e30].user_attrs["ended"] == "diverged"
    assert "diverged" in by_lr[1e30].user_attrs["message"]
    assert by_lr[1e-2].state == by_lr[3e-2].state == TrialState.COMPLETE


@pytest.mark.slow
@pytest.mark.parametrize("storage_name", ["s.journal", "s.db"])
def test_grid_with_several_workers_runs_every_point_once(
    tmp_path: Path, storage_name: str
) -> None:
    # Many one-epoch points keep the workers racing for the queue the whole time: without
    # the SQLite claim lock this run took some point twice in 3 of 4 tries.
    lrs = [round(1e-3 * 1.1**i, 8) for i in range(40)]
    grid = f", grid={{'lr': {lrs}}}"
    study = load_from_file(write_study(tmp_path, sampler="grid", epochs=1, extra=grid), "tiny")
    storage = str(tmp_path / storage_name)
    trials = run(study, RunOptions(storage=storage, **{**QUIET, "workers": 3})).trials
    assert sorted(t.params["lr"] for t in trials) == lrs  # none twice, none missing
    assert all(t.state == TrialState.COMPLETE for t in trials)
    # Worker processes, not this one. (Whether both got a point depends on how fast each
    # started; test_two_workers_share_the_trial_count shows both working.)
    workers = {t.user_attrs["worker"].rsplit(":", 1)[1] for t in trials}
    assert str(os.getpid()) not in workers
    again = run(study, RunOptions(storage=storage, **{**QUIET, "workers": 3})).trials
    assert len(again) == len(lrs)  # resuming a finished grid runs nothing


@pytest.mark.slow
def test_two_workers_share_the_trial_count(tmp_path: Path) -> None:
    study = load_from_file(write_study(tmp_path, sampler="tpe", n_trials=6), "tiny")
    trials = run(study, RunOptions(storage=str(tmp_path / "s.journal"),
                                   **{**QUIET, "workers": 2})).trials
    assert len(trials) == 6 and all(t.state == TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2


def _run_then_kill(path: Path, storage: Path, workers: int, enough: Any,
                   mode: str = "auto") -> None:
    """``hpo run`` in a real process, SIGKILLed once ``enough(trials)`` holds."""
    command = [sys.executable, "-m", "hpo.cli", "run", str(path), "--storage", str(storage),
               "--no-progress", "--workers", str(workers), "--mode", mode]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (
        storage.exists() and enough(_trials(str(storage), "tiny"))
    ):
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()


@pytest.mark.slow
def test_a_killed_run_loses_no_finished_trial_and_resumes(tmp_path: Path) -> None:
    storage = tmp_path / "s.journal"
    path = write_study(tmp_path, n_trials=40, epochs=30)
    _run_then_kill(path, storage, workers=1,  # a few trials in, killed mid-trial
                   enough=lambda trials: sum(t.state == TrialState.COMPLETE for t in trials) >= 3)
    before = _trials(str(storage), "tiny")
    finished = {t.number: t.value for t in before if t.state == TrialState.COMPLETE}
    assert len(finished) >= 3
    study = load_from_file(path, "tiny").replace(n_trials=len(before) + 2)
    after = run(study, RunOptions(storage=str(storage), **QUIET)).trials
    assert {t.number: t.value for t in after if t.number in finished} == finished
    assert not [t for t in after if t.state == TrialState.RUNNING]
    interrupted = [t for t in after if t.user_attrs.get("ended") == "interrupted"]
    assert all(t.state == TrialState.FAIL for t in interrupted)


def test_devices_and_worker_plans() -> None:
    assert resolve_devices("cpu") == ["cpu"]
    assert resolve_devices("auto") == (["cpu"] if not _cuda() else
                                       [f"cuda:{i}" for i in range(_cuda())])
    slots = plan_workers(["cuda:0", "cuda:1"], trials_per_device=2)
    assert [s.device for s in slots] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1"]
    assert [s.device for s in plan_workers(["cpu"], workers=3)] == ["cpu"] * 3
    cores = os.cpu_count() or 1
    by_default = plan_workers(["cpu"])  # one single-threaded worker per core
    assert [(s.device, s.threads) for s in by_default] == [("cpu", 1)] * cores


def _cuda() -> int:
    return torch.cuda.device_count()


def test_resuming_a_study_on_tabular_data_is_accepted(tmp_path: Path) -> None:
    # The record goes through JSON (tuples come back as lists): the same study must match.
    from hpo import Mtcars
    from hpo.runners.optuna_runner import create_or_load

    study = load_from_file(write_study(tmp_path), "tiny").replace(data=Mtcars(("wt", "hp")))
    storage = str(tmp_path / "s.journal")
    create_or_load(study, storage).enqueue_trial({"lr": 0.01})
    assert stored_record(create_or_load(study, storage))["data"]["features"] == [
        "wt",
        "hp",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["single", "auto"])
def test_workers_of_a_killed_parent_stop_and_leave_nothing_running(
    tmp_path: Path, mode: str
) -> None:
    storage = tmp_path / "s.journal"
    # 300 epochs: with 30, two populations of 64 finished before the kill on a fast machine.
    path = write_study(tmp_path, n_trials=200, epochs=300)
    _run_then_kill(path, storage, workers=2, enough=lambda trials: len(trials) >= 4,
                   mode=mode)
    # An orphaned worker finishes the trial in hand, or fails its population's trials as
    # interrupted and queues each again (WAITING copies), then stops.
    time.sleep(8)
    settled = _trials(str(storage), "tiny")
    time.sleep(3)
    assert len(_trials(str(storage), "tiny")) == len(settled)  # nothing runs on
    assert len([t for t in settled if t.state != TrialState.WAITING]) < 200
    assert not [t for t in settled if t.state == TrialState.RUNNING]


def _closure_study(tmp_path: Path) -> Study:
    base = load_from_file(write_study(tmp_path, n_trials=2), "tiny")

    def space(trial: Any) -> dict[str, Any]:  # a closure: pickle cannot send it anywhere
        return base.space(trial)

    return Study(name="closure", space=space, data=base.data, n_trials=2, sampler="random",
                 pruner="none")


def test_an_unpicklable_space_runs_in_process_by_default_where_workers_are_spawned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(START_METHOD_VARIABLE, "spawn")  # a spawned worker is sent a pickle
    monkeypatch.setattr("hpo.runners.devices.os.cpu_count", lambda: 2)  # default: 2 workers
    torch.set_num_threads(2)
    with pytest.warns(UserWarning, match="running one worker in this process"):
        trials = run(_closure_study(tmp_path), RunOptions(storage=str(tmp_path / "s.journal"),
                                                          progress=False)).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert {t.user_attrs["worker"] for t in trials} == {f"{socket.gethostname()}:{os.getpid()}"}
    assert trials[0].user_attrs["threads"] == 1
    assert torch.get_num_threads() == 2  # the caller's setting is given back


def test_an_unpicklable_space_with_spawned_workers_asked_for_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(START_METHOD_VARIABLE, "spawn")
    with pytest.raises(ConfigError, match="cannot be sent to 2 worker processes"):
        run(_closure_study(tmp_path), RunOptions(storage=str(tmp_path / "s.journal"),
                                                 progress=False, workers=2))


_CLOSURE_RUN = """
import os, sys, warnings
from pathlib import Path
from hpo import RunOptions, run
from tests.test_runner import _closure_study
warnings.simplefilter("error")  # no "running one worker in this process"
folder = Path(sys.argv[1])
trials = run(_closure_study(folder), RunOptions(storage=str(folder / "s.journal"),
                                                progress=False, workers=2)).trials
print(sorted(t.state.name for t in trials))
print(len({t.user_attrs["worker"] for t in trials}), os.getpid())
print(sorted(t.user_attrs["worker"] for t in trials))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="workers are forked on Linux only")
def test_an_unpicklable_space_runs_in_forked_workers(tmp_path: Path) -> None:
    # In a fresh process: fork is chosen only where no other thread runs (pytest's may).
    env = {k: v for k, v in os.environ.items() if k != START_METHOD_VARIABLE}
    done = subprocess.run([sys.executable, "-c", _CLOSURE_RUN, str(tmp_path)], env={
        **env, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    states, workers, names = done.stdout.splitlines()
    assert states == "['COMPLETE', 'COMPLETE']"
    count, parent = workers.split()
    assert count == "2" and f":{parent}" not in names, done.stdout  # two forked workers


def test_devices_on_a_machine_with_two_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    # No GPU here: the device count is faked; training on CUDA is checked on a GPU machine.
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_devices("auto") == ["cuda:0", "cuda:1"]
    assert resolve_devices("cuda:1,cpu") == ["cuda:1", "cpu"]
    with pytest.raises(DeviceError, match="'cuda:2' does not exist: this machine has 2 CUDA"):
        resolve_devices("cuda:0,cuda:2")
    slots = plan_workers(resolve_devices("auto"), trials_per_device=3)
    assert len(slots) == 6 and {s.device for s in slots} == {"cuda:0", "cuda:1"}


_FIRST_TRIAL_STALLS = '''
import time
from hpo import LabData, Study
from search_spaces import (suggest_architecture, suggest_optimizer, suggest_scheduler,
                           suggest_training)

def space(trial):
    if trial.number == 0:
        time.sleep(4)  # this worker is held up; the other should go on drawing trials
    return {**suggest_architecture(trial, hidden_layers=1, width=4, activation="tanh",
                                   batch_norm=False, dropout=0.0),
            **suggest_optimizer(trial, optimizer="adam", weight_decay=0.0),
            **suggest_training(trial, batch_size=64, epochs=2),
            **suggest_scheduler(trial, families=("constant",))}

STUDY = Study(name="stall", space=space, data=LabData(n=100, seed=0), n_trials=12,
              sampler="random", pruner="none", seed=0)
'''


def test_workers_draw_trials_from_one_count(tmp_path: Path) -> None:
    # Fixed halves would leave 6 trials to the held-up worker; drawn from one count, the
    # other worker runs nearly all of them, and the study still holds exactly 12.
    path = tmp_path / "stall.py"
    path.write_text(_FIRST_TRIAL_STALLS)
    trials = run(load_from_file(path, "stall"), RunOptions(
        storage=str(tmp_path / "s.journal"), progress=False, workers=2, mode="single")).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 12
    held_up = trials[0].user_attrs["worker"]
    assert sum(t.user_attrs["worker"] == held_up for t in trials) <= 3
