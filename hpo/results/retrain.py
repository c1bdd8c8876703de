"""Training a stored trial again as it ran, from the storage alone (trials keep no weights).

A trial records its params, seed, thread count and the padded layout of the population it
trained in (`hpo.train.rules.started_record`); `replay` trains it again in the same engine
with all of them, which repeats its arithmetic to the bit on the same machine and torch.
Used by ``hpo report`` (the best model's prediction), ``hpo export --as-trained`` and tests
that hold every stored trial to its score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from optuna.trial import FrozenTrial, TrialState
from torch import nn

from hpo.data import Fold
from hpo.errors import ConfigError
from hpo.results.tables import trial_history
from hpo.store.attrs import trial_attr, trial_params
from hpo.store.record import folds_from_record, score_label
from hpo.train.batched import Member, Population, train_population
from hpo.train.models import ModelSpec
from hpo.train.objective import Job, evaluate_many, record_member
from hpo.train.progress import Progress
from hpo.train.reporter import MemoryReporter
from hpo.train.threads import torch_threads


def scored_epoch(trial: FrozenTrial, record: dict[str, Any]) -> int:
    """The epoch whose weights the trial was scored on: the best one with score="best"."""
    history = trial_history(trial)
    if record.get("score") == "best" and "epoch" in history and "test_r2" in history:
        return int(history["epoch"].to_numpy()[history["test_r2"].to_numpy().argmax()])
    return int(trial_params(trial)["epochs"])


def replay(trial: FrozenTrial, record: dict[str, Any], *,
           trials: Sequence[FrozenTrial] | None = None, models: bool = False,
           progress: bool = False) -> Job:
    """Train a stored trial again as it was trained: its folds, seeds, layout, thread count
    and, given the study's ``trials``, the population it trained in (its cohort, which the
    engine's rounding depends on: `hpo.train.rules.cohort_record`). ``job.value`` is then
    its score again (None: diverged). With ``models``, only its first seed trains, stopped
    at the epoch it was scored on, and keeps its weights (``job.members[0][fold]``,
    `Member.model`)."""
    if "seed" not in trial.user_attrs:
        raise ConfigError(f"Trial {trial.number} stored no seed, expected one written by hpo; "
                          "re-run the study with hpo to retrain it.")
    folds = folds_from_record(record)
    stop = scored_epoch(trial, record) if models and len(folds) == 1 else None
    cohort = trial_attr(trial, "cohort")
    mates = _mates(trials, cohort) if cohort and trials is not None else [trial]
    bar = Progress(stop or int(trial_params(trial)["epochs"]), f"re-training trial "
                   f"{trial.number}", unit="epoch", enabled=progress and len(folds) == 1)
    try:
        with torch_threads(trial.user_attrs.get("threads")):
            if cohort and cohort["rolling"] and len(mates) > 1:
                return _replay_rolling(trial, mates, record, folds[0], stop, models)
            jobs = [_job(mate, record, models, bar if mate is trial else None,
                         stop if mate is trial else None) for mate in mates]
            evaluate_many(jobs, folds, score=str(record.get("score", "final")),
                          keep_weights=models, stops=(_Stopped,))
    finally:
        bar.close()
    return jobs[mates.index(trial)]


def _mates(trials: Sequence[FrozenTrial], cohort: Mapping[str, Any]) -> list[FrozenTrial]:
    """The trials of a cohort, by member index."""
    mates = sorted((t for t in trials if (trial_attr(t, "cohort") or {}).get("name")
                    == cohort["name"]), key=lambda t: trial_attr(t, "cohort")["index"])
    if [trial_attr(t, "cohort")["index"] for t in mates] != list(range(len(mates))):
        raise ConfigError(f"The cohort {cohort['name']!r} of trial records is incomplete, "
                          "expected every trial it trained with; was a trial deleted?")
    return mates


def _job(trial: FrozenTrial, record: dict[str, Any], models: bool, bar: Progress | None,
         stop: int | None) -> Job:
    """A trial as a job of its cohort: stopped where it stopped (pruned, failed)."""
    return Job(trial_params(trial), int(trial.user_attrs["seed"]),
               _Replayed(bar, score_label(record), _steps_run(trial)),
               seeds=1 if models else int(record.get("seeds") or 1),
               layout=trial_attr(trial, "layout"), stop_after=stop)


def _steps_run(trial: FrozenTrial) -> int | None:
    """The epoch (or fold) a trial that did not complete stopped at; None: it ran on."""
    if trial.state == TrialState.COMPLETE or trial.user_attrs.get("ended") == "diverged":
        return None
    return max(trial.intermediate_values, default=0)


def _replay_rolling(trial: FrozenTrial, mates: list[FrozenTrial], record: dict[str, Any],
                    fold: Fold, stop: int | None, models: bool) -> Job:
    """A rolling population again: its first members, the ones that joined at the epochs
    they joined, each stopped where it stopped."""
    cohorts = [trial_attr(mate, "cohort") for mate in mates]
    stops = {i: steps for i, mate in enumerate(mates) if (steps := _steps_run(mate))}
    mine = mates.index(trial)
    if stop is not None:
        stops[mine] = min(stops.get(mine, stop), stop)
    joining: dict[int, list[int]] = {}
    for i, cohort in enumerate(cohorts):
        joining.setdefault(int(cohort["joined"]), []).append(i)

    def callback(_epoch: int, rows: Mapping[int, dict[str, float]]) -> set[int]:
        return {i for i, row in rows.items() if i in stops and row["epoch"] >= stops[i]}

    def after_epoch(population: Population) -> None:
        later = joining.get(population.epochs_done, [])
        if later:
            population.admit([trial_params(mates[i]) for i in later],
                             [int(mates[i].user_attrs["seed"]) for i in later])

    first = joining[0]
    members = train_population([trial_params(mates[i]) for i in first], fold,
                               [int(mates[i].user_attrs["seed"]) for i in first],
                               callback=callback, after_epoch=after_epoch,
                               keep_weights=models)
    job = Job(trial_params(trial), int(trial.user_attrs["seed"]), members=[[members[mine]]])
    job.value = record_member(job.reporter, members[mine], str(record.get("score", "final")))
    return job


class _Stopped(Exception):
    """A replayed trial reached the step its run stopped at."""


class _Replayed(MemoryReporter):
    """Keeps what a replay reports, shows its epochs on a progress bar (``bar``), and stops
    it at ``steps`` (where its run stopped: pruned, or failed)."""

    def __init__(self, bar: Progress | None, label: str, steps: int | None) -> None:
        super().__init__()
        self.bar, self.label, self.steps = bar, label, steps

    def report(self, epoch: int, metrics: Any) -> None:
        super().report(epoch, metrics)
        if self.bar is not None:
            self.bar.update(epoch, f"{self.label} {metrics.get('test_r2', float('nan')):.4f}")
        if self.steps is not None and epoch >= self.steps:
            raise _Stopped


def retrain_trial(trial: FrozenTrial, record: dict[str, Any], *,
                  trials: Sequence[FrozenTrial] | None = None, progress: bool = False
                  ) -> tuple[nn.Module, ModelSpec, Member, Fold]:
    """The model a stored trial scored (its first seed's; a cross-validated trial's on fold
    1), trained again by `replay`: the model, its spec, its `Member` (rows, how it stopped)
    and the fold it trained on. With ``progress``, shows the epochs trained."""
    job = replay(trial, record, trials=trials, models=True, progress=progress)
    member = job.members[0][0]
    assert member.spec is not None
    return member.model(), member.spec, member, folds_from_record(record)[0]
