"""Trials trained many at a time: ask Optuna for a batch, group, train each group as one.

Batches double from 8 trials up to ``RunOptions.population_size`` (the runner decides):
Optuna's pruners compare a trial only with finished ones, so trials of one batch never
prune each other; the first batch's finished trials are what the next batch is pruned by.

Each batch of asked trials is grouped by `hpo.train.batched.group_key` (layer shapes,
activation, batch norm, batch size, epochs); a group of two or more trains as one population.
A trial alone in its group, or with batch norm (`hpo.train.batched.batches_exactly`: its
batched R² would not match a retrain, which ``hpo export`` checks), runs one at a time as
before, unless ``force`` (``--mode population``).
Every epoch each model's test R² goes to its own trial through its own `OptunaReporter`, so
pruners act per trial; a pruned model leaves the batch and its trial is told PRUNED at that
epoch; a model whose loss turns non-finite is told FAIL (``ended=diverged``) alone. Each trial
gets the user attrs the one-at-a-time path writes, plus ``population`` (its group's size).

With k cross-validation folds the folds run one after another, each fold one population;
after each fold every trial reports its running mean R² (step = fold), as one at a time.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from hpo.data import Fold
from hpo.runners.trials import OptunaReporter, call_space, run_trial
from hpo.study.config import Study
from hpo.train.batched import Member, batches_exactly, group_key, train_population
from hpo.train.objective import REPORTED


def run_batch(study: Study, optuna_study: optuna.Study, trials: Sequence[optuna.Trial],
              folds: list[Fold], device: str, *, force: bool = False,
              keep_going: Callable[[], bool] = lambda: True) -> None:
    """Run ``trials`` (already asked): groups of two or more together, the rest alone.

    ``keep_going`` is asked every epoch: when it turns False (the worker was orphaned) the
    population stops and its open trials are failed as ``interrupted``.
    """
    entries = [_Entry(optuna_study, trial) for trial in trials]
    try:
        for entry in entries:
            entry.params = call_space(study, entry.trial)
    except BaseException:
        for entry in entries:
            optuna_study.tell(entry.trial, state=TrialState.FAIL)
        raise
    groups: dict[tuple[Any, ...], list[_Entry]] = {}
    in_features = folds[0].train.x.shape[1]
    for entry in entries:
        groups.setdefault(group_key(entry.params, in_features), []).append(entry)
    try:
        for group in groups.values():
            _run_one_group(study, optuna_study, group, folds, device, force, keep_going)
    except BaseException:  # Ctrl-C or a bug: the batch's other trials are not left RUNNING
        _interrupt(entries)
        raise


def _run_one_group(study: Study, optuna_study: optuna.Study, group: list[_Entry],
                   folds: list[Fold], device: str, force: bool,
                   keep_going: Callable[[], bool]) -> None:
    if not force and (len(group) == 1 or not batches_exactly(group[0].params)):
        for entry in group:  # an orphaned worker stops here too
            if keep_going():
                entry.open = False  # run_trial tells the storage how it ended
                run_trial(study, optuna_study, entry.trial, folds, device)
            else:
                _interrupt([entry])
    elif keep_going():
        _run_group(study, group, folds, device, keep_going)
    else:
        _interrupt(group)


class _Entry:
    """One asked trial of a batch: its reporter, params and fate."""

    def __init__(self, optuna_study: optuna.Study, trial: optuna.Trial) -> None:
        self.optuna_study, self.trial = optuna_study, trial
        self.reporter = OptunaReporter(trial)
        self.params: dict[str, Any] = {}
        self.open = True  # not yet told

    def tell(self, value: float | None = None, state: TrialState | None = None) -> None:
        if self.open:
            self.optuna_study.tell(self.trial, value, state=state)
            self.open = False


class _Interrupted(Exception):
    """The worker must stop now (its parent died): end the population where it is."""


def _run_group(study: Study, group: list[_Entry], folds: list[Fold], device: str,
               keep_going: Callable[[], bool]) -> None:
    try:
        _start(study, group, device)
        if not keep_going():
            raise _Interrupted
        if len(folds) == 1:
            _train_split(study, group, folds[0], device, keep_going)
        else:
            _train_folds(study, group, folds, device, keep_going)
    except _Interrupted:
        _interrupt(group)
    finally:
        for entry in group:  # an interrupt or a bug: no trial is left RUNNING
            entry.tell(state=TrialState.FAIL)


def _start(study: Study, group: list[_Entry], device: str) -> None:
    worker = f"{socket.gethostname()}:{os.getpid()}"
    for entry in group:
        entry.reporter.record({
            "worker": worker, "source": "search", "params": dict(entry.params),
            "family": str(entry.params["scheduler"]), "device": device,
            "seed": study.seed + entry.trial.number, "threads": torch.get_num_threads(),
            "population": len(group)})


def _interrupt(group: list[_Entry]) -> None:
    for entry in group:
        if entry.open:
            entry.reporter.record({"ended": "interrupted"})
            entry.tell(state=TrialState.FAIL)


def _train_split(study: Study, group: list[_Entry], fold: Fold, device: str,
                 keep_going: Callable[[], bool]) -> None:
    def report(epoch: int, rows: Mapping[int, dict[str, float]]) -> set[int]:
        if not keep_going():
            raise _Interrupted
        pruned = set()
        for index, row in rows.items():
            try:
                group[index].reporter.report(epoch, {k: float(row[k]) for k in REPORTED})
            except optuna.TrialPruned:
                group[index].tell(state=TrialState.PRUNED)
                pruned.add(index)
        return pruned

    members = train_population([e.params for e in group], fold, _seeds(study, group),
                               device=device, callback=report)
    for entry, member in zip(group, members, strict=True):
        if entry.open:
            _finish(study, entry, member)


def _finish(study: Study, entry: _Entry, member: Member) -> None:
    entry.reporter.record({"n_params": member.n_params, "history": member.rows,
                           "epochs_run": len(member.rows)})
    if member.stopped == "diverged":
        entry.reporter.record({"ended": "diverged", "message": member.message})
        entry.tell(state=TrialState.FAIL)
        return
    scored = _scored(member.rows, study.score)
    entry.reporter.record({**_summary(scored), "seconds": member.seconds})
    entry.tell(scored["test_r2"])


def _train_folds(study: Study, group: list[_Entry], folds: list[Fold], device: str,
                 keep_going: Callable[[], bool]) -> None:
    rows: dict[int, list[dict[str, Any]]] = {i: [] for i in range(len(group))}
    alive, members = list(range(len(group))), {}
    for number, fold in enumerate(folds, start=1):
        if not keep_going():
            raise _Interrupted
        trained = train_population([group[i].params for i in alive], fold,
                                   [s + number for s in _seeds(study, [group[i] for i in alive])],
                                   device=device)
        for index, member in zip(list(alive), trained, strict=True):
            members[index] = member
            entry = group[index]
            if member.stopped == "diverged":
                entry.reporter.record({"n_params": member.n_params, "ended": "diverged",
                                       "message": member.message})
                entry.tell(state=TrialState.FAIL)
                alive.remove(index)
                continue
            scored = _scored(member.rows, study.score)
            rows[index].append({"fold": number, **_summary(scored), "seconds": member.seconds})
            try:
                entry.reporter.report(number, {"test_r2": _mean(rows[index], "test_r2"),
                                               "test_mse": _mean(rows[index], "test_mse")})
            except optuna.TrialPruned:
                entry.tell(state=TrialState.PRUNED)
                alive.remove(index)
    for index in alive:
        _finish_folds(group[index], members[index], rows[index])


def _finish_folds(entry: _Entry, member: Member, rows: list[dict[str, Any]]) -> None:
    entry.reporter.record({
        "n_params": member.n_params, "history": rows, "epochs_run": int(entry.params["epochs"]),
        "ended": "completed", **{k: _mean(rows, k) for k in ("train_mse", "test_mse", "test_r2")},
        "seconds": sum(row["seconds"] for row in rows)})
    entry.tell(_mean(rows, "test_r2"))


def _seeds(study: Study, group: Sequence[_Entry]) -> list[int]:
    return [study.seed + entry.trial.number for entry in group]  # as run_trial seeds a trial


def _scored(rows: list[dict[str, float]], score: str) -> dict[str, float]:
    if score == "best":
        return max(rows, key=lambda row: row["test_r2"])  # the first of equal bests, as argmax
    return rows[-1]


def _summary(row: Mapping[str, float]) -> dict[str, Any]:
    return {"train_mse": row["train_mse"], "test_mse": row["test_mse"],
            "test_r2": row["test_r2"], "ended": "completed"}


def _mean(rows: list[dict[str, Any]], key: str) -> float:
    return sum(row[key] for row in rows) / len(rows)

