"""Learning-rate schedules, one family at a time: the lr each epoch trains with."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
import torch
from torch.optim.lr_scheduler import ReduceLROnPlateau

from search_spaces import build_scheduler, lr_curve

ONECYCLE = {
    "scheduler": "onecycle",
    "lr": 0.5,
    "onecycle_pct_start": 0.3,
    "onecycle_div_factor": 10.0,
    "onecycle_final_div_factor": 100.0,
}


def _after_steps(params: dict[str, Any], epochs: int) -> float:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=params["lr"])
    scheduler = build_scheduler(optimizer, params, epochs=epochs)
    assert scheduler is not None
    for _ in range(epochs):
        optimizer.step()
        scheduler.step()
    return float(optimizer.param_groups[0]["lr"])


def test_constant_builds_no_scheduler() -> None:
    params = {"scheduler": "constant", "lr": 0.02}
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.02)
    assert build_scheduler(optimizer, params, epochs=10) is None
    assert lr_curve(params, epochs=4) == [0.02] * 4


@pytest.mark.parametrize(
    ("lr", "final", "epochs"), [(0.1, 0.001, 50), (3e-4, 1e-5, 100), (0.01, 0.2, 7)]
)
def test_exponential_ends_at_the_final_lr(lr: float, final: float, epochs: int) -> None:
    params = {"scheduler": "exponential", "lr": lr, "exponential_lr_final": final}
    assert _after_steps(params, epochs) == pytest.approx(final, rel=1e-6)
    expected = [lr * (final / lr) ** (e / epochs) for e in range(epochs)]
    assert lr_curve(params, epochs=epochs) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("fraction", "epochs", "step_size"), [(0.25, 20, 5), (0.18, 10, 2), (0.12, 10, 1), (0.01, 4, 1)]
)
def test_step_drops_by_gamma_every_step_size_epochs(
    fraction: float, epochs: int, step_size: int
) -> None:
    # step size = max(1, round(fraction * epochs)): never a zero-length step
    params = {"scheduler": "step", "lr": 0.1, "step_size_fraction": fraction, "step_gamma": 0.5}
    expected = [0.1 * 0.5 ** (e // step_size) for e in range(epochs)]
    assert lr_curve(params, epochs=epochs) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(("first", "second"), [(0.3, 0.7), (0.7, 0.3)])
def test_multistep_drops_at_both_milestones(first: float, second: float) -> None:
    params = {
        "scheduler": "multistep",
        "lr": 1.0,
        "multistep_first_fraction": first,
        "multistep_second_fraction": second,
        "multistep_gamma": 0.1,
    }
    expected = [1.0] * 3 + [0.1] * 4 + [0.01] * 3
    assert lr_curve(params, epochs=10) == pytest.approx(expected, rel=1e-9)


def test_multistep_milestones_on_one_epoch_drop_twice() -> None:
    params = {"scheduler": "multistep", "lr": 1.0, "multistep_gamma": 0.1}
    params |= {"multistep_first_fraction": 0.5, "multistep_second_fraction": 0.5}
    assert lr_curve(params, epochs=4) == pytest.approx([1.0, 1.0, 0.01, 0.01])


@pytest.mark.parametrize("floor", [0.0, 0.05])
def test_cosine_starts_at_lr_and_ends_at_the_floor(floor: float) -> None:
    lr, epochs = 0.1, 20
    params = {"scheduler": "cosine", "lr": lr, "cosine_floor_fraction": floor}
    expected = [
        floor * lr + (lr - floor * lr) * (1 + math.cos(math.pi * e / epochs)) / 2
        for e in range(epochs)
    ]
    assert lr_curve(params, epochs=epochs) == pytest.approx(expected, rel=1e-6)
    assert _after_steps(params, epochs) == pytest.approx(floor * lr, abs=1e-12)


@pytest.mark.parametrize(("mult", "restarts"), [(1, [5, 10, 15]), (2, [5, 15])])
def test_cosine_restarts_return_to_lr(mult: int, restarts: list[int]) -> None:
    params = {
        "scheduler": "cosine_restarts",
        "lr": 0.1,
        "cosine_restarts_period_fraction": 0.25,
        "cosine_restarts_mult": mult,
        "cosine_restarts_floor_fraction": 0.1,
    }
    curve = lr_curve(params, epochs=20)
    at_lr = [e for e, lr in enumerate(curve) if lr == pytest.approx(0.1)]
    assert at_lr == [0, *restarts]
    assert min(curve) >= 0.1 * 0.1


@pytest.mark.parametrize("epochs", [3, 4, 10, 17, 50])
@pytest.mark.parametrize("pct", [0.1, 0.25, 0.3, 0.5, 0.9])
def test_onecycle_rises_to_lr_exactly_then_falls(epochs: int, pct: float) -> None:
    lr, div, final_div = 0.05, 20.0, 100.0
    params = {
        "scheduler": "onecycle",
        "lr": lr,
        "onecycle_pct_start": pct,
        "onecycle_div_factor": div,
        "onecycle_final_div_factor": final_div,
    }
    curve = lr_curve(params, epochs=epochs)
    peak = min(max(round(pct * epochs), 1), epochs - 2)
    assert max(curve) == pytest.approx(lr, rel=1e-9)
    assert curve.index(max(curve)) == peak
    assert curve[0] == pytest.approx(lr / div)
    assert all(a < b for a, b in itertools.pairwise(curve[: peak + 1]))
    assert all(a >= b for a, b in itertools.pairwise(curve[peak:]))
    assert curve[-1] == pytest.approx(lr / div / final_div, rel=1e-6)


@pytest.mark.parametrize("epochs", [1, 2])
def test_onecycle_too_short_to_cycle_trains_at_lr(epochs: int) -> None:
    assert lr_curve(ONECYCLE, epochs=epochs) == [0.5] * epochs


def test_onecycle_leaves_the_optimizer_momentum_alone() -> None:
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.7)
    build_scheduler(optimizer, ONECYCLE, epochs=10)
    assert optimizer.param_groups[0]["momentum"] == 0.7


def test_plateau_cuts_the_lr_when_the_loss_stalls() -> None:
    params = {"scheduler": "plateau", "lr": 0.1, "plateau_factor": 0.5, "plateau_patience": 2}
    assert lr_curve(params, epochs=5) == [0.1] * 5  # drawn as if the loss kept improving
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    scheduler = build_scheduler(optimizer, params, epochs=10)
    assert isinstance(scheduler, ReduceLROnPlateau)
    assert (scheduler.mode, scheduler.factor, scheduler.patience) == ("min", 0.5, 2)
    for loss in [1.0, 0.5, 0.5, 0.5, 0.5]:  # improves once, then stalls for 3 > patience
        optimizer.step()
        scheduler.step(loss)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05)


def test_warmup_cosine_rises_then_falls_to_the_floor() -> None:
    lr, epochs = 0.1, 20
    params = {
        "scheduler": "warmup_cosine",
        "lr": lr,
        "warmup_cosine_warmup_fraction": 0.2,  # 4 warm-up epochs
        "warmup_cosine_floor_fraction": 0.1,
    }
    curve = lr_curve(params, epochs=epochs)
    assert curve[:5] == pytest.approx([0.02, 0.04, 0.06, 0.08, 0.1])
    assert all(a > b for a, b in itertools.pairwise(curve[4:]))
    assert _after_steps(params, epochs) == pytest.approx(0.1 * lr)


def test_warmup_cosine_without_warmup_is_cosine() -> None:
    params = {"scheduler": "warmup_cosine", "lr": 0.1, "warmup_cosine_warmup_fraction": 0.0}
    params["warmup_cosine_floor_fraction"] = 0.0
    cosine = {"scheduler": "cosine", "lr": 0.1, "cosine_floor_fraction": 0.0}
    assert lr_curve(params, epochs=10) == pytest.approx(lr_curve(cosine, epochs=10))
