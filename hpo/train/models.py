"""Networks of the lab from a few architecture knobs: linear regression, or an MLP.

Example:
    >>> spec = ModelSpec(in_features=1, hidden=(20, 20), activation="tanh")
    >>> model = build_model(spec, seed=0)
    >>> count_parameters(model)
    481
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

from hpo.errors import ConfigError
from search_spaces import ACTIVATIONS  # the one list of names, and the layer each builds
from search_spaces.values import is_int


@dataclass(frozen=True)
class ModelSpec:
    """The architecture of a regression network; ``hidden=()`` is linear regression.

    Each hidden layer is Linear → [BatchNorm1d] → activation → [Dropout]; a Linear that
    batch norm follows has no bias (batch norm subtracts it; its true gradient is zero, so
    an Adam-like optimizer would only step on rounding noise). For linear regression
    ``activation``, ``batch_norm`` and ``dropout`` have nothing to act on.

    Example:
        >>> ModelSpec(hidden=(20, 20), activation="tanh", batch_norm=True).to_dict()["hidden"]
        [20, 20]
    """

    in_features: int = 1
    hidden: tuple[int, ...] = ()
    activation: str = "tanh"
    batch_norm: bool = False
    dropout: float = 0.0
    out_features: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "hidden", _checked_hidden(self.hidden))
        for name in ("in_features", "out_features"):
            value = getattr(self, name)
            if not _is_positive_int(value):
                raise ConfigError(f"`{name}` must be a positive int, but got {value!r}; e.g. 1.")
        if self.activation not in ACTIVATIONS:
            valid = ", ".join(ACTIVATIONS)
            raise ConfigError(
                f"`activation` must be one of {valid}, but got {self.activation!r}; pick one."
            )
        if not isinstance(self.batch_norm, bool):
            raise ConfigError(f"`batch_norm` must be True or False, but got {self.batch_norm!r}.")
        if not isinstance(self.dropout, (int, float)) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(
                f"`0 <= dropout < 1` must hold, but got dropout={self.dropout!r}; "
                "pass e.g. dropout=0.1."
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (``hidden`` as a list): JSON, ``torch.load(weights_only=True)``."""
        values = asdict(self)
        values["hidden"] = list(self.hidden)
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ModelSpec:
        """The spec that `to_dict` wrote; unknown keys are refused."""
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown ModelSpec keys {unknown}; valid keys are {sorted(known)}; "
                "remove or rename them."
            )
        return cls(**values)


def build_model(spec: ModelSpec, *, seed: int | None = None) -> nn.Module:
    """A fresh network for ``spec``; with ``seed``, the same initial weights every time.

    Seeding does not touch the global random state, so it cannot disturb other draws.

    Example:
        >>> build_model(ModelSpec())  # linear regression
        Linear(in_features=1, out_features=1, bias=True)
    """
    if seed is None:
        return _build(spec)
    with torch.random.fork_rng(devices=[]):
        # The CPU generator alone, which draws the weights: torch.manual_seed would also
        # queue the seed for CUDA, recording a stack trace each call where CUDA is not yet
        # initialized (0.5 ms; measured: most of the cost of a population's new members).
        torch.default_generator.manual_seed(seed)
        return _build(spec)


def count_parameters(model: nn.Module) -> int:
    """The number of trainable weights in ``model``."""
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


def _build(spec: ModelSpec) -> nn.Module:
    if not spec.hidden:
        return nn.Linear(spec.in_features, spec.out_features)
    layers: list[nn.Module] = []
    width_in = spec.in_features
    for width in spec.hidden:
        layers.append(nn.Linear(width_in, width, bias=not spec.batch_norm))
        if spec.batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(ACTIVATIONS[spec.activation]())
        if spec.dropout > 0.0:
            layers.append(nn.Dropout(spec.dropout))
        width_in = width
    layers.append(nn.Linear(width_in, spec.out_features))
    return nn.Sequential(*layers)


def _checked_hidden(hidden: object) -> tuple[int, ...]:
    widths = tuple(hidden) if isinstance(hidden, (tuple, list)) else None
    if widths is None or not all(_is_positive_int(width) for width in widths):
        raise ConfigError(
            f"`hidden` must be a tuple of layer widths (positive ints), but got {hidden!r}; "
            "pass e.g. hidden=(20, 20), or () for linear regression."
        )
    return widths


def _is_positive_int(value: object) -> bool:
    return is_int(value) and value >= 1


def model_spec(params: Mapping[str, Any], in_features: int) -> ModelSpec:
    """The network a trial's params describe; ``hidden_layers=0`` is linear regression."""
    layers = int(params["hidden_layers"])
    if layers == 0:  # the architecture knobs do not apply to a single linear layer
        return ModelSpec(in_features=in_features)
    return ModelSpec(
        in_features=in_features,
        hidden=(int(params["width"]),) * layers,
        activation=str(params["activation"]),
        batch_norm=bool(params.get("batch_norm", False)),
        dropout=float(params.get("dropout") or 0.0),
    )
