"""The ``median`` and ``percentile`` pruners: Optuna's, judging a trial against every trial
asked before it, the finished ones and those still running.

Optuna's ``MedianPruner`` compares a trial's best value so far with the finished trials'
values at the same epoch. One trial at a time, every trial asked before the judged one has
finished, and "finished" means "earlier". When trials train at once (a population, several
workers), the earlier ones still training are left out: the trials asked while the study
knew little are judged against even less, and nearly all run to their last epoch. The
homework studies (TPE, 100 trials, one in-process worker) trained 31 epochs per trial
that way, against 16 one at a time; counting the earlier running trials too, 15, at the
same best R² (``benchmarks/bench_trees.py --single``, figures in ``benchmarks/README.md``).

An earlier trial still running counts with the values it has reported (it is compared at
an epoch only if it reached it), and toward ``n_startup_trials``. Trials asked later are
left out, as they are one at a time, and so are pruned and failed trials, as Optuna leaves
them out. Run one at a time in one process, a study is judged exactly as by Optuna's own.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

_FINISHED_OR_RUNNING = (TrialState.COMPLETE, TrialState.RUNNING)


class EarlierTrials:
    """The study as the judged trial's pruner reads it: ``get_trials(states=(COMPLETE,))``
    also holds the running trials numbered before ``number``.

    Optuna's percentile pruner reads a study through ``get_trials`` and ``direction`` only;
    anything else is an AttributeError here, which ``tests/test_pruners.py`` would meet.
    """

    def __init__(self, study: Any, number: int) -> None:
        self._study, self._number = study, number

    @property
    def direction(self) -> StudyDirection:
        return self._study.direction

    def get_trials(self, deepcopy: bool = True,
                   states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        if states is None or TrialState.COMPLETE not in states or TrialState.RUNNING in states:
            return self._study.get_trials(deepcopy=deepcopy, states=states)
        read: Sequence[FrozenTrial] = self._study.get_trials(
            deepcopy=deepcopy, states=_FINISHED_OR_RUNNING)
        return [t for t in read if t.state in states
                or (t.state == TrialState.RUNNING and t.number < self._number)]


class MedianPruner(optuna.pruners.MedianPruner):
    """Optuna's, judging against the earlier running trials too (see the module)."""

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        return super().prune(EarlierTrials(study, trial.number), trial)  # type: ignore[arg-type]


class PercentilePruner(optuna.pruners.PercentilePruner):
    """Optuna's, judging against the earlier running trials too (see the module)."""

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        return super().prune(EarlierTrials(study, trial.number), trial)  # type: ignore[arg-type]
