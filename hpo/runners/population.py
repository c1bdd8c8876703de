"""Trials trained many at a time: ask Optuna for a batch, group, train each group as one
population of the engine (`hpo.train.batched`; docs/architecture.md, "One engine").

A batch of asked trials is grouped by `hpo.train.batched.group_key` (input features and
batch size); a group of two or more trains as one population, and a trial alone in its group
as a population of its own (`hpo.runners.trials.run_trial`) unless ``force`` (``--mode
population``), as every trial of a study scored over several seeds.

A population trained on one split rolls: a trial that ends (done, pruned, diverged) is told
at once, and its place goes to a newly asked trial that joins at its own epoch 1
(`hpo.train.batched.Population.admit`). A new trial that does not fit the population's
padded layout or group waits until the population drains. Every epoch each model's test R²
goes to its own trial through its own `OptunaReporter`, so pruners act per trial. A
cross-validated group trains through `hpo.train.objective.evaluate_many`, every fold at
once where they make as many batches, each trial reporting its running mean R² per fold.
Each trial records its place in its population (``cohort``), which a replay rebuilds.

Faults end trials as `hpo.runners.trials.fail_trial` ends one trial: an exception inside a
population fails its open trials with its reason and the study goes on; Ctrl-C, SIGTERM or
an orphaned worker fails them as ``interrupted`` and queues each again with its params.
``--trial-timeout`` is checked after every epoch against each trial's own time since it
started. Every trial of a running population beats its heartbeat (RDB storages) until it
ends.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from hpo.data import Fold
from hpo.runners.faults import TrialTimeout, message_of, reason_of
from hpo.runners.trials import (
    OptunaReporter,
    call_space,
    fail_trial,
    retry_with_same_params,
    run_trial,
    this_worker,
)
from hpo.store.batching import batched_writes
from hpo.store.optuna_internals import PruningView, heartbeat, tell
from hpo.study.config import Study
from hpo.train._stacked import Layout
from hpo.train.batched import (
    Member,
    Population,
    group_key,
    train_population,
)
from hpo.train.models import model_spec
from hpo.train.objective import REPORTED, Job, evaluate_many, record_member
from hpo.train.rules import cohort_record, started_record, trial_seed

Refill = Callable[[int, int], "list[optuna.Trial]"]
"""``refill(running, ended)``: the trials a rolling population may take in now (already
asked), given how many of its models are training and how many of the batch's trials have
ended; ``[]`` when none."""


def run_batch(study: Study, optuna_study: optuna.Study, trials: Sequence[optuna.Trial],
              folds: list[Fold], device: str, *, force: bool = False,
              keep_going: Callable[[], bool] = lambda: True, timeout: float | None = None,
              log: Path | None = None, refill: Refill | None = None) -> list[tuple[str, str]]:
    """Run ``trials`` (already asked): groups of two or more together, the rest alone.

    With ``refill``, a population trained on one split rolls: after every epoch it asks
    ``refill`` for trials to take the places of the ones that ended, and trains each new
    one that fits it (`hpo.train.batched.Population.fits`) from its own epoch 1. Without
    it a population trains only its batch, and its wall time is that of its longest
    trial, while pruned trials leave the batch emptier every epoch. A new trial that does
    not fit waits, and the population takes in no more: the trials that waited run once
    it has drained, as the next batch.

    Returns how the trials ended, as ``(ended, error message)`` for the runner's
    `RepeatGuard`: ``complete``, ``pruned`` or a failure reason of `hpo.runners.faults`, one
    per trial, except that a fault that failed a whole population counts once (it is one
    fault, not one per model).
    ``keep_going`` is asked every epoch: when it turns False (the worker was orphaned) the
    population stops and its open trials are failed as ``interrupted``.
    Records reach the storage batched (`hpo.store.batching`): an epoch's, one write.
    """
    with batched_writes(optuna_study) as flush:
        return _run_batch(study, optuna_study, trials, folds, device, force, keep_going,
                          timeout, log, flush, refill)


def _run_batch(study: Study, optuna_study: optuna.Study, trials: Sequence[optuna.Trial],
               folds: list[Fold], device: str, force: bool, keep_going: Callable[[], bool],
               timeout: float | None, log: Path | None, flush: Callable[[], None],
               refill: Refill | None) -> list[tuple[str, str]]:
    context = _Context(study, optuna_study, folds, device, keep_going, timeout, log)
    context.flush, context.refill = flush, refill
    waiting = [entry for entry in map(context.new_entry, trials) if entry is not None]
    try:
        while waiting:  # the trials that did not fit a rolling population run next
            groups: dict[tuple[Any, ...], list[_Entry]] = {}
            for entry in waiting:
                groups.setdefault(group_key(entry.params, context.in_features),
                                  []).append(entry)
            context.waiting = []
            for group in groups.values():
                _run_one_group(context, group, force)
            waiting = context.waiting
    except BaseException as error:  # Ctrl-C (or a bug): the batch's other trials are not
        if reason_of(error) == "interrupted":  # left RUNNING, and interrupted ones run again
            _interrupt(context, context.entries, error)
        for entry in context.entries:
            _fail(context, entry, error)
        raise
    return [(entry.ended, str(entry.trial.user_attrs.get("error", "")))
            for entry in context.entries if not entry.shared_fault]


class _Context:
    """What every group of one batch shares."""

    def __init__(self, study: Study, optuna_study: optuna.Study, folds: list[Fold], device: str,
                 keep_going: Callable[[], bool], timeout: float | None,
                 log: Path | None) -> None:
        self.study, self.optuna_study, self.folds, self.device = study, optuna_study, folds, device
        self.keep_going, self.timeout, self.log = keep_going, timeout, log
        self.flush: Callable[[], None] = lambda: None  # the batched records' (every epoch)
        self.viewable = PruningView.applies(optuna_study)  # judged on one read an epoch
        self.in_features = folds[0].train.x.shape[1]
        self.refill: Refill | None = None
        self.entries: list[_Entry] = []  # every trial of the batch, rolled in ones too
        self.waiting: list[_Entry] = []  # asked, but did not fit their population

    def new_entry(self, trial: optuna.Trial) -> _Entry | None:
        """A trial of the batch with its params; None when its space failed it (as in
        run_trial: a mistake in the space fails this trial alone, the RepeatGuard judges)."""
        entry = _Entry(self.optuna_study, trial)
        self.entries.append(entry)
        # As run_trial records them, before anything can fail (the worker: when asked).
        entry.reporter.record({"source": "search", "runner": "optuna"})
        try:
            entry.params = call_space(self.study, trial)
        except Exception as error:
            _fail(self, entry, error)
            return None
        return entry

    def ended(self) -> int:
        """How many of the batch's trials have ended."""
        return sum(not entry.open for entry in self.entries)


def batchable(study: Study, group: Sequence[Mapping[str, Any]], force: bool) -> bool:
    """Whether a group of params (one group key) trains as one population."""
    # A study scored over several seeds trains each trial's seeds as its population.
    return study.seeds == 1 and (force or len(group) > 1)


def _run_one_group(context: _Context, group: list[_Entry], force: bool) -> None:
    if not batchable(context.study, [e.params for e in group], force):
        for entry in group:
            if not context.keep_going():  # orphaned: the trials not yet run run again later
                _interrupt(context, group)
                return
            entry.open = False  # run_trial tells the storage how it ended
            with heartbeat(context.optuna_study, entry.trial):
                entry.ended = run_trial(context.study, context.optuna_study, entry.trial,
                                        context.folds, context.device,
                                        timeout=context.timeout, log=context.log)
    elif context.keep_going():
        _run_group(context, group)
    else:
        _interrupt(context, group)


class _Orphaned(Exception):
    """The worker's parent died: end the population where it is (the worker then stops)."""


class _Entry:
    """One asked trial of a batch: its reporter, params and fate."""

    def __init__(self, optuna_study: optuna.Study, trial: optuna.Trial) -> None:
        self.optuna_study, self.trial = optuna_study, trial
        self.reporter = OptunaReporter(trial)
        self.params: dict[str, Any] = {}
        self.open = True  # not yet told
        self.deadline = math.inf  # --trial-timeout, from when it started training
        self.ended = "interrupted"  # until told otherwise
        self.shared_fault = False  # failed by a fault its population's first trial counts
        self._beating = contextlib.ExitStack()

    def beat(self, stack: contextlib.ExitStack) -> None:
        """Beat the trial's heartbeat (RDB storages) until `stop_beating`, or ``stack``
        closes: a rolling population outlives most of its trials."""
        self._beating.enter_context(heartbeat(self.optuna_study, self.trial))
        stack.callback(self._beating.close)

    def stop_beating(self) -> None:
        self._beating.close()

    def tell(self, value: float | None = None, state: TrialState | None = None,
             ended: str = "complete") -> None:
        """Tell how the trial ended (``ended``: as run_trial returns it) unless already told."""
        if self.open:
            tell(self.optuna_study, self.trial, value, state=state)
            self.open = False
            self.ended = ended


def _fail(context: _Context, entry: _Entry, error: BaseException) -> None:
    """End an open trial as the one-at-a-time path ends one that raised ``error``."""
    if entry.open:
        entry.open = False
        entry.ended = fail_trial(context.optuna_study, entry.trial, entry.reporter, error,
                                 context.log)


def _interrupt(context: _Context, entries: Sequence[_Entry],
               error: BaseException | None = None) -> None:
    """Fail the open ``entries`` as interrupted and queue each again with its params, as
    `fail_trial` does one trial at a time."""
    interrupted = [entry for entry in entries if entry.open]
    if not interrupted:
        return
    message = message_of(error if error is not None else KeyboardInterrupt())
    for entry in interrupted:
        entry.reporter.record({"ended": "interrupted", "error": message})
        context.optuna_study.tell(entry.trial, state=TrialState.FAIL)
        entry.open, entry.ended = False, "interrupted"
    retry_with_same_params(context.optuna_study, [entry.trial.number for entry in interrupted])


def _run_group(context: _Context, group: list[_Entry]) -> None:
    try:
        with contextlib.ExitStack() as beats:
            for entry in group:
                entry.beat(beats)
            _start(context, group, len(group), cohort=_cohort(group, len(context.folds)))

            def check() -> None:  # after every epoch
                if not context.keep_going():
                    raise _Orphaned

            if len(context.folds) == 1:
                _train_split(context, group, context.folds[0], check, beats)
            else:
                _train_folds(context, group, check)
    except _Orphaned:  # failed as interrupted: queued again with the same params
        _interrupt(context, group)
    except Exception as error:  # a fault fails this population's open trials, as one trial
        failed = [entry for entry in group if entry.open]
        for entry in failed:
            _fail(context, entry, error)
            entry.shared_fault = entry is not failed[0]
    # KeyboardInterrupt and SystemExit go on to run_batch, which fails the whole batch.


def _start(context: _Context, entries: Sequence[_Entry], population: int,
           layout: Layout | None = None, cohort: dict[str, Any] | None = None) -> None:
    """Record what evaluate records first, then the population's size (a rolling
    population's, when the trial joined it) and the trial's place in its cohort
    (`hpo.train.rules.cohort_record`); the trials' time limits start."""
    deadline = time.monotonic() + (context.timeout or math.inf)
    if layout is None:
        layout = Layout.of([model_spec(e.params, context.in_features) for e in entries])
    for i, entry in enumerate(entries):
        entry.reporter.record(started_record(entry.params, device=context.device,
                                             seed=_seeds(context.study, [entry])[0],
                                             layout=layout.to_dict()))
        entry.reporter.record({"population": population})
        if cohort is not None:
            entry.reporter.record(cohort_record(**{**cohort, "index": cohort["index"] + i}))
        entry.deadline = deadline


def _cohort(group: Sequence[_Entry], folds: int, index: int = 0, joined: int = 0
            ) -> dict[str, Any]:
    """Where a group's trials stand in the population they train in: a rolling one on one
    split, or a group cross-validated at once."""
    return {"name": f"{this_worker()}:{group[0].trial.number}", "index": index,
            "joined": joined, "rolling": folds == 1}


def _train_split(context: _Context, group: list[_Entry], fold: Fold,
                 check: Callable[[], None], beats: contextlib.ExitStack) -> None:
    """Train ``group`` as one population on ``fold``; it rolls (`run_batch`) with a refill.
    ``group[i]`` is member ``i``: the trials rolled in are appended to it."""
    def report(_epoch: int, rows: Mapping[int, dict[str, float]]) -> set[int]:
        stopped = set()
        for index, row in rows.items():  # every model's epoch first: one write for all
            group[index].reporter.submit(int(row["epoch"]),
                                         {k: float(row[k]) for k in REPORTED})
        view = PruningView(context.optuna_study) if context.viewable else None  # one read
        for index, row in rows.items():
            try:
                group[index].reporter.judge(int(row["epoch"]), view)
            except optuna.TrialPruned:
                group[index].tell(state=TrialState.PRUNED, ended="pruned")
                stopped.add(index)
        stopped |= _time_out(context, group, (i for i in rows if i not in stopped))
        context.flush()
        check()
        return stopped

    training = set(range(len(group)))

    def after_epoch(population: Population) -> None:
        alive = set(population.alive)
        for index in training - alive:  # done (or diverged) this epoch: told at once, so
            if group[index].open:  # the sampler and the pruner learn from it now
                _finish(context.study, group[index], population.members[index])
            group[index].stop_beating()
        training.intersection_update(alive)
        if context.refill is not None and not context.waiting:
            for index in _roll_in(context, population, group, beats):
                training.add(index)

    # after_epoch runs after the last epoch too: every trial is told there as it leaves.
    train_population([e.params for e in group], fold, _seeds(context.study, group),
                     device=context.device, callback=report, after_epoch=after_epoch)


def _roll_in(context: _Context, population: Population, group: list[_Entry],
             beats: contextlib.ExitStack) -> list[int]:
    """Take the trials the refill gives into ``population``; returns their member indices.
    The first that does not fit waits (`_Context.waiting`) and ends the rolling."""
    assert context.refill is not None
    joining: list[_Entry] = []
    for trial in context.refill(len(population.alive), context.ended()):
        entry = context.new_entry(trial)
        if entry is None:
            continue
        if context.waiting or not population.fits(entry.params):
            context.waiting.append(entry)
        else:
            joining.append(entry)
    if not joining:
        return []
    for entry in joining:
        entry.beat(beats)
    added = population.admit([e.params for e in joining], _seeds(context.study, joining))
    group.extend(joining)  # group[i] stays member i
    _start(context, joining, len(population.alive), population.layout,
           _cohort(group, 1, index=added[0], joined=population.epochs_done))
    return added


def _time_out(context: _Context, group: Sequence[_Entry], indices: Iterable[int]) -> set[int]:
    """Fail the trials at ``indices`` of ``group`` that ran past --trial-timeout; returns
    their indices. Trials that time out in the same epoch count as one fault, as one fault
    that fails a whole population does (the first trials of a population start together)."""
    now, late = time.monotonic(), set[int]()
    for index in indices:
        entry = group[index]
        if entry.open and now > entry.deadline:
            _fail(context, entry, TrialTimeout.past(context.timeout or 0.0))
            entry.shared_fault = bool(late)
            late.add(index)
    return late


def _finish(study: Study, entry: _Entry, member: Member) -> None:
    value = record_member(entry.reporter, member, study.score)
    if value is None:
        entry.tell(state=TrialState.FAIL, ended="diverged")
    else:
        entry.tell(value)


def _train_folds(context: _Context, group: list[_Entry], check_orphan: Callable[[], None]
                 ) -> None:
    """The group's trials cross-validated by the engine (`hpo.train.objective.evaluate_many`:
    every fold at once where they make as many batches, reported fold after fold), each
    pruned alone; every fold in the layout the trials record, however many are left."""
    def check() -> None:  # after every epoch: its trials started together, so one limit
        check_orphan()
        if time.monotonic() > group[0].deadline:
            raise TrialTimeout.past(context.timeout or 0.0)

    jobs = [Job(entry.params, _seeds(context.study, [entry])[0], entry.reporter) for entry in group]
    evaluate_many(jobs, context.folds, device=context.device, score=context.study.score,
                  stops=(optuna.TrialPruned,), check=check,
                  layout=Layout.of([model_spec(e.params, context.in_features) for e in group]))
    for entry, job in zip(group, jobs, strict=True):
        if job.stopped:
            entry.tell(state=TrialState.PRUNED, ended="pruned")
        elif job.value is None:
            entry.tell(state=TrialState.FAIL, ended="diverged")
        else:
            entry.tell(job.value)


def _seeds(study: Study, group: Sequence[_Entry]) -> list[int]:
    return [trial_seed(study.seed, entry.trial.number) for entry in group]

