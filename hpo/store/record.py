"""What a stored study remembers about its data and scoring (the study record), so that
reports, ``compare`` and ``export`` can rebuild the exact train/test folds from the storage
alone.

Example:
    >>> record = {"data": {"type": "LabData", "n": 1000, "seed": 0}, "test_size": 0.3,
    ...           "cv_folds": None, "standardize": False, "seed": 0, "score": "final"}
    >>> data_source(record)
    LabData(n=1000, seed=0)
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import optuna

from hpo.data import CsvData, Fold, LabData, Mtcars, prepare_folds
from hpo.errors import ConfigError
from hpo.store.optuna_internals import storage_of
from hpo.study.config import Study

# The record is a study *system* attribute: optuna-dashboard shows every user attribute on the
# study's page, where this JSON was cut at the card's edge. A one-line summary of it is the
# user attribute SUMMARY_ATTR instead.
RECORD_ATTR = "hpo_record"
SUMMARY_ATTR = "data"
_SOURCES: dict[str, type[LabData] | type[Mtcars] | type[CsvData]] = {
    "LabData": LabData, "Mtcars": Mtcars, "CsvData": CsvData}


def study_record(study: Study) -> dict[str, Any]:
    """The JSON-able description of the study's data, split and score."""
    data = {"type": type(study.data).__name__, **dataclasses.asdict(study.data)}
    if isinstance(study.data, CsvData):
        data["path"] = os.path.abspath(study.data.path)  # reports may run from elsewhere
    record = {"data": data, "test_size": study.test_size, "cv_folds": study.cv_folds,
              "standardize": study.standardize, "seed": study.seed, "score": study.score,
              "sampler": study.sampler, "pruner": study.pruner,
              "description": study.description}
    return dict(json.loads(json.dumps(record)))  # as the storage gives it back: lists, not tuples


def data_source(record: dict[str, Any]) -> LabData | Mtcars | CsvData:
    """The data source a record names."""
    fields = dict(record["data"])
    kind = _SOURCES[fields.pop("type")]
    for key in ("features",):
        if key in fields:
            fields[key] = tuple(fields[key])
    return kind(**fields)


def folds_from_record(record: dict[str, Any]) -> list[Fold]:
    """The folds the study's trials were trained and scored on."""
    return prepare_folds(data_source(record), test_size=record["test_size"],
                         cv_folds=record["cv_folds"], standardize=record["standardize"],
                         seed=record["seed"])


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


def record_summary(record: dict[str, Any]) -> str:
    """``"LabData(n=1000, seed=0), test share 0.3, seed 0, score final, tpe + median"``."""
    split = (f"{record['cv_folds']}-fold CV" if record.get("cv_folds")
             else f"test share {record.get('test_size')}")
    return (f"{data_source(record)}, {split}, seed {record.get('seed')}, "
            f"score {record.get('score')}, {record.get('sampler')} + {record.get('pruner')}")


def stored_record(optuna_study: optuna.Study) -> dict[str, Any]:
    """The record kept with a stored study (refused for studies hpo did not create)."""
    record = read_record(optuna_study)
    if record is None:
        raise ConfigError(
            f"Study {optuna_study.study_name!r} has no hpo record of its data; it was not "
            "created by `hpo run`. Run it with hpo, or pick a study that hpo ran."
        )
    return dict(record)


