"""Progress of a running study: trials finished towards the study's target, best R² so far,
time left (``hpo.train.progress.Progress``: a bar on a terminal, a few lines in a log)."""

from __future__ import annotations

import math

import optuna

from hpo.store.attrs import read_record
from hpo.store.record import score_label
from hpo.store.summary import best_value, finished_count
from hpo.train.progress import Progress


class StudyProgress:
    """Counts the study's finished trials by reading the storage, so it works the same
    whether the trials ran in this process or in worker processes. ``target`` is the
    finished trials the study should hold at the end (``--n-trials``), so resuming a 30-trial
    study with ``--n-trials 60`` shows 30/60 at the start."""

    def __init__(self, optuna_study: optuna.Study, target: int, *, enabled: bool) -> None:
        self._study, self._enabled = optuna_study, enabled
        record = read_record(optuna_study)  # "validation R²" or what else trials are scored on
        self._label = score_label(record) if record else "R²"
        self._progress = Progress(target, optuna_study.study_name, unit="trial",
                                  initial=min(finished_count(optuna_study), target),
                                  enabled=enabled)

    def refresh(self) -> None:
        if not self._enabled:  # nothing to show: no read (it replays the whole journal)
            return
        best = best_value(self._study)
        note = "" if math.isnan(best) else f"best {self._label} {best:.4f}"
        self._progress.update(finished_count(self._study), note)

    def close(self) -> None:
        self._progress.close()
