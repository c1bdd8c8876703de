"""Optuna samplers and pruners by name, configured the way a course-sized study needs."""

from __future__ import annotations

import warnings

import optuna
from optuna.pruners import BasePruner
from optuna.samplers import BaseSampler

# Pruners wait for this many finished trials, and this many epochs of each trial, before
# they judge: early epochs of every learning-rate schedule look alike.
_STARTUP_TRIALS = 5
_WARMUP_EPOCHS = 3


def make_sampler(name: str, *, seed: int, parallel: bool = False) -> BaseSampler:
    """The sampler called ``name`` (see hpo.study.config.SAMPLERS), seeded.

    A grid study queues every grid point as a trial with all its values fixed and never
    asks the sampler (see hpo.runners.optuna_runner), so it gets a plain RandomSampler here:
    Optuna's GridSampler re-runs points when workers race for the last ones.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name in ("grid", "random"):
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "tpe":
            # constant_liar keeps parallel workers from all trying the same promising point.
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True,
                                              constant_liar=parallel)
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed)
        if name == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        if name == "qmc":
            return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
    raise ValueError(f"Unknown sampler {name!r}.")  # Study validated the name already


def make_pruner(name: str) -> BasePruner:
    """The pruner called ``name`` (see hpo.study.config.PRUNERS)."""
    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=_STARTUP_TRIALS,
                                           n_warmup_steps=_WARMUP_EPOCHS)
    if name == "percentile":
        return optuna.pruners.PercentilePruner(25.0, n_startup_trials=_STARTUP_TRIALS,
                                               n_warmup_steps=_WARMUP_EPOCHS)
    if name == "sha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=_WARMUP_EPOCHS)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=_WARMUP_EPOCHS)
    raise ValueError(f"Unknown pruner {name!r}.")  # Study validated the name already
