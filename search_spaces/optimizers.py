"""The optimizer: which one, its weight decay and, where it applies, momentum and Nesterov.

The learning rate is not here: every schedule family suggests ``lr``, because what a good
initial lr is depends on the schedule (for one-cycle it is the peak). The optimizer these
params describe is built by :func:`search_spaces.build.build_optimizer` (also importable
from here), which needs no Optuna.
"""

from __future__ import annotations

from typing import Any

from optuna.trial import BaseTrial

from search_spaces._spec import Choice, Float, Spec, check_specs, suggest
from search_spaces.build import (
    OPTIMIZER_DOMAINS,
    OPTIMIZERS,
    WITH_MOMENTUM,
    WITH_NESTEROV,
    build_optimizer,
)

__all__ = ["OPTIMIZERS", "build_optimizer", "suggest_optimizer"]

_OPTIMIZER = Choice(list(OPTIMIZERS))
_WEIGHT_DECAY = Float(1e-6, 1e-2, log=True)  # fix it at 0.0 for none: a log range cannot hold 0
_MOMENTUM = Float(0.0, 0.99)
_NESTEROV = Choice([False, True])


def suggest_optimizer(
    trial: BaseTrial,
    *,
    optimizer: Spec = _OPTIMIZER,
    weight_decay: Spec = _WEIGHT_DECAY,
    momentum: Spec = _MOMENTUM,
    nesterov: Spec = _NESTEROV,
) -> dict[str, Any]:
    """Suggest keys ``optimizer``, ``weight_decay``, ``momentum`` and ``nesterov``.

    ``momentum`` applies to sgd and rmsprop, ``nesterov`` to sgd with momentum > 0 (torch
    refuses it without); a knob that does not apply is not suggested and comes back None.

    >>> import optuna
    >>> suggest_optimizer(optuna.trial.FixedTrial({}), optimizer="adam", weight_decay=0.0)
    {'optimizer': 'adam', 'weight_decay': 0.0, 'momentum': None, 'nesterov': None}
    """
    specs = {"optimizer": optimizer, "weight_decay": weight_decay}
    check_specs({**specs, "momentum": momentum, "nesterov": nesterov}, OPTIMIZER_DOMAINS)
    params = {name: suggest(trial, name, spec) for name, spec in specs.items()}
    uses_momentum = params["optimizer"] in WITH_MOMENTUM
    params["momentum"] = suggest(trial, "momentum", momentum) if uses_momentum else None
    uses_nesterov = params["optimizer"] in WITH_NESTEROV and params["momentum"] > 0
    params["nesterov"] = suggest(trial, "nesterov", nesterov) if uses_nesterov else None
    return params
