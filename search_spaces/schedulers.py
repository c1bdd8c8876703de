"""Learning-rate schedules: search a family and its knobs, then build the torch scheduler.

Every family suggests ``lr`` (the initial learning rate; for one-cycle, the peak) and keys
prefixed with its own name. Every schedule is stepped once per epoch, after training; a
plateau schedule is stepped with the epoch's loss, ``scheduler.step(loss)``.

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

import torch
from optuna.distributions import CategoricalDistribution, check_distribution_compatibility
from optuna.trial import BaseTrial
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau

from search_spaces._domains import check_all, check_keys
from search_spaces._families import FAMILY_TABLE, LR, Family, Scheduler
from search_spaces._spec import Choice, Spec, is_searched, suggest
from search_spaces.errors import SpaceError
from search_spaces.values import is_int

FAMILIES: tuple[str, ...] = tuple(FAMILY_TABLE)
_LAB_FAMILIES = ("exponential", "step", "cosine")

_F = TypeVar("_F", bound=Callable[..., Any])


def _lists_defaults(family: str) -> Callable[[_F], _F]:
    # Generated from the table the code uses, so the documented ranges cannot drift from it.
    def decorate(fn: _F) -> _F:
        specs = FAMILY_TABLE[family].defaults.items()
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
        _check_family(family)
        check_keys(family_overrides, FAMILY_TABLE[family].defaults, f"The {family!r} schedule")
        check_all(family_overrides, FAMILY_TABLE[family].domains)
    spec = _families_spec(families)
    candidates = spec.choices if isinstance(spec, CategoricalDistribution) else (spec,)
    _check_shared_lr([str(c) for c in candidates], overrides)
    family = suggest(trial, "scheduler", spec)
    return _suggest_family(trial, family, overrides.get(family, {}))


def build_scheduler(
    optimizer: Optimizer, params: Mapping[str, Any], *, epochs: int
) -> Scheduler | None:
    """The torch scheduler that ``params`` describe, for a run of ``epochs`` epochs.

    Call it on the optimizer that :func:`search_spaces.build_optimizer` built from the same
    params, and step it once per epoch after training (a plateau schedule with the loss).
    Returns None for ``constant``. ``params`` may hold other keys too.
    """
    family = _check_params(params, epochs)
    return family.build(optimizer, params, epochs)


def family_keys(family: str) -> tuple[str, ...]:
    """The params a family adds besides ``scheduler`` and ``lr``, e.g. ``("step_size_fraction",
    "step_gamma")`` for ``step``."""
    _check_family(family)
    return tuple(key for key in FAMILY_TABLE[family].defaults if key != "lr")


def lr_curve(params: Mapping[str, Any], *, epochs: int) -> list[float]:
    """The lr each of the ``epochs`` epochs trains with under the schedule ``params`` give.

    A plateau schedule is drawn as if the loss never stalled, that is, constant.
    """
    family = _check_params(params, epochs)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=params["lr"])
    scheduler = family.build(optimizer, params, epochs)
    curve = []
    for _ in range(epochs):
        curve.append(float(optimizer.param_groups[0]["lr"]))
        optimizer.step()  # as a training loop would; torch warns when the scheduler goes first
        if scheduler is not None and not isinstance(scheduler, ReduceLROnPlateau):
            scheduler.step()
    return curve


def _suggest_family(trial: BaseTrial, family: str, overrides: Mapping[str, Spec]) -> dict[str, Any]:
    table = FAMILY_TABLE[family]
    check_keys(overrides, table.defaults, f"suggest_{family}")
    specs = {**table.defaults, **overrides}
    check_all(specs, table.domains)
    return {"scheduler": family, **{name: suggest(trial, name, s) for name, s in specs.items()}}


def _check_family(family: object) -> None:
    if not isinstance(family, str) or family not in FAMILY_TABLE:
        raise SpaceError(
            "scheduler",
            f"A scheduler family must be one of {list(FAMILIES)}, but got {family!r}; "
            "fix the spelling."
        )


def _families_spec(families: str | Sequence[str] | CategoricalDistribution) -> Spec:
    if isinstance(families, str):
        _check_family(families)
        return families
    if not isinstance(families, CategoricalDistribution | Sequence):
        raise SpaceError(
            "families",
            f"`families` must be a family name, a list of them or a Choice, but got "
            f"{families!r}; pass for example {_LAB_FAMILIES!r}."
        )
    names = list(families.choices if isinstance(families, CategoricalDistribution) else families)
    for family in names:
        _check_family(family)
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


def _check_params(params: Mapping[str, Any], epochs: int) -> Family:
    if not is_int(epochs) or epochs < 1:
        raise SpaceError(
            "epochs",
            f"`epochs` must be an int >= 1, but got {epochs!r}; pass the length of the run."
        )
    _check_family(params.get("scheduler"))
    family = params["scheduler"]
    table = FAMILY_TABLE[family]
    missing = [k for k in table.defaults if k not in params]
    if missing:
        raise SpaceError(
            "",
            f"A {family!r} schedule needs the params {list(table.defaults)}, but got none for "
            f"{missing}; suggest them with suggest_{family} or add them to the params."
        )
    check_all({k: params[k] for k in table.defaults}, table.domains)
    return table
