"""The learning-rate schedule families: the keys each takes, their valid values and a torch
builder each. Their default search specs are ``search_spaces.schedulers.DEFAULTS``: this
table needs torch only, for the training core, which never loads Optuna.

Every schedule is stepped once per epoch, after training, so lengths given as a share of the
run (``*_fraction``) become whole epochs here, and one-cycle counts epochs as its steps.
Each builder is defined for every value its domains accept and for any ``epochs >= 1``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, TypeAlias

from torch.optim import Optimizer
from torch.optim.lr_scheduler import (
    ConstantLR,
    CosineAnnealingLR,
    CosineAnnealingWarmRestarts,
    ExponentialLR,
    LinearLR,
    LRScheduler,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
    SequentialLR,
    StepLR,
)

from search_spaces._domains import Domain, ints, reals

Scheduler: TypeAlias = LRScheduler | ReduceLROnPlateau
Builder: TypeAlias = Callable[[Optimizer, Mapping[str, Any], int], Scheduler | None]


class Family(NamedTuple):
    """One schedule family: its keys (``lr`` first) with their valid values, and how it is
    built."""

    domains: Mapping[str, Domain]
    build: Builder


_POSITIVE = reals(0.0, low_open=True)
_SHARE = reals(0.0, 1.0, low_open=True)  # a share of the epochs: at least one epoch
_FLOOR = reals(0.0, 1.0)  # a floor as a share of lr; 0 anneals all the way down
_DROP = reals(0.0, 1.0, low_open=True)  # a multiplier that drops the lr


def epochs_of(fraction: float, epochs: int) -> int:
    """``fraction`` of ``epochs`` as a whole number of epochs, never fewer than one."""
    return max(1, round(fraction * epochs))


def _constant(optimizer: Optimizer, p: Mapping[str, Any], epochs: int) -> None:
    return None


def _exponential(optimizer: Optimizer, p: Mapping[str, Any], epochs: int) -> Scheduler:
    # The lab's parameterization: after `epochs` steps the lr has reached its final value.
    gamma = (p["exponential_lr_final"] / p["lr"]) ** (1 / epochs)
    return ExponentialLR(optimizer, gamma=gamma)


def _step(optimizer: Optimizer, p: Mapping[str, Any], epochs: int) -> Scheduler:
    step_size = epochs_of(p["step_size_fraction"], epochs)
    return StepLR(optimizer, step_size=step_size, gamma=p["step_gamma"])


def _multistep(optimizer: Optimizer, p: Mapping[str, Any], epochs: int) -> Scheduler:
    # MultiStepLR counts its milestones, so they may come in any order, and one shared by
    # both drops the lr twice there, as two milestones should.
    shares = (p["multistep_first_fraction"], p["multistep_second_fraction"])
    milestones = [epochs_of(share, epochs) for share in shares]
    return MultiStepLR(optimizer, milestones=milestones, gamma=p["multistep_gamma"])


def _cosine(optimizer: Optimizer, p: Mapping[str, Any], epochs: int) -> Scheduler:
    floor = p["cosine_floor_fraction"] * p["lr"]
    return CosineAnnealingLR(optimizer, T_max=epochs, eta_min=floor)


def _cosine_restarts(optimizer: Optimizer, p: Mapping[str, Any], epochs: int) -> Scheduler:
    period = epochs_of(p["cosine_restarts_period_fraction"], epochs)
    floor = p["cosine_restarts_floor_fraction"] * p["lr"]
    return CosineAnnealingWarmRestarts(
        optimizer, T_0=period, T_mult=p["cosine_restarts_mult"], eta_min=floor
    )


def _onecycle(optimizer: Optimizer, p: Mapping[str, Any], epochs: int) -> Scheduler:
    if epochs < 3:
        # No room to rise, peak and fall: train at the peak lr, as a constant schedule would.
        return ConstantLR(optimizer, factor=1.0, total_iters=0)
    # Torch peaks at step pct_start * total_steps - 1, which falls between two epochs unless
    # it is whole; rounding it to an epoch in [1, epochs - 2] makes every run reach lr exactly.
    peak = min(max(round(p["onecycle_pct_start"] * epochs), 1), epochs - 2)
    return OneCycleLR(
        optimizer,
        max_lr=p["lr"],
        total_steps=epochs,
        pct_start=(peak + 1) / epochs,
        div_factor=p["onecycle_div_factor"],
        final_div_factor=p["onecycle_final_div_factor"],
        # Cycling momentum would overwrite the momentum that the optimizer space tunes.
        cycle_momentum=False,
    )


def _plateau(optimizer: Optimizer, p: Mapping[str, Any], epochs: int) -> Scheduler:
    # mode="min": the loop passes a loss to step(), the lower the better.
    return ReduceLROnPlateau(
        optimizer, mode="min", factor=p["plateau_factor"], patience=p["plateau_patience"]
    )


def _warmup_cosine(optimizer: Optimizer, p: Mapping[str, Any], epochs: int) -> Scheduler:
    floor = p["warmup_cosine_floor_fraction"] * p["lr"]
    share = p["warmup_cosine_warmup_fraction"]
    warmup = min(epochs_of(share, epochs) if share > 0 else 0, epochs - 1)
    if warmup == 0:
        return CosineAnnealingLR(optimizer, T_max=epochs, eta_min=floor)
    # Starting at lr / (warmup + 1) climbs in equal steps and never spends an epoch at lr 0.
    rise = LinearLR(optimizer, start_factor=1 / (warmup + 1), total_iters=warmup)
    fall = CosineAnnealingLR(optimizer, T_max=epochs - warmup, eta_min=floor)
    return SequentialLR(optimizer, schedulers=[rise, fall], milestones=[warmup])


def _family(build: Builder, *keys: str) -> Family:
    return Family({"lr": _POSITIVE, **{k: _DOMAINS[k] for k in keys}}, build)


_DOMAINS: dict[str, Domain] = {
    "exponential_lr_final": _POSITIVE,
    "step_size_fraction": _SHARE,
    "step_gamma": _DROP,
    "multistep_first_fraction": _SHARE,
    "multistep_second_fraction": _SHARE,
    "multistep_gamma": _DROP,
    "cosine_floor_fraction": _FLOOR,
    "cosine_restarts_period_fraction": _SHARE,
    "cosine_restarts_mult": ints(1),
    "cosine_restarts_floor_fraction": _FLOOR,
    "onecycle_pct_start": reals(0.0, 1.0, low_open=True, high_open=True),
    "onecycle_div_factor": reals(1.0),
    "onecycle_final_div_factor": reals(1.0),
    "plateau_factor": reals(0.0, 1.0, low_open=True, high_open=True),
    "plateau_patience": ints(0),
    "warmup_cosine_warmup_fraction": _FLOOR,
    "warmup_cosine_floor_fraction": _FLOOR,
}

FAMILY_TABLE: dict[str, Family] = {
    "constant": _family(_constant),
    "exponential": _family(_exponential, "exponential_lr_final"),
    "step": _family(_step, "step_size_fraction", "step_gamma"),
    "cosine": _family(_cosine, "cosine_floor_fraction"),
    "multistep": _family(
        _multistep, "multistep_first_fraction", "multistep_second_fraction", "multistep_gamma"
    ),
    "cosine_restarts": _family(
        _cosine_restarts,
        "cosine_restarts_period_fraction",
        "cosine_restarts_mult",
        "cosine_restarts_floor_fraction",
    ),
    "onecycle": _family(
        _onecycle, "onecycle_pct_start", "onecycle_div_factor", "onecycle_final_div_factor"
    ),
    "plateau": _family(_plateau, "plateau_factor", "plateau_patience"),
    "warmup_cosine": _family(
        _warmup_cosine, "warmup_cosine_warmup_fraction", "warmup_cosine_floor_fraction"
    ),
}
