"""What a stored study remembers about its data and scoring (the study record), so that
reports, ``compare`` and ``export`` can rebuild the exact train/test folds from the storage
alone.

Example:
    >>> record = {"data": {"type": "LabData", "n": 1000, "seed": 0}, "test_size": 0.3,
    ...           "validation_size": 0.2, "cv_folds": None, "standardize": False, "seed": 0,
    ...           "score": "final"}
    >>> data_source(record)
    LabData(n=1000, seed=0)
    >>> score_label(record)
    'validation R²'
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import TYPE_CHECKING, Any

import optuna

from hpo.errors import ConfigError

# hpo.data imports torch (seconds); reading a record (hpo list, tables) needs none of it, so
# the functions that rebuild data import it when called.
if TYPE_CHECKING:
    from hpo.data import CsvData, Fold, LabData, Mtcars
    from hpo.study.config import Study

RECORD_ATTR = "hpo_record"
TEST_ATTR = "hpo_test_score"  # the best trial's held-out test R², scored after the search
# The record's fields that decide which rows trials train and are scored on, and how: trials
# made under other values are not comparable (a resume refuses them, manual runs are redone).
COMPARABLE_KEYS = ("data", "test_size", "validation_size", "cv_folds", "standardize", "seed",
                   "score", "seeds")
def study_record(study: Study) -> dict[str, Any]:
    """The JSON-able description of the study's data, split and score."""
    from hpo.data import CsvData

    data = {"type": type(study.data).__name__, **dataclasses.asdict(study.data)}
    if isinstance(study.data, CsvData):
        data["path"] = os.path.abspath(study.data.path)  # reports may run from elsewhere
    # Recorded as used: cross-validation has no separate validation part.
    validation = 0.0 if study.cv_folds else study.validation_size
    record = {"data": data, "test_size": study.test_size, "validation_size": validation,
              "cv_folds": study.cv_folds, "standardize": study.standardize,
              "seed": study.seed, "score": study.score, "seeds": study.seeds,
              "sampler": study.sampler, "pruner": study.pruner,
              "description": study.description}
    return dict(json.loads(json.dumps(record)))  # as the storage gives it back: lists, not tuples


def comparable_part(record: dict[str, Any]) -> dict[str, Any]:
    """The record's ``COMPARABLE_KEYS`` only: equal for studies whose trials compare."""
    return {key: record.get(key) for key in COMPARABLE_KEYS}


def data_source(record: dict[str, Any]) -> LabData | Mtcars | CsvData:
    """The data source a record names."""
    from hpo.data import CsvData, LabData, Mtcars

    sources = {"LabData": LabData, "Mtcars": Mtcars, "CsvData": CsvData}
    fields = dict(record["data"])
    kind: type[LabData | Mtcars | CsvData] = sources[fields.pop("type")]
    for key in ("features",):
        if key in fields:
            fields[key] = tuple(fields[key])
    return kind(**fields)


def folds_from_record(record: dict[str, Any]) -> list[Fold]:
    """The folds the study's trials were trained and scored on (never the held-out test)."""
    from hpo.data import prepare_folds

    return prepare_folds(data_source(record), test_size=held_out_share(record),
                         cv_folds=record["cv_folds"], standardize=record["standardize"],
                         seed=record["seed"], validation_size=record.get("validation_size", 0.0))


def final_fold_from_record(record: dict[str, Any]) -> Fold | None:
    """(every non-test row, the test part), or None when the study held no test part out."""
    from hpo.data import final_fold

    if score_label(record) == "test R²":  # the lab's setting: the scored part is the test
        return folds_from_record(record)[0]
    return final_fold(data_source(record), test_size=held_out_share(record),
                      standardize=record["standardize"], seed=record["seed"])


def refit_fold_from_record(record: dict[str, Any]) -> Fold:
    """(every row the search read, the test part or those rows again): for a refit."""
    from hpo.data import refit_fold

    return refit_fold(data_source(record), test_size=held_out_share(record),
                      standardize=record["standardize"], seed=record["seed"])


def held_out_share(record: dict[str, Any]) -> float:
    """The share of rows held out as the test part (0: none)."""
    # Records written before validation parts existed cross-validated every row.
    if record.get("cv_folds") and "validation_size" not in record:
        return 0.0
    return float(record["test_size"])


def score_label(record: dict[str, Any]) -> str:
    """What a trial's value is: ``validation R²``, ``3-fold CV R²`` or ``test R²``."""
    if record.get("cv_folds"):
        return f"{record['cv_folds']}-fold CV R²"
    return "validation R²" if record.get("validation_size") else "test R²"


def stored_record(optuna_study: optuna.Study) -> dict[str, Any]:
    """The record kept with a stored study (refused for studies hpo did not create)."""
    record = optuna_study.user_attrs.get(RECORD_ATTR)
    if record is None:
        raise ConfigError(
            f"Study {optuna_study.study_name!r} has no hpo record of its data; it was not "
            "created by `hpo run`. Run it with hpo, or pick a study that hpo ran."
        )
    return dict(record)


