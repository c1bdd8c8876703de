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
    """Trials that ran to an end: complete, pruned or failed, less failures run again.

    A trial cut short by a kill, Ctrl-C or a lost heartbeat is failed and queued again with
    the same params (its number lands in the copy's ``retry_history``): it counts once, as
    the copy, so a resumed study ends with exactly the trials asked for.
    """
    return len(counted_trials(optuna_study.get_trials(deepcopy=False)))


def counted_trials(trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """The finished trials that count toward ``n_trials`` (see ``finished_count``)."""
    retried = retried_numbers(trials)
    return [t for t in trials if t.state in FINISHED
            and not (t.state == TrialState.FAIL and t.number in retried)]


def retried_numbers(trials: list[FrozenTrial]) -> set[int]:
    """Numbers of failed trials that were queued again with the same params."""
    return {number for t in trials for number in t.system_attrs.get("retry_history", ())}


def failure_summary(optuna_study: optuna.Study) -> str:
    """``"failed trials by reason: 2 error, 1 timeout"``; empty when none failed."""
    trials = counted_trials(optuna_study.get_trials(deepcopy=False))
    reasons = [str(t.user_attrs.get("ended") or "error") for t in trials
               if t.state == TrialState.FAIL]
    retried = len(retried_numbers(optuna_study.get_trials(deepcopy=False)))
    parts = [f"{reasons.count(r)} {r}" for r in sorted(set(reasons))]
    if retried:
        parts.append(f"{retried} interrupted and run again")
    return f"failed trials by reason: {', '.join(parts)}" if parts else ""


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
