"""The private Optuna names hpo relies on (all in hpo/store/optuna_internals.py) still behave
as that module expects. An Optuna upgrade that changes one fails here with a message that
names the module, instead of silently changing how trials are stored."""

from __future__ import annotations

import importlib
import inspect
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from hpo.study import pruners

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


def test_a_system_attr_set_through_the_trial_id_is_on_that_trial_only() -> None:
    from hpo.store.optuna_internals import set_trial_system_attr

    study = optuna.create_study(direction="maximize")
    other, trial = study.ask(), study.ask()
    with relied_on("Trial._trial_id being the storage's id of the trial"):
        set_trial_system_attr(trial, "history", [{"epoch": 1}])
        assert study.trials[trial.number].system_attrs["history"] == [{"epoch": 1}]
        assert "history" not in study.trials[other.number].system_attrs
        assert "history" not in study.trials[trial.number].user_attrs


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


def test_the_journal_storage_reads_its_backend_right_after_each_write(tmp_path: Path) -> None:
    from hpo.store.optuna_internals import DurableOnFinishJournal, journal_backend

    calls: list[str] = []

    class Recording(DurableOnFinishJournal):
        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            calls.append("append")
            super().append_logs(logs)

        def read_logs(self, log_number_from: int) -> Iterable[dict[str, Any]]:
            calls.append("read")
            return super().read_logs(log_number_from)

    backend = Recording(str(tmp_path / "s.journal"))
    with relied_on("JournalStorage._backend and its read (_sync_with_backend) right after "
                   "each append_logs, which DurableOnFinishJournal.batching holds back"):
        storage = JournalStorage(backend)
        assert journal_backend(storage) is backend
        study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
        trial = study.ask()
        with backend.batching():
            calls.clear()
            trial.report(0.5, 1)
            trial.set_user_attr("family", "cosine")
            storage.set_trial_system_attr(trial._trial_id, "history", [{"epoch": 1}])
            assert calls == ["append", "read"] * 3
        (read,) = study.trials
        assert (read.intermediate_values, read.user_attrs, read.system_attrs) == (
            {1: 0.5}, {"family": "cosine"}, {"history": [{"epoch": 1}]})


@pytest.mark.parametrize("pruner", [
    optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
    optuna.pruners.PercentilePruner(25.0, n_startup_trials=2, n_warmup_steps=1),
    optuna.pruners.NopPruner(),  # and hpo's, which count the earlier running trials too
    pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=1),
    pruners.PercentilePruner(25.0, n_startup_trials=2, n_warmup_steps=1)])
def test_a_pruning_view_decides_as_should_prune(pruner: optuna.pruners.BasePruner) -> None:
    # Two copies of one study: the trials of one are judged on a view per epoch, the
    # other's by should_prune(), each pruned trial told PRUNED at once (as a population
    # does), so a trial judged after it in the same epoch no longer counts it (hpo's).
    from hpo.store.optuna_internals import PruningView

    def study_with_running_trials() -> tuple[optuna.Study, list[optuna.Trial]]:
        study = optuna.create_study(direction="maximize", pruner=pruner)
        for value in (0.2, 0.5, 0.9):  # finished trials to compare with
            done = study.ask()
            for step in range(1, 6):
                done.report(value * step / 5, step)
            study.tell(done, value)
        return study, [study.ask() for _ in range(8)]

    def judge(study: optuna.Study, running: list[optuna.Trial],
              should_prune: Callable[[optuna.Trial], bool]) -> list[bool]:
        decided = []
        for trial in running:
            decided.append(should_prune(trial))
            if decided[-1]:
                study.tell(trial, state=TrialState.PRUNED)
        return decided

    viewed, judged = study_with_running_trials(), study_with_running_trials()
    with relied_on("Trial._cached_frozen_trial, and MedianPruner/PercentilePruner.prune "
                   "reading the study only through get_trials() and direction"):
        assert PruningView.applies(viewed[0])
        decisions = []
        for step in range(1, 6):
            for (study, running) in (viewed, judged):
                running[:] = [t for t in running
                              if study.trials[t.number].state == TrialState.RUNNING]
                for trial in running:
                    trial.report((trial.number - 2) / 8 * step / 5, step)
            view = PruningView(viewed[0])
            decisions.append(judge(*viewed, view.should_prune))
            assert decisions[-1] == judge(*judged, lambda t: t.should_prune())
        decided = [d for epoch in decisions for d in epoch]
        if not isinstance(pruner, optuna.pruners.NopPruner):
            assert any(decided) and not all(decided)  # both outcomes were tested


def test_a_pruner_that_writes_running_trials_is_not_served_by_a_view() -> None:
    from hpo.store.optuna_internals import PruningView

    for pruner in (optuna.pruners.SuccessiveHalvingPruner(), optuna.pruners.HyperbandPruner()):
        assert not PruningView.applies(optuna.create_study(pruner=pruner))


@pytest.mark.filterwarnings("ignore:The value nan is not acceptable")  # both tells warn
def test_tell_stores_what_study_tell_stores() -> None:
    from hpo.store.optuna_internals import tell

    studies = [optuna.create_study(direction="maximize") for _ in range(2)]
    with relied_on("optuna.study._tell._tell_with_warning(study, trial, value_or_values, "
                   "state)"):
        for study, told in zip(studies, (tell, optuna.Study.tell), strict=True):
            for value, state in ((0.5, None), (None, TrialState.PRUNED),
                                 (None, TrialState.FAIL), (float("nan"), None)):
                trial = study.ask()
                trial.report(0.25, 1)
                told(study, trial, value, state=state)
        read = [[(t.state, t.values, t.intermediate_values) for t in s.trials] for s in studies]
        assert read[0] == read[1]
        assert [state for state, _, _ in read[0]] == [
            TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL, TrialState.FAIL]
