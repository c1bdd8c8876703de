"""The objective: params -> data -> model -> optimizer -> schedule -> the engine -> test R².

Every training the project does comes through here, and every one trains in the one engine,
`hpo.train.batched` (a training alone is a population of one): `evaluate` scores one trial,
`evaluate_many` scores several at once (``hpo compare``'s hand-picked configs × seeds, the
verdict's candidates), `train_model` gives back a trained model (export, report).

It never imports a search library: it talks back only through a Reporter, so the same code
serves Optuna, Ray Tune, ``hpo compare`` and a plain script. Every epoch it reports the test
R² (and MSE, learning rate); a reporter that wants the trial pruned raises, and training
stops at once. A diverging trial raises TrialDiverged (`evaluate`), which runners record as
failed without stopping the study. The rules it follows (seeds, scoring, records) live in
`hpo.train.rules`.

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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from hpo.data import Fold
from hpo.errors import ConfigError
from hpo.train._stacked import Layout
from hpo.train.batched import Member, folds_train_together, group_key, train_population
from hpo.train.models import ModelSpec, model_spec
from hpo.train.reporter import MemoryReporter, Reporter
from hpo.train.rules import (
    cohort_record,
    diverged_record,
    fold_report,
    fold_seed,
    folds_record,
    scored_row,
    started_record,
    summary,
    training_seeds,
)

REQUIRED_PARAMS = ("hidden_layers", "optimizer", "lr", "scheduler", "batch_size", "epochs")
# What each epoch reports: the pruning metric first, then what plots and reports read.
REPORTED = ("test_r2", "test_mse", "train_mse", "train_r2", "lr", "train_loss", "test_loss",
            "seconds")


class TrialDiverged(RuntimeError):
    """Training hit a non-finite loss; the trial is recorded as failed, the study goes on."""


def check_params(params: Mapping[str, Any]) -> None:
    """Refuse a params dict that lacks what the objective needs, naming what is missing."""
    missing = [key for key in REQUIRED_PARAMS if key not in params]
    if missing:
        raise ConfigError(
            f"The search space must return {', '.join(REQUIRED_PARAMS)}, but "
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing from "
            f"{sorted(params)}; add the search_spaces suggest_* functions that provide them."
        )


@dataclass
class Job:
    """One trial to train: its params, its seed, and what it reports to.

    ``seeds`` > 1 scores it over that many training seeds (`hpo.train.rules.training_seeds`).
    ``layout`` (as a trial records it) trains it in the padded layout it first trained in,
    which repeats its arithmetic to the bit; ``stop_after`` ends it after that epoch (its
    weights then are the ones scored with ``score="best"``).
    """

    params: Mapping[str, Any]
    seed: int
    reporter: Reporter = field(default_factory=MemoryReporter)
    seeds: int = 1
    layout: Mapping[str, Any] | None = None
    stop_after: int | None = None
    members: list[list[Member]] = field(default_factory=list)  # [seed][fold], once trained
    value: float | None = None  # its score once trained: None when it diverged or stopped
    stopped: bool = False  # its reporter raised one of `evaluate_many`'s ``stops``


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
    kept = _Attrs(reporter)
    job = Job(params, seed, kept, seeds)
    evaluate_many([job], folds, device=device, score=score)
    if job.value is None:
        raise TrialDiverged(str(kept.attrs.get("message")))
    return job.value


def evaluate_many(jobs: Sequence[Job], folds: Sequence[Fold], *, device: str = "cpu",
                  score: str = "final", keep_weights: bool = False,
                  stops: tuple[type[BaseException], ...] = (),
                  check: Callable[[], None] | None = None,
                  layout: Layout | None = None, cohort: str | None = None
                  ) -> list[float | None]:
    """Score every job on ``folds`` as `evaluate` scores one (None: diverged), training the
    jobs that can share a computation as one population. Each job's reporter gets what
    `evaluate` reports and records. A reporter that raises one of ``stops`` (a pruner's
    "stop this trial") stops its job alone (`Job.stopped`); anything else it raises stops
    them all, and so does ``check``, called after every epoch (a time limit, say).
    ``layout`` pads every job to it (a runner's population records it).

    Jobs share a population only with jobs of the same padded layout (their own, or the one
    they replay). A job's numbers still depend on its place among them in the last bits
    (torch's kernels round by position); with ``cohort`` each job records that place
    (`hpo.train.rules.cohort_record`), so that a replay can repeat it to the bit.
    """
    for job in jobs:
        check_params(job.params)
    in_features = folds[0].train.x.shape[1]
    groups: dict[Any, list[Job]] = {}
    for job in jobs:
        if layout is not None:
            job.layout = layout.to_dict()
        own = job.layout or Layout.of([model_spec(job.params, in_features)]).to_dict()
        key = (group_key(job.params, in_features), repr(sorted(own.items())))
        groups.setdefault(key, []).append(job)
    for number, group in enumerate(groups.values()):
        if cohort is not None:
            for index, job in enumerate(group):
                job.reporter.record(cohort_record(f"{cohort}.{number}", index, 0, False))
        _Group(group, list(folds), torch.device(device), score, keep_weights, stops,
               check).run()
    return [job.value for job in jobs]


class _Attrs(MemoryReporter):
    """Passes everything on to ``reporter``, keeping the attributes it records too."""

    def __init__(self, reporter: Reporter) -> None:
        super().__init__()
        self.inner = reporter

    def report(self, epoch: int, metrics: Mapping[str, float]) -> None:
        self.inner.report(epoch, metrics)

    def record(self, attrs: Mapping[str, Any]) -> None:
        super().record(attrs)
        self.inner.record(attrs)


class _Group:
    """Jobs of one group key: their members (seeds × folds) trained as populations."""

    def __init__(self, jobs: list[Job], folds: list[Fold], device: torch.device, score: str,
                 keep_weights: bool, stops: tuple[type[BaseException], ...],
                 check: Callable[[], None] | None) -> None:
        self.jobs, self.folds, self.device, self.score = jobs, folds, device, score
        self.keep_weights, self.stops, self.check = keep_weights, stops, check
        self.seeds = [training_seeds(job.seed, job.seeds) for job in jobs]
        in_features = folds[0].train.x.shape[1]
        specs = [model_spec(job.params, in_features) for job in jobs]
        self.layout = _layout(jobs, specs)
        for job, seed in zip(jobs, self.seeds, strict=True):
            job.members = [[] for _ in seed]
            job.reporter.record(started_record(
                job.params, device=str(device), seed=job.seed, layout=self.layout.to_dict()))

    def run(self) -> None:
        for job in self.jobs:  # the trials that trained together, as a runner counts them
            job.reporter.record({"population": len(self.jobs)})
        if len(self.folds) == 1:
            self._train(self.folds[0], None, report=True)
            for job in self.jobs:
                self._finish_split(job)
            return
        self._run_folds()

    def _train(self, fold: Fold, number: int | None, report: bool,
               folds: list[Fold] | None = None, jobs: list[int] | None = None) -> None:
        """Train every seed of ``jobs`` (all by default) on ``fold`` (fold ``number``), or
        on each of ``folds`` at once."""
        parts = folds if folds is not None else [fold]
        entries = [(j, k, f) for j in (range(len(self.jobs)) if jobs is None else jobs)
                   for k in range(len(self.seeds[j])) for f in range(len(parts))]
        if not entries:
            return
        params = [self.jobs[j].params for j, _, _ in entries]
        seeds = [fold_seed(self.seeds[j][k], (number or f + 1), len(self.folds))
                 for j, k, f in entries]
        firsts = {i: j for i, (j, k, f) in enumerate(entries) if k == 0 and f == 0}
        stop_after = {i: stop for i, (j, _, _) in enumerate(entries)
                      if (stop := self.jobs[j].stop_after) is not None}
        every_epoch = report or self.score == "best" or bool(stop_after)

        def callback(_epoch: int, rows: Mapping[int, dict[str, float]]) -> set[int]:
            ended = {i for i, row in rows.items()
                     if i in stop_after and row["epoch"] >= stop_after[i]}
            if report:
                for index, row in rows.items():
                    if index in firsts and not self._report(
                            self.jobs[firsts[index]], int(row["epoch"]),
                            {key: float(row[key]) for key in REPORTED}):
                        ended |= {i for i, (j, _, _) in enumerate(entries)
                                  if j == firsts[index]}
            if self.check is not None:
                self.check()
            return ended

        trained = train_population(
            params, fold if folds is None else [parts[f] for _, _, f in entries], seeds,
            device=self.device,
            callback=callback, every_epoch=every_epoch, layout=self.layout,
            keep_weights=self.keep_weights)
        for (j, k, _), member in zip(entries, trained, strict=True):
            self.jobs[j].members[k].append(member)

    def _report(self, job: Job, step: int, metrics: Mapping[str, float]) -> bool:
        """Report to the job's reporter; False when it stopped the job (``stops``)."""
        try:
            job.reporter.report(step, metrics)
        except self.stops:
            job.stopped = True
            return False
        return True

    def _finish_split(self, job: Job) -> None:
        if job.stopped:
            return
        diverged = next((m[0] for m in job.members[1:] if m[0].stopped == "diverged"), None)
        value = record_member(job.reporter, job.members[0][0], self.score, diverged)
        if value is not None:
            values = [value] + [float(scored_row(m[0].rows, self.score)["test_r2"])
                                for m in job.members[1:]]
            self._set_value(job, values, epochs=int(job.params["epochs"]))

    def _run_folds(self) -> None:
        """Fold after fold, each reported in order (a pruner may stop the trial between
        folds); when every fold makes as many batches, all folds train at once first."""
        together = folds_train_together(self.jobs[0].params, self.folds)
        if together:
            self._train(self.folds[0], None, report=False, folds=self.folds)
        rows: list[list[dict[str, Any]]] = [[] for _ in self.jobs]
        for number, fold in enumerate(self.folds, start=1):
            alive = [j for j, job in enumerate(self.jobs)
                     if len(rows[j]) == number - 1 and not job.stopped]
            if not together:
                self._train(fold, number, report=False, jobs=alive)
            for j in alive:
                self._report_fold(self.jobs[j], rows[j], number)
        for job, job_rows in zip(self.jobs, rows, strict=True):
            if len(job_rows) == len(self.folds) and not job.stopped:
                self._finish_folds(job, job_rows)

    def _report_fold(self, job: Job, rows: list[dict[str, Any]], number: int) -> None:
        """Report fold ``number`` of ``job`` (its first seed's), or record that it diverged."""
        diverged = next((m[number - 1] for m in job.members
                         if m[number - 1].stopped == "diverged"), None)
        if diverged is not None:
            job.reporter.record(diverged_record(diverged.message))
            return
        member = job.members[0][number - 1]
        rows.append({"fold": number, **summary(scored_row(member.rows, self.score),
                                               seconds=member.seconds)})
        self._report(job, number, fold_report(rows))

    def _finish_folds(self, job: Job, rows: list[dict[str, Any]]) -> None:
        job.reporter.record(folds_record(rows, n_params=job.members[0][0].n_params,
                                         epochs=int(job.params["epochs"])))
        values = [float(np.mean([float(scored_row(m.rows, self.score)["test_r2"])
                                 for m in members])) for members in job.members]
        self._set_value(job, values, epochs=int(job.params["epochs"]) * len(self.folds))

    @staticmethod
    def _set_value(job: Job, values: list[float], epochs: int) -> None:
        job.value = values[0]
        if len(values) > 1:
            job.value = float(np.mean(values))
            job.reporter.record({"seed_scores": values, "r2_mean": job.value,
                                 "r2_sd": float(np.std(values, ddof=1)),
                                 "epochs_trained": epochs * len(values)})



def record_member(reporter: Reporter, member: Member, score: str,
                  diverged: Member | None = None) -> float | None:
    """Record how a trial trained on one split went, from its `Member`: its curve, then
    its scores, or that it diverged (it, or ``diverged``: another seed of it). Returns its
    score, None when it diverged."""
    reporter.record({"n_params": member.n_params, "history": member.rows,
                     "epochs_run": len(member.rows)})
    culprit = member if member.stopped == "diverged" else diverged
    if culprit is not None:
        reporter.record(diverged_record(culprit.message))
        return None
    scored = scored_row(member.rows, score)
    reporter.record(summary(scored, seconds=member.seconds))
    return float(scored["test_r2"])


def _layout(jobs: Sequence[Job], specs: Sequence[ModelSpec]) -> Layout:
    """The padded layout of a group: the one its jobs first trained in, when they say so."""
    if not any(job.layout for job in jobs):
        return Layout.of(specs)
    if any(job.layout != jobs[0].layout for job in jobs):
        raise ValueError("Jobs replayed in one population must share one layout.")
    layout = Layout.from_dict(dict(jobs[0].layout or {}), specs[0])
    if not layout.covers(specs):
        raise ConfigError(f"The stored layout {dict(jobs[0].layout or {})} cannot hold the "
                          f"trial's model {specs[0]}; was the study stored by another hpo?")
    return layout


def train_model(params: Mapping[str, Any], fold: Fold, *, seed: int = 0, device: str = "cpu",
                layout: Mapping[str, Any] | None = None, stop_after: int | None = None,
                reporter: Reporter | None = None) -> tuple[nn.Module, ModelSpec, Member]:
    """Train the params on one fold as a population of one and return the trained model,
    its spec and its `Member` (rows, how it stopped). ``layout`` and ``stop_after`` as in
    `Job`."""
    job = Job(params, seed, reporter or MemoryReporter(), layout=layout, stop_after=stop_after)
    evaluate_many([job], [fold], device=device, keep_weights=True)
    member = job.members[0][0]
    model = member.model()
    assert member.spec is not None
    return model, member.spec, member


def train_and_score(
    params: Mapping[str, Any], folds: Sequence[Fold], *, seed: int = 0, device: str = "cpu",
    score: str = "final",
) -> tuple[float, MemoryReporter]:
    """Evaluate outside any search: the score and everything it reported."""
    reporter = MemoryReporter()
    return evaluate(params, folds, reporter, seed=seed, device=device, score=score), reporter
