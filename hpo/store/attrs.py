"""Where a trial keeps what it records: short facts where optuna-dashboard shows them, bulky
ones where it does not.

optuna-dashboard puts every user attribute in its trial table; a trial's per-epoch
``history`` (about 14 KB of JSON for a 50-epoch lab trial) made each row ~1,200 px tall, and
the full ``params`` dict repeated the params column as one long string. Those two are kept
as trial *system* attributes instead (Optuna's storage holds them the same way; the
dashboard does not show them). Every reader goes through ``trial_attr`` (via
``hpo.results.tables.trial_history`` and ``trial_params``), which also reads studies stored
before the move, when both were user attributes.

Example:
    >>> split_attrs({"family": "cosine", "history": [{"epoch": 1}]})
    ({'family': 'cosine'}, {'history': [{'epoch': 1}]})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from optuna.trial import FrozenTrial

# Recorded by the objective, kept out of the dashboard's trial table.
HIDDEN_ATTRS = frozenset({"history", "params"})


def split_attrs(attrs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(user_attrs, system_attrs)``: the attributes the dashboard shows, and the bulky ones."""
    user = {key: value for key, value in attrs.items() if key not in HIDDEN_ATTRS}
    system = {key: value for key, value in attrs.items() if key in HIDDEN_ATTRS}
    return user, system


def trial_attr(trial: FrozenTrial, key: str, default: Any = None) -> Any:
    """A recorded attribute, wherever it is kept (system attrs, or user attrs of old studies)."""
    if key in trial.system_attrs:
        return trial.system_attrs[key]
    return trial.user_attrs.get(key, default)
