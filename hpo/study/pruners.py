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
them out. Run one at a time in one process, a study is judged exactly as by Optuna's own
(``tests/test_pruners.py`` compares the decisions).

The rule is Optuna's ``PercentilePruner.prune`` (optuna/pruners/_percentile.py), check for
check, written out here over one pass of the study's trials, with the percentile computed
as ``numpy.nanpercentile`` computes it (its default linear method, the same floating-point
operations; a test compares the two on random values). A population judges every model
every epoch, and Optuna's calls (a filtered copy of the trials, then ``nanpercentile`` on a
short list) cost four times as much: ``benchmarks/bench_tax.py --split``, ``pruner``
column, 0.08 s against 0.02 s per 100 homework trials of one worker (2026-12-04).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

_COMPLETE, _RUNNING = TrialState.COMPLETE, TrialState.RUNNING  # read once per trial judged


@dataclass(frozen=True)
class _Rule:
    """What a percentile pruner is configured with (its constructor's arguments)."""

    percentile: float
    n_startup_trials: int
    n_warmup_steps: int
    interval_steps: int
    n_min_trials: int

    def prune(self, study: Any, trial: FrozenTrial) -> bool:
        """Whether ``trial`` falls in the bottom ``percentile`` of the finished trials and
        the running ones numbered before it, at its last step. ``study``: anything with
        Optuna's ``get_trials`` and ``direction`` (a study, or ``PruningView``)."""
        step = trial.last_step
        if step is None or step < self.n_warmup_steps:
            return False
        if not self._first_in_interval(step, trial.intermediate_values):
            return False
        counted, at_step, number = 0, [], trial.number
        for other in study.get_trials(deepcopy=False, states=None):
            state = other.state
            if state == _COMPLETE or (state == _RUNNING and other.number < number):
                counted += 1
                value = other.intermediate_values.get(step)
                if value is not None:
                    at_step.append(value)
        if counted == 0 or counted < self.n_startup_trials:
            return False
        maximize = study.direction == StudyDirection.MAXIMIZE
        best = _best(trial.intermediate_values.values(), maximize)
        if math.isnan(best):
            return True
        if len(at_step) < self.n_min_trials:  # NaN values count here, as in Optuna's
            return False
        cut = percentile([v for v in at_step if not math.isnan(v)],
                         100 - self.percentile if maximize else self.percentile)
        if math.isnan(cut):
            return False
        return best < cut if maximize else best > cut

    def _first_in_interval(self, step: int, reported: Iterable[int]) -> bool:
        """Whether ``step`` is the first reported step of its pruning interval."""
        nearest = ((step - self.n_warmup_steps) // self.interval_steps * self.interval_steps
                   + self.n_warmup_steps)
        second_last = max((s for s in reported if s != step), default=-1)
        return second_last < nearest


def _best(values: Iterable[float], maximize: bool) -> float:
    """The best of a trial's reported values, NaN ignored (NaN if all are)."""
    real = [v for v in values if not math.isnan(v)]
    if not real:
        return math.nan
    return max(real) if maximize else min(real)


def percentile(values: list[float], q: float) -> float:
    """``numpy.percentile(values, q)`` (linear interpolation) with the same floating-point
    operations, so the same value (a zero's sign aside: numpy's partition and ``sorted``
    may order +0.0 and -0.0, which compare equal, differently); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * (q / 100)
    below = min(max(math.floor(position), 0), len(ordered) - 1)
    above = min(below + 1, len(ordered) - 1)
    gamma = position - below
    low, high = ordered[below], ordered[above]
    difference = high - low
    # numpy's _lerp: from the nearer end, so that gamma 1 gives ``high`` exactly.
    return high - difference * (1 - gamma) if gamma >= 0.5 else low + difference * gamma


class MedianPruner(optuna.pruners.MedianPruner):
    """Optuna's, judging against the earlier running trials too (see the module)."""

    def __init__(self, n_startup_trials: int = 5, n_warmup_steps: int = 0,
                 interval_steps: int = 1, *, n_min_trials: int = 1) -> None:
        super().__init__(n_startup_trials, n_warmup_steps, interval_steps,
                         n_min_trials=n_min_trials)  # Optuna's checks of the arguments
        self._rule = _Rule(50.0, n_startup_trials, n_warmup_steps, interval_steps,
                           n_min_trials)

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        return self._rule.prune(study, trial)


class PercentilePruner(optuna.pruners.PercentilePruner):
    """Optuna's, judging against the earlier running trials too (see the module)."""

    def __init__(self, percentile: float, n_startup_trials: int = 5, n_warmup_steps: int = 0,
                 interval_steps: int = 1, *, n_min_trials: int = 1) -> None:
        super().__init__(percentile, n_startup_trials, n_warmup_steps, interval_steps,
                         n_min_trials=n_min_trials)
        self._rule = _Rule(percentile, n_startup_trials, n_warmup_steps, interval_steps,
                           n_min_trials)

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        return self._rule.prune(study, trial)
