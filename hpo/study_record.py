"""What a stored study remembers about its data and scoring, so that reports, ``compare``
and ``export`` can rebuild the exact train/test folds, and re-train any stored trial, from
the storage alone.

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
import torch
from optuna.trial import FrozenTrial
from torch import nn

from hpo.data import CsvData, LabData, Mtcars
from hpo.errors import ConfigError
from hpo.models import ModelSpec
from hpo.objective import Fold, prepare_folds, train_params
from hpo.results import trial_params
from hpo.study import Study
from hpo.training import TrainResult

RECORD_ATTR = "hpo_record"
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


def stored_record(optuna_study: optuna.Study) -> dict[str, Any]:
    """The record kept with a stored study (refused for studies hpo did not create)."""
    record = optuna_study.user_attrs.get(RECORD_ATTR)
    if record is None:
        raise ConfigError(
            f"Study {optuna_study.study_name!r} has no hpo record of its data; it was not "
            "created by `hpo run`. Run it with hpo, or pick a study that hpo ran."
        )
    return dict(record)


def scored_epoch(trial: FrozenTrial, record: dict[str, Any]) -> int:
    """The epoch whose weights the trial was scored on: the best one with score="best"."""
    history = trial.user_attrs.get("history") or []
    if record.get("score") == "best" and history and "epoch" in history[0]:
        return int(max(history, key=lambda row: row["test_r2"])["epoch"])
    return int(trial_params(trial)["epochs"])


def retrain_trial(
    trial: FrozenTrial, record: dict[str, Any]
) -> tuple[nn.Module, ModelSpec, TrainResult, Fold]:
    """Train a stored trial again as it ran: its params, seed and thread count, on the
    study's (first) fold, stopped at the epoch it was scored on.

    Trials keep no weights; on the CPU this gives back the model the trial scored, to the
    bit. Returns the model, its spec, the training result and the fold it trained on.
    """
    if "seed" not in trial.user_attrs:
        raise ConfigError(f"Trial {trial.number} stored no seed, expected one written by hpo; "
                          "re-run the study with hpo to retrain it.")
    fold = folds_from_record(record)[0]
    # A cross-validated trial trains fold k with seed + k (hpo.objective._evaluate_folds).
    seed = int(trial.user_attrs["seed"]) + (1 if record.get("cv_folds") else 0)
    stop = scored_epoch(trial, record)
    threads = torch.get_num_threads()
    torch.set_num_threads(int(trial.user_attrs.get("threads", threads)))
    try:
        model, spec, result = train_params(trial_params(trial), fold, seed=seed,
                                           callback=lambda epoch, row: epoch >= stop)
    finally:
        torch.set_num_threads(threads)
    return model, spec, result, fold
