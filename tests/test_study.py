"""Study validation, grid expansion, and studies crossing process boundaries."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from hpo import ConfigError, LabData, Study, StudyFileError
from hpo.study.file import load_from_file, load_studies, select_studies
from tests.conftest import write_study
from tests.fresh_process import heavy_loaded


def _space(trial: Any) -> dict[str, Any]:
    return {}


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("name", "", "non-empty `name`"),
        ("space", 3, "`space` must be a function"),
        ("sampler", "bayes", "`sampler` must be one of"),
        ("pruner", "bohb", "`pruner` must be one of"),
        ("score", "mean", "`score` must be one of final, best"),
        ("test_size", 1.0, "`0 <= test_size < 1` must hold"),
        ("test_size", 0, "`test_size=0` holds no rows out, which only cross-validation"),
        ("validation_size", 1.0, "`0 <= validation_size < 1` must hold"),
        ("validation_size", True, "`0 <= validation_size < 1` must hold"),
        ("seeds", 0, "`seeds` must be a positive integer, but got 0"),
        ("cv_folds", 1, "`cv_folds` must be an integer >= 2"),
        ("n_trials", 0, "`n_trials` must be a positive integer, but got 0"),
        ("n_trials", True, "`n_trials` must be a positive integer"),
        ("timeout", 0, "`timeout` must be a positive number"),
        ("seed", -1, "`seed` must be a non-negative integer"),
        ("timeout", "60", "`timeout` must be a positive number"),
        ("cv_folds", True, "`cv_folds` must be an integer >= 2"),
        ("data", "cars.csv", r"`data` must be LabData\(\), Mtcars\(...\) or CsvData\(...\), "
                             "but got str"),
        ("standardize", "yes", "`standardize` must be True or False, but got 'yes'"),
        ("grid", {"lr": [0.1]}, "`grid` is given but the sampler is 'tpe', which would ignore"),
    ],
)
def test_every_field_is_validated(field: str, value: object, match: str) -> None:
    kwargs: dict[str, Any] = {"name": "s", "space": _space, field: value}
    with pytest.raises(ConfigError, match=match):
        Study(**kwargs)


@pytest.mark.parametrize(
    ("grid", "match"),
    [
        (None, "the grid sampler needs the values"),
        ({}, "the grid sampler needs the values"),
        ({"lr": []}, "grid values for 'lr' must be a non-empty list"),
        ({"lr": "0.1"}, "grid values for 'lr' must be a non-empty list"),
    ],
)
def test_a_grid_study_needs_values(grid: Any, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Study(name="g", space=_space, sampler="grid", grid=grid)


def test_grid_points_are_the_full_product_in_order() -> None:
    study = Study(
        name="g", space=_space, sampler="grid", grid={"lr": [0.1, 0.01], "epochs": [10, 200, 500]}
    )
    points = study.grid_points
    assert len(points) == 6 and points[0] == {"lr": 0.1, "epochs": 10}
    assert {(p["lr"], p["epochs"]) for p in points} == {
        (lr, e) for lr in (0.1, 0.01) for e in (10, 200, 500)
    }


def test_replace_validates_again() -> None:
    study = Study(name="s", space=_space)
    assert study.replace(n_trials=3).n_trials == 3
    with pytest.raises(ConfigError):
        study.replace(n_trials=0)


def test_a_study_from_a_file_pickles_by_reloading_the_file(tmp_path: Path) -> None:
    study = load_from_file(write_study(tmp_path), "tiny").replace(name="renamed", n_trials=9)
    copy = pickle.loads(pickle.dumps(study))
    # The function is loaded again from the file: a new object, the same code.
    assert copy.replace(space=study.space) == study
    assert copy.name == "renamed" and copy.n_trials == 9 and copy.source == study.source
    assert copy.space.__code__.co_code == study.space.__code__.co_code


def test_a_study_from_a_module_pickles_normally() -> None:
    study = Study(name="s", space=_space, data=LabData(n=50))
    assert pickle.loads(pickle.dumps(study)) == study


def test_select_studies_by_name() -> None:
    studies = load_studies(Path(__file__).parents[1] / "studies" / "lr_schedules.py")
    assert [s.name for s in studies] == ["lr-exponential", "lr-step", "lr-cosine"]
    assert [s.name for s in select_studies(studies, ["lr-step"])] == ["lr-step"]
    with pytest.raises(StudyFileError, match="valid names are 'lr-exponential'"):
        select_studies(studies, ["lr-linear"])


def test_the_samplers_that_learn_are_samplers_hpo_offers() -> None:
    # The runner sizes its first batches by this set (hpo.runners.asking.batch_size):
    # a sampler renamed or removed in one place but not the other would change that quietly.
    from hpo.study.algorithms import LEARNING_SAMPLERS, SAMPLERS

    assert set(SAMPLERS) >= LEARNING_SAMPLERS
    assert {"grid", "random"}.isdisjoint(LEARNING_SAMPLERS)


def test_every_sampler_and_pruner_name_is_built() -> None:
    from optuna.pruners import BasePruner
    from optuna.samplers import BaseSampler

    from hpo.study.algorithms import (
        PRUNERS,
        SAMPLERS,
        make_pruner,
        make_sampler,
        pruner_table,
        sampler_table,
    )

    assert tuple(sampler_table()) == SAMPLERS and tuple(pruner_table()) == PRUNERS
    assert all(isinstance(make_sampler(name, seed=0), BaseSampler) for name in SAMPLERS)
    assert all(isinstance(make_pruner(name), BasePruner) for name in PRUNERS)


def test_the_names_a_parser_offers_load_no_optuna(tmp_path: Path) -> None:
    code = "from hpo.study.algorithms import PRUNERS, RAY_PRUNERS, SAMPLERS"
    assert heavy_loaded(code, tmp_path) == []
