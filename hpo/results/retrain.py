"""Training a stored trial again as it ran, from the storage alone (trials keep no weights).

Used by ``hpo report`` (the best model's prediction), ``hpo export`` and ``hpo compare``.
"""

from __future__ import annotations

from typing import Any

import torch
from optuna.trial import FrozenTrial
from torch import nn

from hpo.data import Fold
from hpo.errors import ConfigError
from hpo.results.tables import trial_history
from hpo.store.attrs import trial_params
from hpo.store.record import folds_from_record, score_label
from hpo.train.loop import TrainResult
from hpo.train.models import ModelSpec
from hpo.train.objective import train_params
from hpo.train.progress import Progress


def scored_epoch(trial: FrozenTrial, record: dict[str, Any]) -> int:
    """The epoch whose weights the trial was scored on: the best one with score="best"."""
    history = trial_history(trial)
    if record.get("score") == "best" and "epoch" in history and "test_r2" in history:
        return int(history["epoch"].to_numpy()[history["test_r2"].to_numpy().argmax()])
    return int(trial_params(trial)["epochs"])


def retrain_trial(
    trial: FrozenTrial, record: dict[str, Any], *, progress: bool = False
) -> tuple[nn.Module, ModelSpec, TrainResult, Fold]:
    """Train a stored trial again as it ran: its params, seed and thread count, on the
    study's (first) fold, stopped at the epoch it was scored on.

    Trials keep no weights; on the CPU this gives back the model the trial scored, to the
    bit. Returns the model, its spec, the training result and the fold it trained on.
    With ``progress``, shows the epochs trained (a bar, or a few lines when piped).
    """
    if "seed" not in trial.user_attrs:
        raise ConfigError(f"Trial {trial.number} stored no seed, expected one written by hpo; "
                          "re-run the study with hpo to retrain it.")
    fold = folds_from_record(record)[0]
    # A cross-validated trial trains fold k with seed + k (hpo.train.objective._evaluate_folds).
    seed = int(trial.user_attrs["seed"]) + (1 if record.get("cv_folds") else 0)
    stop = scored_epoch(trial, record)
    threads = torch.get_num_threads()
    torch.set_num_threads(int(trial.user_attrs.get("threads", threads)))
    bar = Progress(stop, f"re-training trial {trial.number}", unit="epoch", enabled=progress)
    label = score_label(record)  # the fold's scored part: validation, a CV fold or test

    def until_scored(epoch: int, row: dict[str, float]) -> bool:
        bar.update(epoch, f"{label} {row.get('test_r2', float('nan')):.4f}")
        return epoch >= stop

    try:
        model, spec, result = train_params(trial_params(trial), fold, seed=seed,
                                           callback=until_scored)
    finally:
        bar.close()
        torch.set_num_threads(threads)
    return model, spec, result, fold
