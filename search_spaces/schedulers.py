"""Learning-rate schedules: search a family and its knobs, then build the torch scheduler.

Every family suggests ``lr`` (the initial learning rate; for one-cycle, the peak) and keys
prefixed with its own name. Every schedule is stepped once per epoch, after training; a
plateau schedule is stepped with the epoch's loss, ``scheduler.step(loss)``. The builders
(``build_scheduler``, ``lr_curve``, ``family_keys``) are in :mod:`search_spaces.build`,
which needs no Optuna, and importable from here too.

>>> import optuna, torch
>>> trial = optuna.trial.FixedTrial({"lr": 0.1, "exponential_lr_final": 0.001})
>>> params = suggest_scheduler(trial, families="exponential")
>>> params
{'scheduler': 'exponential', 'lr': 0.1, 'exponential_lr_final': 0.001}
>>> [round(lr, 6) for lr in lr_curve(params, epochs=4)]
[0.1, 0.031623, 0.01, 0.003162]
>>> optimizer = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=params["lr"])
>>> type(build_scheduler(optimizer, params, epochs=50)).__name__
'ExponentialLR'
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from optuna.distributions import CategoricalDistribution, check_distribution_compatibility
from optuna.trial import BaseTrial

from search_spaces._domains import check_keys
from search_spaces._families import FAMILY_TABLE
from search_spaces._spec import Choice, Float, Int, Spec, check_specs, is_searched, suggest
from search_spaces.build import FAMILIES, build_scheduler, check_family, family_keys, lr_curve
from search_spaces.errors import SpaceError

__all__ = [
    "DEFAULTS",
    "FAMILIES",
    "build_scheduler",
    "family_keys",
    "lr_curve",
    "suggest_constant",
    "suggest_cosine",
    "suggest_cosine_restarts",
    "suggest_exponential",
    "suggest_multistep",
    "suggest_onecycle",
    "suggest_plateau",
    "suggest_scheduler",
    "suggest_step",
    "suggest_warmup_cosine",
]

_LAB_FAMILIES = ("exponential", "step", "cosine")
# One lr range for every family: Optuna refuses a parameter name whose kind of range (log or
# not, float or int) changes between trials, and "lr" is shared when the family is searched.
LR = Float(1e-4, 0.3, log=True)

DEFAULTS: dict[str, dict[str, Spec]] = {
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
"""Each family's default search spec per key: the keys of ``search_spaces._families``'s
table, which the builders check, searched over these ranges unless overridden."""

_F = TypeVar("_F", bound=Callable[..., Any])


def _lists_defaults(family: str) -> Callable[[_F], _F]:
    # Generated from the table the code uses, so the documented ranges cannot drift from it.
    def decorate(fn: _F) -> _F:
        specs = DEFAULTS[family].items()
        rows = "\n".join(f"    - ``{name}``: {spec!r}" for name, spec in specs)
        intro = (fn.__doc__ or "").rstrip()
        fn.__doc__ = f"{intro}\n\n    Keys and default specs (override any):\n\n{rows}\n"
        return fn

    return decorate


@_lists_defaults("constant")
def suggest_constant(trial: BaseTrial, **overrides: Spec) -> dict[str, Any]:
    """No schedule: the lr stays where it starts."""
    return _suggest_family(trial, "constant", overrides)


@_lists_defaults("exponential")
def suggest_exponential(trial: BaseTrial, **overrides: Spec) -> dict[str, Any]:
    """Exponential decay from ``lr`` to ``exponential_lr_final`` over the run (the lab's).

    The builder derives ``gamma = (lr_final / lr) ** (1 / epochs)``; a final lr above the
    initial one grows it instead, which the builder allows.
    """
    return _suggest_family(trial, "exponential", overrides)


@_lists_defaults("step")
def suggest_step(trial: BaseTrial, **overrides: Spec) -> dict[str, Any]:
    """Step drop: multiply the lr by ``step_gamma`` every ``step_size_fraction`` of the run.

    The step size is ``max(1, round(step_size_fraction * epochs))`` epochs.
    """
    return _suggest_family(trial, "step", overrides)


@_lists_defaults("cosine")
def suggest_cosine(trial: BaseTrial, **overrides: Spec) -> dict[str, Any]:
    """Cosine annealing over the run, from ``lr`` down to ``cosine_floor_fraction * lr``."""
    return _suggest_family(trial, "cosine", overrides)


@_lists_defaults("multistep")
def suggest_multistep(trial: BaseTrial, **overrides: Spec) -> dict[str, Any]:
    """Two drops by ``multistep_gamma``, at two shares of the run."""
    return _suggest_family(trial, "multistep", overrides)


@_lists_defaults("cosine_restarts")
def suggest_cosine_restarts(trial: BaseTrial, **overrides: Spec) -> dict[str, Any]:
    """Cosine annealing with warm restarts (SGDR).

    The first period is a share of the run; each next one is ``cosine_restarts_mult`` times
    longer; the floor is ``cosine_restarts_floor_fraction * lr``.
    """
    return _suggest_family(trial, "cosine_restarts", overrides)


@_lists_defaults("onecycle")
def suggest_onecycle(trial: BaseTrial, **overrides: Spec) -> dict[str, Any]:
    """One cycle: rise from ``lr / div_factor`` to the peak ``lr``, then anneal far below.

    The peak falls on the epoch nearest ``onecycle_pct_start`` of the run (never the first or
    the last); runs shorter than 3 epochs train at ``lr`` throughout.
    """
    return _suggest_family(trial, "onecycle", overrides)


@_lists_defaults("plateau")
def suggest_plateau(trial: BaseTrial, **overrides: Spec) -> dict[str, Any]:
    """Multiply the lr by ``plateau_factor`` once the loss stalls ``plateau_patience`` epochs."""
    return _suggest_family(trial, "plateau", overrides)


@_lists_defaults("warmup_cosine")
def suggest_warmup_cosine(trial: BaseTrial, **overrides: Spec) -> dict[str, Any]:
    """Linear warm-up for a share of the run, then cosine down to a floor share of ``lr``.

    The warm-up climbs in equal steps from ``lr / (warmup + 1)`` and reaches ``lr`` on the
    first cosine epoch; a share of 0 skips it.
    """
    return _suggest_family(trial, "warmup_cosine", overrides)


def suggest_scheduler(
    trial: BaseTrial,
    families: str | Sequence[str] | CategoricalDistribution = _LAB_FAMILIES,
    overrides: Mapping[str, Mapping[str, Spec]] | None = None,
) -> dict[str, Any]:
    """Suggest a schedule family (param ``"scheduler"``) and then that family's knobs.

    A single family name is fixed, not suggested; several become a categorical choice, and
    only the chosen family's keys are suggested. ``overrides`` maps a family to the keyword
    overrides of its ``suggest_<family>``. ``lr`` is one parameter shared by the families,
    so its ranges must be of one kind (all log or all linear, all float).

    >>> import optuna
    >>> study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    >>> params = suggest_scheduler(study.ask(), ("step", "cosine"), {"step": {"step_gamma": 0.5}})
    >>> params["scheduler"] in ("step", "cosine")
    True
    """
    overrides = overrides or {}
    # Every override is checked now, not when its family is first drawn many trials later.
    for family, family_overrides in overrides.items():
        check_family(family)
        check_keys(family_overrides, DEFAULTS[family], f"The {family!r} schedule")
        check_specs(family_overrides, FAMILY_TABLE[family].domains)
    spec = _families_spec(families)
    candidates = spec.choices if isinstance(spec, CategoricalDistribution) else (spec,)
    _check_shared_lr([str(c) for c in candidates], overrides)
    family = suggest(trial, "scheduler", spec)
    return _suggest_family(trial, family, overrides.get(family, {}))


def _suggest_family(trial: BaseTrial, family: str, overrides: Mapping[str, Spec]) -> dict[str, Any]:
    check_keys(overrides, DEFAULTS[family], f"suggest_{family}")
    specs = {**DEFAULTS[family], **overrides}
    check_specs(specs, FAMILY_TABLE[family].domains)
    return {"scheduler": family, **{name: suggest(trial, name, s) for name, s in specs.items()}}


def _families_spec(families: str | Sequence[str] | CategoricalDistribution) -> Spec:
    if isinstance(families, str):
        check_family(families)
        return families
    if not isinstance(families, CategoricalDistribution | Sequence):
        raise SpaceError(
            "families",
            f"`families` must be a family name, a list of them or a Choice, but got "
            f"{families!r}; pass for example {_LAB_FAMILIES!r}."
        )
    names = list(families.choices if isinstance(families, CategoricalDistribution) else families)
    for family in names:
        check_family(family)
    if len(names) == 1 and not isinstance(families, CategoricalDistribution):
        return names[0]
    return Choice(names)  # also refuses an empty list and repeats


def _check_shared_lr(families: Sequence[str], overrides: Mapping[str, Mapping[str, Spec]]) -> None:
    searched = {f: overrides.get(f, {}).get("lr", LR) for f in families}
    searched = {f: spec for f, spec in searched.items() if is_searched(spec)}
    for (first, a), (other, b) in itertools.pairwise(searched.items()):
        try:
            check_distribution_compatibility(a, b)
        except ValueError:
            raise SpaceError(
                "lr",
                f"`lr` must have one kind of range in every family (Optuna refuses a param "
                f"whose kind changes between trials), but got {a!r} for {first!r} and {b!r} "
                f"for {other!r}; give them the same kind of range."
            ) from None
