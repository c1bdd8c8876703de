"""The written-out training step (hpo.train._backprop) against autograd: the same bits."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import torch

from hpo import LabData
from hpo.data import Fold, prepare_folds
from hpo.train._backprop import DERIVATIVES, mse_step
from hpo.train._kernels import whole_vectors
from hpo.train.batched import Population
from search_spaces import ACTIVATIONS

MODELS, BATCH, IN, WIDTH, OUT = 5, 7, 3, 6, 2


def _weights(depth: int, dtype: torch.dtype) -> list[torch.Tensor]:
    """A stack of ``depth`` hidden layers and an output layer, ``(models, in, out)``; one
    hidden unit of every model has zero weights, as a padded unit does (its input is
    exactly 0, where ReLU's derivative is a choice)."""
    generator = torch.Generator().manual_seed(depth)
    weights, fan_in = [], IN
    for _ in range(depth):
        weight = torch.randn(MODELS, fan_in, WIDTH, generator=generator, dtype=dtype)
        bias = torch.randn(MODELS, 1, WIDTH, generator=generator, dtype=dtype)
        weight[:, :, 0], bias[:, :, 0] = 0.0, 0.0
        weights += [weight, bias]
        fan_in = WIDTH
    weights += [torch.randn(MODELS, fan_in, OUT, generator=generator, dtype=dtype),
                torch.randn(MODELS, 1, OUT, generator=generator, dtype=dtype)]
    return [w.requires_grad_() for w in weights]


def test_every_activation_has_its_derivative() -> None:
    assert set(DERIVATIVES) == set(ACTIVATIONS)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("depth", [0, 1, 3])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_step_equals_autograd(name: str, depth: int, dtype: torch.dtype) -> None:
    weights = _weights(depth, dtype)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(MODELS, BATCH, IN, generator=generator, dtype=dtype)
    y = torch.randn(MODELS, BATCH, OUT, generator=generator, dtype=dtype)
    activation = ACTIVATIONS[name]()

    loss, out, grads = mse_step(weights, 2, depth, activation, DERIVATIVES[name], x, y)

    h = x
    for layer in range(depth):
        # On whole vectors, as the engine computes activations (hpo.train._kernels).
        h = whole_vectors(activation, torch.baddbmm(weights[2 * layer + 1], h,
                                                    weights[2 * layer]))
    expected_out = torch.baddbmm(weights[-1], h, weights[-2])
    expected_loss = ((expected_out - y) ** 2).mean(dim=(1, 2))
    expected_loss.sum().backward()
    assert torch.equal(out, expected_out)
    assert torch.equal(loss, expected_loss)
    for grad, weight in zip(grads, weights, strict=True):
        assert grad is not None and weight.grad is not None
        assert torch.equal(grad, weight.grad)


NET = {"hidden_layers": 2, "width": 6, "activation": "tanh", "batch_norm": False,
       "dropout": 0.0, "batch_size": 32, "epochs": 6, "optimizer": "adam",
       "weight_decay": 0.0, "scheduler": "constant"}


@pytest.fixture(scope="module")
def fold() -> Fold:
    return prepare_folds(LabData(n=120, seed=0), test_size=0.3, seed=0)[0]


def _trained(params: list[dict[str, Any]], fold: Fold, by_hand: bool) -> Population:
    """Four epochs of a population, stepped by hand (where autograd could not run: it
    would fail) or through autograd."""
    population = Population(params, fold, list(range(len(params))), torch.device("cpu"))
    if not by_hand:
        population.plain = None
    with torch.no_grad() if by_hand else contextlib.nullcontext():
        for epoch in range(1, 5):
            population.epoch(epoch, None)
    return population


@pytest.mark.parametrize("activation", ["tanh", "relu", "gelu"])
def test_population_steps_by_hand_as_through_autograd(fold: Fold, activation: str) -> None:
    params = [{**NET, "activation": activation, "lr": lr} for lr in (0.003, 0.01, 0.03)]
    assert Population(params, fold, [0, 1, 2], torch.device("cpu")).plain is not None
    by_hand, autograd = _trained(params, fold, True), _trained(params, fold, False)
    assert torch.equal(by_hand.flat, autograd.flat)
    for ours, theirs in zip(by_hand.members, autograd.members, strict=True):
        assert _curve(ours.rows) == _curve(theirs.rows)


def _curve(rows: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in rows]


@pytest.mark.parametrize("net", [
    {"batch_norm": True}, {"dropout": 0.2}, {"activation": ["tanh", "relu"]},
    {"hidden_layers": [1, 2]},
], ids=["batch norm", "dropout", "two activations", "two depths"])
def test_other_stacks_go_through_autograd(fold: Fold, net: dict[str, Any]) -> None:
    params = [{**NET, "lr": 0.01, **{k: v[i] if isinstance(v, list) else v
                                     for k, v in net.items()}} for i in range(2)]
    assert Population(params, fold, [0, 1], torch.device("cpu")).plain is None
