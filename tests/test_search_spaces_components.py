"""Architecture, optimizer and training spaces; composing them; docs; the import rule."""

from __future__ import annotations

import ast
import doctest
import importlib
import sys
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from optuna.samplers import RandomSampler

import search_spaces as ss
from search_spaces import (
    Choice,
    Float,
    Int,
    build_optimizer,
    build_scheduler,
    suggest_architecture,
    suggest_optimizer,
    suggest_scheduler,
    suggest_training,
)

ARCHITECTURE = {
    "hidden_layers": Int(1, 4),
    "width": Int(4, 256, log=True),
    "activation": Choice(["tanh", "relu", "gelu", "silu", "leaky_relu", "elu"]),
    "batch_norm": Choice([False, True]),
    "dropout": Float(0.0, 0.5),
}
TRAINING = {"batch_size": Choice([16, 32, 64, 128, "full"]), "epochs": Int(10, 100)}
OPTIMIZER = Choice(["sgd", "adam", "adamw", "rmsprop"])
WEIGHT_DECAY = Float(1e-6, 1e-2, log=True)
MOMENTUM = Float(0.0, 0.99)
NESTEROV = Choice([False, True])
VOCABULARY = {
    *ARCHITECTURE,
    *TRAINING,
    *("optimizer", "weight_decay", "momentum", "nesterov", "lr", "scheduler"),
}


def _trial(seed: int = 0) -> optuna.Trial:
    return optuna.create_study(sampler=RandomSampler(seed=seed)).ask()


def _space(trial: optuna.trial.BaseTrial) -> dict[str, Any]:
    return {
        **suggest_architecture(trial),
        **suggest_optimizer(trial),
        **suggest_training(trial),
        **suggest_scheduler(trial, ss.FAMILIES),
    }


# -- architecture --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_architecture_defaults(seed: int) -> None:
    trial = _trial(seed)
    params = suggest_architecture(trial)
    assert trial.distributions == ARCHITECTURE
    assert params == trial.params


def test_a_fixed_architecture_suggests_nothing() -> None:
    fixed = {"hidden_layers": 2, "width": 20, "activation": "tanh", "batch_norm": False}
    fixed["dropout"] = 0.0
    trial = _trial()
    assert suggest_architecture(trial, **fixed) == fixed
    assert trial.params == {}


def test_an_overridden_width_is_the_one_suggested() -> None:
    trial = _trial()
    assert suggest_architecture(trial, width=Int(300, 300))["width"] == 300
    assert trial.distributions["width"] == Int(300, 300)


def test_no_hidden_layers_is_linear_and_suggests_no_layer_knobs() -> None:
    trial = optuna.trial.FixedTrial({"hidden_layers": 0})
    params = suggest_architecture(trial, hidden_layers=Int(0, 3))
    assert params == dict.fromkeys(ARCHITECTURE) | {"hidden_layers": 0}
    assert trial.params == {"hidden_layers": 0}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hidden_layers": Int(-1, 2)}, r"`hidden_layers` must be an int >= 0"),
        ({"width": Float(4, 256)}, r"`width` must be an int >= 1"),
        ({"activation": "swish"}, r"`activation` must be one of \('tanh', .*\), but got 'swish'"),
        ({"activation": Choice(["tanh", "swish"])}, r"`activation` must be one of"),
        ({"batch_norm": 1}, r"`batch_norm` must be one of \(False, True\), but got 1"),
        ({"dropout": 1.0}, r"`dropout` must be a number in \[0.0, 1.0\)"),
        ({"dropout": [0.0, 0.1]}, r"write Choice\(\[0.0, 0.1\]\)"),
    ],
)
def test_bad_architecture_specs_are_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        suggest_architecture(_trial(), **kwargs)


# -- optimizer -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("optimizer", "searched"),
    [
        ("sgd", {"weight_decay": WEIGHT_DECAY, "momentum": MOMENTUM, "nesterov": NESTEROV}),
        ("rmsprop", {"weight_decay": WEIGHT_DECAY, "momentum": MOMENTUM}),
        ("adam", {"weight_decay": WEIGHT_DECAY}),
        ("adamw", {"weight_decay": WEIGHT_DECAY}),
    ],
)
def test_only_the_knobs_that_apply_are_suggested(optimizer: str, searched: dict[str, Any]) -> None:
    trial = _trial()
    params = suggest_optimizer(trial, optimizer=optimizer)
    assert trial.distributions == searched
    assert set(params) == {"optimizer", "weight_decay", "momentum", "nesterov"}
    assert all(params[k] is None for k in {"momentum", "nesterov"} - set(searched))


def test_the_optimizer_itself_is_searched_by_default() -> None:
    study = optuna.create_study(sampler=RandomSampler(seed=0))
    trials = [study.ask() for _ in range(20)]
    seen = {suggest_optimizer(trial)["optimizer"] for trial in trials}
    assert seen == set(ss.OPTIMIZERS)  # one missing in 20 draws: odds 4 * (3/4)**20 < 0.013
    assert all(trial.distributions["optimizer"] == OPTIMIZER for trial in trials)


def test_nesterov_is_not_suggested_without_momentum() -> None:
    trial = _trial()
    params = suggest_optimizer(trial, optimizer="sgd", momentum=0.0, weight_decay=0.0)
    assert params == {"optimizer": "sgd", "weight_decay": 0.0, "momentum": 0.0, "nesterov": None}
    assert trial.params == {}
    assert build_optimizer({**params, "lr": 0.1}, torch.nn.Linear(1, 1).parameters())


@pytest.mark.parametrize(
    ("params", "kind", "expected"),
    [
        (
            {
                "optimizer": "sgd",
                "lr": 0.1,
                "weight_decay": 1e-4,
                "momentum": 0.9,
                "nesterov": True,
            },
            torch.optim.SGD,
            {"lr": 0.1, "weight_decay": 1e-4, "momentum": 0.9, "nesterov": True},
        ),
        (
            {"optimizer": "rmsprop", "lr": 0.01, "weight_decay": 0.0, "momentum": 0.5},
            torch.optim.RMSprop,
            {"lr": 0.01, "weight_decay": 0.0, "momentum": 0.5},
        ),
        (
            {"optimizer": "adam", "lr": 0.001, "weight_decay": 1e-3, "momentum": None},
            torch.optim.Adam,
            {"lr": 0.001, "weight_decay": 1e-3, "betas": (0.9, 0.999)},
        ),
        (
            {"optimizer": "adamw", "lr": 0.003, "weight_decay": 1e-2},
            torch.optim.AdamW,
            {"lr": 0.003, "weight_decay": 1e-2},
        ),
        (
            {"optimizer": "sgd", "lr": 0.02},  # a hand-picked config may leave knobs out
            torch.optim.SGD,
            {"lr": 0.02, "weight_decay": 0.0, "momentum": 0.0, "nesterov": False},
        ),
    ],
)
def test_build_optimizer(params: dict[str, Any], kind: type, expected: dict[str, Any]) -> None:
    optimizer = build_optimizer(params, torch.nn.Linear(1, 1).parameters())
    assert type(optimizer) is kind
    group = optimizer.param_groups[0]
    assert {k: group[k] for k in expected} == expected
    assert len(group["params"]) == 2  # weight and bias


@pytest.mark.parametrize("seed", range(8))
def test_every_suggested_optimizer_builds(seed: int) -> None:
    params = {**suggest_optimizer(_trial(seed)), "lr": 0.01}
    optimizer = build_optimizer(params, torch.nn.Linear(1, 1).parameters())
    assert type(optimizer).__name__.lower() == params["optimizer"]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"optimizer": "lbfgs", "lr": 0.1}, r"`optimizer` must be one of \('sgd', .*'lbfgs'"),
        ({"optimizer": "adam"}, r"params must hold `lr`, but got only \['optimizer'\]"),
        ({"optimizer": "adam", "lr": 0.0}, r"`lr` must be a number in \(0.0, inf\)"),
        ({"optimizer": "adam", "lr": 0.1, "weight_decay": -1.0}, r"`weight_decay` must be"),
        ({"optimizer": "sgd", "lr": 0.1, "nesterov": True}, r"`nesterov=True` needs sgd with"),
        ({"optimizer": "adam", "lr": 0.1, "nesterov": True}, r"optimizer='adam', momentum=0.0"),
    ],
)
def test_bad_optimizer_params_are_refused(params: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_optimizer(params, torch.nn.Linear(1, 1).parameters())


def test_bad_optimizer_specs_are_refused() -> None:
    with pytest.raises(ValueError, match=r"`optimizer` must be one of .*, but got 'lion'"):
        suggest_optimizer(_trial(), optimizer="lion")
    with pytest.raises(ValueError, match=r"`momentum` must be a number in \[0.0, 1.0\)"):
        suggest_optimizer(_trial(), momentum=Float(0.0, 1.5))


# -- training ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_training_defaults(seed: int) -> None:
    trial = _trial(seed)
    assert suggest_training(trial) == trial.params
    assert trial.distributions == TRAINING


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_size": 0}, r'`batch_size` must be an int >= 1 or "full", but got 0'),
        ({"batch_size": "half"}, r"`batch_size` must be .*, but got 'half'"),
        ({"epochs": Int(0, 5)}, r"`epochs` must be an int >= 1"),
        ({"epochs": 2.5}, r"`epochs` must be an int >= 1, but got 2.5"),
    ],
)
def test_bad_training_specs_are_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        suggest_training(_trial(), **kwargs)


# -- composing a space ---------------------------------------------------------------------


def test_the_lab_space_searches_only_the_schedule() -> None:
    trial = _trial()
    params = {
        **suggest_architecture(
            trial, hidden_layers=2, width=20, activation="tanh", batch_norm=False, dropout=0.0
        ),
        **suggest_optimizer(trial, optimizer="adam", weight_decay=0.0),
        **suggest_training(trial, batch_size=64, epochs=50),
        **suggest_scheduler(trial, families="cosine"),
    }
    assert set(trial.params) == {"lr", "cosine_floor_fraction"}
    assert set(params) == VOCABULARY | {"cosine_floor_fraction"}
    optimizer = build_optimizer(params, torch.nn.Linear(1, 1).parameters())
    scheduler = build_scheduler(optimizer, params, epochs=params["epochs"])
    assert type(scheduler).__name__ == "CosineAnnealingLR"


def test_the_full_space_runs_in_a_study() -> None:
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5))
    study.optimize(lambda trial: float(_space(trial)["lr"]), n_trials=15)
    assert len(study.trials) == 15
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_the_same_seed_gives_the_same_space() -> None:
    def run(seed: int) -> list[dict[str, Any]]:
        study = optuna.create_study(sampler=RandomSampler(seed=seed))
        return [_space(study.ask()) for _ in range(10)]

    assert run(3) == run(3)
    assert run(3) != run(4)


# -- docs and layering ---------------------------------------------------------------------

MODULES = ["search_spaces", "search_spaces._spec", "search_spaces.schedulers"]
MODULES += ["search_spaces.architecture", "search_spaces.optimizers", "search_spaces.training"]
MODULES += ["search_spaces.build"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_search_spaces_imports_only_optuna_torch_and_the_stdlib() -> None:
    allowed = {"optuna", "torch", "search_spaces", "__future__", *sys.stdlib_module_names}
    package = Path(ss.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert {n.split(".")[0] for n in names} <= allowed, (path.name, names)


def test_every_public_name_is_exported() -> None:
    suggests = {f"suggest_{family}" for family in ss.FAMILIES}
    assert suggests <= set(ss.__all__)
    assert all(hasattr(ss, name) for name in ss.__all__)
