"""A progress bar for a running study: trials done, best R² so far, time left (tqdm)."""

from __future__ import annotations

import math

import optuna
from tqdm.auto import tqdm

from hpo.store.summary import best_value, finished_count


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
