"""The padded, stacked weights of a population whose models differ in depth, width,
activation and batch norm, and the per-model masks that keep each model exactly itself.

Every hidden layer is padded to the population's widest, and every model to its deepest:
a model's padded slots start at zero, and the forward pass multiplies each hidden layer's
output by the model's unit mask (1 on its real units of a layer it has, else 0), so a padded
unit outputs exactly 0 whatever the activation (sigmoid-like ones give act(0) != 0) and
gets an exactly zero gradient: its weights never move, and it adds exact zeros to the next
layer's sums. A model shallower than the population passes its last hidden output through
the layers it lacks (``deeper``), so the output layer reads its own last layer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from hpo.train.models import ModelSpec, build_model, count_parameters


@dataclass(frozen=True)
class Layout:
    """The padded shapes of a population: ``depth`` hidden layers of ``width`` units each
    (batch norm weights too, if ``batch_norm``), then the output layer."""

    in_features: int
    depth: int
    width: int
    batch_norm: bool
    out_features: int = 1

    @classmethod
    def of(cls, specs: Sequence[ModelSpec]) -> Layout:
        depths = {len(spec.hidden) for spec in specs}
        width = max((w for spec in specs for w in spec.hidden), default=0)
        if 0 in depths and len(depths) > 1:  # linear models pass their input through
            width = max(width, specs[0].in_features)
        return cls(specs[0].in_features, max(depths), width,
                   any(spec.batch_norm for spec in specs if spec.hidden),
                   specs[0].out_features)

    def covers(self, specs: Sequence[ModelSpec]) -> bool:
        """Whether models of ``specs`` fit in this layout's padded slots."""
        needed = Layout.of(specs)
        return (needed.in_features == self.in_features and needed.depth <= self.depth
                and needed.width <= self.width and needed.batch_norm <= self.batch_norm
                and needed.out_features == self.out_features
                and (self.depth == needed.depth or all(spec.hidden for spec in specs)
                     or self.width >= self.in_features))

    def to_dict(self) -> dict[str, int | bool]:
        """What a trial records of it (`hpo.train.rules.started_record`)."""
        return {"depth": self.depth, "width": self.width, "batch_norm": self.batch_norm}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], spec: ModelSpec) -> Layout:
        """The layout `to_dict` wrote, for a model of ``spec``."""
        return cls(spec.in_features, int(values["depth"]), int(values["width"]),
                   bool(values["batch_norm"]), spec.out_features)

    @property
    def per_layer(self) -> int:
        """Tensors per hidden layer: weight, bias, and batch norm's weight and bias."""
        return 4 if self.batch_norm else 2

    def shapes(self) -> list[tuple[int, int]]:
        """Each tensor's shape without the model axis, layer by layer, output last."""
        shapes: list[tuple[int, int]] = []
        width_in = self.in_features
        for _ in range(self.depth):
            shapes += [(width_in, self.width), (1, self.width)]
            shapes += [(1, self.width)] * (self.per_layer - 2)
            width_in = self.width
        return [*shapes, (width_in, self.out_features), (1, self.out_features)]


@dataclass
class Masks:
    """Per-model masks, model axis first: what makes a padded model exactly itself."""

    units: list[torch.Tensor]  # per hidden layer, (models, 1, width): the model's real units
    biases: list[torch.Tensor]  # per hidden layer: real units whose Linear has a bias
    deeper: list[torch.Tensor]  # per hidden layer, (models, 1, 1): the model has this layer
    batch_norm: torch.Tensor  # (models, 1, 1)
    activations: dict[str, torch.Tensor]  # name -> (models, 1, 1)

    def keep(self, index: torch.Tensor) -> Masks:
        """The masks of the models at ``index`` only."""
        return Masks([u[index] for u in self.units], [b[index] for b in self.biases],
                     [d[index] for d in self.deeper], self.batch_norm[index],
                     {name: mask[index] for name, mask in self.activations.items()})

    def cat(self, other: Masks) -> Masks:
        """These models' masks, then ``other``'s (models that joined a running population)."""
        def joined(a: list[torch.Tensor], b: list[torch.Tensor]) -> list[torch.Tensor]:
            return [torch.cat([x, y]) for x, y in zip(a, b, strict=True)]

        def activation(name: str) -> torch.Tensor:  # an activation one side lacks: all False
            mine, theirs = self.activations.get(name), other.activations.get(name)
            if mine is None:
                mine = torch.zeros_like(self.batch_norm)
            if theirs is None:
                theirs = torch.zeros_like(other.batch_norm)
            return torch.cat([mine, theirs])

        return Masks(joined(self.units, other.units), joined(self.biases, other.biases),
                     joined(self.deeper, other.deeper),
                     torch.cat([self.batch_norm, other.batch_norm]),
                     {name: activation(name)
                      for name in sorted({*self.activations, *other.activations})})


@dataclass
class Stacked:
    """What `stack` builds: weights ``(models, ...)`` per `Layout.shapes`, batch norm's
    running mean and variance per hidden layer ``(models, 1, width)``, each model's own
    parameter count, and its masks."""

    weights: list[torch.Tensor]
    buffers: list[torch.Tensor]
    n_params: list[int]
    masks: Masks


def stack(layout: Layout, specs: Sequence[ModelSpec], seeds: Sequence[int],
          device: torch.device) -> Stacked:
    """Each model built at its own shape from its own seed, as the one-at-a-time path
    builds it, then copied into its zeroed padded slots."""
    count = len(specs)
    dtype = torch.get_default_dtype()  # build_model's: float64 in the parity tests
    weights = [torch.zeros(count, *shape, dtype=dtype) for shape in layout.shapes()]
    buffers = [torch.zeros(count, 1, layout.width, dtype=dtype) if i % 2 == 0
               else torch.ones(count, 1, layout.width, dtype=dtype)
               for i in range(2 * layout.depth if layout.batch_norm else 0)]
    units = [torch.zeros(count, 1, layout.width, dtype=dtype) for _ in range(layout.depth)]
    biases = [torch.zeros_like(u) for u in units]
    n_params = []
    for m, (spec, seed) in enumerate(zip(specs, seeds, strict=True)):
        model = build_model(spec, seed=seed)
        n_params.append(count_parameters(model))
        _copy(layout, model, m, weights, buffers)
        for layer, width in enumerate(spec.hidden):
            units[layer][m, 0, :width] = 1.0
            biases[layer][m, 0, :width] = 0.0 if spec.batch_norm else 1.0
    depth = torch.tensor([len(spec.hidden) for spec in specs]).view(-1, 1, 1)
    names = [spec.activation for spec in specs]

    def moved(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        return [t.to(device).contiguous() for t in tensors]

    masks = Masks(
        moved(units), moved(biases), [(depth > layer).to(device) for layer in range(layout.depth)],
        torch.tensor([spec.batch_norm and bool(spec.hidden) for spec in specs],
                     device=device).view(-1, 1, 1),
        {name: torch.tensor([n == name for n in names], device=device).view(-1, 1, 1)
         for name in sorted(set(names))})
    return Stacked(moved(weights), moved(buffers), n_params, masks)


def _copy(layout: Layout, model: nn.Module, m: int, weights: list[torch.Tensor],
          buffers: list[torch.Tensor]) -> None:
    """Model ``m``'s tensors into the top-left corner of its slots."""
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    norms = [module for module in model.modules() if isinstance(module, nn.BatchNorm1d)]
    slots: list[tuple[int, torch.Tensor]] = []
    for layer, linear in enumerate(linears[:-1]):
        base = layer * layout.per_layer
        slots.append((base, linear.weight.detach().T))
        if linear.bias is not None:
            slots.append((base + 1, linear.bias.detach().view(1, -1)))
    for layer, norm in enumerate(norms):
        base = layer * layout.per_layer
        slots += [(base + 2, norm.weight.detach().view(1, -1)),
                  (base + 3, norm.bias.detach().view(1, -1))]
        for offset, stat in enumerate((norm.running_mean, norm.running_var)):
            assert stat is not None  # track_running_stats is on: build_model's default
            buffers[2 * layer + offset][m, :, :len(stat)] = stat.view(1, -1)
    slots += [(len(weights) - 2, linears[-1].weight.detach().T),
              (len(weights) - 1, linears[-1].bias.detach().view(1, -1))]
    for index, tensor in slots:
        rows, columns = tensor.shape
        weights[index][m, :rows, :columns] = tensor


def unstack(layout: Layout, spec: ModelSpec, state: Sequence[torch.Tensor]) -> nn.Module:
    """The model of ``spec`` holding one model's weights: ``state`` is its tensors as `stack`
    lays them out (no model axis), then batch norm's running mean and variance per layer."""
    model = build_model(spec)
    weights, buffers = state[:len(layout.shapes())], state[len(layout.shapes()):]
    linears = [module for module in model.modules() if isinstance(module, nn.Linear)]
    norms = [module for module in model.modules() if isinstance(module, nn.BatchNorm1d)]
    with torch.no_grad():
        for layer, linear in enumerate(linears[:-1]):
            base = layer * layout.per_layer
            _load(linear.weight, weights[base].T)
            if linear.bias is not None:
                _load(linear.bias, weights[base + 1][0])
        for layer, norm in enumerate(norms):
            base = layer * layout.per_layer
            _load(norm.weight, weights[base + 2][0])
            _load(norm.bias, weights[base + 3][0])
            for offset, stat in enumerate((norm.running_mean, norm.running_var)):
                assert stat is not None  # track_running_stats is on: build_model's default
                _load(stat, buffers[2 * layer + offset][0])
        _load(linears[-1].weight, weights[-2].T)
        _load(linears[-1].bias, weights[-1][0])
    return model


def _load(target: torch.Tensor, padded: torch.Tensor) -> None:
    """The top-left corner of a padded slot into ``target`` (the inverse of `_copy`)."""
    if target.dim() == 1:
        target.copy_(padded[:len(target)])
    else:
        target.copy_(padded[:target.shape[0], :target.shape[1]])


@dataclass
class Member:
    """One model of a population and how its training went (as a `TrainResult` says it).

    ``rows`` has one dict per finished epoch with the columns of `train`'s history;
    ``stopped`` is None, ``"diverged"`` or ``"callback"``; ``seconds`` is the model's share of
    the population's wall time (each epoch's time divided by the models it trained).
    """

    index: int
    params: Mapping[str, Any]
    seed: int
    n_params: int = 0
    rows: list[dict[str, float]] = field(default_factory=list)
    stopped: str | None = None
    message: str = ""
    seconds: float = 0.0
    spec: ModelSpec | None = None
    state: list[torch.Tensor] | None = None  # its weights when it left (keep_weights)
    layout: Layout | None = None

    def model(self) -> nn.Module:
        """The trained model as ``build_model`` builds it (the population kept weights)."""
        if self.state is None or self.spec is None or self.layout is None:
            raise ValueError("Only a population trained with keep_weights=True keeps models.")
        return unstack(self.layout, self.spec, self.state)
