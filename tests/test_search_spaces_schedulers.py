"""Learning-rate schedules: one contract over every family, the family as a choice, mistakes."""

from __future__ import annotations

import math
from typing import Any

import optuna
import pytest
import torch
from optuna.distributions import CategoricalDistribution
from optuna.samplers import RandomSampler

import search_spaces as ss
from search_spaces import (
    Choice,
    Float,
    Int,
    build_scheduler,
    lr_curve,
    schedulers,
    suggest_scheduler,
)
from search_spaces._families import FAMILY_TABLE

LR = Float(1e-4, 0.3, log=True)

# The documented default specs, written out independently of the code so a change shows here.
DEFAULTS: dict[str, dict[str, Any]] = {
    "constant": {"lr": LR},
    "exponential": {"lr": LR, "exponential_lr_final": Float(1e-5, 1e-2, log=True)},
    "step": {"lr": LR, "step_size_fraction": Float(0.05, 0.5), "step_gamma": Float(0.1, 0.9)},
    "cosine": {"lr": LR, "cosine_floor_fraction": Float(0.0, 0.1)},
    "multistep": {
        "lr": LR,
        "multistep_first_fraction": Float(0.2, 0.6),
        "multistep_second_fraction": Float(0.6, 0.95),
        "multistep_gamma": Float(0.1, 0.9),
    },
    "cosine_restarts": {
        "lr": LR,
        "cosine_restarts_period_fraction": Float(0.1, 0.5),
        "cosine_restarts_mult": Choice([1, 2]),
        "cosine_restarts_floor_fraction": Float(0.0, 0.1),
    },
    "onecycle": {
        "lr": LR,
        "onecycle_pct_start": Float(0.1, 0.5),
        "onecycle_div_factor": Float(5.0, 100.0, log=True),
        "onecycle_final_div_factor": Float(10.0, 1e4, log=True),
    },
    "plateau": {"lr": LR, "plateau_factor": Float(0.1, 0.7), "plateau_patience": Int(2, 10)},
    "warmup_cosine": {
        "lr": LR,
        "warmup_cosine_warmup_fraction": Float(0.05, 0.3),
        "warmup_cosine_floor_fraction": Float(0.0, 0.1),
    },
}
FAMILY_KEYS = [(family, key) for family, specs in DEFAULTS.items() for key in specs]

# For every key, a valid value that the default range cannot produce.
OUTSIDE: dict[str, Any] = {
    "lr": 0.5,
    "exponential_lr_final": 0.05,
    "step_size_fraction": 0.8,
    "step_gamma": 0.95,
    "multistep_first_fraction": 0.1,
    "multistep_second_fraction": 1.0,
    "multistep_gamma": 0.95,
    "cosine_floor_fraction": 0.5,
    "cosine_restarts_period_fraction": 0.9,
    "cosine_restarts_mult": 3,
    "cosine_restarts_floor_fraction": 0.5,
    "onecycle_pct_start": 0.8,
    "onecycle_div_factor": 200.0,
    "onecycle_final_div_factor": 1e5,
    "plateau_factor": 0.9,
    "plateau_patience": 20,
    "warmup_cosine_warmup_fraction": 0.6,
    "warmup_cosine_floor_fraction": 0.5,
}


def _trial(seed: int = 0) -> optuna.Trial:
    return optuna.create_study(sampler=RandomSampler(seed=seed)).ask()


def _within(spec: Any, value: Any) -> bool:
    if isinstance(spec, CategoricalDistribution):
        return value in spec.choices
    return bool(spec.low <= value <= spec.high)


def _ends(family: str, end: str) -> dict[str, Any]:
    # Every key at the low (or high) end of its default range: the corners of the space.
    def pick(spec: Any) -> Any:
        if isinstance(spec, CategoricalDistribution):
            return spec.choices[0 if end == "low" else -1]
        return getattr(spec, end)

    return {"scheduler": family, **{k: pick(s) for k, s in DEFAULTS[family].items()}}


# -- the contract, over every family -------------------------------------------------------


def test_families_are_the_documented_ones() -> None:
    assert tuple(DEFAULTS) == ss.FAMILIES


@pytest.mark.parametrize("family", ss.FAMILIES)
def test_the_searched_keys_are_the_keys_the_builder_checks(family: str) -> None:
    # The default specs (search side, Optuna) and the domains (build side, torch only) are
    # two tables; a key in one only would be searched unchecked, or required and never drawn.
    assert list(schedulers.DEFAULTS[family]) == list(FAMILY_TABLE[family].domains)
    assert list(DEFAULTS[family]) == ["lr", *ss.family_keys(family)]


@pytest.mark.parametrize("family", ss.FAMILIES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_suggested_params_lie_in_the_default_ranges(family: str, seed: int) -> None:
    trial = _trial(seed)
    params = suggest_scheduler(trial, families=family)
    assert params["scheduler"] == family
    assert trial.distributions == DEFAULTS[family]  # "scheduler" itself is fixed
    assert set(params) == {"scheduler", *DEFAULTS[family]}
    assert all(_within(spec, params[k]) for k, spec in DEFAULTS[family].items())


@pytest.mark.parametrize("family", ss.FAMILIES)
def test_each_suggest_function_matches_suggest_scheduler(family: str) -> None:
    values = {k: v for k, v in _ends(family, "high").items() if k != "scheduler"}
    by_function = getattr(ss, f"suggest_{family}")(optuna.trial.FixedTrial(values))
    by_name = suggest_scheduler(optuna.trial.FixedTrial(values), families=family)
    assert by_function == by_name == {"scheduler": family, **values}


@pytest.mark.parametrize("family", ss.FAMILIES)
def test_family_keys_carry_the_family_prefix(family: str) -> None:
    assert all(k == "lr" or k.startswith(f"{family}_") for k in DEFAULTS[family])


@pytest.mark.parametrize(("family", "key"), FAMILY_KEYS)
def test_a_fixed_key_is_returned_but_not_suggested(family: str, key: str) -> None:
    trial = _trial()
    params = suggest_scheduler(trial, families=family, overrides={family: {key: OUTSIDE[key]}})
    assert params[key] == OUTSIDE[key]
    assert set(trial.params) == set(DEFAULTS[family]) - {key}


@pytest.mark.parametrize(("family", "key"), FAMILY_KEYS)
def test_an_overridden_range_is_the_one_suggested(family: str, key: str) -> None:
    value = OUTSIDE[key]
    spec: Any = Float(value, value)
    if isinstance(DEFAULTS[family][key], CategoricalDistribution):
        spec = Choice([value])
    elif isinstance(value, int):
        spec = Int(value, value)
    trial = _trial()
    params = getattr(ss, f"suggest_{family}")(trial, **{key: spec})
    assert trial.params[key] == params[key] == value
    assert trial.distributions[key] == spec


@pytest.mark.parametrize("family", ss.FAMILIES)
def test_a_narrowed_lr_range_holds(family: str) -> None:
    study = optuna.create_study(sampler=RandomSampler(seed=0))
    narrow = {family: {"lr": Float(0.4, 0.5)}}
    lrs = [suggest_scheduler(study.ask(), family, narrow)["lr"] for _ in range(5)]
    assert all(0.4 <= lr <= 0.5 for lr in lrs)


@pytest.mark.parametrize("family", ss.FAMILIES)
@pytest.mark.parametrize("epochs", [1, 2, 3, 7, 50])
def test_the_builder_is_defined_across_the_space(family: str, epochs: int) -> None:
    corners = [_ends(family, "low"), _ends(family, "high")]
    outside = {"scheduler": family, **{k: OUTSIDE[k] for k in DEFAULTS[family]}}
    drawn = [suggest_scheduler(_trial(seed), family) for seed in range(3)]
    for params in [*corners, outside, *drawn]:
        curve = lr_curve(params, epochs=epochs)  # steps the scheduler `epochs` times
        assert len(curve) == epochs
        assert all(math.isfinite(lr) and lr > 0 for lr in curve), (params, curve)


# -- the family as a searched choice -------------------------------------------------------


def test_a_searched_family_visits_several_families() -> None:
    study = optuna.create_study(sampler=RandomSampler(seed=0))
    seen = set()
    for _ in range(30):
        trial = study.ask()
        params = suggest_scheduler(trial, families=ss.FAMILIES)
        assert trial.params["scheduler"] == params["scheduler"]
        # Only the chosen family's keys are suggested: the others are conditional.
        assert set(trial.params) == {"scheduler", *DEFAULTS[params["scheduler"]]}
        seen.add(params["scheduler"])
    assert len(seen) >= 6  # 9 families, 30 draws: fewer than 6 has odds below 1e-4


def test_the_default_families_are_the_labs_three() -> None:
    study = optuna.create_study(sampler=RandomSampler(seed=0))
    seen = {suggest_scheduler(study.ask())["scheduler"] for _ in range(30)}
    assert seen == {"exponential", "step", "cosine"}  # missing one: odds 3 * (2/3)**30


@pytest.mark.parametrize(
    "families", [("cosine", "step"), ["cosine", "step"], Choice(["cosine", "step"])]
)
def test_families_may_be_a_list_or_a_choice(families: Any) -> None:
    trial = _trial()
    params = suggest_scheduler(trial, families=families)
    assert trial.distributions["scheduler"] == Choice(["cosine", "step"])
    assert params["scheduler"] in ("cosine", "step")


def test_a_single_family_in_a_list_is_fixed() -> None:
    trial = _trial()
    assert suggest_scheduler(trial, families=["step"])["scheduler"] == "step"
    assert "scheduler" not in trial.params


def test_the_same_seed_gives_the_same_params() -> None:
    def run(seed: int) -> list[dict[str, Any]]:
        study = optuna.create_study(sampler=RandomSampler(seed=seed))
        return [suggest_scheduler(study.ask(), ss.FAMILIES) for _ in range(10)]

    assert run(0) == run(0)
    assert run(0) != run(1)


# -- mistakes ------------------------------------------------------------------------------

BAD_SUGGESTIONS: list[tuple[dict[str, Any], str]] = [
    ({"families": "cosin"}, r"must be one of \['constant', .*\], but got 'cosin'"),
    ({"families": ["cosine", "cosin"]}, r"but got 'cosin'"),
    ({"families": []}, r"at least one choice"),
    ({"families": 5}, r"`families` must be a family name, a list of them or a Choice"),
    ({"overrides": {"cosin": {}}}, r"must be one of .*, but got 'cosin'"),
    ({"overrides": {"cosine": {"floor": 0.1}}}, r"takes the keys .*, but got unknown \['floor'\]"),
    (
        {"overrides": {"step": {"step_gamma": Float(0.5, 2.0)}}},
        r"`step_gamma` must be a number in \(0.0, 1.0\]",
    ),
    (
        {"overrides": {"cosine": {"lr": -1.0}}},
        r"`lr` must be a number in \(0.0, inf\), but got -1.0",
    ),
    (
        {"overrides": {"plateau": {"plateau_patience": Float(1, 3)}}},
        r"`plateau_patience` must be an int >= 0",
    ),
    (
        {"families": ("cosine", "step"), "overrides": {"cosine": {"lr": Float(0.01, 0.1)}}},
        r"`lr` must have one kind of range in every family",
    ),
]


@pytest.mark.parametrize(("kwargs", "match"), BAD_SUGGESTIONS)
def test_bad_scheduler_spaces_are_refused(kwargs: dict[str, Any], match: str) -> None:
    kwargs = {"families": ss.FAMILIES, **kwargs}
    with pytest.raises(ValueError, match=match):
        suggest_scheduler(_trial(), **kwargs)


@pytest.mark.parametrize("key", ["floor", "scheduler", "step_gamma"])
def test_a_suggest_function_refuses_keys_of_other_families(key: str) -> None:
    with pytest.raises(ValueError, match=rf"suggest_cosine takes the keys .*unknown \['{key}'\]"):
        ss.suggest_cosine(_trial(), **{key: 0.5})


BAD_BUILDS: list[tuple[dict[str, Any], Any, str]] = [
    ({"scheduler": "cosin", "lr": 0.1}, 10, r"must be one of .*, but got 'cosin'"),
    ({"lr": 0.1}, 10, r"must be one of .*, but got None"),
    (
        {"scheduler": "step", "lr": 0.1, "step_gamma": 0.5},
        10,
        r"but got none for \['step_size_fraction'\]",
    ),
    (
        {"scheduler": "step", "lr": 0.1, "step_size_fraction": 0.2, "step_gamma": 0.0},
        10,
        r"`step_gamma` must be",
    ),
    ({"scheduler": "constant", "lr": 0.1}, 0, r"`epochs` must be an int >= 1, but got 0"),
    ({"scheduler": "constant", "lr": 0.1}, 2.5, r"`epochs` must be an int >= 1, but got 2.5"),
]


@pytest.mark.parametrize(("params", "epochs", "match"), BAD_BUILDS)
def test_bad_params_are_refused_by_the_builders(
    params: dict[str, Any], epochs: Any, match: str
) -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    with pytest.raises(ValueError, match=match):
        build_scheduler(optimizer, params, epochs=epochs)
    with pytest.raises(ValueError, match=match):
        lr_curve(params, epochs=epochs)
