"""The samplers and pruners a study can name, and how each is built.

Configured the way a course-sized study needs. ``SAMPLERS`` and ``PRUNERS`` are the names a
study accepts, written out so that a parser can offer them without loading Optuna; the
tables in ``make_sampler`` and ``make_pruner`` build each one (tests/test_study.py builds
every name, and holds each table's keys to its names).

Example:
    >>> type(make_sampler("tpe", seed=0)).__name__, type(make_pruner("median")).__name__
    ('TPESampler', 'MedianPruner')
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from optuna.pruners import BasePruner
    from optuna.samplers import BaseSampler

SAMPLERS = ("grid", "random", "tpe", "gp", "cmaes", "qmc")
# The samplers whose next point depends on the trials that ended (the others: grid, random
# and QMC points are fixed in advance).
LEARNING_SAMPLERS = frozenset({"tpe", "gp", "cmaes"})
PRUNERS = ("none", "median", "percentile", "sha", "hyperband")
# Pruners only the Ray runner offers (Ray Tune's ASHAScheduler, built in hpo.runners.asha).
RAY_PRUNERS = ("asha",)

# Pruners wait for this many finished trials, and this many epochs of each trial, before
# they judge: early epochs of every learning-rate schedule look alike.
_STARTUP_TRIALS = 5
_WARMUP_EPOCHS = 3


def make_sampler(name: str, *, seed: int, parallel: bool = False) -> BaseSampler:
    """The sampler called ``name`` (one of SAMPLERS; a Study checked it), seeded."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return sampler_table()[name](seed, parallel)


def make_pruner(name: str) -> BasePruner:
    """The pruner called ``name`` (one of PRUNERS; a Study checked it)."""
    return pruner_table()[name]()


def sampler_table() -> dict[str, Callable[[int, bool], BaseSampler]]:
    """name -> build(seed, parallel), for every name of SAMPLERS."""
    from optuna import samplers

    return {
        # A grid study queues every grid point as a trial with all its values fixed and never
        # asks the sampler (see hpo.runners.study_setup): Optuna's GridSampler re-runs
        # points when workers race for the last ones.
        "grid": lambda seed, _: samplers.RandomSampler(seed=seed),
        "random": lambda seed, _: samplers.RandomSampler(seed=seed),
        # constant_liar keeps parallel workers from all trying the same promising point.
        "tpe": lambda seed, parallel: samplers.TPESampler(
            seed=seed, multivariate=True, group=True, constant_liar=parallel),
        "gp": lambda seed, _: samplers.GPSampler(seed=seed),
        "cmaes": lambda seed, _: samplers.CmaEsSampler(
            seed=seed, warn_independent_sampling=False),
        "qmc": lambda seed, _: samplers.QMCSampler(
            seed=seed, warn_independent_sampling=False),
    }


def pruner_table() -> dict[str, Callable[[], BasePruner]]:
    """name -> build(), for every name of PRUNERS."""
    from optuna import pruners as optuna_pruners

    from hpo.study import pruners

    return {
        "none": optuna_pruners.NopPruner,
        # Optuna's, also counting the earlier trials still running (hpo.study.pruners).
        "median": lambda: pruners.MedianPruner(
            n_startup_trials=_STARTUP_TRIALS, n_warmup_steps=_WARMUP_EPOCHS),
        "percentile": lambda: pruners.PercentilePruner(
            25.0, n_startup_trials=_STARTUP_TRIALS, n_warmup_steps=_WARMUP_EPOCHS),
        "sha": lambda: optuna_pruners.SuccessiveHalvingPruner(min_resource=_WARMUP_EPOCHS),
        "hyperband": lambda: optuna_pruners.HyperbandPruner(min_resource=_WARMUP_EPOCHS),
    }
