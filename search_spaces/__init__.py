"""What may vary in a trial: plain Optuna define-by-run functions of a trial.

Each ``suggest_*`` function takes a trial and, per parameter, a spec (:func:`Float`,
:func:`Int`, :func:`Choice`) or a fixed value, and returns its share of the flat params
dict (see docs/architecture.md). A fixed value is returned as is and never suggested, so
``trial.params`` holds only what is searched. A study composes its space from them:

>>> import optuna
>>> from search_spaces import (suggest_architecture, suggest_optimizer, suggest_scheduler,
...                            suggest_training)
>>> def space(trial):
...     return {
...         **suggest_architecture(trial, hidden_layers=2, width=20, activation="tanh",
...                                batch_norm=False, dropout=0.0),
...         **suggest_optimizer(trial, optimizer="adam", weight_decay=0.0),
...         **suggest_training(trial, batch_size=64, epochs=50),
...         **suggest_scheduler(trial, families="cosine"),
...     }
>>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
>>> trial = study.ask()
>>> params = space(trial)
>>> sorted(trial.params)  # only the schedule is searched here
['cosine_floor_fraction', 'lr']
>>> params["activation"], params["optimizer"], params["scheduler"], params["epochs"]
('tanh', 'adam', 'cosine', 50)

The objective then builds what the params describe, with torch alone
(:mod:`search_spaces.build`, which the training core imports without loading Optuna):

>>> import torch
>>> from search_spaces import build_optimizer, build_scheduler
>>> model = torch.nn.Linear(1, 1)
>>> optimizer = build_optimizer(params, model.parameters())
>>> scheduler = build_scheduler(optimizer, params, epochs=params["epochs"])
>>> type(optimizer).__name__, type(scheduler).__name__
('Adam', 'CosineAnnealingLR')

Every name here is loaded on first use (PEP 562), from the module that defines it, so that
``from search_spaces import build_optimizer`` or ``search_spaces.values`` loads no Optuna.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from search_spaces._lazy import lazy_names
from search_spaces.errors import SpaceError

if TYPE_CHECKING:
    from search_spaces._spec import Choice, Float, Int, suggest
    from search_spaces.architecture import suggest_architecture
    from search_spaces.build import (
        ACTIVATIONS,
        FAMILIES,
        OPTIMIZERS,
        build_optimizer,
        build_scheduler,
        family_keys,
        lr_curve,
    )
    from search_spaces.optimizers import suggest_optimizer
    from search_spaces.schedulers import (
        suggest_constant,
        suggest_cosine,
        suggest_cosine_restarts,
        suggest_exponential,
        suggest_multistep,
        suggest_onecycle,
        suggest_plateau,
        suggest_scheduler,
        suggest_step,
        suggest_warmup_cosine,
    )
    from search_spaces.training import suggest_training

# Public name -> the module that defines it. The builders' module imports torch only.
_LAZY = {
    **dict.fromkeys(["Choice", "Float", "Int", "suggest"], "search_spaces._spec"),
    **dict.fromkeys(["ACTIVATIONS", "FAMILIES", "OPTIMIZERS", "build_optimizer",
                     "build_scheduler", "family_keys", "lr_curve"], "search_spaces.build"),
    "suggest_architecture": "search_spaces.architecture",
    "suggest_optimizer": "search_spaces.optimizers",
    **dict.fromkeys(["suggest_constant", "suggest_cosine", "suggest_cosine_restarts",
                     "suggest_exponential", "suggest_multistep", "suggest_onecycle",
                     "suggest_plateau", "suggest_scheduler", "suggest_step",
                     "suggest_warmup_cosine"], "search_spaces.schedulers"),
    "suggest_training": "search_spaces.training",
}

__all__ = [
    "ACTIVATIONS",
    "FAMILIES",
    "OPTIMIZERS",
    "Choice",
    "Float",
    "Int",
    "SpaceError",
    "build_optimizer",
    "build_scheduler",
    "family_keys",
    "lr_curve",
    "suggest",
    "suggest_architecture",
    "suggest_constant",
    "suggest_cosine",
    "suggest_cosine_restarts",
    "suggest_exponential",
    "suggest_multistep",
    "suggest_onecycle",
    "suggest_optimizer",
    "suggest_plateau",
    "suggest_scheduler",
    "suggest_step",
    "suggest_training",
    "suggest_warmup_cosine",
]


__getattr__, __dir__ = lazy_names("search_spaces", _LAZY, globals())
