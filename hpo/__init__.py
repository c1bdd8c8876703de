"""hpo: hyperparameter optimization for PyTorch training loops.

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

from hpo.data import CsvData, LabData, Mtcars
from hpo.errors import ConfigError, DataError, DeviceError, HPOError, StorageError, StudyFileError
from hpo.results import best_trial, leaderboard, load_study, trial_history, trial_params
from hpo.runners import RunOptions, run
from hpo.study import Study

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
