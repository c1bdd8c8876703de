"""hpo: hyperparameter optimization for PyTorch training loops.

The public API, loaded on first use so that ``hpo --help`` and ``hpo list`` do not pay for
torch: ``hpo.Study`` (what to search), ``hpo.run`` with ``hpo.RunOptions`` (search it), and
``hpo.load_study``/``best_trial``/``leaderboard``/``trial_history``/``trial_params`` (read
what a search stored). The layers behind it are listed in docs/architecture.md.

Example:
    >>> import hpo
    >>> from search_spaces import suggest_architecture, suggest_optimizer, suggest_scheduler
    >>> from search_spaces import suggest_training
    >>> def space(trial):
    ...     return {**suggest_architecture(trial, hidden_layers=2, width=20, activation="tanh",
    ...                                    batch_norm=False, dropout=0.0),
    ...             **suggest_optimizer(trial, optimizer="adam", weight_decay=0.0),
    ...             **suggest_training(trial, batch_size=64, epochs=50),
    ...             **suggest_scheduler(trial, families="cosine")}
    >>> study = hpo.Study(name="cosine", space=space, n_trials=20)
    >>> optuna_study = hpo.run(study)                                   # doctest: +SKIP
    >>> hpo.trial_history(hpo.best_trial(optuna_study))                 # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hpo.errors import ConfigError, DataError, DeviceError, HPOError, StorageError, StudyFileError
from search_spaces._lazy import lazy_names

if TYPE_CHECKING:
    from hpo.data import CsvData, LabData, Mtcars
    from hpo.results.tables import leaderboard, load_study, trial_history
    from hpo.runners.options import RunOptions
    from hpo.runners.optuna_runner import run
    from hpo.store.attrs import trial_params
    from hpo.store.summary import best_trial
    from hpo.study.config import Study

# Public name -> the module that defines it.
_LAZY = {
    "CsvData": "hpo.data", "LabData": "hpo.data", "Mtcars": "hpo.data",
    "Study": "hpo.study.config",
    "RunOptions": "hpo.runners.options", "run": "hpo.runners.optuna_runner",
    "best_trial": "hpo.store.summary", "leaderboard": "hpo.results.tables",
    "load_study": "hpo.results.tables", "trial_history": "hpo.results.tables",
    "trial_params": "hpo.store.attrs",
}

__all__ = [
    "ConfigError",
    "CsvData",
    "DataError",
    "DeviceError",
    "HPOError",
    "LabData",
    "Mtcars",
    "RunOptions",
    "StorageError",
    "Study",
    "StudyFileError",
    "best_trial",
    "leaderboard",
    "load_study",
    "run",
    "trial_history",
    "trial_params",
]


__getattr__, __dir__ = lazy_names("hpo", _LAZY, globals())
