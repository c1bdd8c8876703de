"""The private Optuna names hpo relies on (all in hpo/store/optuna_internals.py) still behave
as that module expects. An Optuna upgrade that changes one fails here with a message that
names the module, instead of silently changing how trials are stored."""

from __future__ import annotations

import importlib
import inspect
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

MODULE = "hpo/store/optuna_internals.py"


@contextmanager
def relied_on(what: str) -> Iterator[None]:
    """Turn any failure into one that names the module and what it relies on."""
    try:
        yield
    except (AssertionError, AttributeError, ImportError, TypeError, KeyError) as error:
        pytest.fail(f"{MODULE} relies on {what}, which optuna {optuna.__version__} changed "
                    f"({type(error).__name__}: {error}); update that module, then the pin "
                    "in constraints.txt.", pytrace=False)


def test_the_module_imports_against_this_optuna() -> None:
    with relied_on("optuna.storages._heartbeat and optuna.storages.journal._storage"):
        importlib.import_module("hpo.store.optuna_internals")


def test_the_journal_operations_it_names_exist() -> None:
    from optuna.storages.journal._storage import JournalOperation

    with relied_on("the JournalOperation members it treats as per-epoch records"):
        for name in ("SET_TRIAL_INTERMEDIATE_VALUE", "SET_TRIAL_USER_ATTR",
                     "SET_TRIAL_SYSTEM_ATTR", "SET_TRIAL_PARAM", "SET_TRIAL_STATE_VALUES"):
            assert hasattr(JournalOperation, name), name


def test_the_overridden_append_logs_keeps_optunas_signature() -> None:
    with relied_on("JournalFileBackend.append_logs(logs) being how records are written"):
        parameters = list(inspect.signature(JournalFileBackend.append_logs).parameters)
        assert parameters == ["self", "logs"], parameters


def test_a_journal_written_by_the_override_reads_back_in_plain_optuna(tmp_path: Path) -> None:
    from hpo.store.optuna_internals import DurableOnFinishJournal

    path = str(tmp_path / "s.journal")
    with relied_on("the journal's record format, written by the overridden append_logs"):
        study = optuna.create_study(storage=JournalStorage(DurableOnFinishJournal(path)),
                                    study_name="s", direction="maximize")
        trial = study.ask()
        trial.suggest_float("lr", 1e-3, 0.1, log=True)
        trial.report(0.5, 1)
        trial.set_user_attr("family", "cosine")
        study.tell(trial, 0.9)
        plain = optuna.load_study(study_name="s",
                                  storage=JournalStorage(JournalFileBackend(path)))
        (read,) = plain.trials
        assert (read.state, read.value, read.intermediate_values, read.user_attrs) == (
            TrialState.COMPLETE, 0.9, {1: 0.5}, {"family": "cosine"})


def test_a_claimed_trial_gets_a_handle_on_the_same_trial() -> None:
    from hpo.store.optuna_internals import storage_of, trial_handle

    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"lr": 0.01})
    with relied_on("Study._storage and optuna.Trial(study, trial_id)"):
        storage = storage_of(study)
        (waiting,) = study.get_trials(states=(TrialState.WAITING,))
        study_id = storage.get_study_id_from_name(study.study_name)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, waiting.number)
        assert storage.set_trial_state_values(trial_id, TrialState.RUNNING)
        handle = trial_handle(study, trial_id)
        assert handle.number == waiting.number
        assert handle.suggest_float("lr", 1e-3, 0.1) == 0.01  # the queued value


@pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")
def test_the_heartbeat_keeps_a_trial_alive_and_its_end_lets_it_go_stale(
    tmp_path: Path
) -> None:
    from hpo.store.optuna_internals import fail_stale_trials, heartbeat

    storage = RDBStorage(f"sqlite:///{tmp_path / 's.db'}", heartbeat_interval=1,
                         grace_period=2)
    study = optuna.create_study(storage=storage, direction="maximize")
    trial = study.ask()
    with relied_on("optuna.storages._heartbeat (the thread Study.optimize runs)"):
        with heartbeat(study, trial):
            time.sleep(3)  # past the grace period, beating all along
            fail_stale_trials(study)
            assert study.trials[0].state == TrialState.RUNNING
        time.sleep(3)  # silent past the grace period
        fail_stale_trials(study)
        assert study.trials[0].state == TrialState.FAIL
