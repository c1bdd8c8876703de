"""The loop: batch size (or the whole training set at once) and the number of epochs."""

from __future__ import annotations

from typing import Any

from optuna.trial import BaseTrial

from search_spaces._domains import Domain, ints
from search_spaces._spec import Choice, Int, Spec, check_specs, suggest
from search_spaces.values import is_int

_BATCH_SIZE = Choice([16, 32, 64, 128, "full"])  # "full": one batch of the whole train set
_EPOCHS = Int(10, 100)

_DOMAINS = {
    "batch_size": Domain(lambda v: v == "full" or (is_int(v) and v >= 1), 'an int >= 1 or "full"'),
    "epochs": ints(1),
}


def suggest_training(
    trial: BaseTrial, *, batch_size: Spec = _BATCH_SIZE, epochs: Spec = _EPOCHS
) -> dict[str, Any]:
    """Suggest the loop: keys ``batch_size`` (an int, or ``"full"``) and ``epochs``.

    >>> import optuna
    >>> suggest_training(optuna.trial.FixedTrial({"batch_size": "full"}), epochs=50)
    {'batch_size': 'full', 'epochs': 50}
    """
    specs = {"batch_size": batch_size, "epochs": epochs}
    check_specs(specs, _DOMAINS)
    return {name: suggest(trial, name, spec) for name, spec in specs.items()}
