"""The Ray runner end to end, on one small local Ray session shared by these tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import ray
from optuna.trial import TrialState

from hpo.cli import main
from hpo.errors import ConfigError, DeviceError
from hpo.runners.optuna_runner import RunOptions, run
from hpo.runners.ray_cluster import TrialResources, plan_resources, temp_dir
from hpo.store.attrs import trial_history_rows, trial_params
from hpo.store.storage import open_storage
from hpo.store.summary import finished_count
from hpo.study.file import load_from_file
from tests.conftest import write_study

RAY = {"runner": "ray", "progress": False}


@pytest.fixture(scope="module")
def ray_session() -> Iterator[str]:
    """Two CPUs, no dashboard, a small object store, files in a short temp folder."""
    with tempfile.TemporaryDirectory(prefix="hpo-ray-") as folder:
        ray.init(num_cpus=2, num_gpus=0, include_dashboard=False, log_to_driver=False,
                 _temp_dir=folder, object_store_memory=128 * 2**20)
        try:
            yield ray.get_runtime_context().gcs_address
        finally:
            ray.shutdown()


def _trials(storage: Path, name: str = "tiny") -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=name, storage=open_storage(str(storage))).trials


@pytest.mark.slow
def test_every_trial_is_stored_with_its_epochs_and_attributes(
    ray_session: str, tmp_path: Path
) -> None:
    storage = tmp_path / "s.journal"
    study = load_from_file(write_study(tmp_path, n_trials=4, epochs=4), "tiny")
    run(study, RunOptions(storage=str(storage), **RAY))
    trials = _trials(storage)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    for trial in trials:
        attrs = trial.user_attrs
        assert sorted(trial.intermediate_values) == [1, 2, 3, 4]
        assert [row["epoch"] for row in trial_history_rows(trial)] == [1, 2, 3, 4]
        assert attrs["runner"] == "ray" and attrs["ended"] == "completed"
        assert attrs["seed"] == study.seed + trial.number and attrs["device"] == "cpu"
        assert attrs["epochs_run"] == 4 and attrs["test_r2"] == pytest.approx(trial.value)
        assert trial_params(trial)["lr"] == trial.params["lr"] and attrs["n_params"] == 25
        assert not {"history", "params"} & set(attrs)  # system attrs, off the dashboard
        assert attrs["seconds"] > 0 and attrs["worker"] and attrs["ray_worker"]
    assert len({t.user_attrs["ray_worker"] for t in trials}) <= 2  # actors are reused


@pytest.mark.slow
@pytest.mark.parametrize("pruner", ["median", "asha"])
def test_pruned_trials_stop_early(ray_session: str, tmp_path: Path, pruner: str) -> None:
    storage = tmp_path / "s.journal"
    study = load_from_file(write_study(tmp_path, n_trials=12, epochs=10, pruner=pruner,
                                       lr_low=1e-5, lr_high=0.3), "tiny")
    run(study, RunOptions(storage=str(storage), **RAY))
    trials = _trials(storage)
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert len(trials) == 12 and pruned
    assert sum(t.user_attrs["epochs_run"] for t in trials) < 12 * 10
    for trial in pruned:  # stored exactly up to the epoch the pruner stopped it at
        assert trial.user_attrs["ended"] == "pruned"
        assert len(trial.intermediate_values) == trial.user_attrs["epochs_run"]
        assert len(trial_history_rows(trial)) == trial.user_attrs["epochs_run"]
        # Kept where the Optuna runner keeps it: out of the dashboard's trial table.
        assert "history" not in trial.user_attrs and "history" in trial.system_attrs
    assert any(t.user_attrs["epochs_run"] < 10 for t in pruned)


@pytest.mark.slow
def test_a_grid_runs_every_point_once_also_when_resumed(ray_session: str, tmp_path: Path) -> None:
    storage = tmp_path / "s.journal"
    grid = ", grid={'lr': [1e-3, 3e-3, 1e-2, 3e-2, 0.1]}"
    study = load_from_file(write_study(tmp_path, sampler="grid", epochs=3, extra=grid), "tiny")
    run(study, RunOptions(storage=str(storage), **RAY))
    run(study, RunOptions(storage=str(storage), **RAY))
    trials = _trials(storage)
    assert sorted(t.params["lr"] for t in trials) == [1e-3, 3e-3, 1e-2, 3e-2, 0.1]
    assert all(t.state == TrialState.COMPLETE for t in trials)


@pytest.mark.slow
def test_a_killed_driver_resumes_without_losing_or_repeating_trials(
    ray_session: str, tmp_path: Path
) -> None:
    storage = tmp_path / "s.journal"
    path = write_study(tmp_path, n_trials=40, epochs=30)
    command = [sys.executable, "-m", "hpo.cli", "run", str(path), "--runner", "ray",
               "--address", ray_session, "--storage", str(storage), "--no-progress"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not (storage.exists() and sum(
            t.state == TrialState.COMPLETE for t in _trials(storage)) >= 3):
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = _trials(storage)
    finished = {t.number: t.value for t in before if t.state == TrialState.COMPLETE}
    assert len(finished) >= 3 and len(before) < 40
    study = load_from_file(path, "tiny").replace(n_trials=len(before) + 2)
    resumed = run(study, RunOptions(storage=str(storage), **RAY))
    after = resumed.trials
    assert {t.number: t.value for t in after if t.number in finished} == finished
    assert not [t for t in after if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    # A trial the kill cut short is failed and run again with its params: it counts once.
    assert finished_count(resumed) == len(before) + 2
    interrupted = [t for t in after if t.user_attrs.get("ended") == "interrupted"]
    assert all(t.state == TrialState.FAIL for t in interrupted)


@pytest.mark.slow
def test_a_trial_whose_actor_dies_is_retried_and_recorded(
    ray_session: str, tmp_path: Path
) -> None:
    storage = tmp_path / "s.journal"
    study = load_from_file(write_study(tmp_path, n_trials=3, epochs=300), "tiny")
    killed: list[str] = []

    def kill_an_actor_mid_trial() -> None:
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            running = [t for t in (_trials(storage) if storage.exists() else [])
                       if t.state == TrialState.RUNNING and "ray_worker" in t.user_attrs]
            if running:
                killed.append(running[0].user_attrs["ray_worker"])
                os.kill(int(killed[0].rpartition(":")[2]), signal.SIGKILL)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_an_actor_mid_trial)
    killer.start()
    run(study, RunOptions(storage=str(storage), max_retries=1, **RAY))
    killer.join()
    trials = _trials(storage)
    assert killed and [t.state for t in trials] == [TrialState.COMPLETE] * 3
    (retried,) = [t for t in trials if t.user_attrs.get("retries")]
    assert retried.user_attrs["retries"] == 1 and "actor died" in retried.user_attrs["message"]
    assert sorted(retried.intermediate_values) == list(range(1, 301))
    assert retried.user_attrs["ray_worker"] != killed[0]


def test_gpus_on_a_cluster_without_them_are_refused_and_nothing_is_stored(
    ray_session: str, tmp_path: Path
) -> None:
    storage = tmp_path / "s.journal"
    study = load_from_file(write_study(tmp_path), "tiny")
    with pytest.raises(DeviceError, match="the Ray cluster has none"):
        run(study, RunOptions(storage=str(storage), devices="gpu", **RAY))
    with pytest.raises(ConfigError, match="Ray assigns each trial its GPU"):
        run(study, RunOptions(storage=str(storage), devices="cuda:0", **RAY))
    assert not storage.exists()


@pytest.mark.parametrize("argv, message", [
    (["--runner", "ray", "--address", "127.0.0.1:1"], "No Ray cluster answers at"),
    (["--runner", "ray", "--address", "nonsense"], "Expected --address auto"),
    (["--address", "auto"], "only apply with --runner ray"),
    (["--pruner", "asha"], "only apply with --runner ray"),
    (["--runner", "ray", "--max-retries", "-1"], "`max_retries >= 0` must hold"),
])
def test_bad_ray_input_is_one_line_and_leaves_the_storage_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    storage = tmp_path / "s.journal"
    code = main(["run", str(write_study(tmp_path)), "--storage", str(storage),
                 "--no-progress", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not storage.exists()


@pytest.mark.parametrize("devices, per_device, workers, cluster, expected", [
    ("auto", 1, None, {"CPU": 2.0}, TrialResources(1.0, 0.0, 2)),
    ("cpu", 4, None, {"CPU": 8.0, "GPU": 2.0}, TrialResources(1.0, 0.0, 8)),
    ("auto", 1, 3, {"CPU": 8.0}, TrialResources(1.0, 0.0, 3)),
    ("auto", 1, 5, {"CPU": 2.0}, TrialResources(1.0, 0.0, 2)),
    ("auto", 1, None, {"CPU": 16.0, "GPU": 2.0}, TrialResources(1.0, 1.0, 2)),
    ("gpu", 4, None, {"CPU": 16.0, "GPU": 1.0}, TrialResources(1.0, 0.25, 4)),
    ("auto", 4, None, {"CPU": 2.0, "GPU": 1.0}, TrialResources(0.5, 0.25, 4)),
    ("gpu", 3, None, {"CPU": 2.0, "GPU": 2.0}, TrialResources(0.33, 1 / 3, 6)),
])
def test_trial_resources_always_ask_a_cpu_and_a_gpu_share(
    devices: str, per_device: int, workers: int | None, cluster: dict[str, float],
    expected: TrialResources,
) -> None:
    resources = plan_resources(devices, per_device, workers, cluster)
    assert resources == expected
    assert resources.num_cpus > 0 and resources.threads >= 1


def test_rays_files_go_to_a_short_folder_never_home(tmp_path: Path) -> None:
    assert temp_dir(Path("/w")) == Path("/w/.ray")
    long = temp_dir(Path("/work/" + "x" * 80))
    assert len(str(long)) < 45 and not str(long).startswith(str(Path.home()))

