"""The objective: params -> data -> model -> optimizer -> schedule -> the core loop -> test R².

It never imports a search library: it talks back only through a Reporter, so the same code
serves Optuna, Ray Tune, ``hpo compare`` and a plain script. Every epoch it reports the test
R² (and MSE, learning rate); a reporter that wants the trial pruned raises, and training
stops at once. A diverging trial raises TrialDiverged, which runners record as failed
without stopping the study.

Example:
    >>> from hpo.data import LabData, prepare_folds
    >>> folds = prepare_folds(LabData(n=200), test_size=0.3, cv_folds=None, seed=0)
    >>> params = {"hidden_layers": 1, "width": 8, "activation": "tanh", "batch_norm": False,
    ...           "dropout": 0.0, "optimizer": "adam", "weight_decay": 0.0, "lr": 0.01,
    ...           "scheduler": "constant", "batch_size": 64, "epochs": 3}
    >>> reporter = MemoryReporter()
    >>> r2 = evaluate(params, folds, reporter, seed=0)
    >>> len(reporter.history), r2 == reporter.history[-1]["test_r2"]
    (3, True)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from hpo.data import Fold, InMemoryBatches
from hpo.errors import ConfigError
from hpo.train.loop import TrainResult, train
from hpo.train.models import ModelSpec, build_model, count_parameters
from hpo.train.reporter import MemoryReporter, Reporter
from search_spaces import build_optimizer, build_scheduler

# Seeds of one trial: its own seed first (one seed trains exactly as before), then strides
# far apart, so trial n's extra seeds never repeat trial n + 1's own.
SEED_STRIDE = 100_000
REQUIRED_PARAMS = ("hidden_layers", "optimizer", "lr", "scheduler", "batch_size", "epochs")
# What each epoch reports: the pruning metric first, then what plots and reports read.
REPORTED = ("test_r2", "test_mse", "train_mse", "train_r2", "lr", "train_loss", "test_loss",
            "seconds")


class TrialDiverged(RuntimeError):
    """Training hit a non-finite loss; the trial is recorded as failed, the study goes on."""


def model_spec(params: Mapping[str, Any], in_features: int) -> ModelSpec:
    """The network the params describe; ``hidden_layers=0`` is linear regression."""
    layers = int(params["hidden_layers"])
    if layers == 0:  # the architecture knobs do not apply to a single linear layer
        return ModelSpec(in_features=in_features)
    return ModelSpec(
        in_features=in_features,
        hidden=(int(params["width"]),) * layers,
        activation=str(params["activation"]),
        batch_norm=bool(params.get("batch_norm", False)),
        dropout=float(params.get("dropout") or 0.0),
    )


def train_params(
    params: Mapping[str, Any],
    fold: Fold,
    *,
    seed: int = 0,
    device: str = "cpu",
    callback: Any = None,
    progress: bool = False,
) -> tuple[nn.Module, ModelSpec, TrainResult]:
    """Build everything the params describe and train it on one fold."""
    check_params(params)
    torch.manual_seed(seed)  # the model's initial weights
    spec = model_spec(params, fold.train.x.shape[1])
    model = build_model(spec).to(device)
    optimizer = build_optimizer(params, model.parameters())
    epochs = int(params["epochs"])
    scheduler = build_scheduler(optimizer, params, epochs=epochs)
    x_train, y_train = fold.train.tensors(device)
    batch_size = None if params["batch_size"] == "full" else int(params["batch_size"])
    batches = InMemoryBatches(x_train, y_train, batch_size=batch_size, shuffle=True, seed=seed)
    x_test, y_test = fold.test.tensors(device)
    test = InMemoryBatches(x_test, y_test, batch_size=None, shuffle=False)
    result = train(model, batches, epochs=epochs, optimizer=optimizer, scheduler=scheduler,
                   test_batches=test, device=device, callback=callback, progress=progress)
    return model, spec, result


def check_params(params: Mapping[str, Any]) -> None:
    """Refuse a params dict that lacks what the objective needs, naming what is missing."""
    missing = [key for key in REQUIRED_PARAMS if key not in params]
    if missing:
        raise ConfigError(
            f"The search space must return {', '.join(REQUIRED_PARAMS)}, but "
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing from "
            f"{sorted(params)}; add the search_spaces suggest_* functions that provide them."
        )


def training_seeds(seed: int, count: int) -> list[int]:
    """The training seeds of a trial whose seed is ``seed``, scored over ``count`` seeds."""
    return [seed + SEED_STRIDE * k for k in range(count)]


def evaluate(
    params: Mapping[str, Any],
    folds: Sequence[Fold],
    reporter: Reporter,
    *,
    seed: int = 0,
    device: str = "cpu",
    score: str = "final",
    seeds: int = 1,
) -> float:
    """Train the params on every fold and return the R² on each fold's scored part (``test``),
    the mean over folds, and over ``seeds`` training seeds (``training_seeds(seed, seeds)``).

    With one fold every epoch is reported, so pruners see the learning curve; with k folds
    each fold's R² is reported as a step (the running mean), as k-fold scores have no epochs.
    With several seeds the first seed's curve is reported (pruners compare like with like);
    ``seed_scores``, ``r2_mean``, ``r2_sd`` and ``epochs_trained`` record every seed's share.

    Raises:
        TrialDiverged: the training loss became non-finite (with any seed).
    """
    # The thread count is kept because CPU results repeat to the bit only with it.
    reporter.record({"params": dict(params), "family": str(params["scheduler"]),
                     "device": device, "seed": seed, "threads": torch.get_num_threads()})
    scores = []
    for k, one_seed in enumerate(training_seeds(seed, seeds)):
        # Only the first seed's curve reaches the reporter; the others' are kept apart.
        scores.append(_evaluate_seed(params, folds, reporter if k == 0 else MemoryReporter(),
                                     seed=one_seed, device=device, score=score))
    if seeds == 1:
        return scores[0]
    mean = float(np.mean(scores))
    reporter.record({"seed_scores": scores, "r2_mean": mean,
                     "r2_sd": float(np.std(scores, ddof=1)),
                     "epochs_trained": int(params["epochs"]) * len(folds) * seeds})
    return mean


def _evaluate_seed(
    params: Mapping[str, Any], folds: Sequence[Fold], reporter: Reporter, *, seed: int,
    device: str, score: str,
) -> float:
    if len(folds) == 1:
        return _evaluate_split(params, folds[0], reporter, seed=seed, device=device, score=score)
    return _evaluate_folds(params, folds, reporter, seed=seed, device=device, score=score)


def _evaluate_split(
    params: Mapping[str, Any], fold: Fold, reporter: Reporter, *, seed: int, device: str,
    score: str,
) -> float:
    def forward(epoch: int, row: Mapping[str, float]) -> None:
        reporter.report(epoch, {key: float(row[key]) for key in REPORTED if key in row})

    model, _, result = train_params(params, fold, seed=seed, device=device, callback=forward)
    rows = _rows(result.history)
    reporter.record({"n_params": count_parameters(model), "history": rows,
                     "epochs_run": len(rows)})
    _raise_if_diverged(result, reporter)
    scored = scored_row(rows, score)
    reporter.record(summary(scored, seconds=rows[-1]["seconds"]))
    return scored["test_r2"]


def _evaluate_folds(
    params: Mapping[str, Any], folds: Sequence[Fold], reporter: Reporter, *, seed: int,
    device: str, score: str,
) -> float:
    rows: list[dict[str, Any]] = []
    for number, fold in enumerate(folds, start=1):
        model, _, result = train_params(params, fold, seed=seed + number, device=device)
        _raise_if_diverged(result, reporter)
        epochs = _rows(result.history)
        rows.append({"fold": number, **summary(scored_row(epochs, score),
                                               seconds=epochs[-1]["seconds"])})
        reporter.report(number, {"test_r2": mean_of(rows, "test_r2"),
                                 "test_mse": mean_of(rows, "test_mse")})
    reporter.record(folds_record(rows, n_params=count_parameters(model),
                                 epochs=int(params["epochs"])))
    return mean_of(rows, "test_r2")


def _raise_if_diverged(result: TrainResult, reporter: Reporter) -> None:
    if result.diverged:
        reporter.record({"ended": "diverged", "message": result.message})
        raise TrialDiverged(result.message)


# Scoring a trial from its per-epoch rows, shared with the population runner
# (hpo.runners.population), whose records must match these.

def scored_row(rows: Sequence[Mapping[str, float]], score: str) -> Mapping[str, float]:
    """The epoch the trial is scored on: the last, or the first with the best test R²."""
    if score == "best":
        return max(rows, key=lambda row: row["test_r2"])
    return rows[-1]


def summary(row: Mapping[str, float], seconds: float) -> dict[str, Any]:
    """The attrs of a trial scored on ``row`` (one split, or one fold's row)."""
    return {"train_mse": float(row["train_mse"]), "test_mse": float(row["test_mse"]),
            "test_r2": float(row["test_r2"]), "seconds": seconds, "ended": "completed"}


def folds_record(rows: list[dict[str, Any]], *, n_params: int, epochs: int) -> dict[str, Any]:
    """The attrs of a cross-validated trial, from its fold rows (``summary`` plus ``fold``)."""
    return {"n_params": n_params, "history": rows, "epochs_run": epochs, "ended": "completed",
            **{k: mean_of(rows, k) for k in ("train_mse", "test_mse", "test_r2")},
            "seconds": sum(row["seconds"] for row in rows)}


def mean_of(rows: Sequence[Mapping[str, Any]], key: str) -> float:
    """The mean of ``key`` over ``rows`` (the running mean R² a k-fold trial reports)."""
    return sum(row[key] for row in rows) / len(rows)


def _rows(history: pd.DataFrame) -> list[dict[str, float]]:
    return [{str(key): float(value) for key, value in row.items()}
            for row in history.to_dict(orient="records")]


def train_and_score(
    params: Mapping[str, Any], folds: Sequence[Fold], *, seed: int = 0, device: str = "cpu",
    score: str = "final",
) -> tuple[float, MemoryReporter]:
    """Evaluate outside any search: the score and everything it reported."""
    reporter = MemoryReporter()
    return evaluate(params, folds, reporter, seed=seed, device=device, score=score), reporter
