"""The samplers and pruners a study can name, and how each is built: one table each.

Configured the way a course-sized study needs. ``SAMPLERS`` and ``PRUNERS`` (the names a
study accepts) are the tables' keys, so a name cannot be accepted without being built.

Example:
    >>> type(make_sampler("tpe", seed=0)).__name__, type(make_pruner("median")).__name__
    ('TPESampler', 'MedianPruner')
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import optuna
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler

from hpo.study import pruners

# Pruners wait for this many finished trials, and this many epochs of each trial, before
# they judge: early epochs of every learning-rate schedule look alike.
_STARTUP_TRIALS = 5
_WARMUP_EPOCHS = 3

# name -> build(seed, parallel)
_SAMPLERS: dict[str, Callable[[int, bool], BaseSampler]] = {
    # A grid study queues every grid point as a trial with all its values fixed and never
    # asks the sampler (hpo.runners.study_setup): Optuna's GridSampler re-runs points when
    # workers race for the last ones.
    "grid": lambda seed, _: optuna.samplers.RandomSampler(seed=seed),
    "random": lambda seed, _: optuna.samplers.RandomSampler(seed=seed),
    # constant_liar keeps parallel workers from all trying the same promising point.
    "tpe": lambda seed, parallel: optuna.samplers.TPESampler(
        seed=seed, multivariate=True, group=True, constant_liar=parallel),
    "gp": lambda seed, _: optuna.samplers.GPSampler(seed=seed),
    "cmaes": lambda seed, _: optuna.samplers.CmaEsSampler(
        seed=seed, warn_independent_sampling=False),
    "qmc": lambda seed, _: optuna.samplers.QMCSampler(
        seed=seed, warn_independent_sampling=False),
}

_PRUNERS: dict[str, Callable[[], BasePruner]] = {
    "none": optuna.pruners.NopPruner,
    # Optuna's, also counting the earlier trials still running (hpo.study.pruners).
    "median": lambda: pruners.MedianPruner(
        n_startup_trials=_STARTUP_TRIALS, n_warmup_steps=_WARMUP_EPOCHS),
    "percentile": lambda: pruners.PercentilePruner(
        25.0, n_startup_trials=_STARTUP_TRIALS, n_warmup_steps=_WARMUP_EPOCHS),
    "sha": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=_WARMUP_EPOCHS),
    "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=_WARMUP_EPOCHS),
}

SAMPLERS = tuple(_SAMPLERS)
# The samplers whose next point depends on the trials that ended (the others: grid, random
# and QMC points are fixed in advance).
LEARNING_SAMPLERS = frozenset({"tpe", "gp", "cmaes"})
PRUNERS = tuple(_PRUNERS)
# Pruners only the Ray runner offers (Ray Tune's ASHAScheduler, built in hpo.runners.asha).
RAY_PRUNERS = ("asha",)


def make_sampler(name: str, *, seed: int, parallel: bool = False) -> BaseSampler:
    """The sampler called ``name`` (one of SAMPLERS; a Study checked it), seeded."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _SAMPLERS[name](seed, parallel)


def make_pruner(name: str) -> BasePruner:
    """The pruner called ``name`` (one of PRUNERS; a Study checked it)."""
    return _PRUNERS[name]()
