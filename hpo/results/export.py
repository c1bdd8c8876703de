"""Export a study's best model, and predict with an exported model.

Trials keep no weights, so ``export`` trains the chosen trial's params again and saves the
model (`hpo.train.checkpoints.save_model`), with one of two models:

- the refit (default): the params trained with the trial's seed on every row the search
  read (train and validation, or every cross-validated row; GridSearchCV(refit=True)),
  scored on the held-out test part: the model whose test R² ``hpo run`` printed. For that
  trial the R² is checked against the stored one (`hpo.results.holdout`).
- ``as_trained``: the trial's own model, replayed exactly as it trained
  (`hpo.results.retrain.replay`: its seed, thread count and population layout) and
  stopped at the epoch it was scored on, checked against its stored value. A
  cross-validated trial has k models, so it has no such model.

In the lab's setting (scored on the test part itself, no validation) the two are one model.
The file's extra holds the study, the trial number, which model it is, both R² figures,
the epoch saved, the feature and target names, the params, and the standardization (mean
and std per feature) when the study standardized, which ``predict`` applies.

Example:
    >>> info = export("lr-cosine", "best.pt")                      # doctest: +SKIP
    >>> predict("best.pt", [[0.5], [1.0]])                         # doctest: +SKIP
    array([0.81, 1.07], dtype=float32)
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from optuna.trial import FrozenTrial, TrialState

from hpo.data import Fold, read_feature_csv
from hpo.errors import ConfigError, DataError
from hpo.results.holdout import holds_test_out
from hpo.results.retrain import retrain_trial, scored_epoch
from hpo.results.tables import load_study
from hpo.store.attrs import read_test_score, trial_params
from hpo.store.record import held_out_share, refit_fold_from_record, score_label, stored_record
from hpo.store.summary import best_trial
from hpo.train.checkpoints import load_model, save_model
from hpo.train.metrics import r2
from hpo.train.objective import train_model
from hpo.train.progress import Progress
from hpo.train.reporter import MemoryReporter
from hpo.train.threads import torch_threads

# Trained again against stored R²: the engine repeats a trial to the bit, and the saved
# module (nn.Linear's addmm, not the population's padded baddbmm) rounds within ~1e-8 of it.
TOLERANCE = 1e-6
PREDICTION_COLUMN = "prediction"


def export(
    study_name: str, out: str | Path, storage: str | None = None, trial: int | None = None,
    as_trained: bool = False, *, progress: bool = False,
) -> dict[str, Any]:
    """Train the best (or the given) trial of a study again and save the model to ``out``.

    Returns the extra saved with the model: ``model`` (``"refit"`` or ``"as trained"``),
    ``retrained_r2`` (the saved model's R² on ``scored_on``) and ``stored_r2`` (what the
    study stored for it, or None where it stored nothing to compare). Beyond 1e-6 apart, a
    RuntimeWarning says so (e.g. a study trained on a GPU or another torch).
    """
    optuna_study = load_study(study_name, storage)
    chosen = best_trial(optuna_study) if trial is None else _trial(optuna_study, trial)
    record = stored_record(optuna_study)
    name = optuna_study.study_name
    if as_trained or (not holds_test_out(record) and not record.get("cv_folds")):
        extra = _export_as_trained(name, chosen, record, out, progress,
                                   optuna_study.get_trials(deepcopy=False))
    else:
        stored = read_test_score(optuna_study) or {}
        extra = _export_refit(name, chosen, record, out, progress,
                              stored if stored.get("trial") == chosen.number else {})
    stored_r2 = extra["stored_r2"]
    if stored_r2 is not None and abs(extra["retrained_r2"] - stored_r2) > TOLERANCE:
        warnings.warn(
            f"The re-trained model of trial {chosen.number} scores {extra['scored_on']} "
            f"{extra['retrained_r2']:.8f}, but the study stored {stored_r2:.8f}; it was "
            "probably trained on another device, machine or torch version. The exported model "
            "is the re-trained one.", RuntimeWarning, stacklevel=2)
    return extra


def _export_as_trained(study: str, trial: FrozenTrial, record: dict[str, Any],
                       out: str | Path, progress: bool, trials: list[FrozenTrial]
                       ) -> dict[str, Any]:
    """The trial's own model, replayed as it trained (in its cohort, among ``trials``)."""
    if record.get("cv_folds"):
        raise ConfigError(
            f"Study {study!r} was scored by {record['cv_folds']}-fold cross-validation, "
            "expected one train/test split: a k-fold score belongs to k models, not one; drop "
            "--as-trained to refit the best params on every row.")
    model, spec, member, fold = retrain_trial(trial, record, trials=trials, progress=progress)
    if member.stopped == "diverged":
        raise ConfigError(f"Re-training trial {trial.number} diverged ({member.message}), "
                          "though the study completed it; export another trial (--trial).")
    # With several seeds the value is their mean; the model is the first seed's.
    stored = float(trial.user_attrs.get("seed_scores", [trial.value or 0.0])[0])
    extra = {**_extra(study, trial, fold, record, _r2(model, fold)), "model": "as trained",
             "stored_r2": stored, "epoch": scored_epoch(trial, record)}
    save_model(out, model, spec, extra)
    return extra


def _export_refit(study: str, trial: FrozenTrial, record: dict[str, Any], out: str | Path,
                  progress: bool, stored: dict[str, Any]) -> dict[str, Any]:
    """The params trained on every row the search read, as ``hpo run``'s test score did."""
    fold = refit_fold_from_record(record)
    params = trial_params(trial)
    epochs = int(params["epochs"])
    bar = Progress(epochs, f"refitting trial {trial.number}", unit="epoch", enabled=progress)
    reporter = _EpochBar(bar)
    try:
        with torch_threads(stored.get("threads")):
            model, spec, member = train_model(params, fold, seed=int(trial.user_attrs["seed"]),
                                              reporter=reporter)
    finally:
        bar.close()
    if member.stopped == "diverged":
        raise ConfigError(f"Refitting trial {trial.number} on all {len(fold.train)} rows "
                          f"diverged ({member.message}); export another trial (--trial).")
    held_out = bool(held_out_share(record))
    scores = stored.get("scores") or []
    extra = {**_extra(study, trial, fold, record, _r2(model, fold)), "model": "refit",
             "refit_rows": len(fold.train), "epoch": epochs, "trial_r2": trial.value,
             "stored_r2": float(scores[0]) if scores and held_out else None,
             "scored_on": "held-out test R²" if held_out else "R² on the rows it was refit on"}
    save_model(out, model, spec, extra)
    return extra


class _EpochBar(MemoryReporter):
    """Shows a refit's epochs on a progress bar."""

    def __init__(self, bar: Progress) -> None:
        super().__init__()
        self.bar = bar

    def report(self, epoch: int, metrics: Any) -> None:
        self.bar.update(epoch)


def _r2(model: torch.nn.Module, fold: Fold) -> float:
    """The saved model's R² on the fold's scored part, as ``predict`` would compute it."""
    model.eval()
    with torch.no_grad():
        x_test, y_test = fold.test.tensors()
        return r2(y_test, model(x_test))


def _trial(optuna_study: Any, number: int) -> FrozenTrial:
    complete = {t.number: t for t in optuna_study.get_trials(
        deepcopy=False, states=(TrialState.COMPLETE,))}
    if number not in complete:
        raise ConfigError(
            f"Study {optuna_study.study_name!r} has no complete trial number {number}; "
            f"complete ones are {sorted(complete)[:20]}; pick one of them.")
    return complete[number]


def _extra(study: str, trial: FrozenTrial, fold: Fold, record: dict[str, Any],
           retrained: float) -> dict[str, Any]:
    return {"study": study, "trial": trial.number, "trial_r2": trial.value,
            "scored_on": score_label(record),
            "retrained_r2": retrained, "feature_names": list(fold.train.feature_names),
            "target_name": fold.train.target_name, "params": trial_params(trial),
            "seed": int(trial.user_attrs["seed"]), "epoch": scored_epoch(trial, record),
            "standardize": _scaling(fold)}


def _scaling(fold: Fold) -> dict[str, list[float]] | None:
    # The scaler the objective fitted on the training rows (hpo.train.objective.prepare_folds).
    if fold.scaler is None:
        return None
    return {"mean": np.asarray(fold.scaler.mean_).tolist(),
            "std": np.asarray(fold.scaler.scale_).tolist()}


def predict(path: str | Path, x: Any) -> np.ndarray:
    """Predictions of an exported model for ``x``, one per row.

    ``x`` is ``(n, features)`` (a list, an array, or a DataFrame with the feature columns);
    for a one-feature model a flat list of values works too. Standardization saved at export
    is applied first.

    Example:
        >>> predict("best.pt", [3.0, 4.5])                      # doctest: +SKIP
        array([21.3, 13.2], dtype=float32)
    """
    model, _, extra = load_model(path)
    return _predict(model, extra, _features(x, extra, str(path)))


def _predict(model: torch.nn.Module, extra: dict[str, Any], features: np.ndarray) -> np.ndarray:
    scaling = extra.get("standardize")
    if scaling:
        mean = np.asarray(scaling["mean"], dtype=np.float32)
        features = (features - mean) / np.asarray(scaling["std"], dtype=np.float32)
    with torch.no_grad():
        out = model(torch.from_numpy(features))  # (n, 1)
    return out.numpy().ravel()


def _features(x: Any, extra: dict[str, Any], path: str) -> np.ndarray:
    names = list(extra.get("feature_names") or [])
    if isinstance(x, pd.DataFrame):
        missing = [name for name in names if name not in x.columns]
        if missing:
            raise DataError(f"{path}: column {', '.join(map(repr, missing))} not found; the "
                            f"model takes {', '.join(names)}.")
        x = x[names]
    array = np.asarray(x, dtype=np.float32)
    if array.ndim == 1 and len(names) == 1:
        array = array.reshape(-1, 1)
    if array.ndim != 2 or array.shape[1] != len(names):
        raise DataError(
            f"{path}: the model takes {len(names)} feature(s) ({', '.join(names)}), but got "
            f"input shaped {array.shape}; pass rows of ({', '.join(names)}).")
    if not np.isfinite(array).all():
        row = int(np.flatnonzero(~np.isfinite(array).all(axis=1))[0])
        raise DataError(f"{path}: input row {row + 1} is not finite ({array[row].tolist()}), "
                        "expected numbers; fix or drop it.")
    return array


def predict_csv(path: str | Path, csv_path: str | Path) -> pd.DataFrame:
    """The CSV's rows as read, with a ``prediction`` column from the exported model.

    The CSV must hold the model's feature columns (others are kept, not read); a missing
    column, an empty or non-numeric cell is a one-line DataError naming file, column, row.
    """
    model, _, extra = load_model(path)
    name = str(csv_path)
    frame, x = read_feature_csv(name, tuple(extra.get("feature_names") or []))
    frame[PREDICTION_COLUMN] = _predict(model, extra, _features(x, extra, name))
    return frame
