"""The trial rules, each stated once: every training path and every runner calls these.

A trial's seeds, when training has diverged, which epoch a trial is scored on, and the
attributes a finished, diverged or cross-validated trial records. The engine
(`hpo.train.engine`, `hpo.train.batched`), the course's loop (`hpo.train.loop`) and the
runners (`hpo.runners`) all read them from here.

Example:
    >>> trial_seed(study_seed=7, number=3), training_seeds(10, 3), fold_seed(10, 2, folds=3)
    (10, [10, 100010, 200010], 12)
    >>> divergence(0.5, float("nan"))
    'test loss is nan'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

# Seeds of one trial: its own seed first (one seed trains exactly as before), then strides
# far apart, so trial n's extra seeds never repeat trial n + 1's own.
SEED_STRIDE = 100_000


def trial_seed(study_seed: int, number: int) -> int:
    """The seed of trial ``number``: its model's initial weights, data order and dropout."""
    return study_seed + number


def training_seeds(seed: int, count: int) -> list[int]:
    """The training seeds of a trial whose seed is ``seed``, scored over ``count`` seeds."""
    return [seed + SEED_STRIDE * k for k in range(count)]


def fold_seed(seed: int, number: int, folds: int) -> int:
    """The seed fold ``number`` (from 1) trains with: ``seed + number`` under k-fold
    cross-validation, ``seed`` itself on a single split."""
    return seed + number if folds > 1 else seed


def divergence(train_loss: float, test_loss: float | None = None) -> str | None:
    """What diverged (``"training loss is nan"``), or None while both losses are finite."""
    for loss, what in ((train_loss, "training loss"), (test_loss, "test loss")):
        if loss is not None and not math.isfinite(loss):
            return f"{what} is {loss}"
    return None


def diverged_message(epoch: int, problem: str) -> str:
    """How a diverged training says where it stopped."""
    return f"diverged at epoch {epoch}: {problem}"


def diverged_record(message: str) -> dict[str, str]:
    """The attrs of a trial that diverged."""
    return {"ended": "diverged", "message": message}


def step_schedule(scheduler: Any, loss: float) -> None:
    """End an epoch of ``scheduler`` (None: a constant lr); a plateau reads ``loss``."""
    if scheduler is None:
        return
    if isinstance(scheduler, ReduceLROnPlateau):
        scheduler.step(loss)
    else:
        scheduler.step()


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


def fold_report(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """What a cross-validated trial reports after each fold: the running means so far."""
    return {"test_r2": mean_of(rows, "test_r2"), "test_mse": mean_of(rows, "test_mse")}


def mean_of(rows: Sequence[Mapping[str, Any]], key: str) -> float:
    """The mean of ``key`` over ``rows`` (the running mean R² a k-fold trial reports)."""
    return sum(row[key] for row in rows) / len(rows)


def started_record(params: Mapping[str, Any], *, device: str, seed: int,
                   layout: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What a trial records when it starts training. The thread count is kept because CPU
    results repeat to the bit only with it; the ``layout`` (the padded shape of the
    population it trained in) because its rounding does too (`hpo.results.retrain.replay`)."""
    record = {"params": dict(params), "family": str(params["scheduler"]), "device": device,
              "seed": seed, "threads": torch.get_num_threads()}
    if layout is not None:
        record["layout"] = dict(layout)
    return record


def cohort_record(name: str, index: int, joined: int, rolling: bool) -> dict[str, Any]:
    """A trial's place in the population it trained in, which a replay rebuilds to repeat it
    to the bit (torch's kernels round a model's numbers by where it sits among the others:
    `hpo.results.retrain.replay`): the cohort's ``name`` (the same for all its trials), the
    trial's member ``index``, the population epoch it ``joined`` at, and whether the
    population ``rolling`` took trials in as others left (one split) or trained a fixed
    group (cross-validated, or jobs given together: `hpo.train.objective.evaluate_many`)."""
    return {"cohort": {"name": name, "index": index, "joined": joined, "rolling": rolling}}
