"""Build what a params dict describes: the activation layers, the optimizer, the lr schedule.

torch only, never Optuna: the training core (``hpo.train``, in every worker) builds its
models, optimizers and schedules from here without loading Optuna, whose import is seconds
of a command's start-up. The ``suggest_*`` functions that search these params, and the
specs they search by default, are in the modules beside this one.

Example:
    >>> import torch
    >>> params = {"optimizer": "adam", "lr": 0.01, "scheduler": "cosine",
    ...           "cosine_floor_fraction": 0.0}
    >>> optimizer = build_optimizer(params, torch.nn.Linear(1, 1).parameters())
    >>> type(optimizer).__name__, type(build_scheduler(optimizer, params, epochs=5)).__name__
    ('Adam', 'CosineAnnealingLR')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau
from torch.optim.optimizer import ParamsT

from search_spaces._domains import check_value, check_values, one_of, reals
from search_spaces._families import FAMILY_TABLE, Family, Scheduler
from search_spaces.errors import SpaceError
from search_spaces.values import is_int

ACTIVATIONS: Mapping[str, Callable[[], nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
}
"""The activations a network may use, by name, and the layer each name builds."""

OPTIMIZERS: tuple[str, ...] = ("sgd", "adam", "adamw", "rmsprop")
OPTIMIZER_DOMAINS = {
    "optimizer": one_of(OPTIMIZERS),
    "lr": reals(0.0, low_open=True),
    "weight_decay": reals(0.0),
    "momentum": reals(0.0, 1.0, high_open=True),
    "nesterov": one_of((False, True)),
}
WITH_MOMENTUM = ("sgd", "rmsprop")
WITH_NESTEROV = ("sgd",)

FAMILIES: tuple[str, ...] = tuple(FAMILY_TABLE)


class _Knobs(NamedTuple):
    lr: float
    weight_decay: float
    momentum: float
    nesterov: bool


def build_optimizer(params: Mapping[str, Any], model_parameters: ParamsT) -> torch.optim.Optimizer:
    """The torch optimizer that ``params`` describe, over ``model_parameters``.

    Uses ``params["lr"]`` (from the schedule's space). ``weight_decay``, ``momentum`` and
    ``nesterov`` may be missing or None, meaning 0, 0 and False. Adam's weight decay is an
    L2 term in the gradient; AdamW's is decoupled from it.

    >>> import torch
    >>> params = {"optimizer": "sgd", "lr": 0.1, "momentum": 0.9, "nesterov": True}
    >>> build_optimizer(params, torch.nn.Linear(1, 1).parameters()).defaults["nesterov"]
    True
    """
    check_value("optimizer", params.get("optimizer"), OPTIMIZER_DOMAINS["optimizer"])
    knobs = _knobs(params)
    name = params["optimizer"]
    if name == "sgd":
        return torch.optim.SGD(
            model_parameters,
            lr=knobs.lr,
            momentum=knobs.momentum,
            nesterov=knobs.nesterov,
            weight_decay=knobs.weight_decay,
        )
    if name == "rmsprop":
        return torch.optim.RMSprop(
            model_parameters, lr=knobs.lr, momentum=knobs.momentum, weight_decay=knobs.weight_decay
        )
    adam = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    # foreach: one kernel per step for all tensors, not a Python loop (measured 9% faster
    # per lab trial on CPU).
    return adam(model_parameters, lr=knobs.lr, weight_decay=knobs.weight_decay, foreach=True)


def _knobs(params: Mapping[str, Any]) -> _Knobs:
    if "lr" not in params:
        raise SpaceError(
            "lr",
            f"params must hold `lr`, but got only {sorted(params)}; "
            "add a schedule's space (suggest_scheduler) or an lr."
        )
    knobs = _Knobs(
        lr=params["lr"],
        weight_decay=_or(params.get("weight_decay"), 0.0),
        momentum=_or(params.get("momentum"), 0.0),
        nesterov=_or(params.get("nesterov"), False),
    )
    check_values(knobs._asdict(), OPTIMIZER_DOMAINS)
    if knobs.nesterov and (params["optimizer"] != "sgd" or knobs.momentum == 0):
        raise SpaceError(
            "nesterov",
            f"`nesterov=True` needs sgd with momentum > 0, but got optimizer="
            f"{params['optimizer']!r}, momentum={knobs.momentum}; set nesterov to False."
        )
    return knobs


def _or(value: Any, default: Any) -> Any:
    # None means "does not apply" (see suggest_optimizer), which is the same as the default.
    return default if value is None else value


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
    check_family(family)
    return tuple(key for key in FAMILY_TABLE[family].domains if key != "lr")


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


def check_family(family: object) -> None:
    """Refuse anything but the name of a schedule family."""
    if not isinstance(family, str) or family not in FAMILY_TABLE:
        raise SpaceError(
            "scheduler",
            f"A scheduler family must be one of {list(FAMILIES)}, but got {family!r}; "
            "fix the spelling."
        )


def _check_params(params: Mapping[str, Any], epochs: int) -> Family:
    if not is_int(epochs) or epochs < 1:
        raise SpaceError(
            "epochs",
            f"`epochs` must be an int >= 1, but got {epochs!r}; pass the length of the run."
        )
    check_family(params.get("scheduler"))
    family = params["scheduler"]
    table = FAMILY_TABLE[family]
    missing = [k for k in table.domains if k not in params]
    if missing:
        raise SpaceError(
            "",
            f"A {family!r} schedule needs the params {list(table.domains)}, but got none for "
            f"{missing}; suggest them with suggest_{family} or add them to the params."
        )
    check_values({k: params[k] for k in table.domains}, table.domains)
    return table
