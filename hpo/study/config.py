"""A study: what to search (space, data, score) and how (sampler, pruner, budget), frozen.

Every field is checked when the study is built, so a mistake surfaces before any training,
with a message that names the field, the value and the fix.

Example:
    >>> from search_spaces import suggest_scheduler
    >>> study = Study(name="cosine", space=lambda t: suggest_scheduler(t, families="cosine"))
    >>> study.sampler, study.pruner, study.n_trials
    ('tpe', 'median', 50)
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hpo.data import CsvData, LabData, Mtcars
from hpo.errors import ConfigError
from hpo.study.algorithms import PRUNERS, RAY_PRUNERS, SAMPLERS
from search_spaces.values import is_int, is_number

if TYPE_CHECKING:
    import optuna

SpaceFn = Callable[["optuna.Trial"], dict[str, Any]]

SCORES = ("final", "best")


@dataclass(frozen=True)
class Study:
    """A validated, immutable description of one search.

    Args:
        name: the study's name in the storage; running it again resumes it.
        space: an Optuna define-by-run function ``trial -> params dict`` (see search_spaces).
        data: where the rows come from: ``LabData()``, ``Mtcars()`` or ``CsvData(...)``.
        test_size: share of the rows held out as the test part, read only by the final
            scoring of the chosen configs (0 only with ``cv_folds``: cross-validate every row).
        validation_size: share of the non-test rows that trials are scored and pruned on.
            0 is the lab's own setting: trials are scored on the test part itself, so the
            best trial's test R² is chosen on the data it reports. Unused with ``cv_folds``.
        cv_folds: score trials by k-fold cross-validation inside the non-test rows
            (None: one train/validation split).
        seeds: training seeds per trial; its score is the mean over them (spread recorded).
        standardize: scale features to zero mean and unit variance, fitted on training rows.
        score: ``"final"`` scores the last epoch's test R², ``"best"`` the best epoch's.
        sampler, pruner: names from SAMPLERS and PRUNERS (or RAY_PRUNERS, Ray runner only).
        n_trials: the number of finished trials the study should hold (see ``hpo run --help``).
        timeout: seconds after which no new trial starts (None: no limit).
        seed: seeds the sampler, the data split and every trial (trial seed = seed + number).
        grid: for ``sampler="grid"``: the values of every searched parameter.
        description: one line shown in ``hpo list`` and reports.
    """

    name: str
    space: SpaceFn
    data: LabData | Mtcars | CsvData = field(default_factory=LabData)
    test_size: float = 0.3
    # 20% of the 70% training rows: 560 train / 140 validation / 300 test on the lab's data.
    validation_size: float = 0.2
    cv_folds: int | None = None
    seeds: int = 1
    standardize: bool = False
    score: str = "final"
    sampler: str = "tpe"
    pruner: str = "median"
    n_trials: int = 50
    timeout: float | None = None
    seed: int = 0
    grid: Mapping[str, Sequence[Any]] | None = None
    description: str = ""
    # (file, name in that file) when loaded from a study file (hpo.study.file).
    source: tuple[str, str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not callable(self.space):
            raise ConfigError(
                f"Study {self.name!r}: `space` must be a function of an Optuna trial returning "
                f"a params dict, but got {type(self.space).__name__}."
            )
        _check_choice(self.name, "sampler", self.sampler, SAMPLERS)
        _check_choice(self.name, "pruner", self.pruner, PRUNERS + RAY_PRUNERS)
        _check_choice(self.name, "score", self.score, SCORES)
        _check_data(self)
        _check_numbers(self)
        _check_grid(self)

    def replace(self, **changes: Any) -> Study:
        """A copy with some fields changed, validated again (how CLI flags override a study)."""
        return dataclasses.replace(self, **changes)

    @property
    def grid_points(self) -> list[dict[str, Any]]:
        """Every combination of the grid's values, in a fixed order (empty without a grid)."""
        if not self.grid:
            return []
        names = list(self.grid)
        return [dict(zip(names, values, strict=True)) for values in itertools.product(
            *(self.grid[name] for name in names)
        )]


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"A study needs a non-empty `name`, but got {name!r}.")


def _check_choice(study: str, field_name: str, value: object, valid: Sequence[str]) -> None:
    if value not in valid:
        raise ConfigError(
            f"Study {study!r}: `{field_name}` must be one of {', '.join(valid)}, "
            f"but got {value!r}."
        )


def _check_data(study: Study) -> None:
    if not isinstance(study.data, LabData | Mtcars | CsvData):
        raise ConfigError(
            f"Study {study.name!r}: `data` must be LabData(), Mtcars(...) or CsvData(...), "
            f"but got {type(study.data).__name__}; wrap your rows in a CSV file and use "
            "CsvData(path, target=...)."
        )
    if not isinstance(study.standardize, bool):
        raise ConfigError(
            f"Study {study.name!r}: `standardize` must be True or False, but got "
            f"{study.standardize!r}."
        )


def _check_numbers(study: Study) -> None:
    name = study.name
    _check_parts(study)
    if study.cv_folds is not None and (not is_int(study.cv_folds) or study.cv_folds < 2):
        raise ConfigError(
            f"Study {name!r}: `cv_folds` must be an integer >= 2 or None, "
            f"but got {study.cv_folds!r}."
        )
    if not is_int(study.seeds) or study.seeds < 1:
        raise ConfigError(
            f"Study {name!r}: `seeds` must be a positive integer, but got {study.seeds!r}."
        )
    if not is_int(study.n_trials) or study.n_trials < 1:
        raise ConfigError(
            f"Study {name!r}: `n_trials` must be a positive integer, but got {study.n_trials!r}."
        )
    if study.timeout is not None and (not is_number(study.timeout) or not study.timeout > 0):
        raise ConfigError(
            f"Study {name!r}: `timeout` must be a positive number of seconds or None, "
            f"but got {study.timeout!r}."
        )
    if not is_int(study.seed) or study.seed < 0:
        raise ConfigError(
            f"Study {name!r}: `seed` must be a non-negative integer, but got {study.seed!r}."
        )


def _check_parts(study: Study) -> None:
    name, test, validation = study.name, study.test_size, study.validation_size
    if not is_number(test) or not 0.0 <= test < 1.0:
        raise ConfigError(
            f"Study {name!r}: `0 <= test_size < 1` must hold, but got {test!r}."
        )
    if test == 0 and not study.cv_folds:
        raise ConfigError(
            f"Study {name!r}: `test_size=0` holds no rows out, which only cross-validation "
            "can score; set cv_folds=3 (or so), or a test_size such as 0.3."
        )
    if not is_number(validation) or not 0.0 <= validation < 1.0:
        raise ConfigError(
            f"Study {name!r}: `0 <= validation_size < 1` must hold, but got {validation!r}; "
            "use 0 to score trials on the test part as the lab does."
        )


def _check_grid(study: Study) -> None:
    if study.sampler != "grid":
        if study.grid is not None:
            raise ConfigError(
                f"Study {study.name!r}: `grid` is given but the sampler is "
                f"{study.sampler!r}, which would ignore it; set sampler='grid' to run the "
                "grid, or drop `grid` to search the space."
            )
        return
    if not study.grid:
        raise ConfigError(
            f"Study {study.name!r}: the grid sampler needs the values to try, but `grid` is "
            "empty; add e.g. grid={'lr': [0.01, 0.1], 'epochs': [10, 200]} to the study."
        )
    for param, values in study.grid.items():
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
            raise ConfigError(
                f"Study {study.name!r}: grid values for {param!r} must be a non-empty list, "
                f"but got {values!r}."
            )
