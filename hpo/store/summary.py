"""What a stored study amounts to so far: its trials counted by state, and its best trial.

One home for these facts, read by the progress bar while a study runs and by every table
after it ran.

Example:
    >>> import optuna
    >>> study = optuna.create_study(direction="maximize")
    >>> study.add_trial(optuna.trial.create_trial(value=0.9))
    >>> state_counts(study)["complete"], best_value(study)
    (1, 0.9)
    >>> counts_text(state_counts(study))
    '1 complete'
"""

from __future__ import annotations

import math

import optuna
from optuna.trial import FrozenTrial, TrialState

from hpo.errors import ConfigError

# The states a table shows, in this order, and the word for each.
STATES = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned",
          TrialState.FAIL: "failed", TrialState.RUNNING: "running",
          TrialState.WAITING: "waiting"}
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def state_counts(optuna_study: optuna.Study) -> dict[str, int]:
    """Trials per state: ``{"complete": n, "pruned": n, "failed": n, "running": n, ...}``."""
    states = [trial.state for trial in optuna_study.get_trials(deepcopy=False)]
    return {word: states.count(state) for state, word in STATES.items()}


def finished_count(optuna_study: optuna.Study) -> int:
    """Trials that ran to an end: complete, pruned or failed."""
    return len(optuna_study.get_trials(deepcopy=False, states=FINISHED))


def counts_text(counts: dict[str, int]) -> str:
    """``"11 complete, 19 pruned, 2 failed"``: the states that occur, in table order."""
    return ", ".join(f"{n} {word}" for word, n in counts.items() if n) or "no trials"


def best_trial(optuna_study: optuna.Study) -> FrozenTrial:
    """The complete trial with the highest test R².

    Raises:
        ConfigError: the study has no complete trial yet.
    """
    try:
        return optuna_study.best_trial
    except ValueError:  # Optuna's word for "no complete trial"
        raise ConfigError(
            f"Study {optuna_study.study_name!r} has no complete trial yet; run it first "
            "(hpo run STUDY_FILE) or wait for a trial to finish."
        ) from None


def best_value(optuna_study: optuna.Study) -> float:
    """The best test R² among complete trials (nan when there is none yet)."""
    try:
        return float(optuna_study.best_value)
    except ValueError:
        return math.nan
