"""Export a study's best model, and predict with an exported model.

Trials keep no weights, so ``export`` re-trains the best trial from its stored params and
seed on the study's own folds, stops at the epoch the study scored (the last, or the best
with ``score="best"``), checks that the model's test R² equals the stored value, and saves
it with `hpo.train.loop.save_model`. CPU training repeats to the last bit for one seed and one
thread count, which every trial records (see hpo.store.record.retrain_trial). The file's
extra holds the study, the trial number, the test R², the epoch saved, the feature and
target names, the params, and the standardization (mean and std per feature) when the
study standardized, which ``predict`` applies.

A cross-validated study scored params, not one model, so ``export`` refits (as
``GridSearchCV(refit=True)`` does): the best params trained with the trial's seed on every
row the study cross-validated, saved with ``extra["refit"]`` and the refit's R² on the
held-out test part (or, when none was held out, on the rows it trained on).
``refit=False`` refuses such a study instead.

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
from hpo.results.retrain import retrain_trial, scored_epoch
from hpo.results.tables import load_study
from hpo.store.attrs import trial_params
from hpo.store.record import held_out_share, refit_fold_from_record, score_label, stored_record
from hpo.store.summary import best_trial
from hpo.train.checkpoints import load_model, save_model
from hpo.train.metrics import r2
from hpo.train.objective import train_params
from hpo.train.progress import Progress

TOLERANCE = 1e-6  # retrained against stored test R²; CPU training repeats to the last bit
# A trial trained in a population (user attr ``population``) ran batched float32 math whose
# rounding differs from one model's in the last bits; over an epoch-long run that moves R²
# by about 1e-7 (tests/test_population.py), more with batch norm and an Adam-like optimizer
# (1e-5 typical, 1e-4 and beyond at high learning rates: the batch norm's scale invariance
# leaves directions that only rounding noise moves; in float64 both paths agree to 1e-9).
POPULATION_TOLERANCE = 1e-4
PREDICTION_COLUMN = "prediction"


def export(
    study_name: str, out: str | Path, storage: str | None = None, trial: int | None = None,
    refit: bool = True, *, progress: bool = False,
) -> dict[str, Any]:
    """Re-train the best (or the given) trial of a study and save it to ``out``.

    Returns the extra saved with the model; ``extra["retrained_r2"]`` is the re-trained
    model's test R², which is checked against ``extra["test_r2"]`` (a RuntimeWarning beyond
    1e-6, e.g. when the study trained on a GPU; beyond 1e-4 for a trial trained in a batched
    population).
    """
    optuna_study = load_study(study_name, storage)
    chosen = best_trial(optuna_study) if trial is None else _trial(optuna_study, trial)
    record = stored_record(optuna_study)
    if record.get("cv_folds"):
        if not refit:
            raise ConfigError(
                f"Study {study_name!r} was scored by {record['cv_folds']}-fold "
                "cross-validation, expected one train/test split: a k-fold score belongs to "
                "k models, not one; drop --no-refit to refit the best params on every row.")
        return _export_refit(optuna_study.study_name, chosen, record, out, progress)
    model, spec, retrained, fold = _retrain(chosen, record, progress)
    extra = _extra(optuna_study.study_name, chosen, fold, record, retrained)
    save_model(out, model, spec, extra)
    batched = "population" in chosen.user_attrs
    # With several seeds the value is their mean; the model is the first seed's.
    stored = float(chosen.user_attrs.get("seed_scores", [chosen.value or 0.0])[0])
    if abs(retrained - stored) > (POPULATION_TOLERANCE if batched else TOLERANCE):
        why = ("it was trained in a batched population, whose rounding differs (most with "
               "batch norm and Adam)") if batched else (
               "it was probably trained on another device, machine or torch version")
        warnings.warn(
            f"The re-trained model of trial {chosen.number} scores test R² {retrained:.8f}, "
            f"but the study stored {stored:.8f}; {why}. The exported model is the "
            "re-trained one.", RuntimeWarning, stacklevel=2)
    return extra


def _export_refit(study: str, trial: FrozenTrial, record: dict[str, Any],
                  out: str | Path, progress: bool = False) -> dict[str, Any]:
    """The params trained on every cross-validated row, saved (GridSearchCV's refit)."""
    fold = refit_fold_from_record(record)
    seed = int(trial.user_attrs.get("seed", 0))
    epochs = int(trial_params(trial)["epochs"])
    bar = Progress(epochs, f"refitting trial {trial.number}", unit="epoch", enabled=progress)

    def every_epoch(epoch: int, row: dict[str, float]) -> bool:
        bar.update(epoch)
        return False  # a refit trains every epoch of the params

    try:
        model, spec, result = train_params(trial_params(trial), fold, seed=seed,
                                           callback=every_epoch)
    finally:
        bar.close()
    if result.diverged:
        raise ConfigError(f"Refitting trial {trial.number} on all {len(fold.train)} rows "
                          f"diverged ({result.message}); export another trial (--trial).")
    model.eval()
    with torch.no_grad():
        x_test, y_test = fold.test.tensors()
        refit_r2 = r2(y_test, model(x_test))
    held_out = bool(held_out_share(record))
    extra = {**_extra(study, trial, fold, record, refit_r2), "refit": True,
             "refit_rows": len(fold.train), "epoch": int(trial_params(trial)["epochs"]),
             "cv_r2": trial.value, "test_r2": refit_r2 if held_out else None,
             "scored_on": "held-out test part" if held_out else "the rows it was refit on"}
    save_model(out, model, spec, extra)
    return extra


def _trial(optuna_study: Any, number: int) -> FrozenTrial:
    complete = {t.number: t for t in optuna_study.get_trials(
        deepcopy=False, states=(TrialState.COMPLETE,))}
    if number not in complete:
        raise ConfigError(
            f"Study {optuna_study.study_name!r} has no complete trial number {number}; "
            f"complete ones are {sorted(complete)[:20]}; pick one of them.")
    return complete[number]


def _retrain(trial: FrozenTrial, record: dict[str, Any],
             progress: bool = False) -> tuple[Any, Any, float, Fold]:
    """The trial's model trained again, and its test R² (to check against the stored one)."""
    model, spec, result, fold = retrain_trial(trial, record, progress=progress)
    if result.diverged:
        raise ConfigError(f"Re-training trial {trial.number} diverged ({result.message}), "
                          "though the study completed it; export another trial (--trial).")
    model.eval()
    with torch.no_grad():
        x_test, y_test = fold.test.tensors()
        retrained = r2(y_test, model(x_test))
    return model, spec, retrained, fold


def _extra(study: str, trial: FrozenTrial, fold: Fold, record: dict[str, Any],
           retrained: float) -> dict[str, Any]:
    return {"study": study, "trial": trial.number, "test_r2": trial.value,
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
