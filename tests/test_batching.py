"""Batched journal writes (hpo/store/batching.py): the same records as one write each, the
same pruning decisions, nothing finished lost when the worker is killed, RDB unchanged."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from hpo.runners.optuna_runner import RunOptions, run
from hpo.store.batching import batched_writes
from hpo.store.journal import open_journal
from hpo.store.optuna_internals import PruningView
from hpo.study.file import load_from_file
from tests.conftest import write_study

ROOT = Path(__file__).resolve().parents[1]
# What differs between two runs of the same trials: wall-clock times, the worker's pid.
_TIMED = frozenset({"seconds", "worker"})


def _timeless(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items() if k not in _TIMED}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def _records(trials: list[optuna.trial.FrozenTrial]) -> list[dict[str, Any]]:
    return [{"number": t.number, "state": t.state, "value": t.value, "params": t.params,
             "intermediate_values": t.intermediate_values,
             "user_attrs": _timeless(t.user_attrs), "system_attrs": _timeless(t.system_attrs)}
            for t in trials]


def _unbatched(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every record one append, every model judged by ``trial.should_prune()``: as before."""
    monkeypatch.setattr("hpo.store.batching.journal_backend", lambda storage: None)
    monkeypatch.setattr(PruningView, "applies", staticmethod(lambda study: False))


@pytest.mark.parametrize(("mode", "pruner"), [("population", "median"), ("population", "sha"),
                                              ("single", "median")])
def test_trials_store_what_one_write_per_record_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, pruner: str
) -> None:
    path = write_study(tmp_path, n_trials=20, epochs=8, pruner=pruner, lr_low=1e-5, lr_high=0.3)
    study = load_from_file(path, "tiny")
    options = {"workers": 1, "progress": False, "mode": mode, "population_size": 8}
    batched = run(study, RunOptions(storage=str(tmp_path / "a.journal"), **options)).trials
    with monkeypatch.context() as patched:
        _unbatched(patched)
        alone = run(study, RunOptions(storage=str(tmp_path / "b.journal"), **options)).trials
    assert _records(batched) == _records(alone)
    pruned = [t for t in batched if t.state == TrialState.PRUNED]
    assert pruned, "the wide lr range gives the pruner something to cut"
    assert all(t.user_attrs["epochs_run"] == max(t.intermediate_values) for t in pruned)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_held_records_reach_the_file_in_order_at_the_next_read(tmp_path: Path) -> None:
    path = tmp_path / "s.journal"
    study = optuna.create_study(storage=open_journal(path), study_name="s",
                                direction="maximize")
    trials = [study.ask() for _ in range(3)]
    before = len(_lines(path))
    with batched_writes(study) as flush:
        for trial in trials:
            trial.report(0.5 + trial.number, 1)
            trial.set_user_attr("family", "cosine")
        assert len(_lines(path)) == before  # held
        other = optuna.load_study(study_name="s", storage=open_journal(path))
        assert other.trials[0].intermediate_values == {}  # other processes: not yet
        # This process's reads include them (a pruner, tell): the read writes them first.
        assert [t.intermediate_values for t in study.trials] == [{1: 0.5}, {1: 1.5}, {1: 2.5}]
        written = _lines(path)[before:]
        report, attr = 7, 8  # JournalOperation's SET_TRIAL_INTERMEDIATE_VALUE, _USER_ATTR
        assert [(log["trial_id"], log["op_code"]) for log in written] == [
            (0, report), (0, attr), (1, report), (1, attr), (2, report), (2, attr)]
        trials[0].report(0.7, 2)
        flush()  # the runners' once an epoch
        assert len(_lines(path)) == before + 7
    assert optuna.load_study(study_name="s", storage=open_journal(path)).trials[0] \
        .intermediate_values == {1: 0.5, 2: 0.7}


def test_a_finished_trial_is_forced_to_disk_at_the_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "s.journal"
    study = optuna.create_study(storage=open_journal(path), study_name="s",
                                direction="maximize")
    synced: list[int] = []
    monkeypatch.setattr("hpo.store.optuna_internals.os.fsync", synced.append)
    trials = [study.ask() for _ in range(4)]
    assert synced == []  # an asked trial is not forced to disk
    with batched_writes(study) as flush:
        for trial in trials:
            trial.report(0.5, 1)
            study.tell(trial, 0.5)  # written at once, visible to every process
        assert len(optuna.load_study(study_name="s", storage=open_journal(path))
                   .get_trials(states=(TrialState.COMPLETE,))) == 4
        assert synced == []
        flush()
        assert len(synced) == 1  # one fsync for the four
        trials = [study.ask()]
        study.tell(trials[0], 0.5)
    assert len(synced) == 2  # the context's end forces the rest


def test_rdb_storages_write_each_record_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(storage=url, study_name="s", direction="maximize")
    trial = study.ask()
    with batched_writes(study):
        trial.report(0.5, 1)
        trial.set_user_attr("family", "cosine")
        other = optuna.load_study(study_name="s", storage=url).trials[0]
        assert (other.intermediate_values, other.user_attrs) == ({1: 0.5}, {"family": "cosine"})


# Runs a 16-trial study (batches of 8), killed with SIGKILL in the second population's
# finish: after some of its trials were told, with others' attributes held in memory.
_KILLED = '''
import os, signal, sys
from hpo.runners import population
from hpo.runners.optuna_runner import RunOptions, run
from hpo.study.file import load_from_file

told = []
tell = population._Entry.tell

def tell_then_die(self, *args, **kwargs):
    tell(self, *args, **kwargs)
    told.append(self.trial.number)
    if len([n for n in told if n >= 8]) == 3:
        os.kill(os.getpid(), signal.SIGKILL)

population._Entry.tell = tell_then_die
run(load_from_file(sys.argv[1], "tiny"),
    RunOptions(storage=sys.argv[2], workers=1, progress=False, population_size=8))
'''


def test_a_killed_population_loses_nothing_of_its_finished_trials(tmp_path: Path) -> None:
    path = write_study(tmp_path, n_trials=16, epochs=6, pruner="median", lr_low=1e-5,
                       lr_high=0.3)
    storage = str(tmp_path / "s.journal")
    script = tmp_path / "killed.py"
    script.write_text(textwrap.dedent(_KILLED))
    done = subprocess.run([sys.executable, str(script), str(path), storage],
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300,
                          capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr
    trials = optuna.load_study(study_name="tiny", storage=open_journal(Path(storage))).trials
    finished = [t for t in trials if t.state.is_finished()]
    running = [t for t in trials if t.state == TrialState.RUNNING]
    assert len(finished) >= 8 + 3 and running  # killed between two tells
    for trial in finished:  # every record of a finished trial reached the file
        assert {"source", "runner", "family", "population", "epochs_run"} <= set(
            trial.user_attrs), trial.number
        steps = trial.user_attrs["epochs_run"]
        assert sorted(trial.intermediate_values) == list(range(1, steps + 1)), trial.number
        assert len(trial.system_attrs["history"]) == steps
        if trial.state == TrialState.COMPLETE:
            assert trial.user_attrs["test_r2"] == trial.value
    kept = {t.number: _records([t]) for t in finished}
    resumed = run(load_from_file(path, "tiny"),
                  RunOptions(storage=storage, workers=1, progress=False)).trials
    assert {t.number: _records([t]) for t in resumed if t.number in kept} == kept
    assert not [t for t in resumed if t.state == TrialState.RUNNING]
    for trial in running:  # failed on resume, and run again with the same params
        assert resumed[trial.number].state == TrialState.FAIL
        assert resumed[trial.number].user_attrs["ended"] == "interrupted"


def test_a_grid_is_queued_with_one_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hpo.runners.study_setup import create_or_load, queue_work
    from tests.test_population import _grid_study

    study = _grid_study("g")
    optuna_study = create_or_load(study, str(tmp_path / "s.journal"))
    synced: list[int] = []
    monkeypatch.setattr("hpo.store.optuna_internals.os.fsync", synced.append)
    assert queue_work(study, optuna_study) == len(study.grid_points) == 6
    assert len(synced) == 1  # not one per queued point
    waiting = optuna.load_study(study_name="g", storage=open_journal(tmp_path / "s.journal"))
    assert len(waiting.get_trials(states=(TrialState.WAITING,))) == 6
