"""The network: how many hidden layers, how wide, which activation, batch norm, dropout.

``hidden_layers=0`` is linear regression; the other knobs then do not apply, are not
suggested, and come back as None. The layer each activation name builds is in
:data:`search_spaces.build.ACTIVATIONS` (also importable from here), which needs no Optuna.
"""

from __future__ import annotations

from typing import Any

from optuna.trial import BaseTrial

from search_spaces._domains import ints, one_of, reals
from search_spaces._spec import Choice, Float, Int, Spec, check_specs, suggest
from search_spaces.build import ACTIVATIONS

__all__ = ["ACTIVATIONS", "suggest_architecture"]

_HIDDEN_LAYERS = Int(1, 4)
_WIDTH = Int(4, 256, log=True)  # log: 8 -> 16 matters as much as 128 -> 256
_ACTIVATION = Choice(list(ACTIVATIONS))
_BATCH_NORM = Choice([False, True])
_DROPOUT = Float(0.0, 0.5)

_DOMAINS = {
    "hidden_layers": ints(0),
    "width": ints(1),
    "activation": one_of(tuple(ACTIVATIONS)),
    "batch_norm": one_of((False, True)),
    "dropout": reals(0.0, 1.0, high_open=True),
}


def suggest_architecture(
    trial: BaseTrial,
    *,
    hidden_layers: Spec = _HIDDEN_LAYERS,
    width: Spec = _WIDTH,
    activation: Spec = _ACTIVATION,
    batch_norm: Spec = _BATCH_NORM,
    dropout: Spec = _DROPOUT,
) -> dict[str, Any]:
    """Suggest an MLP: ``hidden_layers``, ``width``, ``activation``, ``batch_norm``, ``dropout``.

    Each keyword takes a spec (Float, Int, Choice) or a fixed value.

    >>> import optuna
    >>> trial = optuna.trial.FixedTrial({"width": 20})
    >>> suggest_architecture(trial, hidden_layers=2, activation="tanh", batch_norm=False,
    ...                      dropout=0.0)
    {'hidden_layers': 2, 'width': 20, 'activation': 'tanh', 'batch_norm': False, 'dropout': 0.0}
    >>> suggest_architecture(trial, hidden_layers=0)["width"] is None  # linear regression
    True
    """
    knobs = {"width": width, "activation": activation, "batch_norm": batch_norm, "dropout": dropout}
    check_specs({"hidden_layers": hidden_layers, **knobs}, _DOMAINS)
    layers = suggest(trial, "hidden_layers", hidden_layers)
    if layers == 0:
        return {"hidden_layers": 0, **dict.fromkeys(knobs)}
    return {"hidden_layers": layers, **{k: suggest(trial, k, s) for k, s in knobs.items()}}
