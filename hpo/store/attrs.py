"""Where hpo keeps what it records on trials and studies, and the one place that reads or
writes it: short facts where optuna-dashboard shows them, bulky ones where it does not.

optuna-dashboard puts every user attribute in its trial table; a trial's per-epoch
``history`` (about 14 KB of JSON for a 50-epoch lab trial) made each row ~1,200 px tall, and
the full ``params`` dict repeated the params column as one long string. Those two are kept
as trial *system* attributes instead (Optuna's storage holds them the same way; the
dashboard does not show them). The study record (``RECORD_ATTR``, the data, split and score
a study was run with) is a study system attribute for the same reason, with a one-line
summary as the user attribute ``SUMMARY_ATTR``.

Every runner, result and command reads and writes these through this module (the Optuna
and Ray runners through ``record_trial_attrs``, manual trials through ``split_attrs``), and
the readers also read studies stored before the move, when all of them were user
attributes.

Example:
    >>> split_attrs({"family": "cosine", "history": [{"epoch": 1}]})
    ({'family': 'cosine'}, {'history': [{'epoch': 1}]})
    >>> record_summary({"data": {"type": "LabData", "n": 1000, "seed": 0}, "test_size": 0.3,
    ...                 "validation_size": 0.2, "cv_folds": None, "seed": 0, "seeds": 1,
    ...                 "score": "final", "sampler": "tpe", "pruner": "median"})
    'LabData(n=1000, seed=0), validation 0.2, test 0.3, seed 0, score final, tpe + median'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from hpo.store.optuna_internals import set_trial_system_attr, storage_of

# Recorded by the objective, kept out of the dashboard's trial table.
HIDDEN_ATTRS = frozenset({"history", "params", "layout", "cohort"})
RECORD_ATTR = "hpo_record"  # study system attr: the record itself
SUMMARY_ATTR = "data"  # study user attr: the record in one line, for the dashboard
TEST_ATTR = "hpo_test_score"  # the best trial's held-out test R², scored after the search


def split_attrs(attrs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(user_attrs, system_attrs)``: the attributes the dashboard shows, and the bulky ones."""
    user = {key: value for key, value in attrs.items() if key not in HIDDEN_ATTRS}
    system = {key: value for key, value in attrs.items() if key in HIDDEN_ATTRS}
    return user, system


def record_trial_attrs(trial: optuna.Trial, attrs: Mapping[str, Any]) -> None:
    """Store what a running trial reports, each attribute where ``split_attrs`` puts it."""
    user, hidden = split_attrs(attrs)
    for key, value in user.items():
        trial.set_user_attr(key, value)
    for key, value in hidden.items():
        set_trial_system_attr(trial, key, value)


def trial_attr(trial: FrozenTrial, key: str, default: Any = None) -> Any:
    """A recorded attribute, wherever it is kept (system attrs, or user attrs of old studies)."""
    if key in trial.system_attrs:
        return trial.system_attrs[key]
    return trial.user_attrs.get(key, default)


def trial_params(trial: FrozenTrial) -> dict[str, Any]:
    """Every param the trial trained with, fixed ones included (Optuna's own params hold
    only the searched ones)."""
    return dict(trial_attr(trial, "params", trial.params))


def trial_history_rows(trial: FrozenTrial) -> list[dict[str, Any]]:
    """The trial's per-epoch rows (per-fold for cross-validated studies); [] if none."""
    return list(trial_attr(trial, "history", None) or [])


def read_record(optuna_study: optuna.Study) -> dict[str, Any] | None:
    """The study's record, or None (studies stored before the move kept it as a user attr)."""
    storage = storage_of(optuna_study)
    study_id = storage.get_study_id_from_name(optuna_study.study_name)
    record = storage.get_study_system_attrs(study_id).get(RECORD_ATTR)
    return record if record is not None else optuna_study.user_attrs.get(RECORD_ATTR)


def write_record(optuna_study: optuna.Study, record: dict[str, Any]) -> None:
    """Keep ``record`` with the study, and the one line the dashboard shows of it."""
    storage = storage_of(optuna_study)
    study_id = storage.get_study_id_from_name(optuna_study.study_name)
    storage.set_study_system_attr(study_id, RECORD_ATTR, record)
    optuna_study.set_user_attr(SUMMARY_ATTR, record_summary(record))


def record_summary(record: Mapping[str, Any]) -> str:
    """The record in one line: data, split, seed, score, sampler and pruner."""
    fields = dict(record["data"])
    kind = fields.pop("type")
    data = f"{kind}({', '.join(f'{key}={value!r}' for key, value in fields.items())})"
    if record.get("cv_folds"):
        split = f"{record['cv_folds']}-fold CV, test {record.get('test_size')}"
    elif record.get("validation_size"):
        split = f"validation {record['validation_size']}, test {record.get('test_size')}"
    else:
        split = f"test {record.get('test_size')}"
    seeds = f", {record['seeds']} seeds a trial" if (record.get("seeds") or 1) > 1 else ""
    return (f"{data}, {split}, seed {record.get('seed')}{seeds}, score {record.get('score')}, "
            f"{record.get('sampler')} + {record.get('pruner')}")


def read_test_score(optuna_study: optuna.Study) -> dict[str, Any] | None:
    """The best trial's held-out test score as ``hpo.results.holdout`` kept it, or None."""
    kept = optuna_study.user_attrs.get(TEST_ATTR)
    return dict(kept) if kept else None


def write_test_score(optuna_study: optuna.Study, result: dict[str, Any]) -> None:
    """Keep the held-out test score as a user attr: a few numbers, worth seeing on the
    dashboard's study page."""
    optuna_study.set_user_attr(TEST_ATTR, result)


def epochs_run(trial: FrozenTrial) -> int:
    """Epochs the trial trained (fewer when pruned or diverged; 0 when it never started),
    over every seed of a study with ``seeds > 1``."""
    stored = trial.user_attrs.get("epochs_trained", trial.user_attrs.get("epochs_run"))
    return int(stored) if stored is not None else len(trial.intermediate_values)
