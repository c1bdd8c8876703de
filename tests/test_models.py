from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from hpo.errors import ConfigError
from hpo.train.models import ACTIVATIONS, ModelSpec, build_model, count_parameters


def test_no_hidden_layer_is_linear_regression() -> None:
    model = build_model(ModelSpec(in_features=3))
    assert isinstance(model, nn.Linear)
    assert (model.in_features, model.out_features) == (3, 1)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize(("batch_norm", "dropout"), [(False, 0.0), (True, 0.0), (True, 0.2)])
def test_mlp_layers_in_order(activation: str, batch_norm: bool, dropout: float) -> None:
    spec = ModelSpec(hidden=(8, 4), activation=activation, batch_norm=batch_norm, dropout=dropout)
    model = build_model(spec)
    per_layer: list[type[nn.Module]] = [nn.Linear]
    per_layer += [nn.BatchNorm1d] if batch_norm else []
    per_layer += [type(ACTIVATIONS[activation]())]
    per_layer += [nn.Dropout] if dropout else []
    assert [type(layer) for layer in model.children()] == [*per_layer, *per_layer, nn.Linear]
    assert tuple(model(torch.zeros(5, 1)).shape) == (5, 1)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (ModelSpec(), 2),
        (ModelSpec(hidden=(20, 20)), 20 + 20 + 20 * 20 + 20 + 20 + 1),  # the lab net: 481
        # batch norm: its weight and bias per unit; the Linear before it has no bias
        (ModelSpec(hidden=(20, 20), batch_norm=True), 481 - 2 * 20 + 2 * (2 * 20)),
        (ModelSpec(in_features=3, hidden=(5,), out_features=2), 3 * 5 + 5 + 5 * 2 + 2),
    ],
)
def test_count_parameters(spec: ModelSpec, expected: int) -> None:
    assert count_parameters(build_model(spec)) == expected


def test_count_parameters_skips_frozen_weights() -> None:
    model = build_model(ModelSpec(hidden=(4,)))
    model.get_submodule("0").get_parameter("weight").requires_grad_(False)
    assert count_parameters(model) == 4 + 4 * 1 + 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"activation": "sigmoidal"}, r"`activation` must be one of tanh, relu, gelu, silu, "),
        ({"hidden": (20, 0)}, r"`hidden` must be a tuple of layer widths"),
        ({"hidden": 20}, r"`hidden` must be a tuple of layer widths"),
        ({"hidden": (2.5,)}, r"`hidden` must be a tuple of layer widths"),
        ({"in_features": 0}, r"`in_features` must be a positive int"),
        ({"out_features": True}, r"`out_features` must be a positive int"),
        ({"dropout": 1.0}, r"`0 <= dropout < 1` must hold"),
        ({"dropout": -0.1}, r"`0 <= dropout < 1` must hold"),
        ({"dropout": "0.1"}, r"`0 <= dropout < 1` must hold"),
        ({"batch_norm": 1}, r"`batch_norm` must be True or False"),
    ],
)
def test_spec_validation(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ModelSpec(**kwargs)


def test_hidden_list_becomes_a_tuple() -> None:
    spec = ModelSpec(hidden=[20, 20])  # type: ignore[arg-type]
    assert spec.hidden == (20, 20) and hash(spec) == hash(ModelSpec(hidden=(20, 20)))


def test_to_dict_round_trip_with_plain_types() -> None:
    spec = ModelSpec(in_features=2, hidden=(16, 8), activation="gelu", batch_norm=True, dropout=0.1)
    values = spec.to_dict()
    assert json.loads(json.dumps(values)) == values
    assert ModelSpec.from_dict(values) == spec


def test_from_dict_refuses_unknown_keys() -> None:
    with pytest.raises(ConfigError, match=r"unknown ModelSpec keys \['width'\]; valid keys"):
        ModelSpec.from_dict({"hidden": [4], "width": 4})


def test_seed_gives_the_same_weights_without_touching_global_state() -> None:
    spec = ModelSpec(hidden=(20, 20))
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first, again = build_model(spec, seed=7), build_model(spec, seed=7)
    assert torch.rand(1) == expected_next
    for a, b in zip(first.parameters(), again.parameters(), strict=True):
        assert torch.equal(a, b)
    other = build_model(spec, seed=8)
    assert not torch.equal(next(first.parameters()), next(other.parameters()))


def test_a_file_saved_with_a_bias_before_batch_norm_loads_to_the_same_outputs(
        tmp_path: Path) -> None:
    # Files saved before the Linear that batch norm follows lost its bias: the bias is
    # folded into the running mean, so the eval-mode outputs stay what they were.
    from hpo.train.checkpoints import _FORMAT, load_model

    spec = ModelSpec(in_features=3, hidden=(4, 4), batch_norm=True)
    torch.manual_seed(0)
    old = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 4),
                        nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 1))
    old.train()
    old(torch.randn(16, 3) * 3 + 1)  # running statistics away from their start
    old.eval()
    torch.save({"format": _FORMAT, "spec": spec.to_dict(), "state": old.state_dict(),
                "extra": {}}, tmp_path / "old.pt")
    model, _, _ = load_model(tmp_path / "old.pt")
    x = torch.randn(8, 3)
    with torch.no_grad():
        assert torch.allclose(model(x), old(x), atol=1e-6)
