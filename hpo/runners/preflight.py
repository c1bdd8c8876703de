"""What is checked before any worker starts or any study is created.

A mistake every trial would hit (unreadable data, a space that raises, params the
objective cannot use) is found here, once, as one ConfigError or DataError; the storage
is not touched, so a refused run leaves it exactly as it was.

Example:
    >>> folds = preflight(study)      # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import optuna

from hpo.data import Fold, prepare_folds
from hpo.errors import ConfigError, HPOError
from hpo.runners.faults import message_of
from hpo.runners.trials import call_space
from hpo.study.config import Study
from hpo.train.models import build_model, model_spec
from hpo.train.no_dynamo import optimizers_built_without_dynamo
from hpo.train.objective import check_params
from search_spaces import build_optimizer, build_scheduler
from search_spaces.values import is_int, is_number

# The params the objective reads as numbers, with what each must be.
_INTEGERS = {"hidden_layers": 0, "epochs": 1}  # name: smallest value
_POSITIVE = ("lr",)


def preflight(study: Study) -> list[Fold]:
    """Load the data once and try the space on one trial; returns the folds.

    Raises:
        DataError: the data cannot be loaded or is unfit for training.
        ConfigError: the space raises, or returns params the objective cannot use.
    """
    folds = prepare_folds(study.data, test_size=study.test_size, cv_folds=study.cv_folds,
                          standardize=study.standardize, seed=study.seed)
    params = sample_params(study)
    check_usable(study, params, in_features=folds[0].train.x.shape[1])
    return folds


def sample_params(study: Study) -> dict[str, Any]:
    """One call of the space on a throwaway in-memory trial (a grid's first point)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    scratch = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=study.seed))
    if study.sampler == "grid" and study.grid_points:
        scratch.enqueue_trial(study.grid_points[0])
    try:
        return call_space(study, scratch.ask())
    except HPOError:
        raise
    except (Exception, SystemExit) as error:  # a space that calls sys.exit is a mistake too
        raise ConfigError(
            f"The search space of study {study.name!r}{_where(study)} raised "
            f"{message_of(error)}; it must return a dict of params for any trial."
        ) from None


def check_usable(study: Study, params: Mapping[str, Any], in_features: int) -> None:
    """Refuse params the objective cannot train with, naming the param and what it expects."""
    check_params(params)
    _check_numbers(study, params)
    try:  # builds without training: cheap, and catches every unknown name or bad value
        model = build_model(model_spec(params, in_features))
        with optimizers_built_without_dynamo():  # it never steps: no need to import it here
            optimizer = build_optimizer(params, model.parameters())
        build_scheduler(optimizer, params, epochs=int(params["epochs"]))
    except HPOError:
        raise
    except (ValueError, TypeError, KeyError) as error:
        raise ConfigError(
            f"The search space of study {study.name!r}{_where(study)} returned params the "
            f"objective cannot use: {message_of(error)}."
        ) from None


def _check_numbers(study: Study, params: Mapping[str, Any]) -> None:
    for key, low in _INTEGERS.items():
        value = params[key]
        _expect(study, key, value, f"an integer >= {low}",
                is_int(value) and value >= low)
    for key in _POSITIVE:
        value = params[key]
        _expect(study, key, value, "a positive number",
                is_number(value) and value > 0)
    size = params["batch_size"]
    _expect(study, "batch_size", size, 'a positive integer or "full"',
            size == "full" or (is_int(size)
                               and size >= 1))


def _expect(study: Study, key: str, value: object, expected: str, ok: bool) -> None:
    if not ok:
        raise ConfigError(
            f"The search space of study {study.name!r}{_where(study)} returned "
            f"{key}={value!r}, but the objective expects {expected}."
        )


def _where(study: Study) -> str:
    return f" (in {study.source[0]})" if study.source else ""
