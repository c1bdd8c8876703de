"""Specs: the Float/Int/Choice constructors and `suggest`."""

from __future__ import annotations

from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import RandomSampler

from search_spaces import Choice, Float, Int, suggest


def _trial(seed: int = 0) -> optuna.Trial:
    return optuna.create_study(sampler=RandomSampler(seed=seed)).ask()


def test_constructors_return_optuna_distributions() -> None:
    assert Float(1e-4, 0.3, log=True) == FloatDistribution(1e-4, 0.3, log=True)
    assert Float(0, 1, step=0.25) == FloatDistribution(0.0, 1.0, step=0.25)
    assert Int(1, 4) == IntDistribution(1, 4)
    assert Int(4, 256, log=True) == IntDistribution(4, 256, log=True)
    assert Int(0, 10, step=2) == IntDistribution(0, 10, step=2)
    assert Choice([16, "full"]) == CategoricalDistribution([16, "full"])
    assert Float(0.5, 0.5) == FloatDistribution(0.5, 0.5)  # a single point is a valid range


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (
            lambda: Float(2.0, 1.0),
            r"`low <= high` must hold, but got \(low=2.0, high=1.0\); swap the bounds",
        ),
        (lambda: Float(0.0, 1.0, log=True), r"`low > 0` must hold for `log=True`"),
        (lambda: Float(-1.0, 1.0, log=True), r"`low > 0`.*low=-1.0"),
        (lambda: Float(0.1, 1.0, log=True, step=0.1), r"`step` and `log=True` cannot be combined"),
        (lambda: Float(0.0, 1.0, step=0.0), r"`step > 0` must hold, but got step=0.0"),
        (lambda: Float(0.0, float("inf")), r"`high` must be a finite number"),
        (lambda: Float("0", 1.0), r"`low` must be a finite number, but got '0'"),  # type: ignore[arg-type]
        (lambda: Int(5, 1), r"`low <= high` must hold, but got \(low=5, high=1\); swap"),
        (lambda: Int(0, 10, log=True), r"`low > 0` must hold for `log=True`"),
        (lambda: Int(1, 10, step=0), r"`step >= 1` must hold, but got step=0"),
        (lambda: Int(1, 9, log=True, step=2), r"`step` and `log=True` cannot be combined"),
        (lambda: Int(1.5, 3), r"`low` must be an int, but got 1.5; use Float"),  # type: ignore[arg-type]
        (lambda: Int(True, 3), r"`low` must be an int, but got True"),
        (lambda: Choice([]), r"at least one choice, but got \[\]"),
        (lambda: Choice("abc"), r"must be a list of choices, but got 'abc'"),
        (lambda: Choice([1, 1]), r"Choices must be distinct, but got \[1, 1\]"),
        (lambda: Choice([[1, 2]]), r"Each choice must be None, bool, int, float or str"),  # type: ignore[list-item]
    ],
)
def test_bad_specs_are_refused_where_written(make: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_choice_tells_bool_from_int() -> None:
    # True == 1 in Python, but as choices they are different values.
    assert Choice([1, True]).choices == (1, True)


@pytest.mark.parametrize(
    ("spec", "given"),
    [(Float(0.0, 1.0), 0.25), (Int(1, 4), 3), (Choice(["tanh", "relu"]), "relu")],
)
def test_suggest_asks_the_trial_for_a_distribution(spec: Any, given: Any) -> None:
    trial = optuna.trial.FixedTrial({"x": given})
    assert suggest(trial, "x", spec) == given
    assert trial.params == {"x": given}


@pytest.mark.parametrize(
    "spec",
    [
        Float(1e-4, 0.3, log=True),
        Float(0.0, 1.0, step=0.1),
        Int(4, 256, log=True),
        Int(0, 8, step=2),
        Choice([16, 32, "full"]),
        Choice([False, True]),
    ],
)
def test_suggest_records_the_spec_as_the_trial_distribution(spec: Any) -> None:
    trial = _trial()
    value = suggest(trial, "x", spec)
    assert trial.distributions == {"x": spec}
    if isinstance(spec, CategoricalDistribution):
        assert value in spec.choices
    else:
        assert spec.low <= value <= spec.high


@pytest.mark.parametrize("fixed", [0.0, 3, "tanh", False, None, "full"])
def test_a_fixed_value_is_returned_and_not_suggested(fixed: Any) -> None:
    trial = _trial()
    assert suggest(trial, "x", fixed) == fixed
    assert trial.params == {}


@pytest.mark.parametrize("fixed", [[1, 2], (1, 2), {1, 2}])
def test_a_collection_is_not_taken_for_a_fixed_value(fixed: Any) -> None:
    with pytest.raises(ValueError, match=r"to search over these values write Choice\(\[1, 2\]\)"):
        suggest(_trial(), "x", fixed)
