"""A progress bar for a running study: trials done, best R² so far, time left (tqdm)."""

from __future__ import annotations

import math

import optuna
from optuna.trial import TrialState
from tqdm.auto import tqdm

_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def finished_count(optuna_study: optuna.Study) -> int:
    """Trials that ran to an end: complete, pruned or failed."""
    return len(optuna_study.get_trials(deepcopy=False, states=_FINISHED))


def best_value(optuna_study: optuna.Study) -> float:
    """The best test R² among complete trials (nan when there is none yet)."""
    values = [t.value for t in optuna_study.get_trials(deepcopy=False,
                                                       states=(TrialState.COMPLETE,))]
    return max((v for v in values if v is not None), default=math.nan)


class StudyProgress:
    """Counts the trials this run finishes by reading the storage, so it works the same
    whether the trials ran in this process or in worker processes."""

    def __init__(self, optuna_study: optuna.Study, total: int, *, enabled: bool) -> None:
        self._study = optuna_study
        self._start = finished_count(optuna_study)
        self._bar = tqdm(total=total, desc=optuna_study.study_name, unit="trial",
                         disable=not enabled, dynamic_ncols=True)

    def refresh(self) -> None:
        done = finished_count(self._study) - self._start
        self._bar.update(max(0, min(done, self._bar.total) - self._bar.n))
        best = best_value(self._study)
        if not math.isnan(best):
            self._bar.set_postfix_str(f"best R² {best:.4f}", refresh=True)

    def close(self) -> None:
        self._bar.close()
