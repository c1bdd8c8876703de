"""Reading stored studies back: tables of trials, the leaderboard, a trial's per-epoch history.

Not ``optuna.Study.trials_dataframe``: its ``params_*`` columns hold only the suggested
params (a trial's fixed ones and its schedule's settings are in the params the objective
trained with), and it gives a pruned trial its last R² as ``value``, which a table would
pass off as a final score.

Example:
    >>> study = load_study("lr-cosine", "hpo.journal")      # doctest: +SKIP
    >>> leaderboard(study, top=5)                           # doctest: +SKIP
    >>> trial_history(best_trial(study))                    # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Any

import optuna
import pandas as pd
from optuna.trial import FrozenTrial, TrialState

from hpo.errors import ConfigError
from hpo.store.record import RECORD_ATTR, TEST_ATTR, score_label
from hpo.store.storage import open_existing_storage, resolve_storage, shown, study_names
from hpo.store.summary import STATES, best_value, state_counts

# Trial attributes shown next to the value in tables, in this order.
_ATTR_COLUMNS = ("ended", "family", "epochs_run", "seconds", "n_params", "device", "source")


def load_study(name: str, storage: str | None = None) -> optuna.Study:
    """The stored study called ``name``; an unknown name lists the ones that exist."""
    backend = open_existing_storage(storage)
    names = study_names(backend)
    if name not in names:
        raise ConfigError(
            f"No study named {name!r} in {shown(resolve_storage(storage))}; it holds "
            f"{', '.join(map(repr, names)) or 'no studies'}."
        )
    return optuna.load_study(study_name=name, storage=backend)


def trials_frame(optuna_study: optuna.Study) -> pd.DataFrame:
    """One row per trial: number, state, value, the readable attributes, then every param."""
    rows = [_trial_row(t) for t in optuna_study.get_trials(deepcopy=False)]
    return pd.DataFrame(rows, columns=_columns(rows))


def _trial_row(trial: FrozenTrial) -> dict[str, Any]:
    params = trial.user_attrs.get("params", trial.params)
    # Optuna gives a pruned trial its last reported R² as value; a table would pass it off
    # as a final score, so only complete trials show one.
    value = trial.value if trial.state == TrialState.COMPLETE else None
    row: dict[str, Any] = {"number": trial.number, "state": trial.state.name, "value": value}
    row.update({key: trial.user_attrs.get(key) for key in _ATTR_COLUMNS})
    row.update({f"params_{key}": value for key, value in params.items()})
    return row


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    columns = ["number", "state", "value", *_ATTR_COLUMNS]
    for row in rows:
        columns += [key for key in row if key not in columns]
    return columns


def leaderboard(optuna_study: optuna.Study, top: int = 10) -> pd.DataFrame:
    """The ``top`` complete trials, best test R² first, with only the params that vary."""
    frame = trials_frame(optuna_study)
    frame = frame[frame["state"] == TrialState.COMPLETE.name]
    frame = frame.sort_values("value", ascending=False).head(top)
    varying = [c for c in frame.columns if c.startswith("params_")
               and frame[c].astype(str).nunique() > 1]
    searched = [f"params_{name}" for name in _searched_names(optuna_study)]
    shown = [c for c in frame.columns if (c in varying or c in searched)
             and c != "params_scheduler"]  # the family column says it already
    return frame[["number", "value", "family", "epochs_run", "seconds", *shown]].reset_index(
        drop=True)


def _searched_names(optuna_study: optuna.Study) -> list[str]:
    names: list[str] = []
    for trial in optuna_study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        names += [name for name in trial.params if name not in names]
    return names


def trial_history(trial: FrozenTrial) -> pd.DataFrame:
    """The trial's per-epoch table (per-fold for cross-validated studies)."""
    return pd.DataFrame(trial.user_attrs.get("history", []))


def trial_params(trial: FrozenTrial) -> dict[str, Any]:
    """Every param the trial trained with, fixed ones included."""
    return dict(trial.user_attrs.get("params", trial.params))


def study_table(storage: str | None = None) -> pd.DataFrame:
    """One row per stored study: trial counts by state, the best value, what it was scored
    on (validation, CV or test R²), and the held-out test R² scored after the search."""
    backend = open_existing_storage(storage)
    rows = []
    for summary in optuna.get_all_study_summaries(backend, include_best_trial=False):
        stored = optuna.load_study(study_name=summary.study_name, storage=backend)
        counts = state_counts(stored)
        best = best_value(stored)
        record = stored.user_attrs.get(RECORD_ATTR)
        held_out = stored.user_attrs.get(TEST_ATTR) or {}
        rows.append({"study": summary.study_name, "trials": sum(counts.values()), **counts,
                     "best_r2": None if math.isnan(best) else best,
                     "scored_on": score_label(record) if record else None,
                     "test_r2": held_out.get("test_r2")})
    return pd.DataFrame(rows, columns=["study", "trials", *STATES.values(), "best_r2",
                                       "scored_on", "test_r2"])
